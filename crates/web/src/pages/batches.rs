//! Frontline batches: the list (each batch, and what went to each subdistrict and community),
//! one batch's page, and the form that records one through `Service::record_batch`, the call
//! behind `POST /api/v1/batches`.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{html, Markup};
use rust_decimal::Decimal;
use service::auth::Permission;
use service::dto::{BatchIn, BatchLineIn, DecText, PartyIn, ShipmentView};
use service::Service;

use crate::components::{code, datalist, empty, num, page_head};
use crate::form::{Column, FormData, FormErrors, FormView, Input, LinesText};
use crate::i18n::Msg;
use crate::layout::{self, csrf_field, Nav};
use crate::pages::donations::ledger_kind;
use crate::pages::errors::{OrPage, PageResult};
use crate::pages::lookups;
use crate::pages::shipments::{self, status_badge};
use crate::session::Ctx;

/// What went to one destination of one subdistrict, per item, over every batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DestinationRow {
    /// The subdistrict: the destination itself, or the community's parent.
    pub subdistrict: String,
    pub destination: String,
    pub sku: String,
    pub dispatched: Decimal,
    pub acknowledged: Decimal,
    pub damaged: Decimal,
    pub short: Decimal,
    pub outstanding: Decimal,
    /// The batches that carried it, in dispatch order.
    pub batches: Vec<String>,
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap_or(Decimal::ZERO)
}

/// Sums batch lines per subdistrict, destination and item. A community is put under its
/// subdistrict; a destination the ledger does not know the parent of stands on its own.
pub fn by_destination(
    batches: &[ShipmentView],
    parties: &HashMap<String, PartyIn>,
) -> Vec<DestinationRow> {
    let mut rows: BTreeMap<(String, String, String), DestinationRow> = BTreeMap::new();
    for b in batches {
        for l in &b.lines {
            let sub = match parties.get(&l.destination) {
                Some(p) if p.kind == "community" => {
                    p.parent.clone().unwrap_or_else(|| l.destination.clone())
                }
                _ => l.destination.clone(),
            };
            let r = rows
                .entry((sub.clone(), l.destination.clone(), l.sku.clone()))
                .or_insert_with(|| DestinationRow {
                    subdistrict: sub,
                    destination: l.destination.clone(),
                    sku: l.sku.clone(),
                    ..DestinationRow::default()
                });
            r.dispatched += dec(&l.dispatched);
            r.acknowledged += dec(&l.acknowledged);
            r.damaged += dec(&l.damaged);
            r.short += dec(&l.short);
            r.outstanding += dec(&l.outstanding);
            if !r.batches.contains(&b.shipment_id) {
                r.batches.push(b.shipment_id.clone());
            }
        }
    }
    rows.into_values().collect()
}

fn qty(d: Decimal) -> String {
    d.normalize().to_string()
}

