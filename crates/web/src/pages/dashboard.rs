//! The dashboard: stock on hand by location and item, lots expiring within 30 days, goods in
//! transit, donations by country (declared value against ledger cost, with a chart) and
//! production runs.
//!
//! Each section renders rows shaped like the report rows of DESIGN section 4, loaded by its
//! `load_*` function through the service: stock on hand, and the in-transit, donations
//! (per-country totals) and production reports.

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::response::IntoResponse;
use maud::{html, Markup};
use rust_decimal::Decimal;
use service::dto::StockRow;
use service::reports::{ReportName, ReportParams};
use service::Service;

use crate::chart::{bar_chart, BarChart, Group};
use crate::components::{code, empty, num, page_head};
use crate::i18n::{Lang, Msg};
use crate::layout::{self, Nav};
use crate::pages::errors::{OrPage, PageResult};
use crate::pages::lookups;
use crate::session::Ctx;

/// How far ahead the dashboard warns of expiring lots.
pub const EXPIRY_HORIZON_DAYS: i64 = 30;

/// One item in one location, its lots summed.
#[derive(Debug, Clone, PartialEq)]
pub struct StockLine {
    pub location: String,
    pub sku: String,
    pub name: String,
    pub unit: String,
    pub lots: usize,
    pub quantity: Decimal,
    pub value: Decimal,
    pub earliest_expiry: Option<String>,
}

/// A lot on hand that expires within the horizon (or has expired).
#[derive(Debug, Clone, PartialEq)]
pub struct ExpiringLot {
    pub location: String,
    pub sku: String,
    pub lot: String,
    pub quantity: String,
    pub expires_on: String,
    /// Days from today to the expiry date; negative once expired.
    pub days: i64,
}

/// A row of the in-transit report.
#[derive(Debug, Clone, PartialEq)]
pub struct InTransitRow {
    pub shipment_id: String,
    pub destination: String,
    pub sku: String,
    pub lot: String,
    pub dispatched: String,
    pub acknowledged: String,
    pub damaged: String,
    pub outstanding: String,
    pub age_days: String,
}

/// The per-country total of the donations report (base currency).
#[derive(Debug, Clone, PartialEq)]
pub struct CountryRow {
    pub country: String,
    pub declared_value: String,
    pub ledger_cost: String,
    pub difference: String,
    pub difference_pct: String,
    /// `ok`, `over` or `under`.
    pub status: String,
}

/// A row of the production report.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub run_id: String,
    pub product_sku: String,
    pub good_qty: String,
    pub scrap_qty: String,
    pub total_cost: String,
    pub unit_cost: String,
    /// Per material: (sku, actual minus standard quantity).
    pub variance: Vec<(String, String)>,
}

/// How many production runs the dashboard shows: the latest.
const RUNS_SHOWN: usize = 10;

/// Goods in transit, from the in-transit report: every line of a shipment with something
/// outstanding, the oldest first, with its age in days since dispatch.
async fn load_in_transit(s: &Service) -> service::Result<Vec<InTransitRow>> {
    let r = s
        .report(ReportName::InTransit, &ReportParams::default())
        .await?;
    let rows = r.json["rows"].as_array().cloned().unwrap_or_default();
    let text = |v: &serde_json::Value, k: &str| match &v[k] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out: Vec<(i64, InTransitRow)> = rows
        .iter()
        .map(|v| {
            (
                v["age_days"].as_i64().unwrap_or(0),
                InTransitRow {
                    shipment_id: text(v, "shipment_id"),
                    destination: text(v, "destination"),
                    sku: text(v, "sku"),
                    lot: text(v, "lot"),
                    dispatched: text(v, "dispatched"),
                    acknowledged: text(v, "acknowledged"),
                    damaged: text(v, "damaged"),
                    outstanding: text(v, "outstanding"),
                    age_days: text(v, "age_days"),
                },
            )
        })
        .collect();
    // Oldest first; the report's order (dispatch order) among equals.
    out.sort_by_key(|r| std::cmp::Reverse(r.0));
    Ok(out.into_iter().map(|(_, r)| r).collect())
}

/// Donations by country, from the donations report: declared value in the base currency
/// against the ledger cost of what was dispatched, flagged past the tolerance.
async fn load_donations_by_country(s: &Service) -> service::Result<Vec<CountryRow>> {
    Ok(crate::pages::donations::report(s).await?.1)
}

