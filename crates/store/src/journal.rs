//! A page of the journal as stored, for the passes that read every entry (`verify` and the
//! reconciliation report): the page's text in one buffer and its numbers unboxed, so that
//! reading a page costs a handful of allocations instead of several per posting, and nothing
//! is decoded that the pass does not need decoded.

use std::collections::VecDeque;

/// Most entries one page holds: about 30 000 postings, a few megabytes of text.
pub const JOURNAL_PAGE_MAX: u32 = 4_096;

/// Where a piece of text lies in the page's buffer.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

/// A page's texts, one after another in one buffer, each found again by its [`Span`].
#[derive(Debug, Default)]
struct Texts(String);

impl Texts {
    fn with_capacity(bytes: usize) -> Texts {
        Texts(String::with_capacity(bytes))
    }

    /// Appends `s` and says where it lies.
    fn push(&mut self, s: &str) -> Span {
        // The offsets are u32: a page is bounded in rows, each a few kilobytes at most, far
        // below 4 GiB.
        let at = |n: usize| u32::try_from(n).expect("a page holds less than 4 GiB of text");
        let start = at(self.0.len());
        self.0.push_str(s);
        Span {
            start,
            end: at(self.0.len()),
        }
    }

    fn get(&self, s: Span) -> &str {
        &self.0[s.start as usize..s.end as usize]
    }
}

#[derive(Debug)]
struct PageEntry {
    seq: i64,
    date: Span,
    kind: Span,
    document: Span,
    actor: Span,
    reverses: Option<i64>,
    memo: Span,
    hash: Span,
    /// The entry's postings: `postings[first..end]` of the page.
    first: u32,
    end: u32,
}

#[derive(Debug)]
struct PagePosting {
    account: Span,
    sku: Span,
    lot: Span,
    qty: i64,
    value: i64,
}

/// Entries in sequence with their postings in (seq, idx) order, as their columns are stored.
/// Built by a backend with [`JournalPage::push_entry`] for every entry and then
/// [`JournalPage::push_posting`] for every posting, both in order.
#[derive(Debug, Default)]
pub struct JournalPage {
    text: Texts,
    entries: Vec<PageEntry>,
    postings: Vec<PagePosting>,
    /// The entry the next posting may belong to (postings arrive in seq order).
    cursor: usize,
}

/// The stored columns of one entry in a page.
#[derive(Debug, Clone, Copy)]
pub struct EntryColumns<'a> {
    pub seq: i64,
    pub date: &'a str,
    pub kind: &'a str,
    pub document: &'a str,
    pub actor: &'a str,
    pub reverses: Option<i64>,
    pub memo: &'a str,
    pub hash: &'a str,
}

/// The stored columns of one posting in a page.
#[derive(Debug, Clone, Copy)]
pub struct PostingColumns<'a> {
    pub account: &'a str,
    pub sku: &'a str,
    pub lot: &'a str,
    pub qty: i64,
    pub value: i64,
}

impl JournalPage {
    /// An empty page with room for about `entries` entries.
    pub fn with_capacity(entries: usize) -> JournalPage {
        JournalPage {
            text: Texts::with_capacity(entries * 400),
            entries: Vec::with_capacity(entries),
            postings: Vec::with_capacity(entries * 8),
            cursor: 0,
        }
    }

    /// Adds the next entry (each `seq` greater than the last one's).
    pub fn push_entry(&mut self, e: EntryColumns<'_>) {
        assert!(
            self.entries.last().is_none_or(|last| last.seq < e.seq),
            "entries are pushed in sequence"
        );
        let entry = PageEntry {
            seq: e.seq,
            date: self.text.push(e.date),
            kind: self.text.push(e.kind),
            document: self.text.push(e.document),
            actor: self.text.push(e.actor),
            reverses: e.reverses,
            memo: self.text.push(e.memo),
            hash: self.text.push(e.hash),
            first: 0,
            end: 0,
        };
        self.entries.push(entry);
    }

