//! A recipient's acknowledgement page: opened from the QR code or link of a packing list by
//! someone with no account, it shows one shipment's lines for one destination and records
//! what arrived through `Service::acknowledge`, the call behind the API's acknowledgements,
//! as the actor `recipient-link:<destination>`.
//!
//! The page is open (`Permission::Open`): the token in its path is its only key. It is
//! refused when the token is not one this server signed or has expired, and once the
//! destination's lines are all accounted for (or the shipment is closed) the link no longer
//! works. The destination comes from the signed token, never from the form, so a link cannot
//! acknowledge another destination's goods or another shipment's.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use service::dto::{
    AcknowledgementIn, AcknowledgementLineIn, DecText, ShipmentLineView, ShipmentView,
};
use service::Service;

use crate::components::{code, notice, num};
use crate::form::{FormData, FormErrors, FormView, Input};
use crate::i18n::Msg;
use crate::layout::{self, csrf_field, Nav};
use crate::link::{self, Claims, LinkError, LinkKey};
use crate::pages::errors::{OrPage, PageError, PageResult};
use crate::pages::lookups;
use crate::pages::shipments::is_zero;
use crate::session::Ctx;

/// The actor an acknowledgement through a link is recorded as.
pub fn actor(destination: &str) -> String {
    format!("recipient-link:{destination}")
}

/// A link that does not open: why, in the page's language, with the status that says so.
fn refused(ctx: &Ctx, why: LinkError) -> PageError {
    let (status, m) = match why {
        LinkError::Expired => (StatusCode::GONE, Msg::LinkExpired),
        LinkError::Malformed | LinkError::BadSignature => (StatusCode::FORBIDDEN, Msg::LinkInvalid),
    };
    PageError::new(ctx, status, Msg::LinkRefusedTitle, ctx.t(m))
}

/// What a valid link opens: its claims, its shipment, and the destination's lines.
struct Opened {
    claims: Claims,
    shipment: ShipmentView,
}

impl Opened {
    fn lines(&self) -> Vec<&ShipmentLineView> {
        self.shipment
            .lines
            .iter()
            .filter(|l| l.destination == self.claims.destination)
            .collect()
    }

    /// Lines that still wait for word of what arrived.
    fn pending(&self) -> Vec<&ShipmentLineView> {
        self.lines()
            .into_iter()
            .filter(|l| !is_zero(&l.outstanding))
            .collect()
    }

    /// Whether the link has done its work: the shipment is closed or acknowledged, or this
    /// destination's lines are all accounted for.
    fn used_up(&self) -> bool {
        !crate::pages::shipments::is_open(&self.shipment) || self.pending().is_empty()
    }
}

/// Checks the token's signature and expiry, then finds its shipment and destination.
async fn open(s: &Service, key: &LinkKey, ctx: &Ctx, token: &str) -> Result<Opened, PageError> {
    let secret = key.get(s).await.or_page(ctx)?;
    let claims =
        link::verify(secret, token, s.now().unix_timestamp()).map_err(|why| refused(ctx, why))?;
    let shipment = s
        .shipment(&claims.shipment, None)
        .await
        .map_err(|_| refused(ctx, LinkError::BadSignature))?;
    let opened = Opened { claims, shipment };
    if opened.lines().is_empty() {
        return Err(refused(ctx, LinkError::BadSignature));
    }
    Ok(opened)
}

fn used_up_page(ctx: &Ctx, o: &Opened) -> Response {
    let thanks = ctx.param("recorded").is_some();
    let title = if thanks {
        ctx.t(Msg::RecipientThanksTitle)
    } else {
        ctx.t(Msg::LinkRefusedTitle)
    };
    let body = html! {
        section.error-page.recipient-done {
            h1 { (title) }
            @if thanks { (notice(ctx.t(Msg::AcknowledgementRecorded))) }
            p.detail { (ctx.lang.tf(Msg::LinkUsedUpText, &[("id", &o.shipment.shipment_id)])) }
        }
    };
    let status = if thanks {
        StatusCode::OK
    } else {
        StatusCode::GONE
    };
    (status, layout::page(ctx, title, Nav::None, body)).into_response()
}

