//! Entries and postings, invariant 1 (every entry balances), and the canonical bytes and
//! SHA-256 chain of invariant 4.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};
use time::Date;

use crate::error::Rejection;
use crate::ident::{DocId, LotNo, Sku};
use crate::num::{Money, Qty};
use crate::Account;

/// Most postings one entry may carry.
pub const POSTINGS_PER_ENTRY_MAX: usize = 10_000;

/// One movement of a signed quantity of one (item, lot), with its signed value, into or out of
/// one account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Posting {
    pub account: Account,
    pub sku: Sku,
    pub lot: LotNo,
    pub qty: Qty,
    pub value: Money,
}

/// The kind of act an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    Purchase,
    Receipt,
    Production,
    Dispatch,
    Acknowledgement,
    Close,
    StockCount,
    Reversal,
    PeriodClose,
}

impl EntryKind {
    pub const ALL: &'static [EntryKind] = &[
        EntryKind::Purchase,
        EntryKind::Receipt,
        EntryKind::Production,
        EntryKind::Dispatch,
        EntryKind::Acknowledgement,
        EntryKind::Close,
        EntryKind::StockCount,
        EntryKind::Reversal,
        EntryKind::PeriodClose,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Purchase => "purchase",
            EntryKind::Receipt => "receipt",
            EntryKind::Production => "production",
            EntryKind::Dispatch => "dispatch",
            EntryKind::Acknowledgement => "acknowledgement",
            EntryKind::Close => "close",
            EntryKind::StockCount => "stock-count",
            EntryKind::Reversal => "reversal",
            EntryKind::PeriodClose => "period-close",
        }
    }
    pub fn parse(s: &str) -> Option<EntryKind> {
        EntryKind::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entry of the journal. Built only by [`Entry::new`], which checks invariant 1.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    #[serde(flatten)]
    header: EntryHeader,
    postings: Vec<Posting>,
}

/// The header of an entry: everything but its postings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EntryHeader {
    pub seq: u64,
    pub date: Date,
    pub kind: EntryKind,
    pub document: DocId,
    pub actor: String,
    pub reverses: Option<u64>,
    pub memo: String,
}

impl Entry {
    /// Builds an entry and checks invariant 1: quantities sum to zero per (item, lot) and values
    /// sum to zero. Only a period close may carry no postings; any other entry needs two.
    pub fn new(header: EntryHeader, postings: Vec<Posting>) -> Result<Entry, Rejection> {
        assert!(header.seq >= 1, "sequence numbers start at 1");
        assert!(
            postings.len() <= POSTINGS_PER_ENTRY_MAX,
            "an entry may carry at most {POSTINGS_PER_ENTRY_MAX} postings"
        );
        let needs_postings = header.kind != EntryKind::PeriodClose;
        if needs_postings && postings.len() < 2 {
            return Err(Rejection::invalid(
                "lines",
                "an entry needs at least two postings",
            ));
        }
        check_balanced(&postings)?;
        Ok(Entry { header, postings })
    }

    /// An entry read back from storage, as it was stored: not checked, because `verify` must
    /// be able to read (and report) an entry that was tampered with.
    pub fn from_storage(header: EntryHeader, postings: Vec<Posting>) -> Entry {
        Entry { header, postings }
    }

    pub fn seq(&self) -> u64 {
        self.header.seq
    }
    pub fn date(&self) -> Date {
        self.header.date
    }
    pub fn kind(&self) -> EntryKind {
        self.header.kind
    }
    pub fn document(&self) -> &DocId {
        &self.header.document
    }
    pub fn actor(&self) -> &str {
        &self.header.actor
    }
    pub fn reverses(&self) -> Option<u64> {
        self.header.reverses
    }
    pub fn memo(&self) -> &str {
        &self.header.memo
    }
    pub fn postings(&self) -> &[Posting] {
        &self.postings
    }

