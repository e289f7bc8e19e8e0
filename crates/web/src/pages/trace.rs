//! Trace and recall: a lot's way backward (the run that made it, the material lots it
//! consumed, their suppliers or donors) or forward (the runs that used it, their output lots,
//! the shipments that carried them, the recipients) as a readable tree, and the recall view:
//! every recipient that received goods made from the lot. Read through `Service::trace`, the
//! call behind `GET /api/v1/trace/{lot}`.

use axum::extract::State;
use axum::response::IntoResponse;
use maud::{html, Markup};
use service::trace::{Direction, RecallRow, TraceNode};
use service::Service;

use crate::components::{code, empty, num, page_head};
use crate::i18n::{Lang, Msg};
use crate::layout::{self, Nav};
use crate::pages::errors::{OrPage, PageResult};
use crate::session::Ctx;

/// The trace page of a lot in a direction.
pub fn href(lot: &str, direction: Direction) -> String {
    let lot: String = form_urlencoded::byte_serialize(lot.as_bytes()).collect();
    let d = match direction {
        Direction::Backward => "backward",
        Direction::Forward => "forward",
    };
    format!("/trace?lot={lot}&direction={d}")
}

/// Where a step of the tree leads, when the pages have a page for it.
fn node_href(n: &TraceNode, direction: Direction) -> Option<String> {
    let id: String = form_urlencoded::byte_serialize(n.id.as_bytes()).collect();
    match n.kind.as_str() {
        "lot" => Some(href(&n.id, direction)),
        "run" => Some(format!("/runs/{id}")),
        "purchase" => Some(format!("/purchases/{id}")),
        "shipment" => Some(format!("/shipments/{id}")),
        _ => None,
    }
}

fn node(lang: Lang, n: &TraceNode, direction: Direction) -> Markup {
    html! {
        li data-kind=(n.kind) data-id=(n.id) {
            span.node {
                span class=(format!("badge kind-{}", n.kind)) { (lang.kind(&n.kind)) }
                " "
                @match node_href(n, direction) {
                    Some(h) => a href=(h) { (code(&n.id)) },
                    None => (code(&n.id)),
                }
                @if let Some(s) = &n.sku { " " span.muted { (s) } }
                @if let Some(q) = &n.quantity { " " strong.qty { (lang.number(q)) } }
                @if let Some(d) = &n.date { " " span.muted { (lang.date(d)) } }
                @if let Some(d) = &n.detail { " — " span.detail { (d) } }
            }
            @if !n.children.is_empty() {
                ul { @for c in &n.children { (node(lang, c, direction)) } }
            }
        }
    }
}

fn recall_table(ctx: &Ctx, rows: &[RecallRow]) -> Markup {
    let lang = ctx.lang;
    html! {
        @if rows.is_empty() {
            (empty(ctx.t(Msg::RecallEmpty)))
        } @else {
            div.table-wrap { table #recall {
                thead { tr {
                    th { (ctx.t(Msg::Recipient)) }
                    th { (ctx.t(Msg::Kind)) }
                    th { (ctx.t(Msg::Country)) }
                    th { (ctx.t(Msg::City)) }
                    th { (ctx.t(Msg::Shipment)) }
                    th { (ctx.t(Msg::Date)) }
                    th { (ctx.t(Msg::Sku)) }
                    th { (ctx.t(Msg::Lot)) }
                    th.num { (ctx.t(Msg::Quantity)) }
                } }
                tbody {
                    @for r in rows {
                        tr data-recipient=(r.recipient) {
                            td { (code(&r.recipient)) " " span.muted { (r.name) } }
                            td { (lang.kind(&r.party_kind)) }
                            td { @if let Some(c) = &r.country { (code(c)) } }
                            td { @if let Some(c) = &r.city { (c) } }
                            td { a href=(format!("/shipments/{}", form_urlencoded::byte_serialize(r.shipment_id.as_bytes()).collect::<String>())) { (code(&r.shipment_id)) } }
                            td { (lang.date(&r.date)) }
                            td { (code(&r.sku)) }
                            td { (code(&r.lot)) }
                            (num(lang, &r.quantity))
                        }
                    }
                }
            } }
        }
    }
}

pub async fn show(State(s): State<Service>, ctx: Ctx) -> PageResult {
    let lot = ctx.param("lot").unwrap_or_default().trim().to_owned();
    let direction = match ctx.param("direction").as_deref() {
        Some("forward") => Direction::Forward,
        _ => Direction::Backward,
    };
    let lang = ctx.lang;
    let title = ctx.t(Msg::TraceTitle);
    let search = html! {
        form.document.trace-form method="get" action="/trace" {
            div.fields {
                div.field {
                    label for="f-lot" { (ctx.t(Msg::Lot)) }
                    input #f-lot type="text" name="lot" value=(lot) required autocomplete="off";
                }
            }
            div.form-actions {
                button.primary type="submit" name="direction" value="backward" { "← " (ctx.t(Msg::TraceBackward)) }
                button.primary type="submit" name="direction" value="forward" { (ctx.t(Msg::TraceForward)) " →" }
            }
        }
    };
    let result = if lot.is_empty() {
        html! {}
    } else {
        let t = s.trace(&lot, direction).await.or_page(&ctx)?;
        let (here, other, other_dir) = match direction {
            Direction::Backward => (Msg::TraceBackward, Msg::TraceForward, Direction::Forward),
            Direction::Forward => (Msg::TraceForward, Msg::TraceBackward, Direction::Backward),
        };
        html! {
            h2 #trace-head {
                (ctx.t(here)) ": " (code(&t.lot)) " " span.muted { (t.sku) }
                " " a.button.secondary href=(href(&t.lot, other_dir)) { (ctx.t(other)) }
            }
            ul.tree #trace { (node(lang, &t.tree, direction)) }
            @if direction == Direction::Forward {
                h2 { (ctx.t(Msg::RecallTitle)) }
                p.intro { (ctx.t(Msg::RecallIntro)) }
                (recall_table(&ctx, &t.recall))
            }
        }
    };
    let body = html! {
        (page_head(title, Some(ctx.t(Msg::TraceIntro)), html! {}))
        (search)
        (result)
    };
    Ok(layout::page(&ctx, title, Nav::Trace, body).into_response())
}
