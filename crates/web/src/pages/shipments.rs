//! What batches and donations share: one shipment's page (status, lines per destination and
//! lot, acknowledgements, entries), the status badge, and `/shipments/{id}`, which sends the
//! journal's links to the batch or donation page.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use maud::{html, Markup};
use service::auth::Permission;
use service::dto::{AcknowledgementView, EntryView, ShipmentLineView, ShipmentView};
use service::Service;
use store::PAGE_MAX;

use crate::components::{code, empty, hash_short, notice, num, page_head};
use crate::i18n::{Lang, Msg};
use crate::layout::{self, Nav};
use crate::pages::donations::DonationRow;
use crate::pages::errors::{OrPage, PageResult};
use crate::pages::lookups;
use crate::session::Ctx;

/// The page of a shipment of either kind.
pub fn href(kind: &str, id: &str) -> String {
    let id: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
    match kind {
        "batch" => format!("/batches/{id}"),
        _ => format!("/donations/{id}"),
    }
}

/// `/shipments/{id}`: the journal names shipments without their kind.
pub async fn by_id(State(s): State<Service>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let v = s.shipment(&id, None).await.or_page(&ctx)?;
    Ok(Redirect::to(&href(&v.kind, &v.shipment_id)).into_response())
}

/// A shipment's status in words, coloured: open (warn), acknowledged (ok), closed.
pub fn status_badge(lang: Lang, status: &str) -> Markup {
    let (class, m) = match status {
        "dispatched" => ("warn", Msg::ShipmentDispatched),
        "partly-acknowledged" => ("warn", Msg::ShipmentPartly),
        "acknowledged" => ("ok", Msg::ShipmentAcknowledged),
        "closed" => ("bad", Msg::ShipmentClosed),
        other => return html! { span.badge data-status=(other) { (other) } },
    };
    html! { span class=(format!("badge {class}")) data-status=(status) { (lang.t(m)) } }
}

/// Whether a quantity the ledger wrote (`0`, `0.000`) is zero.
pub fn is_zero(q: &str) -> bool {
    q.parse::<rust_decimal::Decimal>()
        .is_ok_and(|d| d.is_zero())
}

/// Whether a shipment still takes acknowledgements.
pub fn is_open(v: &ShipmentView) -> bool {
    matches!(v.status.as_str(), "dispatched" | "partly-acknowledged")
}

/// The lines of a shipment, each destination's together, in the order they were dispatched.
pub fn by_destination(lines: &[ShipmentLineView]) -> Vec<(&str, Vec<&ShipmentLineView>)> {
    let mut out: Vec<(&str, Vec<&ShipmentLineView>)> = Vec::new();
    for l in lines {
        match out.iter_mut().find(|(d, _)| *d == l.destination) {
            Some((_, v)) => v.push(l),
            None => out.push((l.destination.as_str(), vec![l])),
        }
    }
    out
}

