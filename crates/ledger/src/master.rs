//! Master data: items, parties and locations, each checked on construction.

use std::fmt;
use std::str::FromStr;

use crate::error::Rejection;
use crate::ident::{LocationCode, PartyCode, Sku};
use crate::num::QTY_SCALE;

/// Longest name or note accepted.
pub const NAME_MAX_LEN: usize = 200;
/// Longest unit text accepted (`pcs`, `kg`, `box-of-50`).
pub const UNIT_MAX_LEN: usize = 16;
/// Longest shelf life accepted, in days (100 years).
pub const SHELF_LIFE_MAX_DAYS: u32 = 36_500;

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "must be one of {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// What an item is for.
    ItemKind { Material = "material", Product = "product", Supply = "supply" }
);
text_enum!(
    /// The role a party plays.
    PartyKind {
        Supplier = "supplier",
        Donor = "donor",
        Channel = "channel",
        Manufacturer = "manufacturer",
        Hospital = "hospital",
        Subdistrict = "subdistrict",
        Community = "community",
    }
);

fn check_name(field: &str, name: &str) -> Result<String, Rejection> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(Rejection::invalid(field, "must not be empty"));
    }
    if trimmed.chars().count() > NAME_MAX_LEN {
        return Err(Rejection::invalid(
            field,
            format!("is longer than {NAME_MAX_LEN} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Rejection::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// An item: a material, a product or a supply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Item {
    sku: Sku,
    name: String,
    kind: ItemKind,
    unit: String,
    decimals: u32,
    shelf_life_days: Option<u32>,
}

impl Item {
    pub fn new(
        sku: Sku,
        name: &str,
        kind: ItemKind,
        unit: &str,
        decimals: u32,
        shelf_life_days: Option<u32>,
    ) -> Result<Item, Rejection> {
        let name = check_name("name", name)?;
        if unit.is_empty()
            || unit.len() > UNIT_MAX_LEN
            || !unit
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Rejection::invalid(
                "unit",
                format!("must be 1 to {UNIT_MAX_LEN} letters, digits, '-' or '_'"),
            ));
        }
        if decimals > QTY_SCALE {
            return Err(Rejection::invalid(
                "decimals",
                format!("must be between 0 and {QTY_SCALE}"),
            ));
        }
        if let Some(days) = shelf_life_days {
            if days == 0 || days > SHELF_LIFE_MAX_DAYS {
                return Err(Rejection::invalid(
                    "shelf_life_days",
                    format!("must be between 1 and {SHELF_LIFE_MAX_DAYS}"),
                ));
            }
        }
        Ok(Item {
            sku,
            name,
            kind,
            unit: unit.to_owned(),
            decimals,
            shelf_life_days,
        })
    }
    pub fn sku(&self) -> &Sku {
        &self.sku
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn kind(&self) -> ItemKind {
        self.kind
    }
    pub fn unit(&self) -> &str {
        &self.unit
    }
    pub fn decimals(&self) -> u32 {
        self.decimals
    }
    pub fn shelf_life_days(&self) -> Option<u32> {
        self.shelf_life_days
    }
}

/// A party: someone goods come from or go to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Party {
    code: PartyCode,
    name: String,
    kind: PartyKind,
    country: Option<String>,
    city: Option<String>,
    parent: Option<PartyCode>,
}

impl Party {
    /// Checks a party. `parent_kind` is the kind of the party named as `parent`, looked up by
    /// the caller (`None` when there is no such party).
    pub fn new(
        code: PartyCode,
        name: &str,
        kind: PartyKind,
        country: Option<&str>,
        city: Option<&str>,
        parent: Option<(PartyCode, Option<PartyKind>)>,
    ) -> Result<Party, Rejection> {
        let name = check_name("name", name)?;
        let country = match country {
            Some(c) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) => {
                Some(c.to_owned())
            }
            Some(_) => {
                return Err(Rejection::invalid(
                    "country",
                    "must be an ISO 3166 alpha-2 code such as KR",
                ))
            }
            None if kind == PartyKind::Hospital => {
                return Err(Rejection::invalid("country", "is required for a hospital"))
            }
            None => None,
        };
        let city = match city {
            Some(c) => Some(check_name("city", c)?),
            None if kind == PartyKind::Hospital => {
                return Err(Rejection::invalid("city", "is required for a hospital"))
            }
            None => None,
        };
        let parent = match (kind, parent) {
            (PartyKind::Community, None) => {
                return Err(Rejection::invalid(
                    "parent",
                    "is required for a community (its subdistrict)",
                ))
            }
            (PartyKind::Community, Some((code, found))) => match found {
                None => {
                    return Err(Rejection::UnknownReference {
                        field: "parent".into(),
                        what: "party",
                        value: code.to_string(),
                    })
                }
                Some(PartyKind::Subdistrict) => Some(code),
                Some(other) => {
                    return Err(Rejection::WrongKind {
                        field: "parent".into(),
                        what: "party",
                        value: code.to_string(),
                        found: other.to_string(),
                        expected: PartyKind::Subdistrict.to_string(),
                    })
                }
            },
            (_, Some(_)) => return Err(Rejection::invalid("parent", "is only for communities")),
            (_, None) => None,
        };
        Ok(Party {
            code,
            name,
            kind,
            country,
            city,
            parent,
        })
    }
    pub fn code(&self) -> &PartyCode {
        &self.code
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn kind(&self) -> PartyKind {
        self.kind
    }
    pub fn country(&self) -> Option<&str> {
        self.country.as_deref()
    }
    pub fn city(&self) -> Option<&str> {
        self.city.as_deref()
    }
    pub fn parent(&self) -> Option<&PartyCode> {
        self.parent.as_ref()
    }
}

/// A place where stock is held.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    code: LocationCode,
    name: String,
}

