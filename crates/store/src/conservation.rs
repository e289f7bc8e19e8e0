//! The conservation report's checks (invariants 1, 2 and 5) as the statements both backends
//! run, and the findings their rows make: a backend only runs each statement and hands back
//! the columns a finding names.

use std::future::Future;

use futures_util::{StreamExt, TryStreamExt};

use crate::{BalanceMismatch, Result, Violation};

/// One of the checks, as a backend runs it: its findings, in its order.
pub type Check<'a> = std::pin::Pin<Box<dyn Future<Output = Result<Vec<Violation>>> + Send + 'a>>;

/// How many checks run side by side. Each is a statement of its own, most of them a full
/// grouping of the postings, and one at a time they left a core idle: two, one per core of
/// the machines this serves, without taking every reader from the requests that arrive
/// meanwhile.
pub const CHECKS_AT_ONCE: usize = 2;

/// A row of a check's statement: the columns a finding names (absent where the statement has
/// no such column, or it is null), and the sums found (`q` quantity, `s` value).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckRow {
    pub seq: Option<i64>,
    pub account: Option<String>,
    pub sku: Option<String>,
    pub lot: Option<String>,
    pub q: Option<i64>,
    pub s: Option<i64>,
}

// Invariant 1: every entry balances per (item, lot) in quantity, and in value.
const ENTRY_QUANTITY_SQL: &str = "select seq, sku, lot, cast(sum(qty) as bigint) as q from postings group by seq, sku, lot having sum(qty) <> 0 order by seq, sku, lot";
const ENTRY_VALUE_SQL: &str = "select seq, cast(sum(value) as bigint) as s from postings group by seq having sum(value) <> 0 order by seq";
// Invariant 2: a guarded balance, summed entry by entry in sequence, never dips below zero;
// the first entry at which it does is named.
const NEGATIVE_BALANCE_SQL: &str = "with per_entry as (
         select account, sku, lot, seq, sum(qty) as q, sum(value) as v from postings
         where account like 'stock:%' or account like 'transit:%'
         group by account, sku, lot, seq),
     running as (
         select account, sku, lot, seq,
                sum(q) over (partition by account, lot order by seq rows unbounded preceding) as rq,
                sum(v) over (partition by account, lot order by seq rows unbounded preceding) as rv
         from per_entry)
     select account, sku, lot, min(seq) as seq, cast(min(rq) as bigint) as q from running
     where rq < 0 or rv < 0 group by account, sku, lot order by account, lot";
// Invariant 5: summed over all accounts every lot has quantity and value zero, and so has the
// whole ledger's value.
const LOT_SUMS_SQL: &str = "select sku, lot, cast(sum(qty) as bigint) as q, cast(sum(value) as bigint) as s from postings group by sku, lot
     having sum(qty) <> 0 or sum(value) <> 0 order by sku, lot";
const LEDGER_VALUE_SQL: &str = "select cast(sum(value) as bigint) as s from postings";

/// A finding of `check` on `row`, whose sum `found` is not the zero it should be.
fn finding(check: &'static str, is_value: bool, row: &CheckRow, found: Option<i64>) -> Violation {
    Violation {
        check,
        seq: row.seq.map(crate::decode::seq),
        account: row.account.clone(),
        sku: row.sku.clone(),
        lot: row.lot.clone(),
        is_value,
        expected: 0,
        found: found.expect("a check's statement keeps only sums that are not zero"),
    }
}

/// Every check's findings, in order: the statements above, each run by `rows`, then the
/// backend's own `lot_items` (every posting names the item its lot holds) and `balances` (the
/// maintained balances that differ from the postings'), `CHECKS_AT_ONCE` at a time.
pub async fn violations<'a, F, Fut>(
    rows: F,
    lot_items: impl Future<Output = Result<Vec<Violation>>> + Send + 'a,
    balances: impl Future<Output = Result<Vec<BalanceMismatch>>> + Send + 'a,
) -> Result<Vec<Violation>>
where
    F: Fn(&'static str) -> Fut + Copy + Send + 'a,
    Fut: Future<Output = Result<Vec<CheckRow>>> + Send + 'a,
{
    let each = move |sql: &'static str, map: fn(&CheckRow, &mut Vec<Violation>)| -> Check<'a> {
        Box::pin(async move {
            let mut out = Vec::new();
            for row in &rows(sql).await? {
                map(row, &mut out);
            }
            Ok(out)
        })
    };
    let checks: Vec<Check<'a>> = vec![
        each(ENTRY_QUANTITY_SQL, |r, out| {
            out.push(finding("entry-quantity", false, r, r.q));
        }),
        each(ENTRY_VALUE_SQL, |r, out| {
            out.push(finding("entry-value", true, r, r.s));
        }),
        each(NEGATIVE_BALANCE_SQL, |r, out| {
            out.push(finding("negative-balance", false, r, r.q));
        }),
        each(LOT_SUMS_SQL, |r, out| {
            if r.q != Some(0) {
                out.push(finding("lot-quantity", false, r, r.q));
            }
            if r.s != Some(0) {
                out.push(finding("lot-value", true, r, r.s));
            }
        }),
        // The sum of no postings is null: nothing to find.
        each(LEDGER_VALUE_SQL, |r, out| {
            if r.s.is_some_and(|s| s != 0) {
                out.push(finding("ledger-value", true, r, r.s));
            }
        }),
        Box::pin(lot_items),
        Box::pin(async move {
            let found = balances.await?;
            Ok(found
                .into_iter()
                .flat_map(BalanceMismatch::violations)
                .collect())
        }),
    ];
    let parts: Vec<Vec<Violation>> = futures_util::stream::iter(checks)
        .buffered(CHECKS_AT_ONCE)
        .try_collect()
        .await?;
    Ok(parts.concat())
}