    /// Adds the next posting of entry `seq`, in (seq, idx) order after every entry was pushed.
    /// A posting whose entry is not in the page belongs to no entry and is left out, as
    /// [`crate::decode::entries`] leaves it out; the chain misses it either way.
    pub fn push_posting(&mut self, seq: i64, p: PostingColumns<'_>) {
        while self.entries.get(self.cursor).is_some_and(|e| e.seq < seq) {
            self.cursor += 1;
        }
        let Some(entry) = self.entries.get(self.cursor) else {
            return;
        };
        if entry.seq != seq {
            return;
        }
        let at = u32::try_from(self.postings.len()).expect("a page holds few postings");
        let entry = &mut self.entries[self.cursor];
        if entry.first == entry.end {
            // The entry's first posting: its postings start here (every entry was pushed
            // before any posting, so `first` was only a placeholder).
            entry.first = at;
        }
        let posting = PagePosting {
            account: self.text.push(p.account),
            sku: self.text.push(p.sku),
            lot: self.text.push(p.lot),
            qty: p.qty,
            value: p.value,
        };
        self.postings.push(posting);
        let end = u32::try_from(self.postings.len()).expect("a page holds few postings");
        self.entries[self.cursor].end = end;
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The sequence number of the page's last entry.
    pub fn last_seq(&self) -> Option<i64> {
        self.entries.last().map(|e| e.seq)
    }

    /// The entries, in sequence, each with its postings.
    pub fn entries(&self) -> impl Iterator<Item = (EntryColumns<'_>, Postings<'_>)> {
        self.entries.iter().map(|e| {
            (
                EntryColumns {
                    seq: e.seq,
                    date: self.text.get(e.date),
                    kind: self.text.get(e.kind),
                    document: self.text.get(e.document),
                    actor: self.text.get(e.actor),
                    reverses: e.reverses,
                    memo: self.text.get(e.memo),
                    hash: self.text.get(e.hash),
                },
                Postings {
                    page: self,
                    rows: &self.postings[e.first as usize..e.end as usize],
                },
            )
        })
    }
}

/// The postings of one entry in a page, in idx order.
#[derive(Debug, Clone, Copy)]
pub struct Postings<'a> {
    page: &'a JournalPage,
    rows: &'a [PagePosting],
}

impl<'a> Postings<'a> {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = PostingColumns<'a>> + 'a {
        let page = self.page;
        self.rows.iter().map(move |p| PostingColumns {
            account: page.text.get(p.account),
            sku: page.text.get(p.sku),
            lot: page.text.get(p.lot),
            qty: p.qty,
            value: p.value,
        })
    }
}

/// Most rows of a [`BalancePage`].
pub const BALANCE_PAGE_MAX: u32 = 65_536;

/// Maintained balances that are not zero, as stored, for a pass that compares every one of
/// them: (account, lot) in byte order (or, for [`BalancePage::in_any_order`], as the store
/// keeps them), quantity and value at storage scale, the texts in one buffer (two
/// allocations a page instead of three a row).
#[derive(Debug, Default)]
pub struct BalancePage {
    text: Texts,
    rows: Vec<(Span, Span, i64, i64)>,
    /// Rows in no particular order (a part of [`crate::Snapshot::balance_part`]).
    any_order: bool,
}

impl BalancePage {
    /// An empty page with room for about `rows` rows, given in (account, lot) order.
    pub fn with_capacity(rows: usize) -> BalancePage {
        BalancePage {
            text: Texts::with_capacity(rows * 40),
            rows: Vec::with_capacity(rows),
            any_order: false,
        }
    }

    /// An empty page with room for about `rows` rows, given in any order.
    pub fn in_any_order(rows: usize) -> BalancePage {
        BalancePage {
            any_order: true,
            ..BalancePage::with_capacity(rows)
        }
    }

    /// Adds the next row; in a page of [`BalancePage::with_capacity`] rows come in
    /// increasing (account, lot), as a merge needs them.
    pub fn push(&mut self, account: &str, lot: &str, qty: i64, value: i64) {
        assert!(
            self.any_order || self.last().is_none_or(|last| last < (account, lot)),
            "balances are pushed in (account, lot) order"
        );
        let (account, lot) = (self.text.push(account), self.text.push(lot));
        self.rows.push((account, lot, qty, value));
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The last row's (account, lot): where the next page starts after.
    pub fn last(&self) -> Option<(&str, &str)> {
        self.rows
            .last()
            .map(|&(a, l, _, _)| (self.text.get(a), self.text.get(l)))
    }

    /// (account, lot, quantity, value) of every row, in the order pushed.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, i64, i64)> + '_ {
        self.rows
            .iter()
            .map(|&(a, l, q, v)| (self.text.get(a), self.text.get(l), q, v))
    }
}

/// A page being read for a full pass: when it is done, what was read or why not.
pub type PageTask = tokio::task::JoinHandle<crate::Result<JournalPage>>;

/// Pages read ahead of a full pass, while the pass checks the page before: the next one, and
/// with more than one lane (a connection each) the pages after it too, each on its own lane, so
/// that the reads share the cores with the pass instead of queueing on one connection. The
/// page after the next is a guess, from the sequence having no gaps (invariant 4): when the
/// next page ends elsewhere, the guess is let finish and dropped, and the right page read then.
/// Each backend's snapshot keeps one and says how to read a page on a lane (a task that holds
/// that lane's connection meanwhile). Entries are append-only, and a snapshot sees one moment:
/// a page read early is the page.
#[derive(Debug)]
pub struct ReadAhead {
    lanes: usize,
    /// Reads started, in the order the pass will ask for their pages; at most one per lane.
    slots: std::sync::Mutex<VecDeque<Read>>,
}

