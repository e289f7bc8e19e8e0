//! Master data lists: items, parties and locations, paged as the API pages them.

use axum::extract::State;
use axum::response::IntoResponse;
use maud::html;
use service::Service;

use crate::components::{code, empty, next_link, num, page_head};
use crate::i18n::Msg;
use crate::layout::{self, Nav};
use crate::pages::errors::{OrPage, PageResult};
use crate::session::Ctx;

/// Rows per page of a master-data list.
const PAGE: u32 = 100;

pub async fn items(State(s): State<Service>, ctx: Ctx) -> PageResult {
    let page = s
        .items(ctx.param("after").as_deref(), Some(PAGE))
        .await
        .or_page(&ctx)?;
    let lang = ctx.lang;
    let body = html! {
        (page_head(ctx.t(Msg::ItemsTitle), None, html! {}))
        @if page.items.is_empty() { (empty(ctx.t(Msg::NothingYet))) } @else {
            div.table-wrap { table #items {
                thead { tr {
                    th { (ctx.t(Msg::Sku)) } th { (ctx.t(Msg::Name)) } th { (ctx.t(Msg::Kind)) }
                    th { (ctx.t(Msg::Unit)) } th.num { (ctx.t(Msg::Decimals)) } th.num { (ctx.t(Msg::ShelfLifeDays)) }
                } }
                tbody { @for i in &page.items { tr {
                    td { (code(&i.sku)) } td { (i.name) } td { (lang.kind(&i.kind)) } td { (i.unit) }
                    (num(lang, &i.decimals.to_string()))
                    td.num { @if let Some(d) = i.shelf_life_days { (lang.number(&d.to_string())) } @else { "—" } }
                } } }
            } }
            (next_link(ctx.t(Msg::NextPage), "/items", page.next.as_deref()))
        }
    };
    Ok(layout::page(&ctx, ctx.t(Msg::ItemsTitle), Nav::Items, body).into_response())
}

pub async fn parties(State(s): State<Service>, ctx: Ctx) -> PageResult {
    let page = s
        .parties(ctx.param("after").as_deref(), Some(PAGE))
        .await
        .or_page(&ctx)?;
    let lang = ctx.lang;
    let body = html! {
        (page_head(ctx.t(Msg::PartiesTitle), None, html! {}))
        @if page.items.is_empty() { (empty(ctx.t(Msg::NothingYet))) } @else {
            div.table-wrap { table #parties {
                thead { tr {
                    th { (ctx.t(Msg::Code)) } th { (ctx.t(Msg::Name)) } th { (ctx.t(Msg::Kind)) }
                    th { (ctx.t(Msg::Country)) } th { (ctx.t(Msg::City)) } th { (ctx.t(Msg::Parent)) }
                } }
                tbody { @for p in &page.items { tr {
                    td { (code(&p.code)) } td { (p.name) } td { (lang.kind(&p.kind)) }
                    td { @if let Some(c) = &p.country { (code(c)) } }
                    td { @if let Some(c) = &p.city { (c) } }
                    td { @if let Some(c) = &p.parent { (code(c)) } }
                } } }
            } }
            (next_link(ctx.t(Msg::NextPage), "/parties", page.next.as_deref()))
        }
    };
    Ok(layout::page(&ctx, ctx.t(Msg::PartiesTitle), Nav::Parties, body).into_response())
}

pub async fn locations(State(s): State<Service>, ctx: Ctx) -> PageResult {
    let page = s
        .locations(ctx.param("after").as_deref(), Some(PAGE))
        .await
        .or_page(&ctx)?;
    let body = html! {
        (page_head(ctx.t(Msg::LocationsTitle), None, html! {}))
        @if page.items.is_empty() { (empty(ctx.t(Msg::NothingYet))) } @else {
            div.table-wrap { table #locations {
                thead { tr { th { (ctx.t(Msg::Code)) } th { (ctx.t(Msg::Name)) } } }
                tbody { @for l in &page.items { tr { td { (code(&l.code)) } td { (l.name) } } } }
            } }
            (next_link(ctx.t(Msg::NextPage), "/locations", page.next.as_deref()))
        }
    };
    Ok(layout::page(&ctx, ctx.t(Msg::LocationsTitle), Nav::Locations, body).into_response())
}
