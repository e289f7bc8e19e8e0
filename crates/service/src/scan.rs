//! One pass over the journal, entry by entry in sequence, that gathers everything an auditor
//! reconciles: the hash chain, the sums of the trial balance, and the conservation checks
//! (invariants 1, 2 and 5). `verify` and the `reconciliation` report read the journal once
//! through it instead of once per check. The `trial-balance` and `conservation` reports keep
//! their own SQL, so the same invariants are computed twice by independent code, and
//! `tests/audit.rs` holds the two to the same answers.

use std::collections::{BTreeMap, HashMap};

use ledger::{Account, Hash, LotNo, Sku};
use store::{BalanceFilter, BalanceMismatch, BalanceRow, Store, StoreError, Violation};

use crate::error::Result;

/// Entries read per page: large pages keep the number of queries small on a long journal.
const SCAN_PAGE: u32 = store::PAGE_MAX;

/// Sums of one (account, sku, lot) over the journal, and where a guarded one first dipped.
#[derive(Debug, Default, Clone, Copy)]
struct Sum {
    qty: i128,
    value: i128,
    /// The first entry after which a guarded balance was negative in quantity or value, and
    /// the lowest running quantity among such entries (what the SQL check reports).
    dip: Option<(u64, i128)>,
}

/// What one pass found.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Entries whose chain was checked, in an unbroken run from the first.
    pub entries: u64,
    /// The hash of the last checked entry.
    pub last_hash: Hash,
    /// The first entry whose sequence, hash or content does not match.
    pub first_bad: Option<u64>,
    /// What was wrong, in words.
    pub problems: Vec<String>,
    /// False when an entry could not be read: the sums then stop short of the journal's end.
    pub complete: bool,
    totals: HashMap<(Account, Sku, LotNo), Sum>,
    /// `totals` with written keys, ordered by (account, sku, lot): made once, at the end.
    written: BTreeMap<(String, String, String), Sum>,
    entry_quantity: Vec<Violation>,
    entry_value: Vec<Violation>,
    ledger_value: i128,
}

/// Narrows an exact sum to storage width for a report; a sum past 64 bits (only possible with
/// rows written outside the service) is shown at the nearest bound.
fn narrow(x: i128) -> i64 {
    i64::try_from(x).unwrap_or(if x < 0 { i64::MIN } else { i64::MAX })
}

