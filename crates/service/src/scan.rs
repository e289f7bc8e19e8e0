//! One pass over the journal, entry by entry in sequence, that gathers everything an auditor
//! reconciles: the hash chain, the sums of the trial balance, and the conservation checks
//! (invariants 1, 2 and 5). `verify` and the `reconciliation` report read the journal once
//! through it instead of once per check. The `trial-balance` and `conservation` reports keep
//! their own SQL, so the same invariants are computed twice by independent code, and
//! `tests/audit.rs` holds the two to the same answers.

// The pass's maps are keyed by text read from the store, not by what a client sends: a fast
// hasher, not a flood-resistant one.
use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::HashMap;
use hashbrown::HashTable;

use ledger::{EntryHeader, Hash, PostingParts};
use store::decode;
use store::{
    BalanceMismatch, EntryColumns, JournalPage, PostingColumns, Postings, ShipmentMismatch,
    Snapshot, Store, StoreError, Violation,
};

use crate::error::Result;

/// Entries read per page: large pages keep the number of queries small on a long journal.
const SCAN_PAGE: u32 = store::JOURNAL_PAGE_MAX;
/// Most keys room is made for before the pass (64 bytes each): past it, the table grows.
const KEYS_HINT_MAX: usize = 1 << 26;
/// Pages sent to the chain thread and not yet checked, at most: a few megabytes each.
const CHAIN_PAGES_AHEAD: usize = 2;

/// Sums of one (account, sku, lot) over the journal.
#[derive(Debug, Default, Clone, Copy)]
struct Sum {
    qty: i128,
    value: i128,
}

/// One (account, item, lot) the journal posts to, by numbers, and its sums. Kept small
/// (no texts, no rare fields): a ledger of 10M postings has millions of keys (4.3M, naming
/// 0.5M accounts and 1.3M lots).
#[derive(Debug, Default)]
struct Key {
    /// The account as the chain writes it (`stock:RAW`), by its number in [`Names`].
    account: u32,
    /// The item, by its number in [`Names`].
    sku: u32,
    /// Which (item, lot) this is, by its number in [`Lots`]: the number the per-entry check of
    /// invariant 1 nets by.
    item_lot: u32,
    /// Whether the account may never go negative (invariant 2).
    guarded: bool,
    sum: Sum,
}

/// The (item, lot) pairs the keys name, numbered in the order the pass meets them: each lot's
/// text once, however many accounts hold it, in one buffer.
#[derive(Debug, Default)]
struct Lots {
    text: String,
    /// Where each lot's text ends in `text`, by number.
    ends: Vec<usize>,
    /// Each lot's item, by its number in [`Names`].
    skus: Vec<u32>,
}

impl Lots {
    fn len(&self) -> usize {
        self.ends.len()
    }

    /// Adds a pair and gives its number.
    fn push(&mut self, sku: u32, lot: &str) -> u32 {
        let n = u32_of(self.ends.len());
        self.text.push_str(lot);
        self.ends.push(self.text.len());
        self.skus.push(sku);
        n
    }

    /// The lot text of pair `n`.
    fn lot(&self, n: u32) -> &str {
        let n = n as usize;
        let start = if n == 0 { 0 } else { self.ends[n - 1] };
        &self.text[start..self.ends[n]]
    }

    /// The item of pair `n`, by its number in [`Names`].
    fn sku(&self, n: u32) -> u32 {
        self.skus[n as usize]
    }
}

/// The accounts and items the keys name, each text numbered once (0.5M at 10M postings, most
/// of them the transit accounts of shipments).
#[derive(Debug, Default)]
struct Names {
    texts: Vec<Box<str>>,
    numbers: HashMap<Box<str>, u32>,
    /// What each name was decoded as, by number: a text is decoded once as an account (and
    /// whether that account is guarded) and once as an item, however many keys name it.
    decoded: Vec<Decoded>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Decoded {
    /// Whether the account is guarded, once the text has been decoded as an account.
    account: Option<bool>,
    /// Whether the text has been decoded as an item.
    sku: bool,
}

impl std::ops::Index<u32> for Names {
    type Output = str;
    fn index(&self, n: u32) -> &str {
        &self.texts[n as usize]
    }
}

/// The trial balance a pass summed: its keys that are not zero, in order.
#[derive(Debug)]
pub(crate) struct TrialBalance {
    keys: Vec<Key>,
    names: Names,
    lots: Lots,
}

impl crate::reports::BalanceRows for TrialBalance {
    fn len(&self) -> usize {
        self.keys.len()
    }
    fn row(&self, i: usize) -> crate::reports::BalanceRef<'_> {
        let k = &self.keys[i];
        crate::reports::BalanceRef {
            account: &self.names[k.account],
            sku: &self.names[k.sku],
            lot: self.lots.lot(k.item_lot),
            quantity: ledger::Qty::from_scaled(narrow(k.sum.qty)),
            value: ledger::Money::from_scaled(narrow(k.sum.value)),
        }
    }
}

