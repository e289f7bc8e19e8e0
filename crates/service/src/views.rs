//! Turning domain and stored values into the views the service answers with.

use ledger::{Entry, Hash, Item, Location, Party, Qty};
use store::{BalanceMismatch, BalanceRow, JsonText};

use crate::dto::{
    BalanceMismatchView, BalanceView, EntryView, ItemIn, LocationIn, PartyIn, PostingView,
};
use crate::purchase::money;

/// The answer of a document that answers with its entry (a reversal; a shipment document
/// answered without its shipment, which the writer never does).
pub(crate) fn entry_answer(e: &Entry, hash: &Hash, recorded_at: &str) -> JsonText {
    JsonText::of(&entry_view(e, hash, recorded_at))
}

pub fn entry_view(e: &Entry, hash: &Hash, recorded_at: &str) -> EntryView {
    EntryView {
        seq: e.seq(),
        date: e.date().to_string(),
        kind: e.kind().to_string(),
        document: e.document().to_string(),
        actor: e.actor().to_owned(),
        reverses: e.reverses(),
        memo: e.memo().to_owned(),
        hash: hash.to_hex(),
        recorded_at: recorded_at.to_owned(),
        postings: e
            .postings()
            .iter()
            .map(|p| PostingView {
                account: p.account.to_string(),
                sku: p.sku.to_string(),
                lot: p.lot.to_string(),
                quantity: p.qty.to_string(),
                value: money(p.value),
            })
            .collect(),
    }
}

pub fn balance_view(b: &BalanceRow) -> BalanceView {
    BalanceView {
        account: b.account.clone(),
        sku: b.sku.clone(),
        lot: b.lot.clone(),
        quantity: b.quantity.to_string(),
        value: money(b.value),
    }
}

pub fn mismatch_view(m: &BalanceMismatch) -> BalanceMismatchView {
    BalanceMismatchView {
        account: m.account.clone(),
        lot: m.lot.clone(),
        maintained_quantity: Qty::from_scaled(m.maintained_qty).to_string(),
        maintained_value: money(ledger::Money::from_scaled(m.maintained_value)),
        posted_quantity: Qty::from_scaled(m.posted_qty).to_string(),
        posted_value: money(ledger::Money::from_scaled(m.posted_value)),
    }
}

pub fn item_view(i: &Item) -> ItemIn {
    ItemIn {
        sku: i.sku().to_string(),
        name: i.name().to_owned(),
        kind: i.kind().to_string(),
        unit: i.unit().to_owned(),
        decimals: i.decimals(),
        shelf_life_days: i.shelf_life_days(),
    }
}

pub fn party_view(p: &Party) -> PartyIn {
    PartyIn {
        code: p.code().to_string(),
        name: p.name().to_owned(),
        kind: p.kind().to_string(),
        country: p.country().map(str::to_owned),
        city: p.city().map(str::to_owned),
        parent: p.parent().map(|c| c.to_string()),
    }
}

pub fn location_view(l: &Location) -> LocationIn {
    LocationIn {
        code: l.code().to_string(),
        name: l.name().to_owned(),
    }
}