/// The latest production runs from the production report, newest first.
async fn load_production(s: &Service) -> service::Result<Vec<RunRow>> {
    let query = service::production::ReportQuery::default();
    let mut runs = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s
            .production_report(&query, after.as_deref(), Some(store::PAGE_MAX))
            .await?;
        runs.extend(page.items);
        if runs.len() > RUNS_SHOWN {
            runs.drain(..runs.len() - RUNS_SHOWN);
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    Ok(runs
        .into_iter()
        .rev()
        .filter(|r| r.reversed_by.is_none())
        .map(|r| RunRow {
            run_id: r.run_id,
            product_sku: r.product_sku,
            good_qty: r.good_qty,
            scrap_qty: r.scrap_qty,
            total_cost: r.total_cost,
            unit_cost: r.unit_cost,
            variance: r
                .materials
                .into_iter()
                .map(|m| (m.material_sku, m.variance_qty))
                .collect(),
        })
        .collect())
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap_or(Decimal::ZERO)
}

fn days_between(from: time::Date, to_iso: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let to = time::Date::parse(to_iso, &format).ok()?;
    Some((to - from).whole_days())
}

/// Sums stock rows per (location, item) and picks out the lots expiring within the horizon.
pub fn summarise(
    rows: &[StockRow],
    items: &HashMap<String, (String, String)>,
    today: time::Date,
) -> (Vec<StockLine>, Vec<ExpiringLot>) {
    let mut lines: BTreeMap<(String, String), StockLine> = BTreeMap::new();
    let mut expiring = Vec::new();
    for r in rows {
        let (name, unit) = items.get(&r.sku).cloned().unwrap_or_default();
        let line = lines
            .entry((r.location.clone(), r.sku.clone()))
            .or_insert_with(|| StockLine {
                location: r.location.clone(),
                sku: r.sku.clone(),
                name,
                unit,
                lots: 0,
                quantity: Decimal::ZERO,
                value: Decimal::ZERO,
                earliest_expiry: None,
            });
        line.lots += 1;
        line.quantity += dec(&r.quantity);
        line.value += dec(&r.value);
        if let Some(e) = &r.expires_on {
            // ISO dates order as text.
            if line.earliest_expiry.as_ref().is_none_or(|cur| e < cur) {
                line.earliest_expiry = Some(e.clone());
            }
            if let Some(days) = days_between(today, e) {
                if days <= EXPIRY_HORIZON_DAYS {
                    expiring.push(ExpiringLot {
                        location: r.location.clone(),
                        sku: r.sku.clone(),
                        lot: r.lot.clone(),
                        quantity: r.quantity.clone(),
                        expires_on: e.clone(),
                        days,
                    });
                }
            }
        }
    }
    expiring.sort_by(|a, b| (a.days, &a.lot).cmp(&(b.days, &b.lot)));
    (lines.into_values().collect(), expiring)
}

fn money(d: Decimal) -> String {
    format!("{:.4}", d)
}

fn card(label: &str, value: &str, note: Option<&str>, warn: bool) -> Markup {
    html! {
        div.card.warn[warn] {
            p.card-label { (label) }
            p.card-value { (value) }
            @if let Some(n) = note { p.card-note { (n) } }
        }
    }
}

fn days_badge(lang: Lang, days: i64) -> Markup {
    let d = days.abs().to_string();
    html! {
        @if days < 0 {
            span.badge.bad { (lang.tf(Msg::ExpiredDaysAgo, &[("days", &d)])) }
        } @else if days == 0 {
            span.badge.bad { (lang.t(Msg::ExpiresToday)) }
        } @else {
            span.badge.warn { (lang.tf(Msg::DaysLeft, &[("days", &d)])) }
        }
    }
}

pub fn stock_section(
    lang: Lang,
    lines: &[StockLine],
    locations: &HashMap<String, String>,
    base_currency: &str,
) -> Markup {
    let by_location: BTreeMap<&str, Decimal> = lines.iter().fold(BTreeMap::new(), |mut m, l| {
        *m.entry(l.location.as_str()).or_insert(Decimal::ZERO) += l.value;
        m
    });
    let chart = BarChart {
        title: lang.t(Msg::StockValueByLocation),
        series: vec![lang.t(Msg::Value)],
        groups: by_location
            .iter()
            .map(|(loc, v)| Group {
                label: (*loc).to_owned(),
                values: vec![*v],
            })
            .collect(),
    };
    html! {
        section.panel.wide #stock {
            h2 { (lang.t(Msg::StockOnHand)) }
            @if lines.is_empty() {
                (empty(lang.t(Msg::StockEmpty)))
            } @else {
                div.table-wrap {
                    table {
                        thead { tr {
                            th { (lang.t(Msg::Location)) }
                            th { (lang.t(Msg::Item)) }
                            th.num { (lang.t(Msg::Lots)) }
                            th.num { (lang.t(Msg::Quantity)) }
                            th { (lang.t(Msg::Unit)) }
                            th.num { (lang.t(Msg::Value)) " (" (base_currency) ")" }
                            th { (lang.t(Msg::EarliestExpiry)) }
                        } }
                        tbody {
                            @for l in lines {
                                tr data-sku=(l.sku) data-location=(l.location) {
                                    td { (code(&l.location)) @if let Some(n) = locations.get(&l.location) { " " span.muted { (n) } } }
                                    td { (code(&l.sku)) " " span.muted { (l.name) } }
                                    (num(lang, &l.lots.to_string()))
                                    (num(lang, &l.quantity.normalize().to_string()))
                                    td { (l.unit) }
                                    (num(lang, &money(l.value)))
                                    td { @if let Some(e) = &l.earliest_expiry { (lang.date(e)) } @else { "—" } }
                                }
                            }
                        }
                    }
                }
                h3 { (lang.t(Msg::StockValueByLocation)) }
                (bar_chart(&chart, lang, lang.t(Msg::ChartNoData)))
            }
        }
    }
}

