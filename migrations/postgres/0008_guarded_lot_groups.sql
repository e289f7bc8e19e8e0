-- The index that finds the lots of an item at an account covers only guarded balances.
--
-- Why: the writer reads it for one thing, picking lots first-expiry-first out of a stock
-- account (`Needs::groups`), and only stock and transit accounts are guarded; yet every new
-- balance row wrote an entry into it, and more than half of the balance rows are of unguarded
-- accounts (a supplier's, a consumer's, a donation's: 94 000 of 166 000 at 310 000 postings),
-- rows no read of it ever wants. `guarded` never changes once a row is written, so an update
-- of a balance can still be a heap-only update.
--
-- The writer's group lookup says `b.guarded`, which is what lets the planner use a partial
-- index.
drop index balances_account_sku;
create index balances_guarded_account_sku on balances (account, sku) where guarded;
