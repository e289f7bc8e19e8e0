//! Purchases: the list, one purchase with its lines, lots and entry, and the form that
//! records one through `Service::record_purchase`, the call behind `POST /api/v1/purchases`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{html, Markup};
use service::auth::Permission;
use service::dto::{DecText, PurchaseIn, PurchaseLineIn, PurchaseView};
use service::{JsonText, Service};

use crate::components::{code, datalist, empty, hash_short, next_link, notice, num, page_head};
use crate::form::{FormData, FormErrors, FormView, Input};
use crate::i18n::Msg;
use crate::layout::{self, csrf_field, Nav};
use crate::pages::errors::{OrPage, PageError, PageResult};
use crate::pages::lookups;
use crate::session::Ctx;

/// Purchases per page of the list.
const PAGE: u32 = 50;
/// The fields of one purchase line, as named in the API's JSON.
const LINE_FIELDS: [&str; 5] = ["sku", "qty", "unit_price", "lot", "expires_on"];

fn view(v: JsonText, ctx: &Ctx) -> Result<PurchaseView, PageError> {
    serde_json::from_str(v.as_str()).map_err(|e| {
        tracing::error!(error = %e, "a stored purchase does not read as a PurchaseView");
        PageError::new(ctx, StatusCode::INTERNAL_SERVER_ERROR, Msg::ErrorTitle, "")
    })
}

pub async fn list(State(s): State<Service>, ctx: Ctx) -> PageResult {
    let after = ctx.param("after");
    let page = s
        .documents("purchase", after.as_deref(), Some(PAGE))
        .await
        .or_page(&ctx)?;
    let purchases = page
        .items
        .into_iter()
        .map(|v| view(v, &ctx))
        .collect::<Result<Vec<_>, _>>()?;
    let lang = ctx.lang;
    let actions = html! {
        @if ctx.may(Permission::Purchases) {
            a.button.primary href="/record/purchase" { "+ " (ctx.t(Msg::NewPurchase)) }
        }
    };
    let body = html! {
        (page_head(ctx.t(Msg::PurchasesTitle), Some(ctx.t(Msg::PurchasesIntro)), actions))
        @if purchases.is_empty() {
            (empty(ctx.t(Msg::PurchasesEmpty)))
        } @else {
            div.table-wrap { table #purchases {
                thead { tr {
                    th { (ctx.t(Msg::PurchaseId)) }
                    th { (ctx.t(Msg::Date)) }
                    th { (ctx.t(Msg::Supplier)) }
                    th { (ctx.t(Msg::Location)) }
                    th.num { (ctx.t(Msg::Lines)) }
                    th.num { (ctx.t(Msg::TotalValue)) " (" (s.base_currency()) ")" }
                    th.num { (ctx.t(Msg::Entry)) }
                } }
                tbody {
                    @for p in &purchases {
                        tr data-id=(p.purchase_id) {
                            td { a href=(href(&p.purchase_id)) { (code(&p.purchase_id)) } }
                            td { (lang.date(&p.date)) }
                            td { (code(&p.supplier)) }
                            td { (code(&p.location)) }
                            (num(lang, &p.lines.len().to_string()))
                            (num(lang, &p.total_value))
                            td.num { a href=(format!("/journal/{}", p.entry_seq)) { (p.entry_seq) } }
                        }
                    }
                }
            } }
            (next_link(ctx.t(Msg::NextPage), "/purchases", page.next.as_deref()))
        }
    };
    Ok(layout::page(&ctx, ctx.t(Msg::PurchasesTitle), Nav::Purchases, body).into_response())
}

fn href(id: &str) -> String {
    crate::pages::document_href("purchase", id).unwrap_or_default()
}

