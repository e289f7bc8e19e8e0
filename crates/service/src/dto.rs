//! The shapes of requests and answers (JSON and CSV alike): what clients send, before it is
//! parsed into domain types, and the views the service answers with.

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

pub use crate::dto_shipments::*;

/// A decimal as the client wrote it: a JSON string (`"12.50"`) or number (`12.5`), kept as
/// its exact text so that nothing passes through a float. Parsed strictly later, with the
/// field's name in any error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DecText(pub String);

impl<'de> Deserialize<'de> for DecText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // serde_json's arbitrary_precision keeps a number's text exactly as sent.
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(DecText(s)),
            serde_json::Value::Number(n) => Ok(DecText(n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected a decimal as a string or number, found {other}"
            ))),
        }
    }
}

impl utoipa::PartialSchema for DecText {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String).pattern(Some(r"^-?[0-9]+(\.[0-9]+)?$")).examples([serde_json::json!("12.50")]))
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .description(Some("An exact decimal: a string such as \"12.50\" (preferred) or a JSON number, read exactly."))
            .into()
    }
}
impl ToSchema for DecText {}

/// An item, as created and as listed (the CSV columns of `items`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemIn {
    #[schema(example = "GOGGLES")]
    pub sku: String,
    pub name: String,
    /// `material`, `product` or `supply`.
    #[schema(example = "product")]
    pub kind: String,
    /// `pcs`, `kg`, `m`, `l`, ...
    #[schema(example = "pcs")]
    pub unit: String,
    /// Decimals a quantity of this item may carry (0 to 3).
    #[serde(default)]
    pub decimals: u32,
    #[serde(default)]
    pub shelf_life_days: Option<u32>,
}

/// A party, as created and as listed (the CSV columns of `parties`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartyIn {
    #[schema(example = "KR-DSMC")]
    pub code: String,
    pub name: String,
    /// supplier, donor, channel, manufacturer, hospital, subdistrict or community.
    #[schema(example = "hospital")]
    pub kind: String,
    /// ISO 3166 alpha-2; required for hospitals.
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    /// The subdistrict of a community.
    #[serde(default)]
    pub parent: Option<String>,
}

/// A stock location, as created and as listed.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationIn {
    #[schema(example = "RAW")]
    pub code: String,
    pub name: String,
}

/// A purchase: goods bought from a supplier into a stock location.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseIn {
    #[schema(example = "PO-1")]
    pub purchase_id: String,
    #[schema(example = "2020-02-12")]
    pub date: String,
    #[schema(example = "SUP-PC")]
    pub supplier: String,
    #[schema(example = "RAW")]
    pub location: String,
    /// ISO 4217; the base currency when absent.
    #[serde(default)]
    #[schema(example = "CNY")]
    pub currency: Option<String>,
    /// Base-currency units per unit of `currency`; empty (or 1) for the base currency.
    #[serde(default)]
    pub fx_rate: Option<DecText>,
    pub lines: Vec<PurchaseLineIn>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseLineIn {
    #[schema(example = "PC-SHEET")]
    pub sku: String,
    pub qty: DecText,
    /// Price of one unit in the document's currency, at most 4 decimals.
    pub unit_price: DecText,
    /// The new lot's number; made from the purchase id and line number when absent.
    #[serde(default)]
    pub lot: Option<String>,
    #[serde(default)]
    pub expires_on: Option<String>,
}

/// A recorded purchase: the document as normalised, the lot each line created, its value in
/// the base currency and the entry it made.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct PurchaseView {
    pub purchase_id: String,
    pub date: String,
    pub supplier: String,
    pub location: String,
    pub currency: String,
    pub fx_rate: String,
    pub entry_seq: u64,
    /// Sum of line values in the base currency.
    pub total_value: String,
    pub lines: Vec<PurchaseLineView>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct PurchaseLineView {
    pub sku: String,
    pub qty: String,
    pub unit_price: String,
    pub lot: String,
    pub expires_on: Option<String>,
    /// qty x unit price x fx rate, rounded once, half-even, to 4 decimals.
    pub value: String,
}

/// A reversal request: the entry to reverse is in the path.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReversalIn {
    /// Date of the reversal entry; the reversed entry's date when absent.
    #[serde(default)]
    pub date: Option<String>,
    /// Why the entry is reversed.
    #[serde(default)]
    pub memo: Option<String>,
}

/// One posting of an entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct PostingView {
    pub account: String,
    pub sku: String,
    pub lot: String,
    pub quantity: String,
    pub value: String,
}

/// An entry of the journal.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct EntryView {
    pub seq: u64,
    pub date: String,
    pub kind: String,
    pub document: String,
    /// The name of the token (or CLI user) that made the entry.
    pub actor: String,
    pub reverses: Option<u64>,
    pub memo: String,
    /// SHA-256 of the previous hash and this entry's canonical bytes, hex.
    pub hash: String,
    pub recorded_at: String,
    pub postings: Vec<PostingView>,
}

/// One balance per (account, item, lot).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct BalanceView {
    #[schema(example = "stock:RAW")]
    pub account: String,
    pub sku: String,
    pub lot: String,
    pub quantity: String,
    pub value: String,
}

/// A page of a list: the items and the cursor of the next page (null at the end).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// The answer of `verify`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct VerifyReport {
    /// True when the chain, the head and the balances all check out.
    pub ok: bool,
    /// Entries checked.
    pub entries: u64,
    /// Hash of the last entry (all zeros for an empty ledger).
    pub head_hash: String,
    /// The first entry whose stored hash, sequence or content does not match.
    pub first_bad_seq: Option<u64>,
    /// What was wrong, in words.
    pub problems: Vec<String>,
    /// Maintained balances that differ from the sum of their postings.
    pub balance_mismatches: Vec<BalanceMismatchView>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct BalanceMismatchView {
    pub account: String,
    pub lot: String,
    pub maintained_quantity: String,
    pub maintained_value: String,
    pub posted_quantity: String,
    pub posted_value: String,
}

/// A period close.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PeriodCloseIn {
    /// Entries dated on or before this date are refused from now on.
    #[schema(example = "2020-02-29")]
    pub through: String,
}

/// Goods on hand: one row per stock location, item and lot (the row of the stock report).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct StockRow {
    #[schema(example = "RAW")]
    pub location: String,
    pub sku: String,
    pub lot: String,
    pub quantity: String,
    pub value: String,
    pub expires_on: Option<String>,
}
