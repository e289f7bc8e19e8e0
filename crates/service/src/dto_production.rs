//! Request and answer shapes of production: bills of materials, production runs and their
//! report, and stock counts. Decimals in are [`DecText`] (read exactly), decimals out are
//! strings; quantities are written as they are, money always with 4 decimals.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::dto::DecText;

/// A bill of materials: the material quantities that make `output_qty` of a product. The same
/// body again changes nothing; a different body replaces the version until a production run
/// has used it, and is refused from then on (make a new version instead).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BomIn {
    /// An item of kind product.
    #[schema(example = "GOGGLES")]
    pub product_sku: String,
    /// A short label such as `2020-02`.
    #[schema(example = "2020-02")]
    pub version: String,
    /// How much product the lines make.
    pub output_qty: DecText,
    pub lines: Vec<BomLineIn>,
}

/// One material of a bill of materials: an item of kind material or supply, named once.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BomLineIn {
    #[schema(example = "PC-SHEET")]
    pub sku: String,
    /// Quantity per `output_qty` of product, at most 3 decimals.
    pub qty: DecText,
}

/// A bill of materials as stored.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct BomView {
    pub product_sku: String,
    pub version: String,
    pub output_qty: String,
    pub lines: Vec<BomLineView>,
    /// The first production run that used this version; from then on it cannot change.
    pub first_run: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct BomLineView {
    pub sku: String,
    pub qty: String,
}

/// A production run: materials from `from_location` become a new lot of the product in
/// `to_location` that carries the run's whole cost (materials + labour + overhead).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductionRunIn {
    #[schema(example = "RUN-0215")]
    pub run_id: String,
    #[schema(example = "2020-02-15")]
    pub date: String,
    /// An item of kind product.
    #[schema(example = "GOGGLES")]
    pub product_sku: String,
    /// The version of the product's bill of materials the run follows.
    #[schema(example = "2020-02")]
    pub bom_version: String,
    #[schema(example = "RAW")]
    pub from_location: String,
    #[schema(example = "FG")]
    pub to_location: String,
    /// Good output: the new lot. Greater than zero.
    pub good_qty: DecText,
    /// Scrapped output, posted to `loss` at value 0; 0 when absent.
    #[serde(default)]
    pub scrap_qty: Option<DecText>,
    /// The new lot's number; `<run_id>-1` when absent.
    #[serde(default)]
    pub output_lot: Option<String>,
    /// The new lot's expiry; the run date plus the product's shelf life when absent.
    #[serde(default)]
    pub expires_on: Option<String>,
    /// Labour absorbed into the output, in the base currency; 0 when absent.
    #[serde(default)]
    pub labor_cost: Option<DecText>,
    /// Overhead absorbed into the output, in the base currency; 0 when absent.
    #[serde(default)]
    pub overhead_cost: Option<DecText>,
    /// Materials consumed. Empty or absent: the BOM's standard quantities for good + scrap.
    #[serde(default)]
    pub lines: Vec<ProductionLineIn>,
}

/// One material consumed by a run: from the named lot, or picked earliest expiry first, then
/// oldest, never expired.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductionLineIn {
    #[schema(example = "PC-SHEET")]
    pub sku: String,
    #[serde(default)]
    pub lot: Option<String>,
    pub qty: DecText,
}

/// A recorded production run: the document as normalised, the lots it consumed and its report.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct ProductionRunView {
    pub run_id: String,
    pub date: String,
    pub product_sku: String,
    pub bom_version: String,
    pub from_location: String,
    pub to_location: String,
    pub good_qty: String,
    pub scrap_qty: String,
    pub output_lot: String,
    pub expires_on: Option<String>,
    pub labor_cost: String,
    pub overhead_cost: String,
    pub entry_seq: u64,
    /// Each material lot the run took, with the value it gave up (value relief).
    pub consumed: Vec<ConsumedView>,
    pub report: RunReportView,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct ConsumedView {
    pub sku: String,
    pub lot: String,
    pub qty: String,
    pub value: String,
}

/// One run of the production report (`GET /reports/production`); the CSV has one row per run
/// and material with the same names as columns.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct RunReportView {
    pub run_id: String,
    pub date: String,
    pub product_sku: String,
    pub bom_version: String,
    pub output_lot: String,
    pub good_qty: String,
    pub scrap_qty: String,
    pub material_cost: String,
    pub labor_cost: String,
    pub overhead_cost: String,
    /// What the output lot received: materials + labour + overhead.
    pub total_cost: String,
    /// `total_cost / good_qty`, rounded once, half-even, to 4 decimals.
    pub unit_cost: String,
    pub entry_seq: u64,
    /// The entry that reversed the run, if one did.
    pub reversed_by: Option<u64>,
    pub materials: Vec<MaterialUseView>,
}

/// A material of a run: the standard (the BOM scaled to good + scrap output, rounded half-even
/// to the material's decimals), what was consumed, and actual minus standard.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct MaterialUseView {
    pub material_sku: String,
    pub standard_qty: String,
    pub actual_qty: String,
    pub variance_qty: String,
    /// The value the consumed lots gave up.
    pub actual_cost: String,
}

/// A stock count: what was found of each (item, lot) at a location on a date. Each difference
/// from the book moves to or from `loss` at the lot's average value there.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockCountIn {
    #[schema(example = "COUNT-0301")]
    pub count_id: String,
    #[schema(example = "2020-03-01")]
    pub date: String,
    #[schema(example = "FG")]
    pub location: String,
    pub lines: Vec<StockCountLineIn>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockCountLineIn {
    #[schema(example = "GOGGLES")]
    pub sku: String,
    #[schema(example = "RUN-0215-1")]
    pub lot: String,
    /// What was counted; 0 is allowed.
    pub counted_qty: DecText,
}

/// A recorded stock count.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct StockCountView {
    pub count_id: String,
    pub date: String,
    pub location: String,
    pub entry_seq: u64,
    /// The net value the count moved into stock (negative: out of stock, to `loss`).
    pub difference_value: String,
    pub lines: Vec<StockCountLineView>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct StockCountLineView {
    pub sku: String,
    pub lot: String,
    /// What the ledger held before the count.
    pub book_qty: String,
    pub counted_qty: String,
    /// counted - book.
    pub difference_qty: String,
    /// The value that moved into stock with the difference (negative for a shortfall).
    pub difference_value: String,
}
