//! Accounts: where a posting moves goods and value to or from (DESIGN section 2).

use std::fmt;

use crate::ident::{DocId, LocationCode, PartyCode};

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    /// Goods on hand at a location. Never negative per (item, lot).
    Stock(LocationCode),
    /// Goods dispatched on a shipment and not yet acknowledged. Never negative.
    Transit(DocId),
    /// A production run's transformation record.
    Production(DocId),
    Supplier(PartyCode),
    Donor(PartyCode),
    Recipient(PartyCode),
    /// Labour and overhead absorbed into production.
    Conversion,
    /// Scrap, damage, shortfall and count variance.
    Loss,
}

impl Account {
    /// Whether the balance of this account may never go negative (invariant 2).
    pub fn guarded(&self) -> bool {
        matches!(self, Account::Stock(_) | Account::Transit(_))
    }

    /// Parses the written form (`stock:RAW`, `recipient:KR-DSMC`, `loss`).
    pub fn parse(s: &str) -> Option<Account> {
        if s == "conversion" {
            return Some(Account::Conversion);
        }
        if s == "loss" {
            return Some(Account::Loss);
        }
        let (kind, code) = s.split_once(':')?;
        Some(match kind {
            "stock" => Account::Stock(LocationCode::parse(code).ok()?),
            "transit" => Account::Transit(DocId::parse(code).ok()?),
            "production" => Account::Production(DocId::parse(code).ok()?),
            "supplier" => Account::Supplier(PartyCode::parse(code).ok()?),
            "donor" => Account::Donor(PartyCode::parse(code).ok()?),
            "recipient" => Account::Recipient(PartyCode::parse(code).ok()?),
            _ => return None,
        })
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::Stock(c) => write!(f, "stock:{c}"),
            Account::Transit(c) => write!(f, "transit:{c}"),
            Account::Production(c) => write!(f, "production:{c}"),
            Account::Supplier(c) => write!(f, "supplier:{c}"),
            Account::Donor(c) => write!(f, "donor:{c}"),
            Account::Recipient(c) => write!(f, "recipient:{c}"),
            Account::Conversion => f.write_str("conversion"),
            Account::Loss => f.write_str("loss"),
        }
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl serde::Serialize for Account {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_round_trip_through_text() {
        for s in [
            "stock:RAW",
            "transit:DON-1",
            "production:RUN-1",
            "supplier:S",
            "donor:D",
            "recipient:KR-DSMC",
            "conversion",
            "loss",
        ] {
            assert_eq!(Account::parse(s).unwrap().to_string(), s);
        }
        assert!(Account::parse("stock:").is_none());
        assert!(Account::parse("cash:X").is_none());
        assert!(Account::parse("stock:RAW").unwrap().guarded());
        assert!(!Account::parse("loss").unwrap().guarded());
    }
}
