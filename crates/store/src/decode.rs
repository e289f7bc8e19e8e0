//! Turning stored columns back into domain values, shared by every backend so that each
//! backend crate holds only its SQL.

use ledger::{
    Account, Balance, DocId, Entry, EntryHeader, EntryKind, Hash, Item, ItemKind, Location,
    LocationCode, Lot, LotNo, Money, Party, PartyCode, PartyKind, Posting, Qty, Sku,
};

use crate::journal::EntryColumns;
use crate::{Result, StoreError, StoredEntry};
use ledger::shipment::{Closure, Declared, Shipment, ShipmentKind, ShipmentLine};
use ledger::Rate;

fn corrupt(what: &str, value: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?}: {e}"))
}

pub fn date(s: &str) -> Result<time::Date> {
    ledger::parse_date(s).map_err(|e| corrupt("date", s, e))
}

pub fn opt_date(s: Option<String>) -> Result<Option<time::Date>> {
    s.as_deref().map(date).transpose()
}

pub fn seq(v: i64) -> u64 {
    u64::try_from(v).expect("sequence numbers are positive by constraint")
}

pub fn item(
    sku: &str,
    name: &str,
    kind: &str,
    unit: &str,
    decimals: i64,
    shelf_life_days: Option<i64>,
) -> Result<Item> {
    let sku_v = Sku::parse(sku).map_err(|e| corrupt("sku", sku, e))?;
    let kind: ItemKind = kind.parse().map_err(|e| corrupt("item kind", kind, e))?;
    let decimals = u32::try_from(decimals).map_err(|e| corrupt("decimals", sku, e))?;
    let shelf = shelf_life_days
        .map(u32::try_from)
        .transpose()
        .map_err(|e| corrupt("shelf life", sku, e))?;
    Item::new(sku_v, name, kind, unit, decimals, shelf).map_err(|e| corrupt("item", sku, e))
}

pub fn party(
    code: &str,
    name: &str,
    kind: &str,
    country: Option<&str>,
    city: Option<&str>,
    parent: Option<&str>,
) -> Result<Party> {
    let code_v = PartyCode::parse(code).map_err(|e| corrupt("party", code, e))?;
    let kind: PartyKind = kind.parse().map_err(|e| corrupt("party kind", kind, e))?;
    // The parent's kind was checked when the party was created; a stored community's parent
    // is a subdistrict by the same check.
    let parent = parent
        .map(|p| PartyCode::parse(p).map(|c| (c, Some(PartyKind::Subdistrict))))
        .transpose()
        .map_err(|e| corrupt("parent", code, e))?;
    Party::new(code_v, name, kind, country, city, parent).map_err(|e| corrupt("party", code, e))
}

pub fn location(code: &str, name: &str) -> Result<Location> {
    let code_v = LocationCode::parse(code).map_err(|e| corrupt("location", code, e))?;
    Location::new(code_v, name).map_err(|e| corrupt("location", code, e))
}

pub fn lot(
    lot: &str,
    sku: &str,
    origin_kind: &str,
    origin_doc: &str,
    origin_seq: i64,
    expires_on: Option<String>,
    source: Option<String>,
) -> Result<Lot> {
    Ok(Lot {
        lot: LotNo::parse(lot).map_err(|e| corrupt("lot", lot, e))?,
        sku: Sku::parse(sku).map_err(|e| corrupt("sku", sku, e))?,
        origin_kind: EntryKind::parse(origin_kind)
            .ok_or_else(|| corrupt("origin kind", origin_kind, "unknown"))?,
        origin_doc: DocId::parse(origin_doc).map_err(|e| corrupt("document", origin_doc, e))?,
        origin_seq: seq(origin_seq),
        expires_on: opt_date(expires_on)?,
        source: source
            .as_deref()
            .map(PartyCode::parse)
            .transpose()
            .map_err(|e| corrupt("lot source", lot, e))?,
    })
}

pub fn balance(qty: i64, value: i64) -> Balance {
    Balance {
        qty: Qty::from_scaled(qty),
        value: Money::from_scaled(value),
    }
}

