//! Production runs: the list with each run's report (output, unit cost, material variance),
//! one run with the lots it consumed, its report and its entry, and the form that records one
//! through `Service::record_production_run`, the call behind `POST /api/v1/production-runs`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{html, Markup};
use service::auth::Permission;
use service::dto::DecText;
use service::dto_production::{ProductionLineIn, ProductionRunIn, ProductionRunView};
use service::Service;

use crate::components::{code, datalist, empty, hash_short, next_link, notice, num, page_head};
use crate::form::{Column, FormData, FormErrors, FormView, Input, LinesText};
use crate::i18n::{Lang, Msg};
use crate::layout::{self, csrf_field, Nav};
use crate::pages::errors::{OrPage, PageError, PageResult};
use crate::pages::lookups;
use crate::session::Ctx;

/// Runs per page of the list.
const PAGE: u32 = 50;
/// The fields of one material line, as named in the API's JSON.
const LINE_FIELDS: [&str; 3] = ["sku", "lot", "qty"];

fn view(v: serde_json::Value, ctx: &Ctx) -> Result<ProductionRunView, PageError> {
    serde_json::from_value(v).map_err(|e| {
        tracing::error!(error = %e, "a stored run does not read as a ProductionRunView");
        PageError::new(ctx, StatusCode::INTERNAL_SERVER_ERROR, Msg::ErrorTitle, "")
    })
}

pub fn href(id: &str) -> String {
    crate::pages::document_href("production", id).unwrap_or_default()
}

/// A signed variance, coloured when it is not zero.
pub fn variance(lang: Lang, q: &str) -> Markup {
    let zero = q
        .trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.');
    let shown = if zero || q.starts_with('-') {
        lang.number(q)
    } else {
        format!("+{}", lang.number(q))
    };
    html! { span.variance.zero[zero].over[!zero && !q.starts_with('-')].under[q.starts_with('-')] { (shown) } }
}

pub async fn list(State(s): State<Service>, ctx: Ctx) -> PageResult {
    let page = s
        .production_runs(ctx.param("after").as_deref(), Some(PAGE))
        .await
        .or_page(&ctx)?;
    let runs = page
        .items
        .into_iter()
        .map(|v| view(v, &ctx))
        .collect::<Result<Vec<_>, _>>()?;
    let lang = ctx.lang;
    let base = s.base_currency();
    let actions = html! {
        @if ctx.may(Permission::Production) {
            a.button.primary href="/record/production-run" { "+ " (ctx.t(Msg::NewRun)) }
        }
    };
    let body = html! {
        (page_head(ctx.t(Msg::RunsTitle), Some(ctx.t(Msg::RunsIntro)), actions))
        @if runs.is_empty() {
            (empty(ctx.t(Msg::ProductionEmpty)))
        } @else {
            div.table-wrap { table #runs {
                thead { tr {
                    th { (ctx.t(Msg::Run)) }
                    th { (ctx.t(Msg::Date)) }
                    th { (ctx.t(Msg::Product)) }
                    th { (ctx.t(Msg::OutputLot)) }
                    th.num { (ctx.t(Msg::GoodQty)) }
                    th.num { (ctx.t(Msg::ScrapQty)) }
                    th.num { (ctx.t(Msg::TotalCost)) " (" (base) ")" }
                    th.num { (ctx.t(Msg::UnitCost)) }
                    th { (ctx.t(Msg::Variance)) }
                    th { (ctx.t(Msg::Status)) }
                } }
                tbody {
                    @for r in &runs {
                        tr data-id=(r.run_id) {
                            td { a href=(href(&r.run_id)) { (code(&r.run_id)) } }
                            td { (lang.date(&r.date)) }
                            td { (code(&r.product_sku)) " " span.muted { (r.bom_version) } }
                            td { (code(&r.output_lot)) }
                            (num(lang, &r.good_qty))
                            (num(lang, &r.scrap_qty))
                            (num(lang, &r.report.total_cost))
                            (num(lang, &r.report.unit_cost))
                            td { @for m in &r.report.materials {
                                span.material { (code(&m.material_sku)) " " (variance(lang, &m.variance_qty)) } " "
                            } }
                            td { @if let Some(by) = r.report.reversed_by {
                                a.badge.bad href=(format!("/journal/{by}")) { (ctx.t(Msg::Reversed)) }
                            } @else { span.badge.ok { (ctx.t(Msg::Posted)) } } }
                        }
                    }
                }
            } }
            (next_link(ctx.t(Msg::NextPage), "/runs", page.next.as_deref()))
        }
    };
    Ok(layout::page(&ctx, ctx.t(Msg::RunsTitle), Nav::Runs, body).into_response())
}