/// Every acknowledgement of a shipment, oldest first.
pub async fn acknowledgements(s: &Service, id: &str) -> service::Result<Vec<AcknowledgementView>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s
            .acknowledgements(id, after.as_deref(), Some(PAGE_MAX))
            .await?;
        for v in page.items {
            match serde_json::from_str(v.as_str()) {
                Ok(a) => out.push(a),
                Err(e) => tracing::error!(error = %e, "a stored acknowledgement does not read"),
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// The lines table of a shipment: per destination and lot, what was dispatched and what
/// became of it.
pub fn lines_table(
    ctx: &Ctx,
    v: &ShipmentView,
    items: &HashMap<String, (String, String)>,
    parties: &HashMap<String, String>,
) -> Markup {
    let lang = ctx.lang;
    html! {
        div.table-wrap { table #lines {
            thead { tr {
                th { (ctx.t(Msg::Destination)) }
                th { (ctx.t(Msg::Item)) }
                th { (ctx.t(Msg::Lot)) }
                th.num { (ctx.t(Msg::Dispatched)) }
                th.num { (ctx.t(Msg::Acknowledged)) }
                th.num { (ctx.t(Msg::Damaged)) }
                th.num { (ctx.t(Msg::Short)) }
                th.num { (ctx.t(Msg::Outstanding)) }
                th { (ctx.t(Msg::Unit)) }
                th.num { (ctx.t(Msg::LedgerCost)) }
            } }
            tbody {
                @for (dest, lines) in by_destination(&v.lines) {
                    @for (i, l) in lines.iter().enumerate() {
                        tr data-destination=(dest) data-lot=(l.lot) {
                            td { @if i == 0 { (code(dest)) @if let Some(n) = parties.get(dest) { " " span.muted { (n) } } } }
                            td { (code(&l.sku)) @if let Some((n, _)) = items.get(&l.sku) { " " span.muted { (n) } } }
                            td { (code(&l.lot)) }
                            (num(lang, &l.dispatched))
                            (num(lang, &l.acknowledged))
                            (num(lang, &l.damaged))
                            (num(lang, &l.short))
                            (num(lang, &l.outstanding))
                            td { @if let Some((_, u)) = items.get(&l.sku) { (u) } }
                            (num(lang, &l.dispatched_value))
                        }
                    }
                }
            }
        } }
    }
}

/// The acknowledgements of a shipment, line by line, with who recorded each.
fn acks_table(ctx: &Ctx, acks: &[AcknowledgementView], actors: &HashMap<u64, String>) -> Markup {
    let lang = ctx.lang;
    html! {
        @if acks.is_empty() {
            (empty(ctx.t(Msg::NoAcknowledgements)))
        } @else {
            div.table-wrap { table #acknowledgements {
                thead { tr {
                    th { (ctx.t(Msg::Date)) }
                    th { (ctx.t(Msg::AcknowledgementId)) }
                    th { (ctx.t(Msg::Destination)) }
                    th { (ctx.t(Msg::Sku)) }
                    th { (ctx.t(Msg::Lot)) }
                    th.num { (ctx.t(Msg::Received)) }
                    th.num { (ctx.t(Msg::Damaged)) }
                    th { (ctx.t(Msg::Note)) }
                    th { (ctx.t(Msg::Actor)) }
                    th.num { (ctx.t(Msg::Entry)) }
                } }
                tbody {
                    @for a in acks {
                        @for (i, m) in a.moved.iter().enumerate() {
                            tr data-ack=(a.acknowledgement_id) {
                                td { @if i == 0 { (lang.date(&a.date)) } }
                                td { @if i == 0 { (code(&a.acknowledgement_id)) } }
                                td { (code(&m.destination)) }
                                td { (code(&m.sku)) }
                                td { (code(&m.lot)) }
                                (num(lang, &m.received))
                                (num(lang, &m.damaged))
                                td { @if let Some(l) = a.lines.get(m.line) { (l.note) } }
                                td.actor { @if i == 0 { @if let Some(who) = actors.get(&a.entry_seq) { (who) } } }
                                td.num { @if i == 0 { a href=(format!("/journal/{}", a.entry_seq)) { (a.entry_seq) } } }
                            }
                        }
                    }
                }
            } }
        }
    }
}

/// The entries a shipment made: its dispatch, each acknowledgement, its closing.
fn entries_table(ctx: &Ctx, entries: &[EntryView]) -> Markup {
    let lang = ctx.lang;
    html! {
        div.table-wrap { table #entries {
            thead { tr {
                th.num { (ctx.t(Msg::Seq)) }
                th { (ctx.t(Msg::Date)) }
                th { (ctx.t(Msg::Kind)) }
                th { (ctx.t(Msg::Actor)) }
                th { (ctx.t(Msg::Memo)) }
                th { (ctx.t(Msg::Hash)) }
            } }
            tbody {
                @for e in entries {
                    tr data-seq=(e.seq) {
                        td.num { a href=(format!("/journal/{}", e.seq)) { (e.seq) } }
                        td { (lang.date(&e.date)) }
                        td { (lang.kind(&e.kind)) }
                        td { (e.actor) }
                        td { (e.memo) }
                        td { (hash_short(&e.hash)) }
                    }
                }
            }
        } }
    }
}

