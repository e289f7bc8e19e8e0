//! Master data: items, parties and locations. Created once; the same body again is a no-op,
//! a different body under the same code is refused.

use ledger::{Item, ItemKind, Location, Party, PartyKind, Rejection};
use store::Inserted;

use crate::dto::{ItemIn, LocationIn, Page, PartyIn};
use crate::error::{Fields, Result, ServiceError};
use crate::views::{item_view, location_view, party_view};
use crate::{page_limit, Service};

/// The answer to a create: the record, and whether this call created it.
#[derive(Debug, Clone, PartialEq)]
pub struct Created<T> {
    pub created: bool,
    pub value: T,
}

fn blank_to_none(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

fn settle<T: PartialEq>(
    what: &'static str,
    id: &str,
    inserted: Inserted<T>,
    wanted: T,
) -> Result<Created<T>> {
    match inserted {
        Inserted::Created => Ok(Created {
            created: true,
            value: wanted,
        }),
        Inserted::Existing(e) if e == wanted => Ok(Created {
            created: false,
            value: e,
        }),
        Inserted::Existing(_) => Err(Rejection::ExistsWithDifferentBody {
            what,
            id: id.to_owned(),
        }
        .into()),
    }
}

impl Service {
    pub fn parse_item(input: &ItemIn) -> Result<Item> {
        let mut f = Fields::default();
        let sku = f.take("sku", ledger::Sku::parse(&input.sku));
        let kind = f.take("kind", input.kind.parse::<ItemKind>());
        f.finish()?;
        Ok(Item::new(
            sku.expect("parsed"),
            &input.name,
            kind.expect("parsed"),
            &input.unit,
            input.decimals,
            input.shelf_life_days,
        )?)
    }

    pub async fn create_item(&self, input: &ItemIn) -> Result<Created<ItemIn>> {
        let item = Self::parse_item(input)?;
        let inserted = self.store().insert_item(&item).await?;
        let inserted = match inserted {
            Inserted::Created => Inserted::Created,
            Inserted::Existing(e) => Inserted::Existing(item_view(&e)),
        };
        settle("item", item.sku().as_str(), inserted, item_view(&item))
    }

    pub async fn item(&self, sku: &str) -> Result<ItemIn> {
        self.store()
            .item(sku)
            .await?
            .map(|i| item_view(&i))
            .ok_or_else(|| {
                Rejection::NotFound {
                    what: "item",
                    id: sku.to_owned(),
                }
                .into()
            })
    }

    pub async fn items(&self, after: Option<&str>, limit: Option<u32>) -> Result<Page<ItemIn>> {
        let limit = page_limit(limit);
        let rows = self.store().items(after, limit).await?;
        let next = (rows.len() == limit as usize)
            .then(|| rows.last().map(|i| i.sku().to_string()))
            .flatten();
        Ok(Page {
            items: rows.iter().map(item_view).collect(),
            next,
        })
    }

    pub async fn parse_party(&self, input: &PartyIn) -> Result<Party> {
        let mut f = Fields::default();
        let code = f.take("code", ledger::PartyCode::parse(&input.code));
        let kind = f.take("kind", input.kind.parse::<PartyKind>());
        let parent = match blank_to_none(&input.parent) {
            None => None,
            Some(p) => f.take("parent", ledger::PartyCode::parse(p)),
        };
        f.finish()?;
        let parent = match parent {
            None => None,
            Some(code) => {
                let kind = self.store().party(code.as_str()).await?.map(|p| p.kind());
                Some((code, kind))
            }
        };
        Ok(Party::new(
            code.expect("parsed"),
            &input.name,
            kind.expect("parsed"),
            blank_to_none(&input.country),
            blank_to_none(&input.city),
            parent,
        )?)
    }

    pub async fn create_party(&self, input: &PartyIn) -> Result<Created<PartyIn>> {
        let party = self.parse_party(input).await?;
        let inserted = match self.store().insert_party(&party).await? {
            Inserted::Created => Inserted::Created,
            Inserted::Existing(e) => Inserted::Existing(party_view(&e)),
        };
        settle("party", party.code().as_str(), inserted, party_view(&party))
    }

    pub async fn party(&self, code: &str) -> Result<PartyIn> {
        self.store()
            .party(code)
            .await?
            .map(|p| party_view(&p))
            .ok_or_else(|| {
                Rejection::NotFound {
                    what: "party",
                    id: code.to_owned(),
                }
                .into()
            })
    }

    pub async fn parties(&self, after: Option<&str>, limit: Option<u32>) -> Result<Page<PartyIn>> {
        let limit = page_limit(limit);
        let rows = self.store().parties(after, limit).await?;
        let next = (rows.len() == limit as usize)
            .then(|| rows.last().map(|p| p.code().to_string()))
            .flatten();
        Ok(Page {
            items: rows.iter().map(party_view).collect(),
            next,
        })
    }

    pub fn parse_location(input: &LocationIn) -> Result<Location> {
        let code =
            ledger::LocationCode::parse(&input.code).map_err(|e| ServiceError::field("code", e))?;
        Ok(Location::new(code, &input.name)?)
    }

    pub async fn create_location(&self, input: &LocationIn) -> Result<Created<LocationIn>> {
        let location = Self::parse_location(input)?;
        let inserted = match self.store().insert_location(&location).await? {
            Inserted::Created => Inserted::Created,
            Inserted::Existing(e) => Inserted::Existing(location_view(&e)),
        };
        settle(
            "location",
            location.code().as_str(),
            inserted,
            location_view(&location),
        )
    }

    pub async fn location(&self, code: &str) -> Result<LocationIn> {
        self.store()
            .location(code)
            .await?
            .map(|l| location_view(&l))
            .ok_or_else(|| {
                Rejection::NotFound {
                    what: "location",
                    id: code.to_owned(),
                }
                .into()
            })
    }

    pub async fn locations(
        &self,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<LocationIn>> {
        let limit = page_limit(limit);
        let rows = self.store().locations(after, limit).await?;
        let next = (rows.len() == limit as usize)
            .then(|| rows.last().map(|l| l.code().to_string()))
            .flatten();
        Ok(Page {
            items: rows.iter().map(location_view).collect(),
            next,
        })
    }
}
