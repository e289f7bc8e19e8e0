-- The entries found by the document id they carry are a shipment's only: its dispatch, its
-- acknowledgements and its closing carry the shipment's id (the one read, listing a
-- shipment's acknowledgements, goes from those entries to their documents). The index keeps
-- those kinds of entry and no other.
--
-- Why: every entry wrote a key into the old index, and an entry's document id lands apart
-- from the batch's other keys (a purchase's id is its client's, not the ledger's order), so
-- each purchase, receipt and production run cost the server one more index insert and one
-- more page written for a key no read ever wanted. An entry's kind never changes, so the
-- index holds the same shipment entries the old one did.
drop index entries_document;
create index entries_shipment on entries (document)
    where kind in ('dispatch', 'acknowledgement', 'close');