/// What one pass found.
#[derive(Debug)]
pub(crate) struct Scan {
    /// The hash chain, as the chain thread checked it, and what could not be read.
    pub chain: Chain,
    /// False when an entry could not be read: the sums then stop short of the journal's end.
    pub complete: bool,
    /// Every key posted to: in the order the pass met them while it runs, then ordered by
    /// (account, sku, lot).
    keys: Vec<Key>,
    names: Names,
    /// Each name's place in the text order of all names, by number (empty until the pass
    /// ends): account and item comparisons of the sorts are of these.
    rank: Vec<u32>,
    /// Each (item, lot)'s lot, by its place in the text order of the journal's lots (equal
    /// lots, of two items in a damaged ledger, share one), by (item, lot) number (empty until
    /// the pass ends): the balances' (account, lot) order is of these.
    lot_rank: Vec<u32>,
    /// Every (item, lot) the keys name.
    lots: Lots,
    /// The (item, lot) numbers in (lot, item) order (empty until the pass ends).
    lot_order: Vec<u32>,
    /// Whether a lot is posted as two items (only in a damaged ledger): the running balances
    /// the pass judges per (account, item, lot) then differ from the maintained ones, which
    /// are per (account, lot), and the reconciliation takes the SQL checks' word instead.
    pub lot_of_two_items: bool,
    /// Guarded balances that went negative (invariant 2), ordered as the SQL check orders them.
    negative: Vec<Violation>,
    entry_quantity: Vec<Violation>,
    entry_value: Vec<Violation>,
    ledger_value: i128,
    /// Shipment lines whose outstanding quantity disagrees with the transit balance, read in
    /// the pass's snapshot while the pass orders its keys.
    pub shipments: Vec<ShipmentMismatch>,
}

/// The pass's working state: lookups and buffers reused from entry to entry.
#[derive(Default)]
struct Walk {
    /// Every key's number in `Scan::keys`, found by the key's text (account, item, lot): a
    /// posting costs one lookup, and a key is decoded and allocated once, however often it is
    /// posted to. The table holds numbers only; a lookup compares the key they name.
    keys: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    /// Every (item, lot)'s number, found by the item's number and the lot's text.
    item_lots: HashTable<u32>,
    /// Per key that is guarded and went negative: the first entry after which it was
    /// negative in quantity or value, and the lowest running quantity among such entries
    /// (what the SQL check reports). Rare, so kept apart from the keys; made into violations
    /// when the pass ends, before the keys are reordered.
    dips: HashMap<u32, (u64, i128)>,
    /// The current entry's postings as (key, quantity, value).
    postings: Vec<(u32, i64, i64)>,
    /// The current entry's net per key, and per (item, lot) with a key that names it.
    net: Vec<(u32, i128, i128)>,
    per_lot: Vec<(u32, u32, i128)>,
}

/// Narrows an exact sum to storage width for a report; a sum past 64 bits (only possible with
/// rows written outside the service) is shown at the nearest bound.
fn narrow(x: i128) -> i64 {
    i64::try_from(x).unwrap_or(if x < 0 { i64::MIN } else { i64::MAX })
}

