//! The journal (paged, newest page first), one entry with its postings, and verify with the
//! head hash.

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use maud::{html, Markup};
use service::dto::PostingView;
use service::Service;

use crate::components::{code, empty, hash_short, num, page_head};
use crate::i18n::Msg;
use crate::layout::{self, Nav};
use crate::pages::document_href;
use crate::pages::errors::{OrPage, PageError, PageResult};
use crate::session::Ctx;

/// Entries per page of the journal.
const PAGE: u64 = 50;

/// The postings of an entry.
pub fn postings_table(ctx: &Ctx, postings: &[PostingView]) -> Markup {
    let lang = ctx.lang;
    html! {
        div.table-wrap { table.postings {
            thead { tr {
                th { (ctx.t(Msg::Account)) }
                th { (ctx.t(Msg::Sku)) }
                th { (ctx.t(Msg::Lot)) }
                th.num { (ctx.t(Msg::Quantity)) }
                th.num { (ctx.t(Msg::Value)) }
            } }
            tbody {
                @for p in postings {
                    tr.neg[p.quantity.starts_with('-') || p.value.starts_with('-')] {
                        td { (code(&p.account)) }
                        td { (code(&p.sku)) }
                        td { (code(&p.lot)) }
                        (num(lang, &p.quantity))
                        (num(lang, &p.value))
                    }
                }
            }
        } }
    }
}

fn document_cell(kind: &str, id: &str) -> Markup {
    html! {
        @match document_href(kind, id) {
            Some(h) => a href=(h) { (code(id)) },
            None => (code(id)),
        }
    }
}

pub async fn list(State(s): State<Service>, ctx: Ctx) -> PageResult {
    let head = s
        .store()
        .head()
        .await
        .map_err(service::ServiceError::from)
        .or_page(&ctx)?
        .seq;
    // Sequence numbers have no gaps, so a page is the entries after a number; without one,
    // the latest page.
    let after = match ctx.param("after") {
        Some(a) => a
            .parse::<u64>()
            .map_err(|_| PageError::not_found(&ctx))?
            .min(head),
        None => head.saturating_sub(PAGE),
    };
    let page = s
        .entries(
            Some(&after.to_string()),
            Some(u32::try_from(PAGE).unwrap_or(50)),
        )
        .await
        .or_page(&ctx)?;
    let lang = ctx.lang;
    let link = |a: u64| format!("/journal?after={a}");
    let pager = html! {
        nav.pager {
            @if after > 0 {
                a href=(link(0)) { "« " (ctx.t(Msg::FirstPage)) }
                a rel="prev" href=(link(after.saturating_sub(PAGE))) { "‹ " (ctx.t(Msg::EarlierPage)) }
            }
            @if after + PAGE < head {
                a rel="next" href=(link(after + PAGE)) { (ctx.t(Msg::LaterPage)) " ›" }
                a href="/journal" { (ctx.t(Msg::LatestPage)) " »" }
            }
        }
    };
    let body = html! {
        (page_head(ctx.t(Msg::JournalTitle), Some(ctx.t(Msg::JournalIntro)), html! {}))
        @if page.items.is_empty() {
            (empty(ctx.t(Msg::JournalEmpty)))
        } @else {
            div.table-wrap { table #journal {
                thead { tr {
                    th.num { (ctx.t(Msg::Seq)) }
                    th { (ctx.t(Msg::Date)) }
                    th { (ctx.t(Msg::Kind)) }
                    th { (ctx.t(Msg::Document)) }
                    th { (ctx.t(Msg::Actor)) }
                    th { (ctx.t(Msg::RecordedAt)) }
                    th { (ctx.t(Msg::Hash)) }
                } }
                tbody {
                    @for e in page.items.iter().rev() {
                        tr data-seq=(e.seq) {
                            td.num { a href=(format!("/journal/{}", e.seq)) { (e.seq) } }
                            td { (lang.date(&e.date)) }
                            td { (lang.kind(&e.kind)) }
                            td { (document_cell(&e.kind, &e.document)) }
                            td { (e.actor) }
                            td { (lang.datetime(&e.recorded_at)) }
                            td { (hash_short(&e.hash)) }
                        }
                    }
                }
            } }
            (pager)
        }
    };
    Ok(layout::page(&ctx, ctx.t(Msg::JournalTitle), Nav::Journal, body).into_response())
}

