//! Donations: the list per country and hospital (declared value in the base currency against
//! the ledger cost of what was dispatched, flagged past the tolerance), one donation's page,
//! and the form that records one through `Service::record_donation`, the call behind
//! `POST /api/v1/donations`.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{html, Markup};
use rust_decimal::Decimal;
use service::auth::Permission;
use service::dto::{DecText, DonationIn, DonationLineIn, PartyIn, ShipmentView};
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

/// How far declared value may stray from ledger cost, in percent of the cost, before it is
/// flagged (the donations report's default, DESIGN section 4).
pub const TOLERANCE_PCT: i64 = 5;

/// Declared value against ledger cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// declared - cost, 4 decimals.
    pub difference: String,
    /// The difference in percent of the cost, 2 decimals, half-even; none when nothing cost.
    pub pct: Option<String>,
    /// `ok`, `over` or `under`.
    pub status: &'static str,
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap_or(Decimal::ZERO)
}

/// Declared value (base currency) against ledger cost, by the donations report's rule:
/// difference = declared - cost; its percentage of the cost; `over` or `under` past the
/// tolerance. Goods that cost nothing yet declared at a value are `over`.
pub fn flag(declared: &str, cost: &str) -> Flag {
    let (d, c) = (dec(declared), dec(cost));
    let diff = d - c;
    let pct = service::reports::percent(diff, c);
    let tolerance = Decimal::from(TOLERANCE_PCT);
    let status = match pct {
        Some(p) if p > tolerance => "over",
        Some(p) if p < -tolerance => "under",
        Some(_) => "ok",
        None if diff > Decimal::ZERO => "over",
        None => "ok",
    };
    Flag {
        difference: format!("{diff:.4}"),
        pct: pct.map(|p| format!("{p:.2}")),
        status,
    }
}

/// Per country: the donations' declared values and ledger costs summed, and flagged.
pub fn by_country(donations: &[ShipmentView]) -> Vec<CountryRow> {
    let mut sums: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for d in donations {
        let e = sums
            .entry(d.country.clone().unwrap_or_default())
            .or_default();
        e.0 += dec(d.declared_value_base.as_deref().unwrap_or("0"));
        e.1 += dec(&d.dispatched_value);
    }
    sums.into_iter()
        .map(|(country, (declared, cost))| {
            let (declared, cost) = (format!("{declared:.4}"), format!("{cost:.4}"));
            let f = flag(&declared, &cost);
            CountryRow {
                country,
                declared_value: declared,
                ledger_cost: cost,
                difference: f.difference,
                difference_pct: f.pct.unwrap_or_default(),
                status: f.status.to_owned(),
            }
        })
        .collect()
}

pub async fn list(State(s): State<Service>, ctx: Ctx) -> PageResult {
    let mut donations = lookups::shipments(&s, "donation", None)
        .await
        .or_page(&ctx)?;
    let parties: HashMap<String, PartyIn> = lookups::all_parties(&s)
        .await
        .or_page(&ctx)?
        .into_iter()
        .map(|p| (p.code.clone(), p))
        .collect();
    // Per country, then hospital, then date.
    donations.sort_by(|a, b| {
        (&a.country, &a.recipient, &a.date, a.dispatch_seq).cmp(&(
            &b.country,
            &b.recipient,
            &b.date,
            b.dispatch_seq,
        ))
    });
    let lang = ctx.lang;
    let base = s.base_currency();
    let actions = html! {
        @if ctx.may(Permission::Donations) {
            a.button.primary href="/record/donation" { "+ " (ctx.t(Msg::NewDonation)) }
        }
    };
    let countries = by_country(&donations);
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
                        @let declared = d.declared_value_base.as_deref().unwrap_or("0");
                        @let f = flag(declared, &d.dispatched_value);
                        tr data-id=(d.shipment_id) data-country=[d.country.as_deref()] {
                            td { @if new_country { @if let Some(c) = &d.country { (code(c)) } } }
                            td { @if new_hospital { @if let Some(r) = &d.recipient {
                                (code(r))
                                @if let Some(p) = parties.get(r) {
                                    " " span.muted { (p.name) @if let Some(city) = &p.city { ", " (city) } }
                                }
                            } } }
                            td { a href=(shipments::href("donation", &d.shipment_id)) { (code(&d.shipment_id)) } }
                            td { (lang.date(&d.date)) }
                            td { (status_badge(lang, &d.status)) }
                            td.num { @if let (Some(v), Some(c)) = (&d.declared_value, &d.currency) { (lang.number(v)) " " (c) } }
                            (num(lang, declared))
                            (num(lang, &d.dispatched_value))
                            td.num { @if let Some(p) = &f.pct { (lang.number(p)) } @else { "—" } }
                            td { (flag_badge(lang, f.status)) }
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
            let id = outcome.body["shipment_id"]
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
    fn declared_value_is_flagged_past_the_tolerance() {
        // DESIGN: 60,000 declared against 45,000 of cost is over by 33.33%.
        let f = flag("60000.0000", "45000.0000");
        assert_eq!(f.difference, "15000.0000");
        assert_eq!(f.pct.as_deref(), Some("33.33"));
        assert_eq!(f.status, "over");
        assert_eq!(flag("47000", "45000").status, "ok");
        assert_eq!(flag("40000", "45000").status, "under");
        assert_eq!(flag("40000", "45000").pct.as_deref(), Some("-11.11"));
        assert_eq!(flag("10", "0").status, "over");
        assert_eq!(flag("0", "0").status, "ok");
        assert_eq!(flag("0", "0").pct, None);
    }

    fn donation(id: &str, country: &str, declared: &str, cost: &str) -> ShipmentView {
        ShipmentView {
            shipment_id: id.into(),
            kind: "donation".into(),
            date: "2020-03-10".into(),
            from_location: "FG".into(),
            recipient: Some(format!("{country}-H")),
            country: Some(country.into()),
            declared_value: Some(declared.into()),
            currency: Some("CNY".into()),
            fx_rate: Some("1".into()),
            declared_value_base: Some(declared.into()),
            status: "dispatched".into(),
            dispatch_seq: 1,
            closed_on: None,
            close_reason: None,
            close_seq: None,
            dispatched_value: cost.into(),
            lines: vec![],
        }
    }

    #[test]
    fn countries_add_up_their_donations() {
        let rows = by_country(&[
            donation("D1", "KR", "30000.0000", "29000.0000"),
            donation("D2", "KR", "30000.0000", "16000.0000"),
            donation("D3", "FR", "50000.0000", "50000.0000"),
        ]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].country, "FR");
        assert_eq!(rows[0].status, "ok");
        assert_eq!(rows[1].declared_value, "60000.0000");
        assert_eq!(rows[1].ledger_cost, "45000.0000");
        assert_eq!(rows[1].difference_pct, "33.33");
        assert_eq!(rows[1].status, "over");
    }
}