    /// The bytes the hash chain covers. Text, one field a line, numbers as integers at their
    /// storage scale and free text length-prefixed, so that both backends (and any auditor's
    /// script) produce them identically. The recording time is not covered: it is the one
    /// thing two backends fed the same operations legitimately disagree on.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut s = String::with_capacity(128 + 64 * self.postings.len());
        self.header.write_canonical(&mut s);
        for p in &self.postings {
            write_posting(
                &mut s,
                &p.account,
                p.sku.as_str(),
                p.lot.as_str(),
                p.qty.scaled(),
                p.value.scaled(),
            );
        }
        s.into_bytes()
    }

    /// `SHA-256(prev_hash || canonical_bytes(entry))`.
    pub fn chain_hash(&self, prev: &Hash) -> Hash {
        let mut h = Sha256::new();
        h.update(prev.0);
        h.update(self.canonical_bytes());
        Hash(h.finalize().into())
    }
}

/// One posting as the chain covers it: the account in its written form (`stock:RAW`), the
/// quantity and value at their storage scale. What a pass over a stored journal has in hand
/// without building a [`Posting`].
#[derive(Debug, Clone, Copy)]
pub struct PostingParts<'a> {
    pub account: &'a str,
    pub sku: &'a str,
    pub lot: &'a str,
    pub qty: i64,
    pub value: i64,
}

impl EntryHeader {
    /// The chain hash of the entry this header heads with these postings: the same bytes as
    /// [`Entry::chain_hash`], written into `buf` (cleared first, reused across entries).
    pub fn chain_hash<'a>(
        &self,
        prev: &Hash,
        postings: impl IntoIterator<Item = PostingParts<'a>>,
        buf: &mut String,
    ) -> Hash {
        buf.clear();
        self.write_canonical(buf);
        for p in postings {
            buf.push_str("posting ");
            buf.push_str(p.account);
            write_posting_rest(buf, p.sku, p.lot, p.qty, p.value);
        }
        let mut h = Sha256::new();
        h.update(prev.0);
        h.update(buf.as_bytes());
        Hash(h.finalize().into())
    }

    /// The canonical header lines, shared by [`Entry::canonical_bytes`] and
    /// [`EntryHeader::chain_hash`] so that there is one definition of the bytes.
    fn write_canonical(&self, s: &mut String) {
        // Pushed piece by piece rather than through `writeln!`: a pass over a long journal
        // writes these bytes for every entry, and the formatting machinery cost more than
        // the text. The bytes are the same.
        let mut n = itoa::Buffer::new();
        s.push_str("ppe-entry-v1\nseq ");
        s.push_str(n.format(self.seq));
        {
            use std::fmt::Write;
            let _ = write!(s, "\ndate {}", self.date);
        }
        s.push_str("\nkind ");
        s.push_str(self.kind.as_str());
        s.push_str("\ndocument ");
        s.push_str(self.document.as_str());
        s.push_str("\nactor ");
        s.push_str(n.format(self.actor.len()));
        s.push(':');
        s.push_str(&self.actor);
        s.push_str("\nreverses ");
        match self.reverses {
            Some(r) => s.push_str(n.format(r)),
            None => s.push('-'),
        }
        s.push_str("\nmemo ");
        s.push_str(n.format(self.memo.len()));
        s.push(':');
        s.push_str(&self.memo);
        s.push('\n');
    }
}

/// One canonical posting line: `posting {account} {sku} {lot} {qty} {value}`.
fn write_posting(
    s: &mut String,
    account: impl fmt::Display,
    sku: &str,
    lot: &str,
    qty: i64,
    value: i64,
) {
    use std::fmt::Write;
    let _ = write!(s, "posting {account}");
    write_posting_rest(s, sku, lot, qty, value);
}

/// A canonical posting line after its account (see [`write_posting`]).
fn write_posting_rest(s: &mut String, sku: &str, lot: &str, qty: i64, value: i64) {
    let mut n = itoa::Buffer::new();
    s.push(' ');
    s.push_str(sku);
    s.push(' ');
    s.push_str(lot);
    s.push(' ');
    s.push_str(n.format(qty));
    s.push(' ');
    s.push_str(n.format(value));
    s.push('\n');
}