pub fn account(s: &str) -> Result<Account> {
    Account::parse(s).ok_or_else(|| corrupt("account", s, "unknown form"))
}

/// The columns of one stored entry.
#[derive(Debug)]
pub struct RawEntry {
    pub seq: i64,
    pub date: String,
    pub kind: String,
    pub document: String,
    pub actor: String,
    pub reverses: Option<i64>,
    pub memo: String,
    pub hash: String,
    pub recorded_at: String,
}

/// The columns of one stored posting.
#[derive(Debug)]
pub struct RawPosting {
    pub seq: i64,
    pub account: String,
    pub sku: String,
    pub lot: String,
    pub qty: i64,
    pub value: i64,
}

/// Decodes an entry's header from its stored columns; what cannot be read is a
/// [`StoreError::CorruptEntry`] naming the entry.
pub fn entry_header(e: &EntryColumns<'_>) -> Result<EntryHeader> {
    let s = seq(e.seq);
    let bad = |message: String| StoreError::CorruptEntry { seq: s, message };
    Ok(EntryHeader {
        seq: s,
        date: ledger::parse_date(e.date).map_err(|err| bad(format!("date {:?} {err}", e.date)))?,
        kind: EntryKind::parse(e.kind).ok_or_else(|| bad(format!("unknown kind {:?}", e.kind)))?,
        document: DocId::parse(e.document).map_err(|err| bad(format!("document {err}")))?,
        actor: e.actor.to_owned(),
        reverses: e
            .reverses
            .map(|r| {
                u64::try_from(r).map_err(|_| bad(format!("reverses {r} is not a sequence number")))
            })
            .transpose()?,
        memo: e.memo.to_owned(),
    })
}

/// Decodes where a posting of entry `seq` goes: its account, item and lot.
pub fn posting_key(seq: u64, account: &str, sku: &str, lot: &str) -> Result<(Account, Sku, LotNo)> {
    Ok((
        posting_account(seq, account)?,
        posting_sku(seq, sku)?,
        posting_lot(seq, lot)?,
    ))
}

/// Decodes the account of a posting of entry `seq` (one part of [`posting_key`]).
pub fn posting_account(seq: u64, account: &str) -> Result<Account> {
    Account::parse(account).ok_or_else(|| StoreError::CorruptEntry {
        seq,
        message: format!("account {account:?}"),
    })
}

/// Decodes the item of a posting of entry `seq` (one part of [`posting_key`]).
pub fn posting_sku(seq: u64, sku: &str) -> Result<Sku> {
    Sku::parse(sku).map_err(|e| StoreError::CorruptEntry {
        seq,
        message: format!("sku {e}"),
    })
}

/// Decodes the lot of a posting of entry `seq` (one part of [`posting_key`]).
pub fn posting_lot(seq: u64, lot: &str) -> Result<LotNo> {
    LotNo::parse(lot).map_err(|e| StoreError::CorruptEntry {
        seq,
        message: format!("lot {e}"),
    })
}

/// Decodes an entry's stored hash.
pub fn entry_hash(seq: u64, hash: &str) -> Result<Hash> {
    Hash::from_hex(hash).ok_or_else(|| StoreError::CorruptEntry {
        seq,
        message: "hash is not 64 hex digits".into(),
    })
}

/// Rebuilds an entry exactly as stored (unchecked: see [`Entry::from_storage`]).
pub fn entry(raw: RawEntry, postings: Vec<RawPosting>) -> Result<StoredEntry> {
    let header = entry_header(&EntryColumns {
        seq: raw.seq,
        date: &raw.date,
        kind: &raw.kind,
        document: &raw.document,
        actor: &raw.actor,
        reverses: raw.reverses,
        memo: &raw.memo,
        hash: &raw.hash,
    })?;
    let s = header.seq;
    let mut out = Vec::with_capacity(postings.len());
    for p in postings {
        let (account, sku, lot) = posting_key(s, &p.account, &p.sku, &p.lot)?;
        out.push(Posting {
            account,
            sku,
            lot,
            qty: Qty::from_scaled(p.qty),
            value: Money::from_scaled(p.value),
        });
    }
    let hash = entry_hash(s, &raw.hash)?;
    Ok(StoredEntry {
        entry: Entry::from_storage(header, out),
        hash,
        recorded_at: raw.recorded_at,
    })
}

