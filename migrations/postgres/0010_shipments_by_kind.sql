-- Shipments of a kind in dispatch order: a page of a list by kind (the batches, the donations,
-- the donations report) reads its shipments from this index in order, from the cursor on.
--
-- Why: the index of (kind, status, dispatch order) gives dispatch order only within a status,
-- so a page of a kind's shipments read every shipment of the kind, or every shipment, and
-- sorted them (the planner without statistics: a bitmap scan, or a scan of the whole table,
-- 35-50 ms a page at 390 000 shipments, growing with the ledger). With this index and the
-- page's reads planned by index (`plan_reads_by_index`), 3.5 ms. Its key only grows within a
-- kind, so a batch's inserts go to the last page of each kind.
create index shipments_kind_dispatch on shipments (kind, dispatch_seq);