pub async fn detail(State(s): State<Service>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let p = view(
        s.document("purchase", "purchase", &id)
            .await
            .or_page(&ctx)?,
        &ctx,
    )?;
    let entry = s.entry(p.entry_seq).await.or_page(&ctx)?;
    let lang = ctx.lang;
    let base = s.base_currency();
    let title = lang.tf(Msg::PurchaseTitle, &[("id", &p.purchase_id)]);
    let body = html! {
        @if ctx.param("recorded").is_some() { (notice(ctx.t(Msg::PurchaseRecorded))) }
        (page_head(&title, None, html! {}))
        dl.facts {
            div { dt { (ctx.t(Msg::Date)) } dd { (lang.date(&p.date)) } }
            div { dt { (ctx.t(Msg::Supplier)) } dd { (code(&p.supplier)) } }
            div { dt { (ctx.t(Msg::Location)) } dd { (code(&p.location)) } }
            div { dt { (ctx.t(Msg::Currency)) } dd { (code(&p.currency)) } }
            div { dt { (ctx.t(Msg::FxRate)) } dd { (lang.number(&p.fx_rate)) } }
            div { dt { (ctx.t(Msg::TotalValue)) } dd.amount { (lang.number(&p.total_value)) " " (base) } }
            div { dt { (ctx.t(Msg::Entry)) } dd { a href=(format!("/journal/{}", p.entry_seq)) { (p.entry_seq) } } }
            div { dt { (ctx.t(Msg::Actor)) } dd { (entry.actor) } }
        }
        h2 { (ctx.t(Msg::Lines)) }
        div.table-wrap { table #lines {
            thead { tr {
                th { (ctx.t(Msg::Sku)) }
                th.num { (ctx.t(Msg::Quantity)) }
                th.num { (ctx.t(Msg::UnitPrice)) " (" (p.currency) ")" }
                th { (ctx.t(Msg::Lot)) }
                th { (ctx.t(Msg::ExpiresOn)) }
                th.num { (ctx.t(Msg::LineValue)) " (" (base) ")" }
            } }
            tbody {
                @for l in &p.lines {
                    tr {
                        td { (code(&l.sku)) }
                        (num(lang, &l.qty))
                        (num(lang, &l.unit_price))
                        td { (code(&l.lot)) }
                        td { @if let Some(e) = &l.expires_on { (lang.date(e)) } @else { "—" } }
                        (num(lang, &l.value))
                    }
                }
            }
        } }
        h2 { (ctx.t(Msg::Entry)) " " a href=(format!("/journal/{}", entry.seq)) { (entry.seq) } " " (hash_short(&entry.hash)) }
        (crate::pages::journal::postings_table(&ctx, &entry.postings))
    };
    Ok(layout::page(&ctx, &title, Nav::Purchases, body).into_response())
}

/// What the form offers to pick from: suppliers, locations and items, by code with names.
struct Choices {
    suppliers: Vec<(String, String)>,
    locations: Vec<(String, String)>,
    items: Vec<(String, String)>,
}

async fn choices(s: &Service) -> service::Result<Choices> {
    Ok(Choices {
        suppliers: lookups::parties(s, &["supplier"]).await?,
        locations: lookups::locations(s).await?,
        items: lookups::items(s).await?,
    })
}

fn render(ctx: &Ctx, c: &Choices, data: &FormData, errors: &FormErrors, rows: usize) -> Markup {
    let f = FormView { data, errors };
    let t = |m| ctx.t(m);
    let title = t(Msg::NewPurchase);
    let body = html! {
        (page_head(title, Some(t(Msg::NewPurchaseIntro)), html! {}))
        (f.summary(t(Msg::FormRefused)))
        form.document #purchase-form method="post" action="/record/purchase" novalidate {
            (csrf_field(ctx))
            (datalist("dl-suppliers", &c.suppliers))
            (datalist("dl-locations", &c.locations))
            (datalist("dl-items", &c.items))
            div.fields {
                (f.field("purchase_id", t(Msg::PurchaseId), Input::Text(None), None, true))
                (f.field("date", t(Msg::Date), Input::Date, None, true))
                (f.field("supplier", t(Msg::Supplier), Input::Text(Some("dl-suppliers")), None, true))
                (f.field("location", t(Msg::Location), Input::Text(Some("dl-locations")), None, true))
                (f.field("currency", t(Msg::Currency), Input::Text(None), Some(t(Msg::CurrencyHint)), false))
                (f.field("fx_rate", t(Msg::FxRate), Input::Decimal, Some(t(Msg::FxRateHint)), false))
            }
            fieldset.lines {
                legend { (t(Msg::Lines)) }
                @for m in errors.of("lines") {
                    p.field-error data-field="lines" { (m) }
                }
                div.table-wrap { table #purchase-lines {
                    thead { tr {
                        th { (t(Msg::Sku)) }
                        th { (t(Msg::Quantity)) }
                        th { (t(Msg::UnitPrice)) }
                        th { (t(Msg::Lot)) " " span.muted { "(" (t(Msg::Optional)) ")" } }
                        th { (t(Msg::ExpiresOn)) " " span.muted { "(" (t(Msg::Optional)) ")" } }
                    } }
                    tbody {
                        @for i in 0..rows {
                            tr.line data-line=(i) {
                                (f.cell(&format!("lines[{i}].sku"), t(Msg::Sku), Input::Text(Some("dl-items"))))
                                (f.cell(&format!("lines[{i}].qty"), t(Msg::Quantity), Input::Decimal))
                                (f.cell(&format!("lines[{i}].unit_price"), t(Msg::UnitPrice), Input::Decimal))
                                (f.cell(&format!("lines[{i}].lot"), t(Msg::Lot), Input::Text(None)))
                                (f.cell(&format!("lines[{i}].expires_on"), t(Msg::ExpiresOn), Input::Date))
                            }
                        }
                    }
                } }
                p.hint { (t(Msg::LotHint)) }
                // Without script this asks the server for one more row; with it, app.js adds
                // the row in place.
                button.secondary type="submit" name="action" value="add_line" data-add-line="purchase-lines" formnovalidate {
                    "+ " (t(Msg::AddLine))
                }
            }
            div.form-actions {
                button.primary type="submit" name="action" value="record" { (t(Msg::RecordPurchase)) }
            }
        }
    };
    layout::page(ctx, title, Nav::Purchases, body)
}