pub async fn list(State(s): State<Service>, ctx: Ctx) -> PageResult {
    let batches = lookups::shipments(&s, "batch", None).await.or_page(&ctx)?;
    let parties: HashMap<String, PartyIn> = lookups::all_parties(&s)
        .await
        .or_page(&ctx)?
        .into_iter()
        .map(|p| (p.code.clone(), p))
        .collect();
    let rows = by_destination(&batches, &parties);
    let lang = ctx.lang;
    let base = s.base_currency();
    let name = |c: &str| parties.get(c).map(|p| p.name.clone());
    let actions = html! {
        @if ctx.may(Permission::Batches) {
            a.button.primary href="/record/batch" { "+ " (ctx.t(Msg::NewBatch)) }
        }
    };
    let body = html! {
        (page_head(ctx.t(Msg::BatchesTitle), Some(ctx.t(Msg::BatchesIntro)), actions))
        @if batches.is_empty() {
            (empty(ctx.t(Msg::BatchesEmpty)))
        } @else {
            div.table-wrap { table #batches {
                thead { tr {
                    th { (ctx.t(Msg::BatchId)) }
                    th { (ctx.t(Msg::Date)) }
                    th { (ctx.t(Msg::FromLocation)) }
                    th { (ctx.t(Msg::Destinations)) }
                    th { (ctx.t(Msg::Status)) }
                    th.num { (ctx.t(Msg::LedgerCost)) " (" (base) ")" }
                } }
                tbody {
                    @for b in batches.iter().rev() {
                        tr data-id=(b.shipment_id) {
                            td { a href=(shipments::href("batch", &b.shipment_id)) { (code(&b.shipment_id)) } }
                            td { (lang.date(&b.date)) }
                            td { (code(&b.from_location)) }
                            td { @for (i, (d, _)) in shipments::by_destination(&b.lines).iter().enumerate() {
                                @if i > 0 { " " } (code(d))
                            } }
                            td { (status_badge(lang, &b.status)) }
                            (num(lang, &b.dispatched_value))
                        }
                    }
                }
            } }
            h2 { (ctx.t(Msg::PerSubdistrict)) }
            div.table-wrap { table #by-destination {
                thead { tr {
                    th { (ctx.t(Msg::Destination)) }
                    th { (ctx.t(Msg::Item)) }
                    th.num { (ctx.t(Msg::Dispatched)) }
                    th.num { (ctx.t(Msg::Acknowledged)) }
                    th.num { (ctx.t(Msg::Damaged)) }
                    th.num { (ctx.t(Msg::Short)) }
                    th.num { (ctx.t(Msg::Outstanding)) }
                    th { (ctx.t(Msg::Batches)) }
                } }
                tbody {
                    @for (i, r) in rows.iter().enumerate() {
                        @if i == 0 || rows[i - 1].subdistrict != r.subdistrict {
                            tr.group data-subdistrict=(r.subdistrict) {
                                th colspan="8" {
                                    (code(&r.subdistrict))
                                    @if let Some(n) = name(&r.subdistrict) { " " (n) }
                                }
                            }
                        }
                        tr data-destination=(r.destination) data-sku=(r.sku) {
                            td.indent {
                                @if i == 0 || rows[i - 1].destination != r.destination {
                                    (code(&r.destination)) @if let Some(n) = name(&r.destination) { " " span.muted { (n) } }
                                }
                            }
                            td { (code(&r.sku)) }
                            (num(lang, &qty(r.dispatched)))
                            (num(lang, &qty(r.acknowledged)))
                            (num(lang, &qty(r.damaged)))
                            (num(lang, &qty(r.short)))
                            (num(lang, &qty(r.outstanding)))
                            td { @for (j, b) in r.batches.iter().enumerate() {
                                @if j > 0 { " " }
                                a href=(shipments::href("batch", b)) { (code(b)) }
                            } }
                        }
                    }
                }
            } }
        }
    };
    Ok(layout::page(&ctx, ctx.t(Msg::BatchesTitle), Nav::Batches, body).into_response())
}

pub async fn detail(State(s): State<Service>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let v = s
        .shipment(&id, Some(ledger_kind::BATCH))
        .await
        .or_page(&ctx)?;
    shipments::detail(&s, &ctx, v).await
}

/// The fields of one batch line, as named in the API's JSON.
const LINE_FIELDS: [&str; 4] = ["destination", "sku", "qty", "lot"];

struct Choices {
    destinations: Vec<(String, String)>,
    locations: Vec<(String, String)>,
    items: Vec<(String, String)>,
}

async fn choices(s: &Service) -> service::Result<Choices> {
    Ok(Choices {
        destinations: lookups::parties(s, &["subdistrict", "community"]).await?,
        locations: lookups::locations(s).await?,
        items: lookups::items(s).await?,
    })
}

fn render(ctx: &Ctx, c: &Choices, data: &FormData, errors: &FormErrors, rows: usize) -> Markup {
    let f = FormView { data, errors };
    let t = |m| ctx.t(m);
    let title = t(Msg::NewBatch);
    let columns = [
        Column {
            field: "destination",
            label: t(Msg::Destination),
            input: Input::Text(Some("dl-destinations")),
            optional: false,
        },
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
        (page_head(title, Some(t(Msg::NewBatchIntro)), html! {}))
        (f.summary(t(Msg::FormRefused)))
        form.document #batch-form method="post" action="/record/batch" novalidate {
            (csrf_field(ctx))
            (datalist("dl-destinations", &c.destinations))
            (datalist("dl-locations", &c.locations))
            (datalist("dl-items", &c.items))
            div.fields {
                (f.field("batch_id", t(Msg::BatchId), Input::Text(None), None, true))
                (f.field("date", t(Msg::Date), Input::Date, None, true))
                (f.field("from_location", t(Msg::FromLocation), Input::Text(Some("dl-locations")), None, true))
            }
            (f.lines_table("batch-lines", &columns, rows, LinesText {
                legend: t(Msg::Lines),
                optional: t(Msg::Optional),
                add_line: t(Msg::AddLine),
                hint: Some(t(Msg::PickLotHint)),
            }))
            div.form-actions {
                button.primary type="submit" name="action" value="record" { (t(Msg::RecordBatch)) }
            }
        }
    };
    layout::page(ctx, title, Nav::Batches, body)
}