pub async fn detail(State(s): State<Service>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let r = view(s.production_run(&id).await.or_page(&ctx)?, &ctx)?;
    let entry = s.entry(r.entry_seq).await.or_page(&ctx)?;
    let lang = ctx.lang;
    let base = s.base_currency();
    let rep = &r.report;
    let title = lang.tf(Msg::RunTitle, &[("id", &r.run_id)]);
    let body = html! {
        @if ctx.param("recorded").is_some() { (notice(ctx.t(Msg::RunRecorded))) }
        (page_head(&title, None, html! {}))
        dl.facts {
            div { dt { (ctx.t(Msg::Date)) } dd { (lang.date(&r.date)) } }
            div { dt { (ctx.t(Msg::Product)) } dd { (code(&r.product_sku)) } }
            div { dt { (ctx.t(Msg::BomVersion)) } dd { (code(&r.bom_version)) } }
            div { dt { (ctx.t(Msg::FromLocation)) } dd { (code(&r.from_location)) } }
            div { dt { (ctx.t(Msg::ToLocation)) } dd { (code(&r.to_location)) } }
            div { dt { (ctx.t(Msg::OutputLot)) } dd { a href=(crate::pages::trace::href(&r.output_lot, service::trace::Direction::Forward)) { (code(&r.output_lot)) } } }
            div { dt { (ctx.t(Msg::ExpiresOn)) } dd { @if let Some(e) = &r.expires_on { (lang.date(e)) } @else { "—" } } }
            div { dt { (ctx.t(Msg::GoodQty)) } dd { (lang.number(&r.good_qty)) } }
            div { dt { (ctx.t(Msg::ScrapQty)) } dd { (lang.number(&r.scrap_qty)) } }
            div { dt { (ctx.t(Msg::Actor)) } dd { (entry.actor) } }
            @if let Some(by) = rep.reversed_by {
                div { dt { (ctx.t(Msg::Status)) } dd { a.badge.bad href=(format!("/journal/{by}")) { (ctx.t(Msg::Reversed)) } } }
            }
        }
        h2 { (ctx.t(Msg::RunReport)) }
        dl.facts #report {
            div { dt { (ctx.t(Msg::MaterialCost)) } dd.amount { (lang.number(&rep.material_cost)) " " (base) } }
            div { dt { (ctx.t(Msg::LaborCost)) } dd.amount { (lang.number(&rep.labor_cost)) " " (base) } }
            div { dt { (ctx.t(Msg::OverheadCost)) } dd.amount { (lang.number(&rep.overhead_cost)) " " (base) } }
            div { dt { (ctx.t(Msg::TotalCost)) } dd.amount #total-cost { (lang.number(&rep.total_cost)) " " (base) } }
            div { dt { (ctx.t(Msg::UnitCost)) } dd.amount #unit-cost { (lang.number(&rep.unit_cost)) " " (base) } }
        }
        div.table-wrap { table #materials {
            thead { tr {
                th { (ctx.t(Msg::Material)) }
                th.num { (ctx.t(Msg::StandardQty)) }
                th.num { (ctx.t(Msg::ActualQty)) }
                th.num { (ctx.t(Msg::Variance)) }
                th.num { (ctx.t(Msg::ActualCost)) " (" (base) ")" }
            } }
            tbody {
                @for m in &rep.materials {
                    tr data-sku=(m.material_sku) {
                        td { (code(&m.material_sku)) }
                        (num(lang, &m.standard_qty))
                        (num(lang, &m.actual_qty))
                        td.num { (variance(lang, &m.variance_qty)) }
                        (num(lang, &m.actual_cost))
                    }
                }
            }
        } }
        h2 { (ctx.t(Msg::ConsumedLots)) }
        div.table-wrap { table #consumed {
            thead { tr {
                th { (ctx.t(Msg::Sku)) }
                th { (ctx.t(Msg::Lot)) }
                th.num { (ctx.t(Msg::Quantity)) }
                th.num { (ctx.t(Msg::Value)) " (" (base) ")" }
            } }
            tbody {
                @for c in &r.consumed {
                    tr data-lot=(c.lot) {
                        td { (code(&c.sku)) }
                        td { a href=(crate::pages::trace::href(&c.lot, service::trace::Direction::Backward)) { (code(&c.lot)) } }
                        (num(lang, &c.qty))
                        (num(lang, &c.value))
                    }
                }
            }
        } }
        h2 { (ctx.t(Msg::Entry)) " " a href=(format!("/journal/{}", entry.seq)) { (entry.seq) } " " (hash_short(&entry.hash)) }
        (crate::pages::journal::postings_table(&ctx, &entry.postings))
    };
    Ok(layout::page(&ctx, &title, Nav::Runs, body).into_response())
}