pub async fn form(State(s): State<Service>, ctx: Ctx) -> PageResult {
    let c = choices(&s).await.or_page(&ctx)?;
    let now = s.now();
    let mut data = FormData::default();
    data.set("purchase_id", &crate::pages::suggest_id("PO", now));
    data.set("date", &now.date().to_string());
    data.set("currency", s.base_currency());
    Ok(render(&ctx, &c, &data, &FormErrors::default(), 1).into_response())
}

/// The purchase a form describes, with the lines left wholly empty dropped, and the form
/// renumbered to match, so that `lines[i]` in a refusal is row `i` on the re-shown form.
fn purchase_of(data: &FormData) -> (PurchaseIn, FormData) {
    let (shown, n) = data.compact_rows("lines", &LINE_FIELDS);
    let lines = (0..n)
        .map(|i| {
            let get = |f: &str| shown.get(&format!("lines[{i}].{f}"));
            let opt = |f: &str| shown.opt(&format!("lines[{i}].{f}"));
            PurchaseLineIn {
                sku: get("sku"),
                qty: DecText(get("qty")),
                unit_price: DecText(get("unit_price")),
                lot: opt("lot"),
                expires_on: opt("expires_on"),
            }
        })
        .collect();
    let input = PurchaseIn {
        purchase_id: shown.get("purchase_id"),
        date: shown.get("date"),
        supplier: shown.get("supplier"),
        location: shown.get("location"),
        currency: shown.opt("currency"),
        fx_rate: shown.opt("fx_rate").map(DecText),
        lines,
    };
    (input, shown)
}

pub async fn submit(State(s): State<Service>, ctx: Ctx, body: Bytes) -> PageResult {
    let data = FormData::parse(&body);
    let c = choices(&s).await.or_page(&ctx)?;
    if data.get("action") == "add_line" {
        let rows = data.rows("lines") + 1;
        return Ok(render(&ctx, &c, &data, &FormErrors::default(), rows).into_response());
    }
    let (input, shown) = purchase_of(&data);
    match s
        .record_purchase(&input, &crate::pages::actor(&ctx), None)
        .await
    {
        Ok(outcome) => {
            let id = outcome.body.to_value()["purchase_id"]
                .as_str()
                .unwrap_or(&input.purchase_id)
                .to_owned();
            Ok(Redirect::to(&format!("{}?recorded=1", href(&id))).into_response())
        }
        Err(e) => {
            let errors = FormErrors::from_service(e);
            let status = errors.status.unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            let rows = input.lines.len().max(1);
            let page = render(&ctx, &c, &shown, &errors, rows);
            Ok((status, page).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_are_dropped_and_the_form_renumbered() {
        let data = FormData::from_pairs(&[
            ("purchase_id", "PO-9"),
            ("date", "2020-02-12"),
            ("supplier", "SUP"),
            ("location", "RAW"),
            ("currency", ""),
            ("fx_rate", ""),
            ("lines[0].sku", ""),
            ("lines[0].qty", ""),
            ("lines[1].sku", "MASK"),
            ("lines[1].qty", "1.5"),
            ("lines[1].unit_price", "2"),
            ("lines[1].lot", ""),
        ]);
        let (input, shown) = purchase_of(&data);
        assert_eq!(input.lines.len(), 1);
        assert_eq!(input.lines[0].sku, "MASK");
        assert_eq!(input.lines[0].qty, DecText("1.5".into()));
        assert_eq!(input.lines[0].lot, None);
        assert_eq!(input.currency, None);
        assert_eq!(input.fx_rate, None);
        assert_eq!(shown.get("lines[0].qty"), "1.5");
        assert_eq!(shown.get("lines[1].qty"), "");
        assert_eq!(shown.rows("lines"), 1);
    }
}