/// The facts of a shipment at the top of its page.
fn facts(
    ctx: &Ctx,
    v: &ShipmentView,
    base: &str,
    parties: &HashMap<String, String>,
    flag: Option<&DonationRow>,
) -> Markup {
    let lang = ctx.lang;
    html! {
        dl.facts {
            div { dt { (ctx.t(Msg::Status)) } dd #status { (status_badge(lang, &v.status)) } }
            div { dt { (ctx.t(Msg::Date)) } dd { (lang.date(&v.date)) } }
            div { dt { (ctx.t(Msg::FromLocation)) } dd { (code(&v.from_location)) } }
            @if let Some(r) = &v.recipient {
                div { dt { (ctx.t(Msg::Recipient)) } dd { (code(r)) @if let Some(n) = parties.get(r) { " " span.muted { (n) } } } }
            }
            @if let Some(c) = &v.country {
                div { dt { (ctx.t(Msg::Country)) } dd { (code(c)) } }
            }
            @if let (Some(d), Some(c)) = (&v.declared_value, &v.currency) {
                div { dt { (ctx.t(Msg::Declared)) } dd.amount { (lang.number(d)) " " (c) } }
            }
            @if let Some(fx) = &v.fx_rate {
                div { dt { (ctx.t(Msg::FxRate)) } dd { (lang.number(fx)) } }
            }
            @if let Some(d) = &v.declared_value_base {
                div { dt { (ctx.t(Msg::DeclaredBase)) } dd.amount #declared-base { (lang.number(d)) " " (base) } }
            }
            div { dt { (ctx.t(Msg::LedgerCost)) } dd.amount #ledger-cost { (lang.number(&v.dispatched_value)) " " (base) } }
            @if let Some(f) = flag {
                div { dt { (ctx.t(Msg::Difference)) } dd #difference {
                    (lang.number(&f.difference))
                    @if let Some(p) = &f.difference_pct { " (" (lang.number(p)) "%)" }
                    " " (crate::pages::dashboard::flag_badge(lang, &f.status))
                } }
            }
            @if let Some(c) = &v.closed_on {
                div { dt { (ctx.t(Msg::ClosedOn)) } dd { (lang.date(c)) @if let Some(r) = &v.close_reason { " — " (r) } } }
            }
        }
    }
}

/// A batch's or a donation's page.
pub async fn detail(s: &Service, ctx: &Ctx, v: ShipmentView) -> PageResult {
    let items = lookups::item_names_and_units(s).await.or_page(ctx)?;
    let parties = lookups::party_names(s).await.or_page(ctx)?;
    let acks = acknowledgements(s, &v.shipment_id).await.or_page(ctx)?;
    let mut seqs = vec![v.dispatch_seq];
    seqs.extend(acks.iter().map(|a| a.entry_seq));
    seqs.extend(v.close_seq);
    let entries = s.entries_of(&seqs).await.or_page(ctx)?;
    let actors: HashMap<u64, String> = entries.iter().map(|e| (e.seq, e.actor.clone())).collect();
    // A donation's flag, as the donations report gives it.
    let flag = if v.kind == "donation" {
        crate::pages::donations::report(s)
            .await
            .or_page(ctx)?
            .0
            .into_iter()
            .find(|r| r.donation_id == v.shipment_id)
    } else {
        None
    };
    let base = s.base_currency();
    let (title_msg, nav, packing, record_perm) = if v.kind == "batch" {
        (
            Msg::BatchTitle,
            Nav::Batches,
            "packing-list",
            Permission::Batches,
        )
    } else {
        (
            Msg::DonationTitle,
            Nav::Donations,
            "packing-list",
            Permission::Donations,
        )
    };
    let title = ctx.lang.tf(title_msg, &[("id", &v.shipment_id)]);
    let page_href = href(&v.kind, &v.shipment_id);
    let ack_href = format!(
        "/record/acknowledgement?shipment={}",
        form_urlencoded::byte_serialize(v.shipment_id.as_bytes()).collect::<String>()
    );
    let actions = html! {
        @if ctx.may(record_perm) {
            a.button.secondary #packing-link href=(format!("{page_href}/{packing}")) { (ctx.t(Msg::PackingList)) }
        }
        @if is_open(&v) && ctx.may(Permission::Acknowledgements) {
            a.button.primary href=(ack_href) { (ctx.t(Msg::RecordAcknowledgement)) }
        }
    };
    let body = html! {
        @if ctx.param("recorded").is_some() { (notice(ctx.t(Msg::ShipmentRecorded))) }
        @if ctx.param("acknowledged").is_some() { (notice(ctx.t(Msg::AcknowledgementRecorded))) }
        (page_head(&title, None, actions))
        (facts(ctx, &v, base, &parties, flag.as_ref()))
        h2 { (ctx.t(Msg::Lines)) }
        (lines_table(ctx, &v, &items, &parties))
        h2 { (ctx.t(Msg::Acknowledgements)) }
        (acks_table(ctx, &acks, &actors))
        h2 { (ctx.t(Msg::Entries)) }
        (entries_table(ctx, &entries))
    };
    Ok(layout::page(ctx, &title, nav, body).into_response())
}
