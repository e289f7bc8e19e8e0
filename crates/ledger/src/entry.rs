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
    seq: u64,
    date: Date,
    kind: EntryKind,
    document: DocId,
    actor: String,
    reverses: Option<u64>,
    memo: String,
    postings: Vec<Posting>,
}

/// The header of an entry: everything but its postings.
#[derive(Debug, Clone)]
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
        let EntryHeader {
            seq,
            date,
            kind,
            document,
            actor,
            reverses,
            memo,
        } = header;
        Ok(Entry {
            seq,
            date,
            kind,
            document,
            actor,
            reverses,
            memo,
            postings,
        })
    }

    /// An entry read back from storage, as it was stored: not checked, because `verify` must
    /// be able to read (and report) an entry that was tampered with.
    pub fn from_storage(header: EntryHeader, postings: Vec<Posting>) -> Entry {
        let EntryHeader {
            seq,
            date,
            kind,
            document,
            actor,
            reverses,
            memo,
        } = header;
        Entry {
            seq,
            date,
            kind,
            document,
            actor,
            reverses,
            memo,
            postings,
        }
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }
    pub fn date(&self) -> Date {
        self.date
    }
    pub fn kind(&self) -> EntryKind {
        self.kind
    }
    pub fn document(&self) -> &DocId {
        &self.document
    }
    pub fn actor(&self) -> &str {
        &self.actor
    }
    pub fn reverses(&self) -> Option<u64> {
        self.reverses
    }
    pub fn memo(&self) -> &str {
        &self.memo
    }
    pub fn postings(&self) -> &[Posting] {
        &self.postings
    }

    /// The bytes the hash chain covers. Text, one field a line, numbers as integers at their
    /// storage scale and free text length-prefixed, so that both backends (and any auditor's
    /// script) produce them identically. The recording time is not covered: it is the one
    /// thing two backends fed the same operations legitimately disagree on.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        use std::fmt::Write;
        let mut s = String::with_capacity(128 + 64 * self.postings.len());
        let _ = writeln!(s, "ppe-entry-v1");
        let _ = writeln!(s, "seq {}", self.seq);
        let _ = writeln!(s, "date {}", self.date);
        let _ = writeln!(s, "kind {}", self.kind);
        let _ = writeln!(s, "document {}", self.document);
        let _ = writeln!(s, "actor {}:{}", self.actor.len(), self.actor);
        match self.reverses {
            Some(r) => {
                let _ = writeln!(s, "reverses {r}");
            }
            None => {
                let _ = writeln!(s, "reverses -");
            }
        }
        let _ = writeln!(s, "memo {}:{}", self.memo.len(), self.memo);
        for p in &self.postings {
            let _ = writeln!(
                s,
                "posting {} {} {} {} {}",
                p.account,
                p.sku,
                p.lot,
                p.qty.scaled(),
                p.value.scaled()
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

/// A SHA-256 digest in the chain.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The hash before the first entry.
    pub const GENESIS: Hash = Hash([0; 32]);

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
    pub fn from_hex(s: &str) -> Option<Hash> {
        let v = hex::decode(s).ok()?;
        Some(Hash(v.try_into().ok()?))
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
}