pub fn expiring_section(lang: Lang, lots: &[ExpiringLot]) -> Markup {
    html! {
        section.panel #expiring {
            h2 { (lang.t(Msg::ExpiringSoon)) }
            @if lots.is_empty() {
                (empty(lang.t(Msg::ExpiringNone)))
            } @else {
                div.table-wrap { table {
                    thead { tr {
                        th { (lang.t(Msg::Lot)) }
                        th { (lang.t(Msg::Item)) }
                        th { (lang.t(Msg::Location)) }
                        th.num { (lang.t(Msg::Quantity)) }
                        th { (lang.t(Msg::ExpiresOn)) }
                        th {}
                    } }
                    tbody {
                        @for l in lots {
                            tr data-lot=(l.lot) {
                                td { (code(&l.lot)) }
                                td { (code(&l.sku)) }
                                td { (code(&l.location)) }
                                (num(lang, &l.quantity))
                                td { (lang.date(&l.expires_on)) }
                                td { (days_badge(lang, l.days)) }
                            }
                        }
                    }
                } }
            }
        }
    }
}

pub fn in_transit_section(lang: Lang, rows: &[InTransitRow]) -> Markup {
    html! {
        section.panel.wide #in-transit {
            h2 { (lang.t(Msg::InTransit)) }
            @if rows.is_empty() {
                (empty(lang.t(Msg::InTransitEmpty)))
            } @else {
                div.table-wrap { table {
                    thead { tr {
                        th { (lang.t(Msg::Shipment)) }
                        th { (lang.t(Msg::Destination)) }
                        th { (lang.t(Msg::Item)) }
                        th { (lang.t(Msg::Lot)) }
                        th.num { (lang.t(Msg::Dispatched)) }
                        th.num { (lang.t(Msg::Acknowledged)) }
                        th.num { (lang.t(Msg::Damaged)) }
                        th.num { (lang.t(Msg::Outstanding)) }
                        th.num { (lang.t(Msg::AgeDays)) }
                    } }
                    tbody {
                        @for r in rows {
                            tr data-shipment=(r.shipment_id) data-destination=(r.destination) {
                                td { a href=(format!("/shipments/{}", r.shipment_id)) { (code(&r.shipment_id)) } }
                                td { (code(&r.destination)) }
                                td { (code(&r.sku)) }
                                td { (code(&r.lot)) }
                                (num(lang, &r.dispatched))
                                (num(lang, &r.acknowledged))
                                (num(lang, &r.damaged))
                                (num(lang, &r.outstanding))
                                (num(lang, &r.age_days))
                            }
                        }
                    }
                } }
            }
        }
    }
}

/// A donation's flag (`ok`, `over`, `under`) in words, coloured.
pub fn flag_badge(lang: Lang, status: &str) -> Markup {
    let (class, label) = match status {
        "ok" => ("ok", lang.t(Msg::StatusOk)),
        "over" => ("bad", lang.t(Msg::StatusOver)),
        "under" => ("warn", lang.t(Msg::StatusUnder)),
        other => ("", other),
    };
    html! { span class=(format!("badge {class}")) data-status=(status) { (label) } }
}