/// A page read ahead: the call it answers, the lane it holds, and the task reading it.
#[derive(Debug)]
struct Read {
    after: i64,
    limit: i64,
    lane: usize,
    task: PageTask,
}

impl Read {
    fn answers(&self, after: i64, limit: i64) -> bool {
        (self.after, self.limit) == (after, limit)
    }
}

impl ReadAhead {
    /// Most lanes a read-ahead takes: each holds a connection and a page of a few megabytes.
    pub const LANES_MAX: usize = 4;

    /// A read-ahead over `lanes` connections (1 to [`Self::LANES_MAX`]).
    pub fn new(lanes: usize) -> ReadAhead {
        assert!((1..=Self::LANES_MAX).contains(&lanes), "1 to 4 lanes");
        ReadAhead {
            lanes,
            slots: std::sync::Mutex::new(VecDeque::new()),
        }
    }

    /// The page of at most `limit` entries after `after`: the one read ahead when it is that
    /// one, else one read now. A full page starts the reads of the pages after it, one per
    /// free lane, with `read(after, limit, lane)`.
    pub async fn page(
        &self,
        after: i64,
        limit: i64,
        read: impl Fn(i64, i64, usize) -> PageTask,
    ) -> crate::Result<JournalPage> {
        let mut slots = self
            .slots
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        let task = match slots.pop_front() {
            Some(r) if r.answers(after, limit) => r.task,
            first => {
                // Pages read ahead for other calls are let finish (a read cancelled half-way
                // could leave its connection mid-answer) and dropped.
                for stale in first.into_iter().chain(slots.drain(..)) {
                    let _ = stale.task.await;
                }
                read(after, limit, 0)
            }
        };
        let page = task
            .await
            .map_err(|e| crate::StoreError::Backend(format!("journal reader: {e}")))??;
        let full = i64::try_from(page.len()).is_ok_and(|n| n == limit);
        if let (true, Some(last)) = (full, page.last_seq()) {
            if slots.front().is_none_or(|r| !r.answers(last, limit)) {
                for stale in slots.drain(..) {
                    let _ = stale.task.await;
                }
            }
            // The next page, then guesses, each on a lane no read holds.
            let mut next = slots.back().map_or(last, |r| r.after.saturating_add(limit));
            while slots.len() < self.lanes {
                let lane = (0..self.lanes)
                    .find(|&l| slots.iter().all(|r| r.lane != l))
                    .expect("fewer reads than lanes leave a lane free");
                slots.push_back(Read {
                    after: next,
                    limit,
                    lane,
                    task: read(next, limit, lane),
                });
                next = next.saturating_add(limit);
            }
        }
        if let Ok(mut s) = self.slots.lock() {
            *s = slots;
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64, memo: &str) -> EntryColumns<'_> {
        EntryColumns {
            seq,
            date: "2020-02-01",
            kind: "purchase",
            document: "PO-1",
            actor: "maker",
            reverses: None,
            memo,
            hash: "00",
        }
    }

