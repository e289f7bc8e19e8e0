//! The form that records an acknowledgement of a batch or donation (what arrived, per
//! destination and lot, and what arrived damaged) through `Service::acknowledge`, the call
//! behind `POST /api/v1/shipments/{id}/acknowledgements`. Opened from a shipment's page, it
//! offers one row per line still outstanding; rows left without a quantity are not sent.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{html, Markup};
use service::dto::{AcknowledgementIn, AcknowledgementLineIn, DecText, ShipmentView};
use service::Service;

use crate::components::{datalist, page_head};
use crate::form::{Column, FormData, FormErrors, FormView, Input, LinesText};
use crate::i18n::Msg;
use crate::layout::{self, csrf_field, Nav};
use crate::pages::errors::{OrPage, PageResult};
use crate::pages::lookups;
use crate::pages::shipments;
use crate::session::Ctx;

/// The fields of one acknowledgement line, as named in the API's JSON.
const LINE_FIELDS: [&str; 6] = [
    "destination",
    "sku",
    "lot",
    "received_qty",
    "damaged_qty",
    "note",
];
/// A row with none of these filled in says nothing arrived on it, and is not sent.
const SIGNIFICANT: [&str; 3] = ["received_qty", "damaged_qty", "note"];

struct Shown<'a> {
    shipment: Option<&'a ShipmentView>,
    items: &'a HashMap<String, (String, String)>,
    parties: &'a HashMap<String, String>,
    destinations: Vec<(String, String)>,
}

fn render(ctx: &Ctx, c: &Shown<'_>, data: &FormData, errors: &FormErrors, rows: usize) -> Markup {
    let f = FormView { data, errors };
    let t = |m| ctx.t(m);
    let title = t(Msg::RecordAcknowledgement);
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
            input: Input::Text(None),
            optional: false,
        },
        Column {
            field: "lot",
            label: t(Msg::Lot),
            input: Input::Text(None),
            optional: true,
        },
        Column {
            field: "received_qty",
            label: t(Msg::Received),
            input: Input::Decimal,
            optional: false,
        },
        Column {
            field: "damaged_qty",
            label: t(Msg::Damaged),
            input: Input::Decimal,
            optional: true,
        },
        Column {
            field: "note",
            label: t(Msg::Note),
            input: Input::Text(None),
            optional: true,
        },
    ];
    let body = html! {
        (page_head(title, Some(t(Msg::AcknowledgementIntro)), html! {}))
        (f.summary(t(Msg::FormRefused)))
        @if let Some(v) = c.shipment {
            h2 { (ctx.lang.tf(Msg::ShipmentNow, &[("id", &v.shipment_id)])) " " (shipments::status_badge(ctx.lang, &v.status)) }
            (shipments::lines_table(ctx, v, c.items, c.parties))
        }
        form.document #ack-form method="post" action="/record/acknowledgement" novalidate {
            (csrf_field(ctx))
            (datalist("dl-destinations", &c.destinations))
            div.fields {
                (f.field("shipment_id", t(Msg::Shipment), Input::Text(None), None, true))
                (f.field("date", t(Msg::Date), Input::Date, None, true))
                (f.field("acknowledgement_id", t(Msg::AcknowledgementId), Input::Text(None), Some(t(Msg::AcknowledgementIdHint)), false))
            }
            (f.lines_table("ack-lines", &columns, rows, LinesText {
                legend: t(Msg::Lines),
                optional: t(Msg::Optional),
                add_line: t(Msg::AddLine),
                hint: Some(t(Msg::AckLinesHint)),
            }))
            div.form-actions {
                button.primary type="submit" name="action" value="record" { (t(Msg::RecordAcknowledgement)) }
            }
        }
    };
    layout::page(ctx, title, Nav::None, body)
}

/// Renders the form for `data`, with the shipment it names (when there is one) above it.
async fn show(
    s: &Service,
    ctx: &Ctx,
    data: &FormData,
    errors: &FormErrors,
    rows: usize,
) -> PageResult {
    let id = data.get("shipment_id");
    let shipment = if id.is_empty() {
        None
    } else {
        s.shipment(&id, None).await.ok()
    };
    let items = lookups::item_names_and_units(s).await.or_page(ctx)?;
    let parties = lookups::party_names(s).await.or_page(ctx)?;
    let destinations = match &shipment {
        Some(v) => shipments::by_destination(&v.lines)
            .into_iter()
            .map(|(d, _)| (d.to_owned(), parties.get(d).cloned().unwrap_or_default()))
            .collect(),
        None => Vec::new(),
    };
    let shown = Shown {
        shipment: shipment.as_ref(),
        items: &items,
        parties: &parties,
        destinations,
    };
    let status = errors.status.unwrap_or(StatusCode::OK);
    Ok((status, render(ctx, &shown, data, errors, rows)).into_response())
}

