//! The shapes of in-kind receipts, frontline batches, overseas donations, acknowledgements,
//! closings and shipments: what clients send and what they are answered. Re-exported from
//! `dto`, where every other shape lives.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::dto::DecText;

/// An in-kind receipt: goods given by a donor, channel or manufacturer into a stock location.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptIn {
    #[schema(example = "RC-1")]
    pub receipt_id: String,
    #[schema(example = "2020-02-08")]
    pub date: String,
    /// A party of kind donor, channel or manufacturer.
    #[schema(example = "DONOR-1")]
    pub donor: String,
    #[schema(example = "NW-STORE")]
    pub location: String,
    pub lines: Vec<ReceiptLineIn>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptLineIn {
    #[schema(example = "MASK")]
    pub sku: String,
    pub qty: DecText,
    /// Declared value of one unit in the base currency, at most 4 decimals; may be 0.
    pub unit_value: DecText,
    /// The new lot's number; made from the receipt id and line number when absent.
    #[serde(default)]
    pub lot: Option<String>,
    #[serde(default)]
    pub expires_on: Option<String>,
}

/// A recorded receipt: the lot each line created and its value in the base currency.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct ReceiptView {
    pub receipt_id: String,
    pub date: String,
    pub donor: String,
    pub location: String,
    pub entry_seq: u64,
    /// Sum of line values in the base currency.
    pub total_value: String,
    pub lines: Vec<ReceiptLineView>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct ReceiptLineView {
    pub sku: String,
    pub qty: String,
    pub unit_value: String,
    pub lot: String,
    pub expires_on: Option<String>,
    /// qty x unit value, rounded once, half-even, to 4 decimals.
    pub value: String,
}

/// A frontline batch: lines from one stock location, each to a subdistrict or community.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchIn {
    #[schema(example = "NW-B1")]
    pub batch_id: String,
    #[schema(example = "2020-02-10")]
    pub date: String,
    #[schema(example = "NW-STORE")]
    pub from_location: String,
    pub lines: Vec<BatchLineIn>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchLineIn {
    /// A party of kind subdistrict or community.
    #[schema(example = "XIACUN")]
    pub destination: String,
    #[schema(example = "MASK")]
    pub sku: String,
    pub qty: DecText,
    /// The lot to ship; earliest expiry first, then oldest, when absent.
    #[serde(default)]
    pub lot: Option<String>,
}

/// An overseas donation: lines from one stock location to one hospital, with a declared value.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DonationIn {
    #[schema(example = "DON-KR-1")]
    pub donation_id: String,
    #[schema(example = "2020-03-10")]
    pub date: String,
    #[schema(example = "FG")]
    pub from_location: String,
    /// A party of kind hospital.
    #[schema(example = "KR-DSMC")]
    pub recipient: String,
    /// The declared value in `currency`, at most 4 decimals.
    pub declared_value: DecText,
    /// ISO 4217; the base currency when absent.
    #[serde(default)]
    #[schema(example = "KRW")]
    pub currency: Option<String>,
    /// Base-currency units per unit of `currency`; empty (or 1) for the base currency.
    #[serde(default)]
    pub fx_rate: Option<DecText>,
    pub lines: Vec<DonationLineIn>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DonationLineIn {
    #[schema(example = "GOGGLES")]
    pub sku: String,
    pub qty: DecText,
    /// The lot to ship; earliest expiry first, then oldest, when absent.
    #[serde(default)]
    pub lot: Option<String>,
}

