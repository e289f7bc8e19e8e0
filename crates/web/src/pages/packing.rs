//! Packing lists: one printable sheet per destination of a batch or donation, with its lines
//! and lots, and a QR code and link that let the recipient record what arrived without an
//! account (`pages::recipient`). The link carries a token signed by the server (`link`),
//! naming that shipment and that destination only, valid for `LINK_LIFETIME_DAYS`.
//!
//! Only those who may dispatch the shipment see its packing list: the link is a power to
//! acknowledge, and is handed to the recipient with the goods.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use maud::{html, Markup};
use service::dto::{PartyIn, ShipmentView};
use service::Service;

use crate::components::{code, num};
use crate::i18n::Msg;
use crate::layout::{self, Nav};
use crate::link::{self, Claims, LinkKey, LINK_LIFETIME_DAYS};
use crate::pages::donations::ledger_kind;
use crate::pages::errors::{OrPage, PageResult};
use crate::pages::lookups;
use crate::pages::shipments::{self, is_zero, status_badge};
use crate::session::Ctx;

/// The address the pages are reached at, as the browser asked for them: the recipient's link
/// must lead back here. A proxy in front says `X-Forwarded-Proto: https`.
pub fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .unwrap_or("127.0.0.1:8080");
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    format!("{}://{host}", if https { "https" } else { "http" })
}

pub async fn batch(
    State(s): State<Service>,
    State(key): State<LinkKey>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> PageResult {
    let v = s
        .shipment(&id, Some(ledger_kind::BATCH))
        .await
        .or_page(&ctx)?;
    sheet(&s, &key, &ctx, &headers, v).await
}

pub async fn donation(
    State(s): State<Service>,
    State(key): State<LinkKey>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> PageResult {
    let v = s
        .shipment(&id, Some(ledger_kind::DONATION))
        .await
        .or_page(&ctx)?;
    sheet(&s, &key, &ctx, &headers, v).await
}

async fn sheet(
    s: &Service,
    key: &LinkKey,
    ctx: &Ctx,
    headers: &HeaderMap,
    v: ShipmentView,
) -> PageResult {
    let secret = key.get(s).await.or_page(ctx)?;
    let items = lookups::item_names_and_units(s).await.or_page(ctx)?;
    let parties: HashMap<String, PartyIn> = lookups::all_parties(s)
        .await
        .or_page(ctx)?
        .into_iter()
        .map(|p| (p.code.clone(), p))
        .collect();
    let lang = ctx.lang;
    let now = s.now();
    let expires = now + time::Duration::days(LINK_LIFETIME_DAYS);
    let origin = origin(headers);
    let open = shipments::is_open(&v);
    let kind_msg = if v.kind == "batch" {
        Msg::KindBatch
    } else {
        Msg::KindDonation
    };
    let title = lang.tf(Msg::PackingListTitle, &[("id", &v.shipment_id)]);
    let back = shipments::href(&v.kind, &v.shipment_id);
    let nav = if v.kind == "batch" {
        Nav::Batches
    } else {
        Nav::Donations
    };
    let groups = shipments::by_destination(&v.lines);
    let sheets: Vec<Markup> = groups
        .iter()
        .map(|(dest, lines)| {
            let party = parties.get(*dest);
            let pending = open && lines.iter().any(|l| !is_zero(&l.outstanding));
            let url = pending.then(|| {
                let token = link::sign(
                    secret,
                    &Claims {
                        shipment: v.shipment_id.clone(),
                        destination: (*dest).to_owned(),
                        expires: expires.unix_timestamp(),
                    },
                );
                format!("{origin}{}", link::path(&token))
            });
            html! {
                section.packing-sheet data-destination=(dest) {
                    header.sheet-head {
                        div {
                            p.sheet-kind { (ctx.t(Msg::AppName)) " · " (ctx.t(kind_msg)) }
                            h2 { (ctx.t(Msg::PackingList)) " " (code(&v.shipment_id)) }
                        }
                        (status_badge(lang, &v.status))
                    }
                    dl.facts {
                        div { dt { (ctx.t(Msg::Date)) } dd { (lang.date(&v.date)) } }
                        div { dt { (ctx.t(Msg::FromLocation)) } dd { (code(&v.from_location)) } }
                        div { dt { (ctx.t(Msg::Destination)) } dd {
                            (code(dest))
                            @if let Some(p) = party {
                                " " (p.name)
                                @if let Some(c) = &p.city { ", " (c) }
                                @if let Some(c) = &p.country { " (" (c) ")" }
                            }
                        } }
                        div { dt { (ctx.t(Msg::Lines)) } dd { (lines.len()) } }
                    }
                    table.packing-lines {
                        thead { tr {
                            th.num { "#" }
                            th { (ctx.t(Msg::Sku)) }
                            th { (ctx.t(Msg::Item)) }
                            th { (ctx.t(Msg::Lot)) }
                            th.num { (ctx.t(Msg::Quantity)) }
                            th { (ctx.t(Msg::Unit)) }
                            th.check { (ctx.t(Msg::Received)) }
                            th.check { (ctx.t(Msg::Damaged)) }
                        } }
                        tbody {
                            @for (i, l) in lines.iter().enumerate() {
                                tr data-lot=(l.lot) {
                                    td.num { (i + 1) }
                                    td { (code(&l.sku)) }
                                    td { @if let Some((n, _)) = items.get(&l.sku) { (n) } }
                                    td { (code(&l.lot)) }
                                    (num(lang, &l.dispatched))
                                    td { @if let Some((_, u)) = items.get(&l.sku) { (u) } }
                                    td.check {}
                                    td.check {}
                                }
                            }
                        }
                    }
                    div.sheet-foot {
                        @if let Some(url) = &url {
                            div.qr-box {
                                @if let Some(svg) = crate::qr::svg(url, ctx.t(Msg::QrLabel)) { (svg) }
                            }
                            div.qr-text {
                                p { strong { (ctx.t(Msg::ScanToAcknowledge)) } }
                                p.link { a.recipient-link href=(url) { (url) } }
                                p.hint { (lang.tf(Msg::LinkValidUntil, &[("date", &lang.date(&expires.date().to_string()))])) }
                            }
                        } @else {
                            p.hint.no-link { (ctx.t(Msg::LinkUsedUp)) }
                        }
                        div.signatures {
                            div { span { (ctx.t(Msg::ReceivedBy)) } }
                            div { span { (ctx.t(Msg::Date)) } }
                            div { span { (ctx.t(Msg::Signature)) } }
                        }
                    }
                }
            }
        })
        .collect();
    let body = html! {
        div.page-head.no-print {
            div {
                h1 { (title) }
                p.intro { (ctx.t(Msg::PackingListIntro)) }
            }
            div.actions {
                a.button.secondary href=(back) { "← " (v.shipment_id) }
                button.primary type="button" data-print { (ctx.t(Msg::Print)) }
            }
        }
        @for sh in &sheets { (sh) }
    };
    Ok(layout::page(ctx, &title, nav, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_link_leads_back_to_where_the_page_was_asked_for() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("ppe.example:8080"));
        assert_eq!(origin(&h), "http://ppe.example:8080");
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert_eq!(origin(&h), "https://ppe.example:8080");
        h.insert(header::HOST, HeaderValue::from_static("evil.example/\"><x"));
        assert_eq!(origin(&h), "https://127.0.0.1:8080");
    }
}