pub async fn form(State(s): State<Service>, ctx: Ctx) -> PageResult {
    let c = choices(&s).await.or_page(&ctx)?;
    let now = s.now();
    let mut data = FormData::default();
    data.set("batch_id", &crate::pages::suggest_id("B", now));
    data.set("date", &now.date().to_string());
    Ok(render(&ctx, &c, &data, &FormErrors::default(), 3).into_response())
}

/// The batch a form describes, blank lines dropped and the form renumbered to match.
fn batch_of(data: &FormData) -> (BatchIn, FormData) {
    let (shown, n) = data.compact_rows("lines", &LINE_FIELDS);
    let lines = (0..n)
        .map(|i| {
            let get = |f: &str| shown.get(&format!("lines[{i}].{f}"));
            BatchLineIn {
                destination: get("destination"),
                sku: get("sku"),
                qty: DecText(get("qty")),
                lot: shown.opt(&format!("lines[{i}].lot")),
            }
        })
        .collect();
    let input = BatchIn {
        batch_id: shown.get("batch_id"),
        date: shown.get("date"),
        from_location: shown.get("from_location"),
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
    let (input, shown) = batch_of(&data);
    match s
        .record_batch(&input, &crate::pages::actor(&ctx), None)
        .await
    {
        Ok(outcome) => {
            let id = outcome.body.to_value()["shipment_id"]
                .as_str()
                .unwrap_or(&input.batch_id)
                .to_owned();
            Ok(
                Redirect::to(&format!("{}?recorded=1", shipments::href("batch", &id)))
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
    use service::dto::ShipmentLineView;

    fn party(code: &str, kind: &str, parent: Option<&str>) -> (String, PartyIn) {
        (
            code.into(),
            PartyIn {
                code: code.into(),
                name: code.to_lowercase(),
                kind: kind.into(),
                country: None,
                city: None,
                parent: parent.map(Into::into),
            },
        )
    }

    fn line(dest: &str, sku: &str, dispatched: &str, ack: &str) -> ShipmentLineView {
        ShipmentLineView {
            destination: dest.into(),
            sku: sku.into(),
            lot: "L1".into(),
            dispatched: dispatched.into(),
            acknowledged: ack.into(),
            damaged: "0".into(),
            short: "0".into(),
            outstanding: (dec(dispatched) - dec(ack)).to_string(),
            dispatched_value: "0.0000".into(),
        }
    }

    #[test]
    fn communities_are_grouped_under_their_subdistrict() {
        let parties = HashMap::from([
            party("NANWAN", "subdistrict", None),
            party("XIACUN", "community", Some("NANWAN")),
            party("NANXIN", "community", Some("NANWAN")),
        ]);
        let batch = |id: &str, lines| ShipmentView {
            shipment_id: id.into(),
            kind: "batch".into(),
            date: "2020-02-20".into(),
            from_location: "NW".into(),
            recipient: None,
            country: None,
            declared_value: None,
            currency: None,
            fx_rate: None,
            declared_value_base: None,
            status: "dispatched".into(),
            dispatch_seq: 1,
            closed_on: None,
            close_reason: None,
            close_seq: None,
            dispatched_value: "0.0000".into(),
            lines,
        };
        let rows = by_destination(
            &[
                batch(
                    "B1",
                    vec![
                        line("XIACUN", "MASK", "200", "200"),
                        line("NANXIN", "MASK", "100", "0"),
                    ],
                ),
                batch("B2", vec![line("XIACUN", "MASK", "50", "0")]),
                batch("B3", vec![line("OTHER", "GLOVE", "5", "0")]),
            ],
            &parties,
        );
        let keys: Vec<_> = rows
            .iter()
            .map(|r| (r.subdistrict.as_str(), r.destination.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("NANWAN", "NANXIN"),
                ("NANWAN", "XIACUN"),
                ("OTHER", "OTHER")
            ]
        );
        assert_eq!(rows[1].dispatched, dec("250"));
        assert_eq!(rows[1].outstanding, dec("50"));
        assert_eq!(rows[1].batches, vec!["B1".to_owned(), "B2".to_owned()]);
    }
}