pub async fn form(State(s): State<Service>, ctx: Ctx) -> PageResult {
    let mut data = FormData::default();
    data.set("date", &s.now().date().to_string());
    let mut rows = 1;
    if let Some(id) = ctx.param("shipment") {
        data.set("shipment_id", &id);
        let v = s.shipment(&id, None).await.or_page(&ctx)?;
        let open: Vec<_> = v
            .lines
            .iter()
            .filter(|l| !shipments::is_zero(&l.outstanding))
            .collect();
        for (i, l) in open.iter().enumerate() {
            data.set(&format!("lines[{i}].destination"), &l.destination);
            data.set(&format!("lines[{i}].sku"), &l.sku);
            data.set(&format!("lines[{i}].lot"), &l.lot);
        }
        rows = open.len().max(1);
    }
    show(&s, &ctx, &data, &FormErrors::default(), rows).await
}

/// The acknowledgement a form describes: rows with no quantity and no note dropped, and the
/// form renumbered to match.
fn ack_of(data: &FormData) -> (String, AcknowledgementIn, FormData) {
    let (shown, n) = data.compact_rows_where("lines", &LINE_FIELDS, &SIGNIFICANT);
    let lines = (0..n)
        .map(|i| {
            let opt = |f: &str| shown.opt(&format!("lines[{i}].{f}"));
            AcknowledgementLineIn {
                destination: shown.get(&format!("lines[{i}].destination")),
                sku: shown.get(&format!("lines[{i}].sku")),
                lot: opt("lot"),
                received_qty: opt("received_qty").map(DecText),
                damaged_qty: opt("damaged_qty").map(DecText),
                note: opt("note"),
            }
        })
        .collect();
    let input = AcknowledgementIn {
        acknowledgement_id: shown.opt("acknowledgement_id"),
        date: shown.get("date"),
        lines,
    };
    (shown.get("shipment_id"), input, shown)
}

pub async fn submit(State(s): State<Service>, ctx: Ctx, body: Bytes) -> PageResult {
    let data = FormData::parse(&body);
    if data.get("action") == "add_line" {
        let rows = data.rows("lines") + 1;
        return show(&s, &ctx, &data, &FormErrors::default(), rows).await;
    }
    let (id, input, shown) = ack_of(&data);
    match s
        .acknowledge(&id, &input, &crate::pages::actor(&ctx), None)
        .await
    {
        Ok(_) => {
            let v = s.shipment(&id, None).await.or_page(&ctx)?;
            Ok(Redirect::to(&format!(
                "{}?acknowledged=1",
                shipments::href(&v.kind, &v.shipment_id)
            ))
            .into_response())
        }
        Err(e) => {
            let errors = FormErrors::from_service(e);
            let rows = input.lines.len().max(1);
            show(&s, &ctx, &shown, &errors, rows).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offered_rows_without_a_quantity_are_not_sent() {
        let data = FormData::from_pairs(&[
            ("shipment_id", "DON-1"),
            ("date", "2020-03-17"),
            ("lines[0].destination", "KR-DSMC"),
            ("lines[0].sku", "GOGGLES"),
            ("lines[0].lot", "RUN-1-1"),
            ("lines[1].destination", "KR-DSMC"),
            ("lines[1].sku", "MASK"),
            ("lines[1].lot", "PO-1-1"),
            ("lines[1].received_qty", "990"),
            ("lines[1].damaged_qty", "10"),
        ]);
        let (id, input, shown) = ack_of(&data);
        assert_eq!(id, "DON-1");
        assert_eq!(input.lines.len(), 1);
        assert_eq!(input.lines[0].sku, "MASK");
        assert_eq!(input.lines[0].received_qty, Some(DecText("990".into())));
        assert_eq!(shown.get("lines[0].lot"), "PO-1-1");
        assert_eq!(input.acknowledgement_id, None);
    }
}