fn render(
    ctx: &Ctx,
    o: &Opened,
    token: &str,
    names: &std::collections::HashMap<String, (String, String)>,
    party: Option<&service::dto::PartyIn>,
    data: &FormData,
    errors: &FormErrors,
) -> Markup {
    let f = FormView { data, errors };
    let lang = ctx.lang;
    let v = &o.shipment;
    let title = lang.tf(Msg::RecipientTitle, &[("id", &v.shipment_id)]);
    let pending = o.pending();
    html! {
        @if ctx.param("recorded").is_some() { (notice(ctx.t(Msg::AcknowledgementRecorded))) }
        div.page-head { div {
            h1 { (title) }
            p.intro { (ctx.t(Msg::RecipientIntro)) }
        } }
        dl.facts {
            div { dt { (ctx.t(Msg::Shipment)) } dd #shipment-id { (code(&v.shipment_id)) } }
            div { dt { (ctx.t(Msg::Date)) } dd { (lang.date(&v.date)) } }
            div { dt { (ctx.t(Msg::Destination)) } dd #destination {
                (code(&o.claims.destination))
                @if let Some(p) = party { " " (p.name) @if let Some(c) = &p.city { ", " (c) } }
            } }
        }
        (f.summary(ctx.t(Msg::FormRefused)))
        form.document #recipient-form method="post" action=(link::path(token)) novalidate {
            (csrf_field(ctx))
            div.fields {
                (f.field("date", ctx.t(Msg::DateReceived), Input::Date, None, true))
            }
            @for m in errors.of("lines") { p.field-error data-field="lines" { (m) } }
            div.table-wrap { table #recipient-lines {
                thead { tr {
                    th { (ctx.t(Msg::Item)) }
                    th { (ctx.t(Msg::Lot)) }
                    th.num { (ctx.t(Msg::Dispatched)) }
                    th.num { (ctx.t(Msg::AlreadyRecorded)) }
                    th.num { (ctx.t(Msg::Outstanding)) }
                    th { (ctx.t(Msg::Received)) }
                    th { (ctx.t(Msg::Damaged)) }
                    th { (ctx.t(Msg::Note)) }
                } }
                tbody {
                    @for (i, l) in pending.iter().enumerate() {
                        tr.line data-line=(i) data-lot=(l.lot) {
                            td {
                                (code(&l.sku))
                                @if let Some((n, _)) = names.get(&l.sku) { " " span.muted { (n) } }
                                input type="hidden" name=(format!("lines[{i}].sku")) value=(l.sku);
                                input type="hidden" name=(format!("lines[{i}].lot")) value=(l.lot);
                            }
                            td { (code(&l.lot)) }
                            (num(lang, &l.dispatched))
                            td.num { (lang.number(&l.acknowledged)) " + " (lang.number(&l.damaged)) }
                            (num(lang, &l.outstanding))
                            (f.cell(&format!("lines[{i}].received_qty"), ctx.t(Msg::Received), Input::Decimal))
                            (f.cell(&format!("lines[{i}].damaged_qty"), ctx.t(Msg::Damaged), Input::Decimal))
                            (f.cell(&format!("lines[{i}].note"), ctx.t(Msg::Note), Input::Text(None)))
                        }
                    }
                }
            } }
            p.hint { (ctx.t(Msg::RecipientHint2)) }
            div.form-actions {
                button.primary type="submit" name="action" value="record" { (ctx.t(Msg::RecordWhatArrived)) }
            }
        }
    }
}

