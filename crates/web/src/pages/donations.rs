//! Donations: the list per country and hospital, from the service's donations report
//! (declared value in the base currency against the ledger cost of what was dispatched,
//! flagged past the tolerance), one donation's page,
//! and the form that records one through `Service::record_donation`, the call behind
//! `POST /api/v1/donations`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{html, Markup};
use serde::Deserialize;
use service::auth::Permission;
use service::dto::{DecText, DonationIn, DonationLineIn, PartyIn};
use service::reports::{ReportName, ReportParams};
use service::Service;

use crate::components::{code, datalist, empty, num, page_head};
use crate::form::{Column, FormData, FormErrors, FormView, Input, LinesText};
use crate::i18n::Msg;
use crate::layout::{self, csrf_field, Nav};
use crate::pages::dashboard::{donations_section, flag_badge, CountryRow};
use crate::pages::errors::{OrPage, PageResult};
use crate::pages::lookups;
use crate::pages::shipments::{self, status_badge};
use crate::session::Ctx;

/// One donation's row of the service's donations report.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DonationRow {
    pub donation_id: String,
    pub date: String,
    pub recipient: String,
    pub country: String,
    pub currency: Option<String>,
    pub declared_in_currency: Option<String>,
    /// In the base currency.
    pub declared_value: String,
    pub ledger_cost: String,
    pub difference: String,
    pub difference_pct: Option<String>,
    /// `ok`, `over` or `under`.
    pub status: String,
    pub shipment_status: String,
}

#[derive(Debug, Clone, Deserialize)]
struct CountryJson {
    country: String,
    declared_value: String,
    ledger_cost: String,
    difference: String,
    difference_pct: Option<String>,
    status: String,
}

#[derive(Debug, Clone, Deserialize)]
struct ReportJson {
    rows: Vec<DonationRow>,
    countries: Vec<CountryJson>,
}

/// The donations report (`GET /api/v1/reports/donations`, at its default tolerance): every
/// donation's declared value in the base currency against the ledger cost of what was
/// dispatched, flagged, and the same per country.
pub async fn report(s: &Service) -> service::Result<(Vec<DonationRow>, Vec<CountryRow>)> {
    let r = s
        .report(ReportName::Donations, &ReportParams::default())
        .await?;
    let parsed: ReportJson = serde_json::from_value(r.json).map_err(|e| {
        service::ServiceError::Store(store::StoreError::Corrupt(format!(
            "the donations report does not read: {e}"
        )))
    })?;
    let countries = parsed
        .countries
        .into_iter()
        .map(|c| CountryRow {
            country: c.country,
            declared_value: c.declared_value,
            ledger_cost: c.ledger_cost,
            difference: c.difference,
            difference_pct: c.difference_pct.unwrap_or_default(),
            status: c.status,
        })
        .collect();
    Ok((parsed.rows, countries))
}