pub async fn entry(State(s): State<Service>, ctx: Ctx, Path(seq): Path<String>) -> PageResult {
    let seq = seq
        .parse::<u64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| PageError::not_found(&ctx))?;
    let e = s.entry(seq).await.or_page(&ctx)?;
    let lang = ctx.lang;
    let title = lang.tf(Msg::EntryTitle, &[("seq", &e.seq.to_string())]);
    let body = html! {
        (page_head(&title, None, html! {}))
        dl.facts {
            div { dt { (ctx.t(Msg::Date)) } dd { (lang.date(&e.date)) } }
            div { dt { (ctx.t(Msg::Kind)) } dd { (lang.kind(&e.kind)) } }
            div { dt { (ctx.t(Msg::Document)) } dd { (document_cell(&e.kind, &e.document)) } }
            div { dt { (ctx.t(Msg::Actor)) } dd { (e.actor) } }
            div { dt { (ctx.t(Msg::RecordedAt)) } dd { (lang.datetime(&e.recorded_at)) } }
            @if let Some(r) = e.reverses {
                div { dt { (ctx.t(Msg::Reverses)) } dd { a href=(format!("/journal/{r}")) { (r) } } }
            }
            @if !e.memo.is_empty() {
                div { dt { (ctx.t(Msg::Memo)) } dd { (e.memo) } }
            }
        }
        div.hash-full {
            span.label { (ctx.t(Msg::Hash)) }
            code #entry-hash { (e.hash) }
        }
        h2 { (ctx.t(Msg::Postings)) }
        (postings_table(&ctx, &e.postings))
        nav.pager {
            @if e.seq > 1 { a rel="prev" href=(format!("/journal/{}", e.seq - 1)) { "‹ " (e.seq - 1) } }
            a href=(format!("/journal?after={}", (e.seq - 1) / PAGE * PAGE)) { (ctx.t(Msg::JournalTitle)) }
            a rel="next" href=(format!("/journal/{}", e.seq + 1)) { (e.seq + 1) " ›" }
        }
    };
    Ok(layout::page(&ctx, &title, Nav::Journal, body).into_response())
}

pub async fn verify(State(s): State<Service>, ctx: Ctx) -> PageResult {
    let r = s.verify(&|_, _| {}).await.or_page(&ctx)?;
    let lang = ctx.lang;
    let body = html! {
        (page_head(ctx.t(Msg::VerifyTitle), Some(ctx.t(Msg::VerifyIntro)), html! {}))
        div.verdict.ok[r.ok].bad[!r.ok] #verdict data-ok=(r.ok) {
            span.mark aria-hidden="true" { @if r.ok { "✓" } @else { "✗" } }
            span { @if r.ok { (ctx.t(Msg::VerifyOk)) } @else { (ctx.t(Msg::VerifyFailed)) } }
        }
        dl.facts {
            div { dt { (ctx.t(Msg::Entries)) } dd { (lang.number(&r.entries.to_string())) } }
            @if let Some(b) = r.first_bad_seq {
                div { dt { (ctx.t(Msg::FirstBadSeq)) } dd { a href=(format!("/journal/{b}")) { (b) } } }
            }
        }
        div.hash-full {
            span.label { (ctx.t(Msg::HeadHash)) }
            code #head-hash { (r.head_hash) }
        }
        @if !r.problems.is_empty() {
            h2 { (ctx.t(Msg::Problems)) }
            // The problems are the ledger's own words, as `ppe verify` prints them.
            ul.problems { @for p in &r.problems { li { (p) } } }
        }
    };
    Ok(layout::page(&ctx, ctx.t(Msg::VerifyTitle), Nav::Verify, body).into_response())
}