pub fn donations_section(lang: Lang, rows: &[CountryRow], base_currency: &str) -> Markup {
    let chart = BarChart {
        title: lang.t(Msg::DeclaredVsCost),
        series: vec![lang.t(Msg::Declared), lang.t(Msg::LedgerCost)],
        groups: rows
            .iter()
            .map(|r| Group {
                label: r.country.clone(),
                values: vec![dec(&r.declared_value), dec(&r.ledger_cost)],
            })
            .collect(),
    };
    html! {
        section.panel.wide #donations {
            h2 { (lang.t(Msg::DonationsByCountry)) }
            @if rows.is_empty() {
                (empty(lang.t(Msg::DonationsEmpty)))
            } @else {
                (bar_chart(&chart, lang, lang.t(Msg::ChartNoData)))
                div.table-wrap { table {
                    thead { tr {
                        th { (lang.t(Msg::Country)) }
                        th.num { (lang.t(Msg::Declared)) " (" (base_currency) ")" }
                        th.num { (lang.t(Msg::LedgerCost)) }
                        th.num { (lang.t(Msg::Difference)) }
                        th.num { (lang.t(Msg::DifferencePct)) }
                        th { (lang.t(Msg::Status)) }
                    } }
                    tbody {
                        @for r in rows {
                            tr data-country=(r.country) {
                                td { (code(&r.country)) }
                                (num(lang, &r.declared_value))
                                (num(lang, &r.ledger_cost))
                                (num(lang, &r.difference))
                                (num(lang, &r.difference_pct))
                                td { (flag_badge(lang, &r.status)) }
                            }
                        }
                    }
                } }
            }
        }
    }
}

