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
    const WRONG: &str = "must be a date written YYYY-MM-DD";
    // Ten ASCII digits and dashes are read digit by digit: a pass over the journal parses a
    // date an entry, and the general parser of `time` was 2 % of it. Anything else is left
    // to that parser, so that what is accepted does not change.
    if let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *s.as_bytes() {
        let digits = [y0, y1, y2, y3, m0, m1, d0, d1];
        if digits.iter().all(u8::is_ascii_digit) {
            let n = |ds: &[u8]| ds.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
            let (year, month, day) = (n(&digits[..4]), n(&digits[4..6]), n(&digits[6..]));
            let month = u8::try_from(month)
                .ok()
                .and_then(|m| time::Month::try_from(m).ok())
                .ok_or(WRONG)?;
            let day = u8::try_from(day).map_err(|_| WRONG)?;
            return time::Date::from_calendar_date(i32::from(year), month, day)
                .map_err(|_| WRONG.into());
        }
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    if s.len() != 10 {
        return Err(WRONG.into());
    }
    time::Date::parse(s, &format).map_err(|_| WRONG.into())
}

#[cfg(test)]
mod tests {
    /// Dates read digit by digit agree with the general parser of `time`, on every day of a
    /// leap year, a common one and the ends of the range, and on days that do not exist.
    #[test]
    fn a_date_reads_as_the_general_parser_reads_it() {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let mut accepted = 0;
        for year in ["0000", "1900", "2019", "2020", "9999"] {
            for month in 0..=13 {
                for day in 0..=32 {
                    let s = format!("{year}-{month:02}-{day:02}");
                    let general = time::Date::parse(&s, &format).ok();
                    assert_eq!(super::parse_date(&s).ok(), general, "{s}");
                    accepted += usize::from(general.is_some());
                }
            }
        }
        assert_eq!(accepted, 365 * 3 + 366 * 2, "0000 and 2020 are leap years");
        for s in [
            "2020-3-17",
            "2020/03/17",
            "2020-03-17 ",
            "",
            "20200317xx",
            "2020-0a-17",
        ] {
            assert!(super::parse_date(s).is_err(), "{s:?}");
        }
    }
}