struct Choices {
    products: Vec<(String, String)>,
    boms: Vec<(String, String)>,
    locations: Vec<(String, String)>,
    items: Vec<(String, String)>,
}

async fn choices(s: &Service) -> service::Result<Choices> {
    let mut boms = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.boms(after.as_deref(), Some(store::PAGE_MAX)).await?;
        boms.extend(page.items.into_iter().map(|b| (b.version, b.product_sku)));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    boms.sort();
    boms.dedup_by(|a, b| a.0 == b.0);
    let items = lookups::items(s).await?;
    let kinds = lookups::item_kinds(s).await?;
    Ok(Choices {
        products: items
            .iter()
            .filter(|(sku, _)| kinds.get(sku).is_some_and(|k| k == "product"))
            .cloned()
            .collect(),
        boms,
        locations: lookups::locations(s).await?,
        items,
    })
}

fn render(ctx: &Ctx, c: &Choices, data: &FormData, errors: &FormErrors, rows: usize) -> Markup {
    let f = FormView { data, errors };
    let t = |m| ctx.t(m);
    let title = t(Msg::NewRun);
    let columns = [
        Column {
            field: "sku",
            label: t(Msg::Material),
            input: Input::Text(Some("dl-items")),
            optional: false,
        },
        Column {
            field: "lot",
            label: t(Msg::Lot),
            input: Input::Text(None),
            optional: true,
        },
        Column {
            field: "qty",
            label: t(Msg::Quantity),
            input: Input::Decimal,
            optional: false,
        },
    ];
    let body = html! {
        (page_head(title, Some(t(Msg::NewRunIntro)), html! {}))
        (f.summary(t(Msg::FormRefused)))
        form.document #run-form method="post" action="/record/production-run" novalidate {
            (csrf_field(ctx))
            (datalist("dl-products", &c.products))
            (datalist("dl-boms", &c.boms))
            (datalist("dl-locations", &c.locations))
            (datalist("dl-items", &c.items))
            div.fields {
                (f.field("run_id", t(Msg::RunId), Input::Text(None), None, true))
                (f.field("date", t(Msg::Date), Input::Date, None, true))
                (f.field("product_sku", t(Msg::Product), Input::Text(Some("dl-products")), None, true))
                (f.field("bom_version", t(Msg::BomVersion), Input::Text(Some("dl-boms")), None, true))
                (f.field("from_location", t(Msg::FromLocation), Input::Text(Some("dl-locations")), None, true))
                (f.field("to_location", t(Msg::ToLocation), Input::Text(Some("dl-locations")), None, true))
                (f.field("good_qty", t(Msg::GoodQty), Input::Decimal, None, true))
                (f.field("scrap_qty", t(Msg::ScrapQty), Input::Decimal, None, false))
                (f.field("output_lot", t(Msg::OutputLot), Input::Text(None), Some(t(Msg::OutputLotHint)), false))
                (f.field("expires_on", t(Msg::ExpiresOn), Input::Date, Some(t(Msg::RunExpiryHint)), false))
                (f.field("labor_cost", t(Msg::LaborCost), Input::Decimal, Some(t(Msg::InBaseCurrencyHint)), false))
                (f.field("overhead_cost", t(Msg::OverheadCost), Input::Decimal, Some(t(Msg::InBaseCurrencyHint)), false))
            }
            (f.lines_table("run-lines", &columns, rows, LinesText {
                legend: t(Msg::MaterialsConsumed),
                optional: t(Msg::Optional),
                add_line: t(Msg::AddLine),
                hint: Some(t(Msg::RunLinesHint)),
            }))
            div.form-actions {
                button.primary type="submit" name="action" value="record" { (t(Msg::RecordRun)) }
            }
        }
    };
    layout::page(ctx, title, Nav::Runs, body)
}