pub async fn list(State(s): State<Service>, ctx: Ctx) -> PageResult {
    let (mut donations, countries) = report(&s).await.or_page(&ctx)?;
    let parties: HashMap<String, PartyIn> = lookups::all_parties(&s)
        .await
        .or_page(&ctx)?
        .into_iter()
        .map(|p| (p.code.clone(), p))
        .collect();
    // Per country, then hospital, then date (the report is in dispatch order).
    donations.sort_by(|a, b| {
        (&a.country, &a.recipient, &a.date).cmp(&(&b.country, &b.recipient, &b.date))
    });
    let lang = ctx.lang;
    let base = s.base_currency();
    let actions = html! {
        @if ctx.may(Permission::Donations) {
            a.button.primary href="/record/donation" { "+ " (ctx.t(Msg::NewDonation)) }
        }
    };
    let body = html! {
        (page_head(ctx.t(Msg::DonationsTitle), Some(ctx.t(Msg::DonationsIntro)), actions))
        @if donations.is_empty() {
            (empty(ctx.t(Msg::DonationsEmpty)))
        } @else {
            (donations_section(lang, &countries, base))
            h2 { (ctx.t(Msg::PerHospital)) }
            div.table-wrap { table #donations-list {
                thead { tr {
                    th { (ctx.t(Msg::Country)) }
                    th { (ctx.t(Msg::Recipient)) }
                    th { (ctx.t(Msg::DonationId)) }
                    th { (ctx.t(Msg::Date)) }
                    th { (ctx.t(Msg::Status)) }
                    th.num { (ctx.t(Msg::Declared)) }
                    th.num { (ctx.t(Msg::DeclaredBase)) " (" (base) ")" }
                    th.num { (ctx.t(Msg::LedgerCost)) }
                    th.num { (ctx.t(Msg::DifferencePct)) }
                    th { (ctx.t(Msg::Flag)) }
                } }
                tbody {
                    @for (i, d) in donations.iter().enumerate() {
                        @let new_country = i == 0 || donations[i - 1].country != d.country;
                        @let new_hospital = new_country || donations[i - 1].recipient != d.recipient;
                        tr data-id=(d.donation_id) data-country=(d.country) {
                            td { @if new_country { (code(&d.country)) } }
                            td { @if new_hospital {
                                (code(&d.recipient))
                                @if let Some(p) = parties.get(&d.recipient) {
                                    " " span.muted { (p.name) @if let Some(city) = &p.city { ", " (city) } }
                                }
                            } }
                            td { a href=(shipments::href("donation", &d.donation_id)) { (code(&d.donation_id)) } }
                            td { (lang.date(&d.date)) }
                            td { (status_badge(lang, &d.shipment_status)) }
                            td.num { @if let (Some(v), Some(c)) = (&d.declared_in_currency, &d.currency) { (lang.number(v)) " " (c) } }
                            (num(lang, &d.declared_value))
                            (num(lang, &d.ledger_cost))
                            td.num { @if let Some(p) = &d.difference_pct { (lang.number(p)) } @else { "—" } }
                            td { (flag_badge(lang, &d.status)) }
                        }
                    }
                }
            } }
        }
    };
    Ok(layout::page(&ctx, ctx.t(Msg::DonationsTitle), Nav::Donations, body).into_response())
}

pub async fn detail(State(s): State<Service>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let v = s
        .shipment(&id, Some(ledger_kind::DONATION))
        .await
        .or_page(&ctx)?;
    shipments::detail(&s, &ctx, v).await
}

/// The kind of a shipment, as the service names it.
pub(crate) mod ledger_kind {
    pub const DONATION: ledger::ShipmentKind = ledger::ShipmentKind::Donation;
    pub const BATCH: ledger::ShipmentKind = ledger::ShipmentKind::Batch;
}

/// The fields of one donation line, as named in the API's JSON.
const LINE_FIELDS: [&str; 3] = ["sku", "qty", "lot"];

struct Choices {
    hospitals: Vec<(String, String)>,
    locations: Vec<(String, String)>,
    items: Vec<(String, String)>,
}

async fn choices(s: &Service) -> service::Result<Choices> {
    Ok(Choices {
        hospitals: lookups::parties(s, &["hospital"]).await?,
        locations: lookups::locations(s).await?,
        items: lookups::items(s).await?,
    })
}