    fn posting(lot: &str, qty: i64) -> PostingColumns<'_> {
        PostingColumns {
            account: "stock:RAW",
            sku: "PC",
            lot,
            qty,
            value: qty * 10,
        }
    }

    #[test]
    fn postings_go_under_their_entries_and_orphans_are_left_out() {
        let mut page = JournalPage::with_capacity(2);
        page.push_entry(entry(2, "first"));
        page.push_entry(entry(5, "second"));
        page.push_posting(1, posting("ORPHAN-BEFORE", 1));
        page.push_posting(2, posting("A", 2));
        page.push_posting(2, posting("B", -2));
        page.push_posting(3, posting("ORPHAN-BETWEEN", 3));
        page.push_posting(5, posting("C", 4));
        page.push_posting(6, posting("ORPHAN-AFTER", 5));
        type Lot = (String, i64, i64);
        let got: Vec<(i64, &str, Vec<Lot>)> = page
            .entries()
            .map(|(e, ps)| {
                (
                    e.seq,
                    e.memo,
                    ps.iter()
                        .map(|p| (p.lot.to_owned(), p.qty, p.value))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (2, "first", vec![("A".into(), 2, 20), ("B".into(), -2, -20)]),
                (5, "second", vec![("C".into(), 4, 40)]),
            ]
        );
        assert_eq!(page.last_seq(), Some(5));
        assert_eq!(page.len(), 2);
    }

    /// Reads the journal of entries `seqs` a page of `limit` at a time, as a full pass does,
    /// through a read-ahead of `lanes`: the entries it got in order, and how many reads it
    /// started. Every read checks that no other read holds its lane.
    async fn read_all(seqs: &[i64], lanes: usize, limit: i64) -> (Vec<i64>, usize) {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let journal: Arc<Vec<i64>> = Arc::new(seqs.to_vec());
        let busy: Arc<Vec<AtomicBool>> = Arc::new(
            (0..ReadAhead::LANES_MAX)
                .map(|_| AtomicBool::new(false))
                .collect(),
        );
        let reads = Arc::new(AtomicUsize::new(0));
        let ahead = ReadAhead::new(lanes);
        let (mut after, mut got) = (0, Vec::new());
        loop {
            let page = ahead
                .page(after, limit, |a, l, lane| {
                    assert!(lane < lanes, "lane {lane} of {lanes}");
                    reads.fetch_add(1, Ordering::SeqCst);
                    let (journal, busy) = (journal.clone(), busy.clone());
                    tokio::spawn(async move {
                        assert!(
                            !busy[lane].swap(true, Ordering::SeqCst),
                            "lane {lane} twice"
                        );
                        // Let the other reads and the caller run while this one "reads".
                        tokio::task::yield_now().await;
                        let mut page = JournalPage::with_capacity(2);
                        let n = usize::try_from(l).expect("a positive limit");
                        for &seq in journal.iter().filter(|&&s| s > a).take(n) {
                            page.push_entry(entry(seq, ""));
                        }
                        busy[lane].store(false, Ordering::SeqCst);
                        Ok(page)
                    })
                })
                .await
                .expect("a page");
            let Some(last) = page.last_seq() else { break };
            got.extend(page.entries().map(|(e, _)| e.seq));
            after = last;
        }
        (got, reads.load(Ordering::SeqCst))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pages_read_ahead_on_lanes_are_the_journal_in_order() {
        let gapless: Vec<i64> = (1..=10).collect();
        // One lane: the next page only, one read a page (the last one empty, as the pass asks
        // for pages until one is).
        assert_eq!(read_all(&gapless, 1, 3).await, (gapless.clone(), 5));
        // Two lanes: the guess of the page after the next holds where nothing is missing; the
        // one read too many is the guess past the end.
        assert_eq!(read_all(&gapless, 2, 3).await, (gapless.clone(), 6));
        // A journal with gaps (a damaged one): a wrong guess is dropped and the right page
        // read, so the pass still gets every entry once, in order.
        let gaps = vec![1, 2, 3, 5, 6, 7, 8, 10, 14, 15, 16, 17];
        for lanes in 1..=ReadAhead::LANES_MAX {
            for limit in 1..=5_usize {
                let (got, reads) = read_all(&gaps, lanes, i64::try_from(limit).unwrap()).await;
                assert_eq!(got, gaps, "{lanes} lanes, pages of {limit}");
                assert!(reads > gaps.len().div_ceil(limit), "{reads} reads");
            }
        }
    }

    #[test]
    fn an_entry_without_postings_has_none() {
        let mut page = JournalPage::with_capacity(1);
        page.push_entry(entry(1, ""));
        let (e, ps) = page.entries().next().expect("one entry");
        assert_eq!(e.seq, 1);
        assert!(ps.is_empty());
    }

    #[test]
    fn a_balance_page_gives_back_its_rows_in_order() {
        let mut page = BalancePage::with_capacity(2);
        assert!(page.is_empty() && page.last().is_none());
        page.push("stock:FG", "A", 1_000, 30);
        page.push("stock:FG", "B", -5, 0);
        page.push("transit:B-1", "A", 0, 7);
        let rows: Vec<_> = page.iter().collect();
        assert_eq!(
            rows,
            vec![
                ("stock:FG", "A", 1_000, 30),
                ("stock:FG", "B", -5, 0),
                ("transit:B-1", "A", 0, 7)
            ]
        );
        assert_eq!((page.len(), page.last()), (3, Some(("transit:B-1", "A"))));
    }

    #[test]
    #[should_panic(expected = "balances are pushed in (account, lot) order")]
    fn balances_out_of_order_are_a_bug() {
        let mut page = BalancePage::default();
        page.push("stock:FG", "B", 1, 1);
        page.push("stock:FG", "A", 1, 1);
    }

    #[test]
    fn a_page_in_any_order_keeps_the_order_its_rows_came_in() {
        let mut page = BalancePage::in_any_order(2);
        page.push("stock:FG", "B", 1, 1);
        page.push("stock:FG", "A", 2, 2);
        let rows: Vec<_> = page.iter().collect();
        assert_eq!(rows, vec![("stock:FG", "B", 1, 1), ("stock:FG", "A", 2, 2)]);
    }

    #[test]
    #[should_panic(expected = "entries are pushed in sequence")]
    fn entries_out_of_sequence_are_a_bug() {
        let mut page = JournalPage::with_capacity(2);
        page.push_entry(entry(3, ""));
        page.push_entry(entry(2, ""));
    }
}
