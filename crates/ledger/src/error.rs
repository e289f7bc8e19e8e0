//! Named rejections: every way the domain can refuse a request, each carrying what the user
//! needs to put it right (which field, line or lot, and what was available).

use crate::ident::{DocId, LotNo, PartyCode, Sku};
use crate::num::{Money, Qty};
use crate::Account;

/// What kind of problem a rejection is, which the API maps to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionClass {
    /// The request is well-formed but a value in it is not acceptable (422).
    Invalid,
    /// The request names something that does not exist (404 when it is the URL's id).
    NotFound,
    /// The ledger's state forbids the act (409).
    Conflict,
}

/// A refusal by the domain. Fields are paths into the request (`lines[2].qty`), so the API
/// can name them and the CSV importer can turn them into line numbers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("{field} {message}")]
    Invalid { field: String, message: String },

    #[error("{field}: unknown {what} {value:?}")]
    UnknownReference {
        field: String,
        what: &'static str,
        value: String,
    },

    #[error("{field}: {what} {value:?} is a {found}, not a {expected}")]
    WrongKind {
        field: String,
        what: &'static str,
        value: String,
        found: String,
        expected: String,
    },

    #[error("{field}: insufficient stock of {sku} in {account}{} : {available} available, {requested} requested", lot.as_ref().map(|l| format!(" lot {l}")).unwrap_or_default())]
    InsufficientStock {
        field: String,
        account: Account,
        sku: Sku,
        lot: Option<LotNo>,
        available: Qty,
        requested: Qty,
    },

    #[error("{field}: lot {lot} is expired (expired on {expires_on}, document dated {date})")]
    LotExpired {
        field: String,
        lot: LotNo,
        expires_on: time::Date,
        date: time::Date,
    },

    #[error("{field}: lot {lot} holds {found}, not {expected}")]
    LotOfOtherItem {
        field: String,
        lot: LotNo,
        found: Sku,
        expected: Sku,
    },

    #[error("{field}: lot {lot} already exists")]
    LotExists { field: String, lot: LotNo },

    #[error("{what} {id} already exists with a different body")]
    ExistsWithDifferentBody { what: &'static str, id: String },

    #[error("entry {seq} was already reversed by entry {by}")]
    AlreadyReversed { seq: u64, by: u64 },

    #[error("entry {seq} cannot be reversed: {reason}")]
    NotReversible { seq: u64, reason: String },

    #[error("date {date} falls in a closed period (closed through {closed_through})")]
    PeriodClosed {
        date: time::Date,
        closed_through: time::Date,
    },

    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },

    #[error("{what} {id}: {message}")]
    StateForbids {
        what: &'static str,
        id: String,
        message: String,
    },

    /// An entry whose postings do not sum to zero: a bug in the code that built it.
    #[error("entry does not balance for {sku} lot {lot}: quantity {qty}, value {value}")]
    Unbalanced {
        sku: Sku,
        lot: LotNo,
        qty: Qty,
        value: Money,
    },

    /// An entry whose lines would leave a guarded balance negative after the per-line checks
    /// passed: a bug in the code that built it, caught before anything is written.
    #[error("{account} {sku} lot {lot} would go negative ({balance})")]
    NegativeBalance {
        account: Account,
        sku: Sku,
        lot: LotNo,
        balance: Qty,
    },

    #[error("value out of range: {0}")]
    Overflow(String),

    /// An acknowledgement naming a destination, sku or lot the shipment did not carry.
    #[error("{field}: {what} {value:?} is not on shipment {shipment} (it carries: {on_shipment})")]
    NotOnShipment {
        field: String,
        shipment: DocId,
        what: &'static str,
        value: String,
        on_shipment: String,
    },

    /// An acknowledgement of more than is still in transit for a destination.
    #[error("{field}: shipment {shipment} has {outstanding} of {sku}{} outstanding for {destination}; {requested} acknowledged", lot.as_ref().map(|l| format!(" lot {l}")).unwrap_or_default())]
    MoreThanOutstanding {
        field: String,
        shipment: DocId,
        destination: PartyCode,
        sku: Sku,
        lot: Option<LotNo>,
        outstanding: Qty,
        requested: Qty,
    },
}

impl Rejection {
    pub fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Rejection::Invalid {
            field: field.into(),
            message: message.to_string(),
        }
    }

    pub fn class(&self) -> RejectionClass {
        use Rejection::*;
        match self {
            Invalid { .. }
            | UnknownReference { .. }
            | WrongKind { .. }
            | LotOfOtherItem { .. }
            | ExistsWithDifferentBody { .. }
            | NotOnShipment { .. }
            | Overflow(_) => RejectionClass::Invalid,
            NotFound { .. } => RejectionClass::NotFound,
            InsufficientStock { .. }
            | LotExpired { .. }
            | LotExists { .. }
            | AlreadyReversed { .. }
            | NotReversible { .. }
            | PeriodClosed { .. }
            | StateForbids { .. }
            | Unbalanced { .. }
            | NegativeBalance { .. }
            | MoreThanOutstanding { .. } => RejectionClass::Conflict,
        }
    }

    /// The request field the rejection is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        use Rejection::*;
        match self {
            Invalid { field, .. }
            | UnknownReference { field, .. }
            | WrongKind { field, .. }
            | InsufficientStock { field, .. }
            | LotExpired { field, .. }
            | LotOfOtherItem { field, .. }
            | LotExists { field, .. }
            | NotOnShipment { field, .. }
            | MoreThanOutstanding { field, .. } => Some(field),
            _ => None,
        }
    }

    /// A stable machine name for the rejection (`insufficient-stock`), used as the problem type.
    pub fn code(&self) -> &'static str {
        use Rejection::*;
        match self {
            Invalid { .. } => "invalid",
            UnknownReference { .. } => "unknown-reference",
            WrongKind { .. } => "wrong-kind",
            InsufficientStock { .. } => "insufficient-stock",
            LotExpired { .. } => "lot-expired",
            LotOfOtherItem { .. } => "lot-of-other-item",
            LotExists { .. } => "lot-exists",
            ExistsWithDifferentBody { .. } => "exists-with-different-body",
            AlreadyReversed { .. } => "already-reversed",
            NotReversible { .. } => "not-reversible",
            PeriodClosed { .. } => "period-closed",
            NotFound { .. } => "not-found",
            StateForbids { .. } => "state-forbids",
            Unbalanced { .. } => "unbalanced",
            NegativeBalance { .. } => "negative-balance",
            Overflow(_) => "overflow",
            NotOnShipment { .. } => "not-on-shipment",
            MoreThanOutstanding { .. } => "more-than-outstanding",
        }
    }
}
