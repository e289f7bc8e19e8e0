//! Identifiers: skus, party and location codes, lot numbers, document ids, BOM versions.
//!
//! DESIGN section 2: 1 to 64 characters of letters, digits, `.`, `_` and `-`, case-sensitive.
//! Each kind is its own newtype so that a lot number cannot be passed where a sku is meant.

use std::fmt;

/// Longest identifier accepted.
pub const IDENT_MAX_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {IDENT_MAX_LEN} characters")]
    TooLong,
    #[error("may hold only letters, digits, '.', '_' and '-' (found {0:?})")]
    BadCharacter(char),
}

/// Checks the identifier grammar shared by every kind.
pub fn check_ident(s: &str) -> Result<(), IdentError> {
    if s.is_empty() {
        return Err(IdentError::Empty);
    }
    if s.len() > IDENT_MAX_LEN {
        return Err(IdentError::TooLong);
    }
    match s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(IdentError::BadCharacter(c)),
        None => Ok(()),
    }
}

macro_rules! ident {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, IdentError> {
                check_ident(s)?;
                Ok(Self(s.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
    };
}

ident!(
    /// An item's stock-keeping unit code.
    Sku
);
ident!(
    /// A party's code (supplier, donor, hospital, community, ...).
    PartyCode
);
ident!(
    /// A stock location's code.
    LocationCode
);
ident!(
    /// A lot number, unique across the ledger.
    LotNo
);
ident!(
    /// A document's id (purchase, run, shipment, ...), unique within its namespace.
    DocId
);
ident!(
    /// The version label of a bill of materials (`2020-02`), unique per product.
    BomVersion
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_the_grammar() {
        assert!(Sku::parse("PC-SHEET_2.0").is_ok());
        assert_eq!(Sku::parse(""), Err(IdentError::Empty));
        assert_eq!(Sku::parse(&"a".repeat(65)), Err(IdentError::TooLong));
        assert_eq!(Sku::parse("a b"), Err(IdentError::BadCharacter(' ')));
        assert_eq!(Sku::parse("口罩"), Err(IdentError::BadCharacter('口')));
        assert_ne!(Sku::parse("abc").unwrap(), Sku::parse("ABC").unwrap());
    }
}
