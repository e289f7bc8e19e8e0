//! The PPE ledger's domain: exact quantities and money, master data, accounts, entries of
//! postings, invariants 1 to 5, the value-relief rule and the SHA-256 chain.
//!
//! Architecture invariant: this crate does no I/O and reads no clock. It knows nothing of
//! SQL, HTTP or async runtimes; balances and dates come in as arguments and decisions go out
//! as postings or a named [`Rejection`].

pub mod account;
pub mod docs;
pub mod entry;
pub mod error;
pub mod ident;
pub mod master;
pub mod num;
pub mod production;
pub mod shipment;
pub mod state;

pub use account::Account;
pub use entry::{Entry, EntryHeader, EntryKind, Hash, Posting, PostingParts};
pub use error::{Rejection, RejectionClass};
pub use ident::{BomVersion, DocId, IdentError, LocationCode, LotNo, PartyCode, Sku};
pub use master::{Item, ItemKind, Location, Party, PartyKind};
pub use num::{AtScale, Money, NumberError, Qty, Rate};
pub use shipment::{Shipment, ShipmentChange, ShipmentKind, ShipmentLine, ShipmentStatus};
pub use state::{Balance, Draft, Lot, Needs, PastEntry, State};

/// Parses an ISO 8601 calendar date (`2020-03-17`).
pub fn parse_date(s: &str) -> Result<time::Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    if s.len() != 10 {
        return Err("must be a date written YYYY-MM-DD".into());
    }
    time::Date::parse(s, &format).map_err(|_| "must be a date written YYYY-MM-DD".into())
}