pub async fn form(State(s): State<Service>, ctx: Ctx) -> PageResult {
    let c = choices(&s).await.or_page(&ctx)?;
    let now = s.now();
    let mut data = FormData::default();
    data.set("run_id", &crate::pages::suggest_id("RUN", now));
    data.set("date", &now.date().to_string());
    Ok(render(&ctx, &c, &data, &FormErrors::default(), 2).into_response())
}

/// The run a form describes, blank lines dropped and the form renumbered to match.
fn run_of(data: &FormData) -> (ProductionRunIn, FormData) {
    let (shown, n) = data.compact_rows("lines", &LINE_FIELDS);
    let lines = (0..n)
        .map(|i| ProductionLineIn {
            sku: shown.get(&format!("lines[{i}].sku")),
            lot: shown.opt(&format!("lines[{i}].lot")),
            qty: DecText(shown.get(&format!("lines[{i}].qty"))),
        })
        .collect();
    let input = ProductionRunIn {
        run_id: shown.get("run_id"),
        date: shown.get("date"),
        product_sku: shown.get("product_sku"),
        bom_version: shown.get("bom_version"),
        from_location: shown.get("from_location"),
        to_location: shown.get("to_location"),
        good_qty: DecText(shown.get("good_qty")),
        scrap_qty: shown.opt("scrap_qty").map(DecText),
        output_lot: shown.opt("output_lot"),
        expires_on: shown.opt("expires_on"),
        labor_cost: shown.opt("labor_cost").map(DecText),
        overhead_cost: shown.opt("overhead_cost").map(DecText),
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
    let (input, shown) = run_of(&data);
    match s
        .record_production_run(&input, &crate::pages::actor(&ctx), None)
        .await
    {
        Ok(outcome) => {
            let id = outcome.body.to_value()["run_id"]
                .as_str()
                .unwrap_or(&input.run_id)
                .to_owned();
            Ok(Redirect::to(&format!("{}?recorded=1", href(&id))).into_response())
        }
        Err(e) => {
            let errors = FormErrors::from_service(e);
            let status = errors.status.unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            let rows = input.lines.len().max(1);
            Ok((status, render(&ctx, &c, &shown, &errors, rows)).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_without_material_lines_consumes_the_standard() {
        let data = FormData::from_pairs(&[
            ("run_id", "RUN-1"),
            ("good_qty", "1950"),
            ("scrap_qty", ""),
            ("labor_cost", "3000"),
            ("lines[0].sku", ""),
            ("lines[0].lot", ""),
            ("lines[0].qty", ""),
        ]);
        let (input, _) = run_of(&data);
        assert!(input.lines.is_empty());
        assert_eq!(input.scrap_qty, None);
        assert_eq!(input.labor_cost, Some(DecText("3000".into())));
    }

    #[test]
    fn variances_carry_their_sign() {
        assert!(variance(Lang::En, "2.000").into_string().contains("+2.000"));
        assert!(variance(Lang::En, "-1.5").into_string().contains(">-1.5<"));
        assert!(variance(Lang::En, "0").into_string().contains("zero"));
    }
}
