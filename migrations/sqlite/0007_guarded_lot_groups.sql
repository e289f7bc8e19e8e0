-- The index that finds the lots of an item at an account covers only guarded balances, and
-- the writer's lookup names it.
--
-- Why: the writer reads it for one thing, picking lots first-expiry-first out of a stock
-- account (`Needs::groups`), and only stock and transit accounts are guarded; yet every new
-- balance row wrote an entry into it, and more than half of the balance rows are of unguarded
-- accounts (a supplier's, a consumer's, a donation's: 94 000 of 166 000 at 310 000 postings).
-- Each such entry is one more index page a commit writes (one more WAL frame), for rows no
-- read of it ever wants. `guarded` never changes once a row is written, so updates of a
-- balance still never touch the index.
--
-- Without statistics SQLite did not use the old index at all: it read the lots of
-- (account, item) by the primary key's `account`, every balance the account ever had, of every
-- item. The lookup (`LOT_GROUPS_SQL` in write.rs) now says `indexed by` this index, and
-- `guarded = 1`, without which a partial index cannot serve it.
drop index balances_account_sku;
create index balances_guarded_account_sku on balances (account, sku) where guarded = 1;
