//! Parsing request fields into domain values, each failure named by its field.

use ledger::{DocId, LocationCode, LotNo, Money, PartyCode, Qty, Rate, Sku};

use crate::dto::DecText;
use crate::error::Fields;

pub fn sku(f: &mut Fields, field: &str, s: &str) -> Option<Sku> {
    f.take(field, Sku::parse(s))
}
pub fn party(f: &mut Fields, field: &str, s: &str) -> Option<PartyCode> {
    f.take(field, PartyCode::parse(s))
}
pub fn location(f: &mut Fields, field: &str, s: &str) -> Option<LocationCode> {
    f.take(field, LocationCode::parse(s))
}
pub fn doc_id(f: &mut Fields, field: &str, s: &str) -> Option<DocId> {
    f.take(field, DocId::parse(s))
}
pub fn opt_lot(f: &mut Fields, field: &str, s: Option<&str>) -> Option<Option<LotNo>> {
    match s.filter(|s| !s.is_empty()) {
        None => Some(None),
        Some(s) => f.take(field, LotNo::parse(s)).map(Some),
    }
}
pub fn date(f: &mut Fields, field: &str, s: &str) -> Option<time::Date> {
    f.take(field, ledger::parse_date(s))
}
pub fn opt_date(f: &mut Fields, field: &str, s: Option<&str>) -> Option<Option<time::Date>> {
    match s.filter(|s| !s.is_empty()) {
        None => Some(None),
        Some(s) => date(f, field, s).map(Some),
    }
}
pub fn qty(f: &mut Fields, field: &str, d: &DecText) -> Option<Qty> {
    f.take(field, Qty::parse(&d.0))
}
pub fn money(f: &mut Fields, field: &str, d: &DecText) -> Option<Money> {
    f.take(field, Money::parse(&d.0))
}
pub fn opt_rate(f: &mut Fields, field: &str, d: Option<&DecText>) -> Option<Option<Rate>> {
    match d.filter(|d| !d.0.is_empty()) {
        None => Some(None),
        Some(d) => f.take(field, Rate::parse(&d.0)).map(Some),
    }
}
