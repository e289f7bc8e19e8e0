//! Master data a page needs whole: names for codes, and the choices a form suggests. Read
//! page by page through the same service calls as the API's lists.

use std::collections::HashMap;

use service::Service;
use store::PAGE_MAX;

/// Every item as (sku, name), by sku.
pub async fn items(s: &Service) -> service::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.items(after.as_deref(), Some(PAGE_MAX)).await?;
        out.extend(page.items.into_iter().map(|i| (i.sku, i.name)));
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// Every item's name and unit, by sku.
pub async fn item_names_and_units(
    s: &Service,
) -> service::Result<HashMap<String, (String, String)>> {
    let mut map = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.items(after.as_deref(), Some(PAGE_MAX)).await?;
        for i in page.items {
            map.insert(i.sku, (i.name, i.unit));
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(map),
        }
    }
}

/// Every location as (code, name), by code.
pub async fn locations(s: &Service) -> service::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.locations(after.as_deref(), Some(PAGE_MAX)).await?;
        out.extend(page.items.into_iter().map(|l| (l.code, l.name)));
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// The parties of the given kinds (`supplier`; `subdistrict` and `community` for a batch's
/// destination; `hospital` for a donation's recipient) as (code, name), by code.
pub async fn parties(s: &Service, kinds: &[&str]) -> service::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.parties(after.as_deref(), Some(PAGE_MAX)).await?;
        out.extend(
            page.items
                .into_iter()
                .filter(|p| kinds.contains(&p.kind.as_str()))
                .map(|p| (p.code, p.name)),
        );
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// Every party, by code.
pub async fn all_parties(s: &Service) -> service::Result<Vec<service::dto::PartyIn>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.parties(after.as_deref(), Some(PAGE_MAX)).await?;
        out.extend(page.items);
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// Every party's name, by code.
pub async fn party_names(s: &Service) -> service::Result<HashMap<String, String>> {
    Ok(all_parties(s)
        .await?
        .into_iter()
        .map(|p| (p.code, p.name))
        .collect())
}

/// Every shipment of a kind (`batch`, `donation`) and status (any when `None`), in dispatch
/// order.
pub async fn shipments(
    s: &Service,
    kind: &str,
    status: Option<&str>,
) -> service::Result<Vec<service::dto::ShipmentView>> {
    let query = service::shipment::ShipmentQuery {
        kind: Some(kind.to_owned()),
        status: status.map(str::to_owned),
        destination: None,
    };
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s
            .shipments(&query, after.as_deref(), Some(PAGE_MAX))
            .await?;
        out.extend(page.items);
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// Every item's kind (`material`, `product`, `supply`), by sku.
pub async fn item_kinds(s: &Service) -> service::Result<HashMap<String, String>> {
    let mut map = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.items(after.as_deref(), Some(PAGE_MAX)).await?;
        for i in page.items {
            map.insert(i.sku, i.kind);
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(map),
        }
    }
}