/// Reads every entry once, in sequence, calling `progress(done, of)` after each page.
pub(crate) async fn run(
    store: &dyn Store,
    head_seq: u64,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Scan> {
    let mut s = Scan {
        entries: 0,
        last_hash: Hash::GENESIS,
        first_bad: None,
        problems: Vec::new(),
        complete: true,
        totals: HashMap::new(),
        written: BTreeMap::new(),
        entry_quantity: Vec::new(),
        entry_value: Vec::new(),
        ledger_value: 0,
    };
    let mut chain_ok = true;
    let mut after = 0u64;
    loop {
        let page = match store.entries(after, SCAN_PAGE).await {
            Ok(p) => p,
            Err(StoreError::CorruptEntry { seq, message }) => {
                s.first_bad.get_or_insert(seq);
                s.problems
                    .push(format!("entry {seq} cannot be read: {message}"));
                s.complete = false;
                break;
            }
            Err(e) => return Err(e.into()),
        };
        let Some(last) = page.last() else { break };
        after = last.entry.seq();
        for e in &page {
            let seq = e.entry.seq();
            if chain_ok {
                let expected = s.entries + 1;
                if seq != expected {
                    s.first_bad.get_or_insert(expected);
                    s.problems.push(format!(
                        "entry {expected} is missing (next stored entry is {seq})"
                    ));
                    chain_ok = false;
                } else {
                    let computed = e.entry.chain_hash(&s.last_hash);
                    if computed == e.hash {
                        s.last_hash = e.hash;
                        s.entries += 1;
                    } else {
                        s.first_bad.get_or_insert(seq);
                        s.problems.push(format!("entry {seq}: stored hash {} but its content and the previous hash give {computed}", e.hash));
                        chain_ok = false;
                    }
                }
            }
            // The sums go on past a broken link: the balances are still worth comparing.
            s.add(seq, e.entry.postings());
        }
        progress(after, head_seq);
    }
    s.written = std::mem::take(&mut s.totals)
        .into_iter()
        .map(|((a, sku, l), sum)| ((a.to_string(), sku.to_string(), l.to_string()), sum))
        .collect();
    Ok(s)
}

impl Scan {
    /// Adds one entry's postings: invariant 1 for the entry, the running guarded balances
    /// after it (invariant 2), and the journal's totals.
    fn add(&mut self, seq: u64, postings: &[ledger::Posting]) {
        // The entry's net per (account, item, lot), so that each total is looked up once and a
        // running balance is judged after the whole entry, as the database judges it. An entry
        // has a handful of postings: a linear search beats hashing here.
        let mut net: Vec<(&ledger::Posting, i128, i128)> = Vec::with_capacity(postings.len());
        for p in postings {
            let (q, v) = (i128::from(p.qty.scaled()), i128::from(p.value.scaled()));
            match net
                .iter_mut()
                .find(|(x, _, _)| x.account == p.account && x.sku == p.sku && x.lot == p.lot)
            {
                Some(x) => {
                    x.1 += q;
                    x.2 += v;
                }
                None => net.push((p, q, v)),
            }
        }
        let mut per_lot: Vec<(&Sku, &LotNo, i128)> = Vec::with_capacity(net.len());
        let mut value = 0i128;
        for (p, q, v) in net {
            match per_lot
                .iter_mut()
                .find(|(s, l, _)| *s == &p.sku && *l == &p.lot)
            {
                Some(x) => x.2 += q,
                None => per_lot.push((&p.sku, &p.lot, q)),
            }
            value += v;
            let sum = self
                .totals
                .entry((p.account.clone(), p.sku.clone(), p.lot.clone()))
                .or_default();
            sum.qty += q;
            sum.value += v;
            if p.account.guarded() && (sum.qty < 0 || sum.value < 0) {
                sum.dip = Some(match sum.dip {
                    Some((first, low)) => (first, low.min(sum.qty)),
                    None => (seq, sum.qty),
                });
            }
        }
        self.ledger_value += value;
        per_lot.sort_by(|a, b| (a.0.as_str(), a.1.as_str()).cmp(&(b.0.as_str(), b.1.as_str())));
        for (sku, lot, q) in per_lot.into_iter().filter(|x| x.2 != 0) {
            self.entry_quantity.push(Violation {
                check: "entry-quantity",
                seq: Some(seq),
                account: None,
                sku: Some(sku.to_string()),
                lot: Some(lot.to_string()),
                is_value: false,
                expected: 0,
                found: narrow(q),
            });
        }
        if value != 0 {
            self.entry_value.push(Violation {
                check: "entry-value",
                seq: Some(seq),
                account: None,
                sku: None,
                lot: None,
                is_value: true,
                expected: 0,
                found: narrow(value),
            });
        }
    }

    /// The trial balance over the whole journal: rows that are not zero, ordered by account,
    /// sku and lot.
    pub fn trial_balance(&self) -> Vec<BalanceRow> {
        self.written
            .iter()
            .filter(|(_, s)| s.qty != 0 || s.value != 0)
            .map(|((account, sku, lot), s)| BalanceRow {
                account: account.clone(),
                sku: sku.clone(),
                lot: lot.clone(),
                quantity: ledger::Qty::from_scaled(narrow(s.qty)),
                value: ledger::Money::from_scaled(narrow(s.value)),
            })
            .collect()
    }

    /// Invariants 1, 2 and 5 over the journal, in the order and shape of the SQL checks:
    /// entries that do not balance, guarded balances that dipped, lots that do not sum to
    /// zero, and the ledger's value.
    pub fn violations(&self) -> Vec<Violation> {
        let written = &self.written;
        let mut out = self.entry_quantity.clone();
        out.extend(self.entry_value.iter().cloned());
        let mut dips: Vec<Violation> = written
            .iter()
            .filter_map(|((account, sku, lot), s)| {
                s.dip.map(|(seq, low)| Violation {
                    check: "negative-balance",
                    seq: Some(seq),
                    account: Some(account.clone()),
                    sku: Some(sku.clone()),
                    lot: Some(lot.clone()),
                    is_value: false,
                    expected: 0,
                    found: narrow(low),
                })
            })
            .collect();
        // Ordered by account then lot, as the SQL orders them.
        dips.sort_by(|a, b| (&a.account, &a.lot).cmp(&(&b.account, &b.lot)));
        out.extend(dips);
        let mut lots: BTreeMap<(&str, &str), (i128, i128)> = BTreeMap::new();
        for ((_, sku, lot), s) in written {
            let x = lots.entry((sku, lot)).or_default();
            x.0 += s.qty;
            x.1 += s.value;
        }
        for ((sku, lot), (q, v)) in lots {
            let at = |check, is_value, found| Violation {
                check,
                seq: None,
                account: None,
                sku: Some(sku.to_owned()),
                lot: Some(lot.to_owned()),
                is_value,
                expected: 0,
                found: narrow(found),
            };
            if q != 0 {
                out.push(at("lot-quantity", false, q));
            }
            if v != 0 {
                out.push(at("lot-value", true, v));
            }
        }
        if self.ledger_value != 0 {
            out.push(Violation {
                check: "ledger-value",
                seq: None,
                account: None,
                sku: None,
                lot: None,
                is_value: true,
                expected: 0,
                found: narrow(self.ledger_value),
            });
        }
        out
    }

    /// `lot-item`: postings that name another item than their lot holds. The pass knows which
    /// items each lot's postings name, so the lots table is read only for those lots, a page
    /// at a time; the postings themselves are looked for (SQL over every posting) only when
    /// a lot disagrees, which a ledger written by the service never does.
    pub async fn lot_item_violations(&self, store: &dyn Store) -> Result<Vec<Violation>> {
        let mut named: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (_, sku, lot) in self.written.keys() {
            let skus = named.entry(lot).or_default();
            if !skus.contains(&sku.as_str()) {
                skus.push(sku);
            }
        }
        let lots: Vec<String> = named.keys().map(|l| (*l).to_owned()).collect();
        for chunk in lots.chunks(store::PAGE_MAX as usize) {
            for lot in store.lots(chunk).await? {
                let holds = lot.sku.as_str();
                if named[lot.lot.as_str()].iter().any(|s| *s != holds) {
                    return Ok(store.lot_item_violations().await?);
                }
            }
        }
        Ok(Vec::new())
    }

    /// The maintained balances compared with the sums of the pass, in both directions (a
    /// balance with no postings, postings with no balance), ordered by (account, lot).
    pub async fn balance_mismatches(&self, store: &dyn Store) -> Result<Vec<BalanceMismatch>> {
        assert!(
            self.complete,
            "balances are compared only with a whole journal"
        );
        // (maintained qty, value, posted qty, value) per (account, lot).
        let mut both: HashMap<(String, String), [i128; 4]> = HashMap::new();
        for ((account, _, lot), s) in &self.written {
            let x = both.entry((account.clone(), lot.clone())).or_default();
            x[2] += s.qty;
            x[3] += s.value;
        }
        let filter = BalanceFilter::default();
        let mut after = None;
        loop {
            let page = store.balances(&filter, after, store::PAGE_MAX).await?;
            let full = page.len() == store::PAGE_MAX as usize;
            after = page.last().map(|b| (b.account.clone(), b.lot.clone()));
            for b in page {
                let x = both.entry((b.account, b.lot)).or_default();
                x[0] += i128::from(b.quantity.scaled());
                x[1] += i128::from(b.value.scaled());
            }
            if !full {
                break;
            }
        }
        let mut found: Vec<BalanceMismatch> = both
            .into_iter()
            .filter(|(_, x)| x[0] != x[2] || x[1] != x[3])
            .map(|((account, lot), x)| BalanceMismatch {
                account,
                lot,
                maintained_qty: narrow(x[0]),
                maintained_value: narrow(x[1]),
                posted_qty: narrow(x[2]),
                posted_value: narrow(x[3]),
            })
            .collect();
        found.sort_by(|a, b| (&a.account, &a.lot).cmp(&(&b.account, &b.lot)));
        Ok(found)
    }
}
