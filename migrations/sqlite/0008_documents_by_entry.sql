-- Documents found by the entry they posted: a shipment's acknowledgements are the documents of
-- the entries that carry the shipment's id (`entries_document`), so the lookup goes from those
-- few entries to their documents.
--
-- Why: without it, listing a shipment's acknowledgements read every acknowledgement document
-- in the ledger, in order, to keep those whose entry names the shipment (43 ms a page at
-- 12 000 acknowledgements, growing with the ledger). The key only grows, so a commit writes
-- the index's last page, shared by its whole batch.
create index documents_entry on documents (entry_seq);