fn render(ctx: &Ctx, c: &Choices, data: &FormData, errors: &FormErrors, rows: usize) -> Markup {
    let f = FormView { data, errors };
    let t = |m| ctx.t(m);
    let title = t(Msg::NewDonation);
    let columns = [
        Column {
            field: "sku",
            label: t(Msg::Sku),
            input: Input::Text(Some("dl-items")),
            optional: false,
        },
        Column {
            field: "qty",
            label: t(Msg::Quantity),
            input: Input::Decimal,
            optional: false,
        },
        Column {
            field: "lot",
            label: t(Msg::Lot),
            input: Input::Text(None),
            optional: true,
        },
    ];
    let body = html! {
        (page_head(title, Some(t(Msg::NewDonationIntro)), html! {}))
        (f.summary(t(Msg::FormRefused)))
        form.document #donation-form method="post" action="/record/donation" novalidate {
            (csrf_field(ctx))
            (datalist("dl-hospitals", &c.hospitals))
            (datalist("dl-locations", &c.locations))
            (datalist("dl-items", &c.items))
            div.fields {
                (f.field("donation_id", t(Msg::DonationId), Input::Text(None), None, true))
                (f.field("date", t(Msg::Date), Input::Date, None, true))
                (f.field("from_location", t(Msg::FromLocation), Input::Text(Some("dl-locations")), None, true))
                (f.field("recipient", t(Msg::Recipient), Input::Text(Some("dl-hospitals")), Some(t(Msg::RecipientHint)), true))
                (f.field("declared_value", t(Msg::DeclaredValue), Input::Decimal, Some(t(Msg::DeclaredValueHint)), true))
                (f.field("currency", t(Msg::Currency), Input::Text(None), Some(t(Msg::CurrencyHint)), false))
                (f.field("fx_rate", t(Msg::FxRate), Input::Decimal, Some(t(Msg::FxRateHint)), false))
            }
            (f.lines_table("donation-lines", &columns, rows, LinesText {
                legend: t(Msg::Lines),
                optional: t(Msg::Optional),
                add_line: t(Msg::AddLine),
                hint: Some(t(Msg::PickLotHint)),
            }))
            div.form-actions {
                button.primary type="submit" name="action" value="record" { (t(Msg::RecordDonation)) }
            }
        }
    };
    layout::page(ctx, title, Nav::Donations, body)
}

pub async fn form(State(s): State<Service>, ctx: Ctx) -> PageResult {
    let c = choices(&s).await.or_page(&ctx)?;
    let now = s.now();
    let mut data = FormData::default();
    data.set("donation_id", &crate::pages::suggest_id("DON", now));
    data.set("date", &now.date().to_string());
    data.set("currency", s.base_currency());
    if let Some(r) = ctx.param("recipient") {
        data.set("recipient", &r);
    }
    Ok(render(&ctx, &c, &data, &FormErrors::default(), 2).into_response())
}

/// The donation a form describes, blank lines dropped and the form renumbered to match.
fn donation_of(data: &FormData) -> (DonationIn, FormData) {
    let (shown, n) = data.compact_rows("lines", &LINE_FIELDS);
    let lines = (0..n)
        .map(|i| {
            let get = |f: &str| shown.get(&format!("lines[{i}].{f}"));
            DonationLineIn {
                sku: get("sku"),
                qty: DecText(get("qty")),
                lot: shown.opt(&format!("lines[{i}].lot")),
            }
        })
        .collect();
    let input = DonationIn {
        donation_id: shown.get("donation_id"),
        date: shown.get("date"),
        from_location: shown.get("from_location"),
        recipient: shown.get("recipient"),
        declared_value: DecText(shown.get("declared_value")),
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
    let (input, shown) = donation_of(&data);
    match s
        .record_donation(&input, &crate::pages::actor(&ctx), None)
        .await
    {
        Ok(outcome) => {
            let id = outcome.body.to_value()["shipment_id"]
                .as_str()
                .unwrap_or(&input.donation_id)
                .to_owned();
            Ok(
                Redirect::to(&format!("{}?recorded=1", shipments::href("donation", &id)))
                    .into_response(),
            )
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
    fn a_report_row_reads() {
        let row: DonationRow = serde_json::from_value(serde_json::json!({
            "donation_id": "D1", "date": "2020-03-10", "recipient": "KR-DSMC", "country": "KR",
            "currency": "KRW", "declared_in_currency": "1000000.0000",
            "declared_value": "5812.3400", "ledger_cost": "5000.0000", "difference": "812.3400",
            "difference_pct": "16.25", "status": "over", "shipment_status": "dispatched",
            "dispatched": [{"sku": "MASK", "qty": "1000"}],
        }))
        .unwrap();
        assert_eq!(row.status, "over");
        assert_eq!(row.difference_pct.as_deref(), Some("16.25"));
    }
}