/// Checks invariant 1 over a set of postings.
pub fn check_balanced(postings: &[Posting]) -> Result<(), Rejection> {
    let mut per_lot: BTreeMap<(&Sku, &LotNo), Qty> = BTreeMap::new();
    let mut value = Money::ZERO;
    for p in postings {
        *per_lot.entry((&p.sku, &p.lot)).or_default() += p.qty;
        value += p.value;
    }
    if let Some(((sku, lot), qty)) = per_lot.iter().find(|(_, q)| !q.is_zero()) {
        return Err(Rejection::Unbalanced {
            sku: (*sku).clone(),
            lot: (*lot).clone(),
            qty: *qty,
            value,
        });
    }
    if !value.is_zero() {
        let p = &postings[0];
        return Err(Rejection::Unbalanced {
            sku: p.sku.clone(),
            lot: p.lot.clone(),
            qty: Qty::ZERO,
            value,
        });
    }
    Ok(())
}

/// Each byte's value as a hex digit (either case), or 0xff for a byte that is not one.
const HEX_DIGIT: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut c: u8 = 0;
    loop {
        t[c as usize] = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => 0xff,
        };
        if c == u8::MAX {
            break t;
        }
        c += 1;
    }
};

/// A SHA-256 digest in the chain.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The hash before the first entry.
    pub const GENESIS: Hash = Hash([0; 32]);

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
    /// The hash that 64 hex digits spell (either case); `None` for anything else.
    pub fn from_hex(s: &str) -> Option<Hash> {
        // Straight into the array, a byte from two table lookups: a full pass decodes one
        // stored hash per entry (1.3M at 10M postings), and `hex::decode_to_slice`, a match
        // per digit, was 3 % of the pass.
        let digits: &[u8; 64] = s.as_bytes().try_into().ok()?;
        let mut h = [0; 32];
        for (byte, pair) in h.iter_mut().zip(digits.chunks_exact(2)) {
            let (hi, lo) = (
                HEX_DIGIT[usize::from(pair[0])],
                HEX_DIGIT[usize::from(pair[1])],
            );
            if (hi | lo) > 0xf {
                return None;
            }
            *byte = hi << 4 | lo;
        }
        Some(Hash(h))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ident::LocationCode;
    use crate::PartyCode;

    pub(crate) fn header(seq: u64) -> EntryHeader {
        EntryHeader {
            seq,
            date: time::macros::date!(2020 - 02 - 12),
            kind: EntryKind::Purchase,
            document: DocId::parse("PO-1").unwrap(),
            actor: "admin".into(),
            reverses: None,
            memo: String::new(),
        }
    }

    fn posting(account: Account, qty: &str, value: &str) -> Posting {
        Posting {
            account,
            sku: Sku::parse("PC").unwrap(),
            lot: LotNo::parse("L1").unwrap(),
            qty: Qty::parse(qty).unwrap(),
            value: Money::parse(value).unwrap(),
        }
    }

    fn pair(q: &str, v: &str, q2: &str, v2: &str) -> Vec<Posting> {
        vec![
            posting(Account::Supplier(PartyCode::parse("S").unwrap()), q, v),
            posting(Account::Stock(LocationCode::parse("RAW").unwrap()), q2, v2),
        ]
    }

    #[test]
    fn invariant_1_entries_must_balance_in_quantity_and_value() {
        assert!(Entry::new(header(1), pair("-10", "-400", "10", "400")).is_ok());
        assert!(matches!(
            Entry::new(header(1), pair("-10", "-400", "9", "400")),
            Err(Rejection::Unbalanced { .. })
        ));
        assert!(matches!(
            Entry::new(header(1), pair("-10", "-400", "10", "399.9999")),
            Err(Rejection::Unbalanced { .. })
        ));
        assert!(
            Entry::new(header(1), vec![]).is_err(),
            "a purchase without postings"
        );
    }

    #[test]
    fn invariant_4_the_chain_covers_every_field() {
        let e = Entry::new(header(1), pair("-10", "-400", "10", "400")).unwrap();
        let h = e.chain_hash(&Hash::GENESIS);
        assert_eq!(h, e.chain_hash(&Hash::GENESIS), "deterministic");
        assert_ne!(h, e.chain_hash(&h), "depends on the previous hash");
        let other_value =
            Entry::new(header(1), pair("-10", "-400.0001", "10", "400.0001")).unwrap();
        assert_ne!(h, other_value.chain_hash(&Hash::GENESIS));
        let mut hd = header(1);
        hd.actor = "someone-else".into();
        let other_actor = Entry::new(hd, pair("-10", "-400", "10", "400")).unwrap();
        assert_ne!(h, other_actor.chain_hash(&Hash::GENESIS));
        assert_eq!(Hash::from_hex(&h.to_hex()), Some(h));
    }

    /// The canonical bytes, written out by hand from their definition: one field a line,
    /// numbers at storage scale, free text length-prefixed. A change in how they are written
    /// that moved one byte would break every stored chain.
    #[test]
    fn the_canonical_bytes_are_the_defined_lines() {
        let mut hd = header(7);
        hd.reverses = Some(3);
        hd.memo = "line one\nline two".into();
        let e = Entry::new(hd.clone(), pair("-10", "-400.5", "10", "400.5")).unwrap();
        let expected = "ppe-entry-v1\nseq 7\ndate 2020-02-12\nkind purchase\ndocument PO-1\n\
                        actor 5:admin\nreverses 3\nmemo 17:line one\nline two\n\
                        posting supplier:S PC L1 -10000 -4005000\n\
                        posting stock:RAW PC L1 10000 4005000\n";
        assert_eq!(String::from_utf8(e.canonical_bytes()).unwrap(), expected);
        hd.reverses = None;
        hd.memo = String::new();
        let e = Entry::new(hd, pair("-10", "-400.5", "10", "400.5")).unwrap();
        let bytes = String::from_utf8(e.canonical_bytes()).unwrap();
        assert!(bytes.contains("\nreverses -\nmemo 0:\nposting "), "{bytes}");
    }

    /// A stored hash is 64 hex digits and nothing else; a damaged one is refused, not cut.
    #[test]
    fn a_hash_reads_back_from_exactly_64_hex_digits() {
        let h = Entry::new(header(1), pair("-10", "-400", "10", "400"))
            .unwrap()
            .chain_hash(&Hash::GENESIS);
        let hex = h.to_hex();
        assert_eq!(Hash::from_hex(&hex.to_uppercase()), Some(h));
        assert_eq!(Hash::from_hex(&hex[..62]), None, "too short");
        assert_eq!(Hash::from_hex(&format!("{hex}00")), None, "too long");
        assert_eq!(Hash::from_hex(&format!("{}g", &hex[..63])), None, "not hex");
        assert_eq!(Hash::from_hex(""), None);
    }

    /// A pass over the stored journal hashes a header and the postings' stored parts; it must
    /// give the entry's own chain hash, byte for byte, or every verify would fail.
    #[test]
    fn a_header_with_posting_parts_hashes_as_its_entry() {
        let mut hd = header(7);
        hd.reverses = Some(3);
        hd.memo = "line one\nline two".into();
        let e = Entry::new(hd.clone(), pair("-10", "-400.5", "10", "400.5")).unwrap();
        let prev = e.chain_hash(&Hash::GENESIS);
        let texts: Vec<(String, String, String)> = e
            .postings()
            .iter()
            .map(|p| (p.account.to_string(), p.sku.to_string(), p.lot.to_string()))
            .collect();
        let parts = e
            .postings()
            .iter()
            .zip(&texts)
            .map(|(p, (a, s, l))| PostingParts {
                account: a,
                sku: s,
                lot: l,
                qty: p.qty.scaled(),
                value: p.value.scaled(),
            });
        let mut buf = String::from("left over from the previous entry");
        assert_eq!(
            hd.chain_hash(&prev, parts.clone(), &mut buf),
            e.chain_hash(&prev)
        );
        assert_eq!(buf.as_bytes(), e.canonical_bytes().as_slice());
        // One posting fewer is another hash.
        assert_ne!(
            hd.chain_hash(&prev, parts.skip(1), &mut buf),
            e.chain_hash(&prev)
        );
    }
}