/// Groups postings (ordered by seq) under their entries (ordered by seq).
pub fn entries(raw: Vec<RawEntry>, postings: Vec<RawPosting>) -> Result<Vec<StoredEntry>> {
    let mut postings = postings.into_iter().peekable();
    let mut out = Vec::with_capacity(raw.len());
    for e in raw {
        let mut mine = Vec::new();
        while let Some(p) = postings.next_if(|p| p.seq <= e.seq) {
            if p.seq == e.seq {
                mine.push(p);
            }
        }
        out.push(entry(e, mine)?);
    }
    Ok(out)
}

/// The columns of one stored shipment.
#[derive(Debug)]
pub struct RawShipment {
    pub id: String,
    pub kind: String,
    pub date: String,
    pub from_location: String,
    pub recipient: Option<String>,
    pub country: Option<String>,
    pub declared_value: Option<i64>,
    pub currency: Option<String>,
    pub fx_rate: Option<String>,
    pub declared_value_base: Option<i64>,
    pub dispatch_seq: i64,
    pub closed_on: Option<String>,
    pub close_reason: Option<String>,
    pub close_seq: Option<i64>,
}

/// The columns of one stored shipment line.
#[derive(Debug)]
pub struct RawShipmentLine {
    pub destination: String,
    pub sku: String,
    pub lot: String,
    pub dispatched_qty: i64,
    pub acknowledged_qty: i64,
    pub damaged_qty: i64,
    pub short_qty: i64,
    pub dispatched_value: i64,
}

/// Rebuilds a shipment from its row and its lines (in `pos` order).
pub fn shipment(raw: RawShipment, lines: Vec<RawShipmentLine>) -> Result<Shipment> {
    let id = &raw.id;
    let bad =
        |what: &str, e: &dyn std::fmt::Display| corrupt(&format!("shipment {id} {what}"), "", e);
    let declared = match (
        raw.declared_value,
        raw.currency,
        raw.fx_rate,
        raw.declared_value_base,
    ) {
        (Some(v), Some(c), Some(r), Some(b)) => Some(Declared {
            value: Money::from_scaled(v),
            currency: c,
            fx_rate: Rate::parse(&r).map_err(|e| bad("fx_rate", &e))?,
            base_value: Money::from_scaled(b),
        }),
        _ => None,
    };
    let closure = match (raw.closed_on, raw.close_reason, raw.close_seq) {
        (Some(d), Some(reason), Some(s)) => Some(Closure {
            date: date(&d)?,
            reason,
            seq: seq(s),
        }),
        _ => None,
    };
    let mut out = Vec::with_capacity(lines.len());
    for l in lines {
        out.push(ShipmentLine {
            destination: PartyCode::parse(&l.destination).map_err(|e| bad("destination", &e))?,
            sku: Sku::parse(&l.sku).map_err(|e| bad("sku", &e))?,
            lot: LotNo::parse(&l.lot).map_err(|e| bad("lot", &e))?,
            dispatched: Qty::from_scaled(l.dispatched_qty),
            acknowledged: Qty::from_scaled(l.acknowledged_qty),
            damaged: Qty::from_scaled(l.damaged_qty),
            short: Qty::from_scaled(l.short_qty),
            dispatched_value: Money::from_scaled(l.dispatched_value),
        });
    }
    Ok(Shipment {
        id: DocId::parse(id).map_err(|e| bad("id", &e))?,
        kind: ShipmentKind::parse(&raw.kind).ok_or_else(|| bad("kind", &raw.kind))?,
        date: date(&raw.date)?,
        from_location: LocationCode::parse(&raw.from_location)
            .map_err(|e| bad("from_location", &e))?,
        recipient: raw
            .recipient
            .as_deref()
            .map(PartyCode::parse)
            .transpose()
            .map_err(|e| bad("recipient", &e))?,
        country: raw.country,
        declared,
        dispatch_seq: seq(raw.dispatch_seq),
        closure,
        lines: out,
    })
}