pub fn production_section(lang: Lang, rows: &[RunRow]) -> Markup {
    html! {
        section.panel #production {
            h2 { (lang.t(Msg::ProductionRuns)) }
            @if rows.is_empty() {
                (empty(lang.t(Msg::ProductionEmpty)))
            } @else {
                div.table-wrap { table {
                    thead { tr {
                        th { (lang.t(Msg::Run)) }
                        th { (lang.t(Msg::Product)) }
                        th.num { (lang.t(Msg::GoodQty)) }
                        th.num { (lang.t(Msg::ScrapQty)) }
                        th.num { (lang.t(Msg::TotalCost)) }
                        th.num { (lang.t(Msg::UnitCost)) }
                        th { (lang.t(Msg::Variance)) }
                    } }
                    tbody {
                        @for r in rows {
                            tr data-run=(r.run_id) {
                                td { a href=(crate::pages::runs::href(&r.run_id)) { (code(&r.run_id)) } }
                                td { (code(&r.product_sku)) }
                                (num(lang, &r.good_qty))
                                (num(lang, &r.scrap_qty))
                                (num(lang, &r.total_cost))
                                (num(lang, &r.unit_cost))
                                td {
                                    @for (sku, q) in &r.variance {
                                        span.material { (code(sku)) " " (crate::pages::runs::variance(lang, q)) } " "
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        }
    }
}

pub async fn show(State(s): State<Service>, ctx: Ctx) -> PageResult {
    let rows = s.stock_on_hand().await.or_page(&ctx)?;
    let items = lookups::item_names_and_units(&s).await.or_page(&ctx)?;
    let locations: HashMap<String, String> = lookups::locations(&s)
        .await
        .or_page(&ctx)?
        .into_iter()
        .collect();
    let (lines, expiring) = summarise(&rows, &items, ctx.today);
    let in_transit = load_in_transit(&s).await.or_page(&ctx)?;
    let donations = load_donations_by_country(&s).await.or_page(&ctx)?;
    let runs = load_production(&s).await.or_page(&ctx)?;
    let head = s
        .store()
        .head()
        .await
        .map_err(service::ServiceError::from)
        .or_page(&ctx)?;
    let lang = ctx.lang;
    let base = s.base_currency();
    let total: Decimal = lines.iter().map(|l| l.value).sum();
    let body = html! {
        (page_head(ctx.t(Msg::DashboardTitle), Some(ctx.t(Msg::DashboardIntro)), html! {}))
        div.cards {
            (card(ctx.t(Msg::CardStockValue), &lang.number(&money(total)), Some(base), false))
            (card(ctx.t(Msg::CardLots), &lang.number(&rows.len().to_string()), None, false))
            (card(ctx.t(Msg::CardExpiring), &lang.number(&expiring.len().to_string()), None, !expiring.is_empty()))
            (card(ctx.t(Msg::CardEntries), &lang.number(&head.seq.to_string()), None, false))
        }
        div.grid {
            (stock_section(lang, &lines, &locations, base))
            (expiring_section(lang, &expiring))
            (production_section(lang, &runs))
            (in_transit_section(lang, &in_transit))
            (donations_section(lang, &donations, base))
        }
    };
    Ok(layout::page(&ctx, ctx.t(Msg::DashboardTitle), Nav::Dashboard, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(location: &str, sku: &str, lot: &str, q: &str, v: &str, exp: Option<&str>) -> StockRow {
        StockRow {
            location: location.into(),
            sku: sku.into(),
            lot: lot.into(),
            quantity: q.into(),
            value: v.into(),
            expires_on: exp.map(Into::into),
        }
    }

    #[test]
    fn stock_is_summed_per_location_and_item_and_expiring_lots_are_found() {
        let today = time::macros::date!(2020 - 03 - 01);
        let rows = vec![
            row("RAW", "MASK", "L1", "100", "150.0000", Some("2020-03-20")),
            row("RAW", "MASK", "L2", "50.5", "80.2500", Some("2020-12-31")),
            row("RAW", "GLOVE", "L3", "10", "5.0000", Some("2020-02-28")),
            row("FG", "MASK", "L4", "1", "1.0000", None),
        ];
        let items = HashMap::from([("MASK".to_owned(), ("Mask".to_owned(), "pcs".to_owned()))]);
        let (lines, expiring) = summarise(&rows, &items, today);
        assert_eq!(lines.len(), 3);
        let raw_mask = lines
            .iter()
            .find(|l| l.location == "RAW" && l.sku == "MASK")
            .unwrap();
        assert_eq!(raw_mask.lots, 2);
        assert_eq!(raw_mask.quantity, dec("150.5"));
        assert_eq!(money(raw_mask.value), "230.2500");
        assert_eq!(raw_mask.earliest_expiry.as_deref(), Some("2020-03-20"));
        assert_eq!(raw_mask.name, "Mask");
        // The expired lot first, then the one 19 days out; the one in December is not listed.
        let lots: Vec<_> = expiring.iter().map(|e| (e.lot.as_str(), e.days)).collect();
        assert_eq!(lots, vec![("L3", -2), ("L1", 19)]);
    }

    #[test]
    fn the_donation_section_charts_declared_against_cost_with_flags() {
        let rows = vec![
            CountryRow {
                country: "KR".into(),
                declared_value: "50000.0000".into(),
                ledger_cost: "48000.0000".into(),
                difference: "2000.0000".into(),
                difference_pct: "4.17".into(),
                status: "ok".into(),
            },
            CountryRow {
                country: "FR".into(),
                declared_value: "50000.0000".into(),
                ledger_cost: "40000.0000".into(),
                difference: "10000.0000".into(),
                difference_pct: "25.00".into(),
                status: "over".into(),
            },
        ];
        let html = donations_section(Lang::Zh, &rows, "CNY").into_string();
        assert!(html.contains("<svg"));
        assert!(html.contains("data-label=\"KR\""));
        assert!(html.contains("偏高"), "the flag is translated");
        assert!(html.contains("50,000.0000"), "amounts keep every digit");
        let none = donations_section(Lang::En, &[], "CNY").into_string();
        assert!(none.contains("No donations recorded."));
        assert!(!none.contains("<svg"));
    }

    #[test]
    fn the_in_transit_and_production_sections_show_their_rows() {
        let t = in_transit_section(
            Lang::En,
            &[InTransitRow {
                shipment_id: "B-1".into(),
                destination: "XIACUN".into(),
                sku: "MASK".into(),
                lot: "L1".into(),
                dispatched: "1000".into(),
                acknowledged: "400".into(),
                damaged: "0".into(),
                outstanding: "600".into(),
                age_days: "3".into(),
            }],
        )
        .into_string();
        assert!(t.contains("XIACUN") && t.contains("1,000"));
        let p = production_section(
            Lang::En,
            &[RunRow {
                run_id: "RUN-1".into(),
                product_sku: "GOGGLES".into(),
                good_qty: "980".into(),
                scrap_qty: "20".into(),
                total_cost: "12000.0000".into(),
                unit_cost: "12.2449".into(),
                variance: vec![("PC-SHEET".into(), "-1.500".into())],
            }],
        )
        .into_string();
        assert!(p.contains("GOGGLES") && p.contains("12,000.0000") && p.contains("-1.500"));
    }
}