impl Location {
    pub fn new(code: LocationCode, name: &str) -> Result<Location, Rejection> {
        Ok(Location {
            code,
            name: check_name("name", name)?,
        })
    }
    pub fn code(&self) -> &LocationCode {
        &self.code
    }
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pc(s: &str) -> PartyCode {
        PartyCode::parse(s).unwrap()
    }

    #[test]
    fn items_check_their_fields() {
        let sku = Sku::parse("GOG").unwrap();
        assert!(Item::new(
            sku.clone(),
            "Goggles",
            ItemKind::Product,
            "pcs",
            0,
            Some(730)
        )
        .is_ok());
        let e = Item::new(sku.clone(), "Goggles", ItemKind::Product, "pcs", 4, None).unwrap_err();
        assert_eq!(e.field(), Some("decimals"));
        let e = Item::new(sku, " ", ItemKind::Product, "pcs", 0, None).unwrap_err();
        assert_eq!(e.field(), Some("name"));
    }

    #[test]
    fn hospitals_need_country_and_communities_a_subdistrict() {
        let e =
            Party::new(pc("H"), "H", PartyKind::Hospital, None, Some("Daegu"), None).unwrap_err();
        assert_eq!(e.field(), Some("country"));
        let e = Party::new(
            pc("H"),
            "H",
            PartyKind::Hospital,
            Some("kr"),
            Some("Daegu"),
            None,
        )
        .unwrap_err();
        assert_eq!(e.field(), Some("country"));
        let e = Party::new(
            pc("C"),
            "C",
            PartyKind::Community,
            None,
            None,
            Some((pc("X"), Some(PartyKind::Donor))),
        )
        .unwrap_err();
        assert!(matches!(e, Rejection::WrongKind { .. }));
        let c = Party::new(
            pc("C"),
            "C",
            PartyKind::Community,
            None,
            None,
            Some((pc("NW"), Some(PartyKind::Subdistrict))),
        )
        .unwrap();
        assert_eq!(c.parent(), Some(&pc("NW")));
    }
}