/// Reads every entry of the snapshot once, in sequence, calling `progress(done, of)` after
/// each page.
pub(crate) async fn run(
    snapshot: &dyn Snapshot,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Scan> {
    let started = std::time::Instant::now();
    let head_seq = snapshot.head().seq;
    // A key per maintained balance in a ledger the service wrote: room for them all at once,
    // rather than the table doubling and copying its way there (at 10M postings the copies
    // and the fresh pages they touch were a fifth of the pass). Bounded, as it is only a hint.
    let room = usize::try_from(snapshot.balances_hint().await?)
        .unwrap_or(0)
        .min(KEYS_HINT_MAX);
    let mut s = Scan {
        // Replaced by the chain thread's when the pages are read.
        chain: Chain::new(),
        complete: true,
        keys: Vec::with_capacity(room),
        names: Names::default(),
        rank: Vec::new(),
        lot_rank: Vec::new(),
        lots: Lots::default(),
        lot_order: Vec::new(),
        lot_of_two_items: false,
        negative: Vec::new(),
        entry_quantity: Vec::new(),
        entry_value: Vec::new(),
        ledger_value: 0,
        shipments: Vec::new(),
    };
    let mut walk = Walk {
        keys: HashTable::with_capacity(room),
        ..Walk::default()
    };
    // The chain is checked on a thread of its own, a page behind the sums: an entry's hash
    // needs only its stored columns and the stored hash before it, and the canonical bytes and
    // their SHA-256 were a fifth of the pass. The channel bounds the pages in flight.
    let (to_chain, pages) = tokio::sync::mpsc::channel(CHAIN_PAGES_AHEAD);
    let chain = tokio::task::spawn_blocking(move || Chain::check(pages));
    let mut unreadable = None;
    let mut after = 0u64;
    loop {
        let page = match snapshot.journal_page(after, SCAN_PAGE).await {
            Ok(p) => Arc::new(p),
            Err(StoreError::CorruptEntry { seq, message }) => {
                unreadable = Some((seq, message));
                break;
            }
            Err(e) => return Err(e.into()),
        };
        let Some(last) = page.last_seq() else { break };
        // The store reads the next pages meanwhile (see [`busy`]).
        let heads = busy(|| {
            let mut heads = Vec::with_capacity(page.len());
            for (e, postings) in page.entries() {
                match s.entry(&mut walk, &e, postings) {
                    Ok(head) => heads.push(head),
                    Err(StoreError::CorruptEntry { seq, message }) => {
                        unreadable = Some((seq, message));
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(heads)
        })?;
        // The chain thread ends only when this side drops the channel; a send that fails
        // means it panicked, which the join below reports.
        let _ = to_chain.send((Arc::clone(&page), heads)).await;
        if unreadable.is_some() {
            break;
        }
        after = decode::seq(last);
        progress(after, head_seq);
    }
    drop(to_chain);
    s.chain = chain.await.expect("the chain check does not panic");
    let read = started.elapsed();
    if let Some((seq, message)) = unreadable {
        s.unreadable(seq, &message);
    }
    // The lookups are done: the walk's maps go before the keys are ordered, once, for the
    // reports. Its dips name keys by number, so they become violations first.
    let dips = std::mem::take(&mut walk.dips);
    drop(walk);
    s.negative = dips
        .into_iter()
        .map(|(k, (seq, low))| {
            let k = &s.keys[k as usize];
            Violation {
                check: "negative-balance",
                seq: Some(seq),
                account: Some(s.names[k.account].to_owned()),
                sku: Some(s.names[k.sku].to_owned()),
                lot: Some(s.lots.lot(k.item_lot).to_owned()),
                is_value: false,
                expected: 0,
                found: narrow(low),
            }
        })
        .collect();
    // Ordered by account then lot, as the SQL orders them (then by item, which only a
    // damaged ledger can need).
    s.negative
        .sort_by(|a, b| (&a.account, &a.lot, &a.sku).cmp(&(&b.account, &b.lot, &b.sku)));
    // The shipments' transit check is SQL alone: the snapshot's connection runs it while this
    // thread orders the keys (each about a second at 10M postings), instead of one after the
    // other.
    let order = async {
        s.order();
        started.elapsed() - read
    };
    let (shipments, ordered) = tokio::join!(snapshot.shipment_mismatches(), order);
    s.shipments = shipments?;
    tracing::debug!(
        journal_ms = read.as_millis(),
        order_ms = ordered.as_millis(),
        transit_ms = (started.elapsed() - read).as_millis(),
        keys = s.keys.len(),
        "the pass read the journal"
    );
    debug_assert!(s.keys.windows(2).all(|w| {
        let (n, l) = (&s.names, &s.lots);
        let text = |k: &Key| (&n[k.account], &n[k.sku], l.lot(k.item_lot));
        text(&w[0]) < text(&w[1])
    }));
    Ok(s)
}

/// The hash chain as the chain thread checks it: entries in an unbroken run from the first,
/// and the first that breaks it.
#[derive(Debug)]
pub(crate) struct Chain {
    /// Entries whose chain was checked, in an unbroken run from the first.
    pub entries: u64,
    /// The hash of the last checked entry.
    pub last_hash: Hash,
    /// The first entry whose sequence, hash or content does not match, or that cannot be read.
    pub first_bad: Option<u64>,
    /// What was wrong, in words.
    pub problems: Vec<String>,
    /// The canonical bytes of the entry being hashed: one buffer, reused entry to entry.
    canonical: String,
}

/// A page of the journal and the header and stored hash of each of its entries the pass
/// read, in order (all of them, or those before an entry that cannot be read).
type ChainPage = (Arc<JournalPage>, Vec<(EntryHeader, Hash)>);

impl Chain {
    /// A chain of no entries, from the genesis hash.
    fn new() -> Chain {
        Chain {
            entries: 0,
            last_hash: Hash::GENESIS,
            first_bad: None,
            problems: Vec::new(),
            canonical: String::new(),
        }
    }

    /// Checks every entry of the pages sent, in order, until the chain breaks (the pages after
    /// that are received and dropped), and gives the result when the sender is dropped.
    fn check(mut pages: tokio::sync::mpsc::Receiver<ChainPage>) -> Chain {
        let mut c = Chain::new();
        while let Some((page, heads)) = pages.blocking_recv() {
            assert!(
                heads.len() <= page.len(),
                "the pass read the page's entries"
            );
            for ((_, postings), (header, hash)) in page.entries().zip(&heads) {
                if c.first_bad.is_some() {
                    break;
                }
                c.link(header, hash, postings);
            }
        }
        c
    }

    /// One entry: its place in the sequence and its hash from the one before it. The stored
    /// texts are the keys' texts (the pass asserts they round-trip), so they are hashed as
    /// read.
    fn link(&mut self, header: &EntryHeader, hash: &Hash, postings: Postings<'_>) {
        let (seq, expected) = (header.seq, self.entries + 1);
        if seq != expected {
            self.first_bad = Some(expected);
            self.problems.push(format!(
                "entry {expected} is missing (next stored entry is {seq})"
            ));
            return;
        }
        let computed = header.chain_hash(
            &self.last_hash,
            postings.iter().map(|p| PostingParts {
                account: p.account,
                sku: p.sku,
                lot: p.lot,
                qty: p.qty,
                value: p.value,
            }),
            &mut self.canonical,
        );
        if computed == *hash {
            self.last_hash = *hash;
            self.entries += 1;
        } else {
            self.first_bad = Some(seq);
            self.problems.push(format!(
                "entry {seq}: stored hash {hash} but its content and the previous hash give {computed}"
            ));
        }
    }
}

impl Names {
    /// The number of `text`, adding it the first time.
    fn number(&mut self, text: &str) -> u32 {
        if let Some(&n) = self.numbers.get(text) {
            return n;
        }
        let n = u32_of(self.texts.len());
        self.texts.push(text.into());
        self.numbers.insert(text.into(), n);
        self.decoded.push(Decoded::default());
        n
    }

    /// The number of an account's written form and whether the account is guarded, decoding
    /// it the first time (a posting of entry `seq` names it).
    fn account(&mut self, seq: u64, text: &str) -> Result<(u32, bool), StoreError> {
        let known = self.numbers.get(text).copied();
        if let Some(guarded) = known.and_then(|n| self.decoded[n as usize].account) {
            return Ok((known.expect("known"), guarded));
        }
        let account = decode::posting_account(seq, text)?;
        assert_eq!(
            account.to_string(),
            text,
            "entry {seq}: a posting's account does not round-trip"
        );
        let n = known.unwrap_or_else(|| self.number(text));
        self.decoded[n as usize].account = Some(account.guarded());
        Ok((n, account.guarded()))
    }

    /// The number of an item, decoding it the first time (a posting of entry `seq` names it).
    fn sku(&mut self, seq: u64, text: &str) -> Result<u32, StoreError> {
        let known = self.numbers.get(text).copied();
        if let Some(n) = known.filter(|&n| self.decoded[n as usize].sku) {
            return Ok(n);
        }
        let sku = decode::posting_sku(seq, text)?;
        assert_eq!(
            sku.as_str(),
            text,
            "entry {seq}: a posting's item does not round-trip"
        );
        let n = known.unwrap_or_else(|| self.number(text));
        self.decoded[n as usize].sku = true;
        Ok(n)
    }

    /// Each name's place in the text order of all of them, by number.
    fn ranks(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..u32_of(self.texts.len())).collect();
        order.sort_unstable_by(|&a, &b| self[a].cmp(&self[b]));
        let mut rank = vec![0; order.len()];
        for (r, n) in order.into_iter().enumerate() {
            rank[n as usize] = u32_of(r);
        }
        rank
    }
}

impl Scan {
    /// Puts the keys in (account, item, lot) order, and ranks the (item, lot) pairs for the
    /// balances' (account, lot) order and the lots' check. Names and lots become integers
    /// first (their places in text order), so that the sort of millions of keys compares and
    /// moves integers: at 10M postings (4.3M keys, 1.3M lots) the keys sorted by texts behind
    /// pointers took 1.2 s, and the balances' order 0.7 s more.
    fn order(&mut self) {
        self.rank = self.names.ranks();
        let (rank, lots) = (&self.rank, &self.lots);
        // The (item, lot) pairs in (lot, item) order. A lot's first 16 bytes, as a number,
        // decide most comparisons; texts are compared only when those are equal.
        let mut by_lot: Vec<(u128, u32, u32)> = (0..u32_of(lots.len()))
            .map(|n| (prefix(lots.lot(n)), rank[lots.sku(n) as usize], n))
            .collect();
        by_lot.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| lots.lot(a.2).cmp(lots.lot(b.2)))
                .then(a.1.cmp(&b.1))
        });
        // Each lot's dense rank (a lot of two items, only in a damaged ledger, has one), and
        // each (item, lot)'s place in (item, lot) order: the (lot, item) order sorted again
        // by item alone, stably.
        let mut lot_rank = vec![0u32; lots.len()];
        let mut r = 0u32;
        for (i, x) in by_lot.iter().enumerate() {
            if i > 0 {
                let before = &by_lot[i - 1];
                if before.0 == x.0 && lots.lot(before.2) == lots.lot(x.2) {
                    self.lot_of_two_items = true;
                } else {
                    r += 1;
                }
            }
            lot_rank[x.2 as usize] = r;
        }
        let lot_order: Vec<u32> = by_lot.iter().map(|x| x.2).collect();
        let mut by_item: Vec<(u32, u32)> = by_lot.iter().map(|x| (x.1, x.2)).collect();
        drop(by_lot);
        by_item.sort_by_key(|x| x.0);
        let mut item_lot_rank = vec![0u32; lots.len()];
        for (place, &(_, n)) in by_item.iter().enumerate() {
            item_lot_rank[n as usize] = u32_of(place);
        }
        drop(by_item);
        // The keys in (account, item, lot) order, moved into a second vector: for a moment
        // the keys take twice their memory (410 MB at 10M postings, 4.3M keys). Moving them
        // along the permutation's cycles in place took 0.84 s there against 0.32 s (a chain
        // of dependent cache misses), and reading them in place through the order made the
        // answer's serialization 1 s slower (a cache miss a row).
        let from = sorted_by(&self.keys, |k| {
            (rank[k.account as usize], item_lot_rank[k.item_lot as usize])
        });
        let mut old = std::mem::take(&mut self.keys);
        self.keys = from
            .into_iter()
            .map(|k| std::mem::take(&mut old[k as usize]))
            .collect();
        drop(old);
        self.lot_order = lot_order;
        self.lot_rank = lot_rank;
    }

    /// An entry that cannot be read ends the pass: the sums stop short of the journal's end.
    fn unreadable(&mut self, seq: u64, message: &str) {
        self.chain.first_bad.get_or_insert(seq);
        self.chain
            .problems
            .push(format!("entry {seq} cannot be read: {message}"));
        self.complete = false;
    }

    /// Decodes and sums one stored entry, and gives back its header and stored hash for the
    /// chain. Decoding fails as the store's does ([`decode::entry`]), with a
    /// [`StoreError::CorruptEntry`] naming the entry.
    fn entry(
        &mut self,
        walk: &mut Walk,
        e: &EntryColumns<'_>,
        postings: Postings<'_>,
    ) -> Result<(EntryHeader, Hash), StoreError> {
        let header = decode::entry_header(e)?;
        let seq = header.seq;
        walk.postings.clear();
        for p in postings.iter() {
            let key = self.key(walk, seq, &p)?;
            walk.postings.push((key, p.qty, p.value));
        }
        let hash = decode::entry_hash(seq, e.hash)?;
        // The sums go on past a broken link: the balances are still worth comparing.
        self.add(walk, seq);
        Ok((header, hash))
    }

    /// The number of the key a posting names, decoding and adding the key the first time.
    fn key(
        &mut self,
        walk: &mut Walk,
        seq: u64,
        p: &PostingColumns<'_>,
    ) -> Result<u32, StoreError> {
        let stored = (p.account, p.sku, p.lot);
        let hash = walk.hasher.hash_one(stored);
        if let Some(&k) = walk.keys.find(hash, |&k| self.names_key(k, stored)) {
            return Ok(k);
        }
        // A key first met. Keys are told apart by what they decode to, as the domain tells
        // them apart. The written forms round-trip (an account's text is what it was parsed
        // from; items and lots are kept as given), so text that decodes is the key's text, and
        // a key met before was found above. Each account, item and lot is decoded the first
        // time a key names it: 4.3M keys at 10M postings name 0.5M accounts and 1.3M lots.
        let (account, guarded) = self.names.account(seq, p.account)?;
        let sku = self.names.sku(seq, p.sku)?;
        let lot_hash = walk.hasher.hash_one((sku, p.lot));
        let lots = &mut self.lots;
        let names_lot = |&n: &u32| lots.sku(n) == sku && lots.lot(n) == p.lot;
        let item_lot = match walk.item_lots.find(lot_hash, names_lot) {
            Some(&n) => n,
            None => {
                let lot = decode::posting_lot(seq, p.lot)?;
                assert_eq!(
                    lot.as_str(),
                    p.lot,
                    "entry {seq}: a posting's lot does not round-trip"
                );
                let n = lots.push(sku, p.lot);
                let hasher = &walk.hasher;
                walk.item_lots.insert_unique(lot_hash, n, |&n| {
                    hasher.hash_one((lots.sku(n), lots.lot(n)))
                });
                n
            }
        };
        let k = u32_of(self.keys.len());
        self.keys.push(Key {
            guarded,
            account,
            sku,
            item_lot,
            sum: Sum::default(),
        });
        let (keys, names, lots, hasher) = (&self.keys, &self.names, &self.lots, &walk.hasher);
        walk.keys.insert_unique(hash, k, |&k| {
            let key = &keys[k as usize];
            hasher.hash_one((&names[key.account], &names[key.sku], lots.lot(key.item_lot)))
        });
        Ok(k)
    }

    /// Whether key `k` is (account, item, lot) as written.
    fn names_key(&self, k: u32, (account, sku, lot): (&str, &str, &str)) -> bool {
        let key = &self.keys[k as usize];
        self.lots.lot(key.item_lot) == lot
            && self.names[key.account] == *account
            && self.names[key.sku] == *sku
    }

    /// Adds the current entry's postings: invariant 1 for the entry, the running guarded
    /// balances after it (invariant 2), and the journal's totals.
    fn add(&mut self, walk: &mut Walk, seq: u64) {
        // The entry's net per key, so that a running balance is judged after the whole entry,
        // as the database judges it. An entry has a handful of postings: a linear search
        // beats hashing here.
        let net = &mut walk.net;
        net.clear();
        for &(k, q, v) in &walk.postings {
            match net.iter_mut().find(|x| x.0 == k) {
                Some(x) => {
                    x.1 += i128::from(q);
                    x.2 += i128::from(v);
                }
                None => net.push((k, i128::from(q), i128::from(v))),
            }
        }
        let per_lot = &mut walk.per_lot;
        per_lot.clear();
        let mut value = 0i128;
        for &(k, q, v) in net.iter() {
            let key = &mut self.keys[k as usize];
            match per_lot.iter_mut().find(|x| x.0 == key.item_lot) {
                Some(x) => x.2 += q,
                None => per_lot.push((key.item_lot, k, q)),
            }
            value += v;
            let sum = &mut key.sum;
            sum.qty += q;
            sum.value += v;
            if key.guarded && (sum.qty < 0 || sum.value < 0) {
                let qty = sum.qty;
                walk.dips
                    .entry(k)
                    .and_modify(|(_, low)| *low = (*low).min(qty))
                    .or_insert((seq, qty));
            }
        }
        self.ledger_value += value;
        if per_lot.iter().any(|x| x.2 != 0) {
            let mut off: Vec<(&str, &str, i128)> = per_lot
                .iter()
                .filter(|x| x.2 != 0)
                .map(|&(n, _, q)| (&self.names[self.lots.sku(n)], self.lots.lot(n), q))
                .collect();
            off.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            for (sku, lot, q) in off {
                self.entry_quantity.push(Violation {
                    check: "entry-quantity",
                    seq: Some(seq),
                    account: None,
                    sku: Some(sku.to_owned()),
                    lot: Some(lot.to_owned()),
                    is_value: false,
                    expected: 0,
                    found: narrow(q),
                });
            }
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
    /// sku and lot. The keys themselves, not copies of them (4.3M rows at 10M postings).
    pub fn into_trial_balance(mut self) -> TrialBalance {
        self.keys.retain(|k| k.sum.qty != 0 || k.sum.value != 0);
        TrialBalance {
            keys: self.keys,
            names: self.names,
            lots: self.lots,
        }
    }

    /// Invariants 1, 2 and 5 over the journal, in the order and shape of the SQL checks:
    /// entries that do not balance, guarded balances that dipped, lots that do not sum to
    /// zero, and the ledger's value.
    pub fn violations(&self) -> Vec<Violation> {
        let mut out = self.entry_quantity.clone();
        out.extend(self.entry_value.iter().cloned());
        out.extend(self.negative.iter().cloned());
        // Each (item, lot) summed over its accounts.
        let mut sums: Vec<(i128, i128)> = vec![(0, 0); self.lots.len()];
        for k in &self.keys {
            let x = &mut sums[k.item_lot as usize];
            x.0 += k.sum.qty;
            x.1 += k.sum.value;
        }
        let lots = &self.lots;
        let mut off: Vec<(&str, &str, i128, i128)> = (0u32..)
            .zip(sums)
            .filter(|(_, x)| x.0 != 0 || x.1 != 0)
            .map(|(n, (q, v))| (&self.names[lots.sku(n)], lots.lot(n), q, v))
            .collect();
        off.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        for (sku, lot, q, v) in off {
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
    /// items each lot's postings name, so only the lots table is read, in order, beside them;
    /// the postings themselves are looked for (SQL over every posting) only when a lot
    /// disagrees, which a ledger written by the service never does.
    pub async fn lot_item_violations(
        &self,
        snapshot: &dyn Snapshot,
        store: &dyn Store,
    ) -> Result<Vec<Violation>> {
        // One (lot, item) for each pair posted to, in the lots table's order (byte order of
        // the lot number, then the item), merged with that table read whole, a page at a
        // time: a sequential read instead of a lookup per lot named (1.3M lots at 10M
        // postings).
        const PAGE: u32 = store::LOT_ITEMS_PAGE_MAX;
        let pairs = async {
            // Every (item, lot), in (lot, item) order (see [`Scan::order`]).
            let posted: Vec<(&str, &str)> = self
                .lot_order
                .iter()
                .map(|&n| (self.lots.lot(n), &self.names[self.lots.sku(n)]))
                .collect();
            debug_assert!(posted.windows(2).all(|w| w[0] < w[1]));
            posted
        };
        // The first page is read while the pairs are gathered, and each next one while the
        // one before is merged.
        let (first, posted) = tokio::join!(snapshot.lot_items("", PAGE), pairs);
        let mut page = first?;
        let mut at = 0;
        loop {
            let after = page
                .last()
                .filter(|_| page.len() == PAGE as usize)
                .map(|(lot, _)| lot.clone());
            let next = async {
                match &after {
                    Some(after) => Some(snapshot.lot_items(after, PAGE).await),
                    None => None,
                }
            };
            let merge = async {
                for (lot, holds) in &page {
                    // Lots before this one that no row holds are the references' business (a
                    // posting's lot is a foreign key), not this check's.
                    while posted.get(at).is_some_and(|p| p.0 < lot.as_str()) {
                        at += 1;
                    }
                    while let Some(&(_, sku)) = posted.get(at).filter(|p| p.0 == lot.as_str()) {
                        if sku != holds.as_str() {
                            return true;
                        }
                        at += 1;
                    }
                }
                false
            };
            match tokio::join!(next, merge) {
                // The breach named in full by the database's own check.
                (_, true) => return Ok(store.lot_item_violations().await?),
                (Some(next), false) => page = next?,
                (None, false) => break,
            }
        }
        Ok(Vec::new())
    }

    /// The maintained balances compared with the sums of the pass, in both directions (a
    /// balance with no postings, postings with no balance), ordered by (account, lot).
    ///
    /// A merge of two ordered lists, not a lookup per row, where the store reads balances in
    /// (account, lot) order as cheaply as in any other (byte order on both backends): the keys
    /// are put in the same order by a permutation. At 10M postings a hash map of five million
    /// (account, lot) pairs cost more than the walk of the journal itself in cache misses.
    /// Where key order costs the store a lookup per row (PostgreSQL), its balances are read in
    /// parts in table order instead and each is looked up (see [`Self::mismatches_in_parts`]).
    pub async fn balance_mismatches(
        &self,
        snapshot: &dyn Snapshot,
    ) -> Result<Vec<BalanceMismatch>> {
        assert!(
            self.complete,
            "balances are compared only with a whole journal"
        );
        if let Some(parts) = snapshot.balance_parts().await? {
            return self.mismatches_in_parts(snapshot, parts).await;
        }
        let keys = &self.keys;
        const PAGE: u32 = store::BALANCE_PAGE_MAX;
        // The keys in (account, lot) order, by the ranks of their accounts and lots (see
        // [`Scan::order`]), built while the snapshot's connection reads the first page of
        // balances.
        let order = async {
            let (rank, lot_rank) = (&self.rank, &self.lot_rank);
            sorted_by(keys, |k| {
                (rank[k.account as usize], lot_rank[k.item_lot as usize])
            })
        };
        let (first, order) = tokio::join!(snapshot.balance_page(None, PAGE), order);
        let mut page = first?;
        let mut groups = Groups {
            keys,
            names: &self.names,
            lots: &self.lots,
            lot_rank: &self.lot_rank,
            order: &order,
            at: 0,
        };
        let mut found = Vec::new();
        loop {
            // The next page is read while this one is merged.
            let after = page
                .last()
                .filter(|_| page.len() == PAGE as usize)
                .map(|(a, l)| (a.to_owned(), l.to_owned()));
            let next = async {
                match after {
                    Some(after) => Some(snapshot.balance_page(Some(after), PAGE).await),
                    None => None,
                }
            };
            let merge = async {
                busy(|| {
                    for (account, lot, q, v) in page.iter() {
                        let at = (account, lot);
                        // Posted to, before this balance: no balance (a zero one is not
                        // listed).
                        while let Some((account, lot, pq, pv)) = groups.next_before(at) {
                            found.extend(mismatch(account, lot, [0, 0, pq, pv]));
                        }
                        let (pq, pv) = groups.next_at(at).unwrap_or((0, 0));
                        found.extend(mismatch(account, lot, [q.into(), v.into(), pq, pv]));
                    }
                });
            };
            match tokio::join!(next, merge) {
                (Some(next), ()) => page = next?,
                (None, ()) => break,
            }
        }
        while let Some((account, lot, pq, pv)) = groups.next_if(|_| true) {
            found.extend(mismatch(account, lot, [0, 0, pq, pv]));
        }
        debug_assert!(found
            .windows(2)
            .all(|w| (&w[0].account, &w[0].lot) <= (&w[1].account, &w[1].lot)));
        Ok(found)
    }

    /// [`Self::balance_mismatches`] from balances read in parts in no order: each balance is
    /// looked up by hash among the pass's keys, and the keys no balance named are postings
    /// without one. On PostgreSQL at 10M postings the balances in key order took 7 s (an index
    /// scan that fetched every row from the table); in table order the server sends them
    /// about four times faster.
    async fn mismatches_in_parts(
        &self,
        snapshot: &dyn Snapshot,
        parts: u32,
    ) -> Result<Vec<BalanceMismatch>> {
        let (keys, names, lots) = (&self.keys, &self.names, &self.lots);
        let hasher = foldhash::fast::RandomState::default();
        let hash = |account: &str, lot: &str| hasher.hash_one((account, lot));
        let texts = |k: u32| {
            let k = &keys[k as usize];
            (&names[k.account], lots.lot(k.item_lot))
        };
        // Every key by its (account, lot), built while the first part is read. Two keys
        // share one only in a damaged ledger (a lot posted as two items): both are listed.
        let by_balance = async {
            let mut table = HashTable::with_capacity(keys.len());
            for k in 0..u32_of(keys.len()) {
                let (account, lot) = texts(k);
                table.insert_unique(hash(account, lot), k, |&k| {
                    let (account, lot) = texts(k);
                    hash(account, lot)
                });
            }
            table
        };
        let first = async {
            match parts {
                0 => Ok(store::BalancePage::default()),
                _ => snapshot.balance_part(0).await,
            }
        };
        let (first, by_balance) = tokio::join!(first, by_balance);
        let mut page = first?;
        let mut seen = vec![false; keys.len()];
        // The sums of the keys of (account, lot), each then marked seen.
        let posted = |seen: &mut [bool], account: &str, lot: &str| {
            let (mut qty, mut value) = (0i128, 0i128);
            for &k in by_balance.iter_hash(hash(account, lot)) {
                if texts(k) == (account, lot) {
                    seen[k as usize] = true;
                    qty += keys[k as usize].sum.qty;
                    value += keys[k as usize].sum.value;
                }
            }
            (qty, value)
        };
        let mut found = Vec::new();
        for part in 1..=parts {
            // The next part is read (by a task of the store's) while this one is looked up.
            let next = async {
                if part < parts {
                    Some(snapshot.balance_part(part).await)
                } else {
                    None
                }
            };
            let look_up = async {
                busy(|| {
                    for (account, lot, q, v) in page.iter() {
                        let (pq, pv) = posted(&mut seen, account, lot);
                        found.extend(mismatch(account, lot, [q.into(), v.into(), pq, pv]));
                    }
                });
            };
            match tokio::join!(next, look_up) {
                (Some(next), ()) => page = next?,
                (None, ()) => break,
            }
        }
        // Posted to, and no balance (a zero one is not listed).
        for k in 0..keys.len() {
            if !seen[k] {
                let (account, lot) = texts(u32_of(k));
                let (pq, pv) = posted(&mut seen, account, lot);
                found.extend(mismatch(account, lot, [0, 0, pq, pv]));
            }
        }
        found.sort_unstable_by(|a, b| (&a.account, &a.lot).cmp(&(&b.account, &b.lot)));
        Ok(found)
    }
}

/// Runs `work`, which keeps this thread busy for a while (a page of the journal, a part of the
/// balances), so that a read the store began just before it runs beside it.
///
/// A store reads ahead in tasks of its own. Spawned from a worker thread of a multi-thread
/// runtime (where a request's handler runs), such a task waits in that worker's LIFO slot,
/// which no other worker takes from, until the worker is free again: the next part's read
/// waited for this part's lookups instead of running beside them (PostgreSQL at 10M postings,
/// `GET /api/v1/reports/reconciliation`: the balances 3.9-4.2 s against 2.7-2.9 s once freed).
/// `block_in_place` first hands the worker's tasks to another thread. Elsewhere (the command's
/// own thread, a current-thread runtime) `work` just runs.
fn busy<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// A count or place as one of the pass's `u32` numbers (of keys, names, lots): a journal
/// names far fewer than 4 billion of each.
fn u32_of(i: usize) -> u32 {
    u32::try_from(i).expect("fewer than 4 billion keys, names or lots")
}

/// The keys' numbers ordered by two integers of each: both and the key's number made one
/// `u128`, so that the sort compares and moves integers only.
fn sorted_by(keys: &[Key], place: impl Fn(&Key) -> (u32, u32)) -> Vec<u32> {
    let mut places: Vec<u128> = keys
        .iter()
        .zip(0u32..)
        .map(|(k, i)| {
            let (high, low) = place(k);
            u128::from(high) << 64 | u128::from(low) << 32 | u128::from(i)
        })
        .collect();
    places.sort_unstable();
    places
        .into_iter()
        .map(|p| u32::try_from(p & u128::from(u32::MAX)).expect("a key's number"))
        .collect()
}

/// A text's first 16 bytes as a big-endian number (zeros past its end): two texts' numbers
/// are in the texts' byte order, or equal.
fn prefix(text: &str) -> u128 {
    let mut bytes = [0u8; 16];
    let n = text.len().min(16);
    bytes[..n].copy_from_slice(&text.as_bytes()[..n]);
    u128::from_be_bytes(bytes)
}

/// A maintained balance and the sums posted to its (account, lot), when they differ.
fn mismatch(account: &str, lot: &str, x: [i128; 4]) -> Option<BalanceMismatch> {
    (x[0] != x[2] || x[1] != x[3]).then(|| BalanceMismatch {
        account: account.to_owned(),
        lot: lot.to_owned(),
        maintained_qty: narrow(x[0]),
        maintained_value: narrow(x[1]),
        posted_qty: narrow(x[2]),
        posted_value: narrow(x[3]),
    })
}

/// The keys in (account, lot) order, read a run of one (account, lot) at a time with the run's
/// posted sums.
struct Groups<'a> {
    keys: &'a [Key],
    names: &'a Names,
    lots: &'a Lots,
    /// Each (item, lot)'s lot rank: keys of one (account, lot) share an account and a rank.
    lot_rank: &'a [u32],
    order: &'a [u32],
    at: usize,
}

impl<'a> Groups<'a> {
    /// The next run, if its (account, lot) comes before `bound`.
    fn next_before(&mut self, bound: (&str, &str)) -> Option<(&'a str, &'a str, i128, i128)> {
        self.next_if(|at| at < bound)
    }

    /// The next run's sums, if its (account, lot) is `at`.
    fn next_at(&mut self, at: (&str, &str)) -> Option<(i128, i128)> {
        self.next_if(|x| x == at).map(|(_, _, q, v)| (q, v))
    }

    fn next_if(
        &mut self,
        take: impl Fn((&str, &str)) -> bool,
    ) -> Option<(&'a str, &'a str, i128, i128)> {
        let (keys, names) = (self.keys, self.names);
        let first = &keys[*self.order.get(self.at)? as usize];
        let (account, lot) = (&names[first.account], self.lots.lot(first.item_lot));
        if !take((account, lot)) {
            return None;
        }
        let (mut qty, mut value) = (0i128, 0i128);
        let lot_rank = self.lot_rank[first.item_lot as usize];
        while let Some(&k) = self.order.get(self.at) {
            let k = &keys[k as usize];
            if k.account != first.account || self.lot_rank[k.item_lot as usize] != lot_rank {
                break;
            }
            qty += k.sum.qty;
            value += k.sum.value;
            self.at += 1;
        }
        Some((account, lot, qty, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    /// A task spawned just before the work, from a worker thread as a request's handler is,
    /// runs while the work keeps the thread busy.
    #[test]
    fn a_task_spawned_before_busy_work_runs_beside_it() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("a runtime");
        let ran = rt.block_on(async {
            tokio::spawn(async {
                let read = Arc::new(AtomicBool::new(false));
                let done = Arc::clone(&read);
                let _task = tokio::spawn(async move { done.store(true, Ordering::SeqCst) });
                busy(|| {
                    // Bounded: without the hand-over the task never runs while this waits.
                    let until = Instant::now() + Duration::from_secs(10);
                    while !read.load(Ordering::SeqCst) && Instant::now() < until {
                        std::hint::spin_loop();
                    }
                    read.load(Ordering::SeqCst)
                })
            })
            .await
            .expect("the handler does not panic")
        });
        assert!(ran, "the task spawned before the work waited for it to end");
        // Outside a runtime, and on a current-thread one, the work just runs.
        assert_eq!(busy(|| 7), 7);
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        assert_eq!(current.block_on(async { busy(|| 7) }), 7);
    }
}