/// A shipment (batch or donation) as it is: per destination and lot, what was dispatched and
/// what became of it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct ShipmentView {
    pub shipment_id: String,
    /// `batch` or `donation`.
    pub kind: String,
    /// The dispatch date.
    pub date: String,
    pub from_location: String,
    /// A donation's hospital.
    pub recipient: Option<String>,
    /// A donation hospital's country (ISO 3166 alpha-2).
    pub country: Option<String>,
    /// A donation's declared value, in `currency`.
    pub declared_value: Option<String>,
    pub currency: Option<String>,
    pub fx_rate: Option<String>,
    /// The declared value in the base currency: declared value x fx rate, rounded once.
    pub declared_value_base: Option<String>,
    /// `dispatched`, `partly-acknowledged`, `acknowledged` or `closed`.
    pub status: String,
    /// The dispatch entry.
    pub dispatch_seq: u64,
    pub closed_on: Option<String>,
    pub close_reason: Option<String>,
    pub close_seq: Option<u64>,
    /// The ledger cost of everything dispatched (the value that left stock).
    pub dispatched_value: String,
    pub lines: Vec<ShipmentLineView>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct ShipmentLineView {
    pub destination: String,
    pub sku: String,
    pub lot: String,
    pub dispatched: String,
    /// Received in good order.
    pub acknowledged: String,
    pub damaged: String,
    /// Written off when the shipment was closed.
    pub short: String,
    /// Still in transit: dispatched - acknowledged - damaged - short.
    pub outstanding: String,
    /// The ledger cost of what was dispatched on this line.
    pub dispatched_value: String,
}

/// The answer to a batch or donation: the shipment as dispatched, and the lots each line
/// picked. `GET /shipments/{id}` shows it as it is now.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct DispatchView {
    #[serde(flatten)]
    pub shipment: ShipmentView,
    pub picked: Vec<PickView>,
}

/// One lot a dispatch line took.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct PickView {
    /// The document line (0-based), as in `lines[i]`.
    pub line: usize,
    pub destination: String,
    pub sku: String,
    pub lot: String,
    pub qty: String,
    /// The value that left stock (value relief).
    pub value: String,
}

/// An acknowledgement of a shipment (named in the path).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgementIn {
    /// The acknowledgement's id within the shipment. When absent, one is derived from the
    /// normalised content, so the same acknowledgement sent twice is recorded once; give ids
    /// to record two identical acknowledgements of one day.
    #[serde(default)]
    #[schema(example = "ACK-1")]
    pub acknowledgement_id: Option<String>,
    #[schema(example = "2020-03-17")]
    pub date: String,
    pub lines: Vec<AcknowledgementLineIn>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgementLineIn {
    #[schema(example = "KR-DSMC")]
    pub destination: String,
    #[schema(example = "MASK")]
    pub sku: String,
    /// When absent, the destination's lots of the sku are acknowledged in the order they were
    /// dispatched.
    #[serde(default)]
    pub lot: Option<String>,
    /// Received in good order; 0 when absent.
    #[serde(default)]
    pub received_qty: Option<DecText>,
    /// Arrived damaged; 0 when absent.
    #[serde(default)]
    pub damaged_qty: Option<DecText>,
    #[serde(default)]
    pub note: Option<String>,
}

/// A recorded acknowledgement.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct AcknowledgementView {
    pub acknowledgement_id: String,
    pub shipment_id: String,
    pub date: String,
    pub entry_seq: u64,
    /// The shipment's status after this acknowledgement.
    pub status: String,
    pub lines: Vec<AcknowledgementLineView>,
    /// What moved per lot: received to `recipient:<destination>`, damaged to `loss`.
    pub moved: Vec<AcknowledgedView>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct AcknowledgementLineView {
    pub destination: String,
    pub sku: String,
    pub lot: Option<String>,
    pub received_qty: String,
    pub damaged_qty: String,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct AcknowledgedView {
    /// The acknowledgement line (0-based).
    pub line: usize,
    pub destination: String,
    pub sku: String,
    pub lot: String,
    pub received: String,
    pub received_value: String,
    pub damaged: String,
    pub damaged_value: String,
    /// Still outstanding for this destination and lot.
    pub outstanding: String,
}

/// Closing a shipment: what is outstanding is written off to `loss` as short.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseIn {
    #[schema(example = "2020-04-30")]
    pub date: String,
    /// Why (lost in transit, recipient unreachable, ...); up to 200 characters.
    #[schema(example = "lost in transit")]
    pub reason: String,
}

/// A recorded closing.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct CloseView {
    pub shipment_id: String,
    pub date: String,
    pub reason: String,
    pub entry_seq: u64,
    pub status: String,
    /// The value written off.
    pub short_value: String,
    pub written_off: Vec<WrittenOffView>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct WrittenOffView {
    pub destination: String,
    pub sku: String,
    pub lot: String,
    pub short: String,
    pub value: String,
}
