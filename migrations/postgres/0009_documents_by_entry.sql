-- Documents found by the entry they posted: a shipment's acknowledgements are the documents of
-- the entries that carry the shipment's id (`entries_document`), so the lookup goes from those
-- few entries to their documents.
--
-- Why: without it, listing a shipment's acknowledgements hashed every acknowledgement document
-- in the ledger to join them to the shipment's entries (178 ms a page at 12 000
-- acknowledgements, growing with the ledger). The key only grows, so a batch's inserts go to
-- the index's last page.
create index documents_entry on documents (entry_seq);