async fn page(
    s: &Service,
    ctx: &Ctx,
    o: &Opened,
    token: &str,
    data: &FormData,
    errors: &FormErrors,
) -> PageResult {
    let names = lookups::item_names_and_units(s).await.or_page(ctx)?;
    let party = s.party(&o.claims.destination).await.ok();
    let body = render(ctx, o, token, &names, party.as_ref(), data, errors);
    let title = ctx
        .lang
        .tf(Msg::RecipientTitle, &[("id", &o.shipment.shipment_id)]);
    let status = errors.status.unwrap_or(StatusCode::OK);
    Ok((status, layout::page(ctx, &title, Nav::None, body)).into_response())
}

pub async fn show(
    State(s): State<Service>,
    State(key): State<LinkKey>,
    ctx: Ctx,
    Path(token): Path<String>,
) -> PageResult {
    let o = open(&s, &key, &ctx, &token).await?;
    if o.used_up() {
        return Ok(used_up_page(&ctx, &o));
    }
    let mut data = FormData::default();
    data.set("date", &s.now().date().to_string());
    page(&s, &ctx, &o, &token, &data, &FormErrors::default()).await
}

/// The acknowledgement a recipient's form describes, to the link's destination only. Rows
/// with nothing typed are not sent; answers which form row each line came from.
fn ack_of(data: &FormData, destination: &str) -> (AcknowledgementIn, Vec<usize>) {
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for i in 0..data.rows("lines") {
        if data.row_is_blank("lines", i, &["received_qty", "damaged_qty", "note"]) {
            continue;
        }
        let opt = |f: &str| data.opt(&format!("lines[{i}].{f}"));
        lines.push(AcknowledgementLineIn {
            destination: destination.to_owned(),
            sku: data.get(&format!("lines[{i}].sku")),
            lot: opt("lot"),
            received_qty: opt("received_qty").map(DecText),
            damaged_qty: opt("damaged_qty").map(DecText),
            note: opt("note"),
        });
        rows.push(i);
    }
    let input = AcknowledgementIn {
        acknowledgement_id: None,
        date: data.get("date"),
        lines,
    };
    (input, rows)
}

pub async fn submit(
    State(s): State<Service>,
    State(key): State<LinkKey>,
    ctx: Ctx,
    Path(token): Path<String>,
    body: Bytes,
) -> PageResult {
    let o = open(&s, &key, &ctx, &token).await?;
    if o.used_up() {
        return Ok(used_up_page(&ctx, &o));
    }
    let data = FormData::parse(&body);
    let (input, rows) = ack_of(&data, &o.claims.destination);
    match s
        .acknowledge(
            &o.claims.shipment,
            &input,
            &actor(&o.claims.destination),
            None,
        )
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("{}?recorded=1", link::path(&token))).into_response()),
        Err(e) => {
            // The ledger names lines as sent; the form shows them where they were typed.
            let errors = FormErrors::from_service(e).renumber("lines", &rows);
            page(&s, &ctx, &o, &token, &data, &errors).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_destination_comes_from_the_link_and_blank_rows_stay_home() {
        let data = FormData::from_pairs(&[
            ("date", "2020-03-17"),
            ("destination", "SOMEONE-ELSE"),
            ("lines[0].sku", "GOGGLES"),
            ("lines[0].lot", "RUN-1-1"),
            ("lines[1].sku", "MASK"),
            ("lines[1].lot", "PO-1-1"),
            ("lines[1].destination", "SOMEONE-ELSE"),
            ("lines[1].received_qty", "990"),
            ("lines[1].damaged_qty", "10"),
        ]);
        let (input, rows) = ack_of(&data, "KR-DSMC");
        assert_eq!(rows, vec![1]);
        assert_eq!(input.lines.len(), 1);
        assert_eq!(input.lines[0].destination, "KR-DSMC");
        assert_eq!(input.lines[0].lot.as_deref(), Some("PO-1-1"));
        assert_eq!(actor("KR-DSMC"), "recipient-link:KR-DSMC");
    }
}
