//! Shipments: frontline batches and overseas donations (dispatch), acknowledgements and
//! closing; their parsing, answers and CSV forms, and the reads of shipment status.
//!
//! Batch and donation ids share one namespace (`shipment`). An acknowledgement's id is the
//! client's `acknowledgement_id`, or else derived from its normalised content, so that
//! re-sending (or re-importing) the same acknowledgement is recognised as a replay.

use ledger::docs::Decision;
use ledger::shipment::{
    AckLine, Acknowledgement, Closing, DeclaredIn, Dispatch, DispatchLine, ShipmentMove,
};
use ledger::{
    DocId, Entry, Hash, Needs, Rejection, Shipment, ShipmentChange, ShipmentKind, ShipmentStatus,
    State,
};
use serde_json::Value;
use store::{JsonText, ShipmentFilter};

use crate::dto::{
    AcknowledgedView, AcknowledgementIn, AcknowledgementLineIn, AcknowledgementLineView,
    AcknowledgementView, BatchIn, BatchLineIn, CloseIn, CloseView, DecText, DispatchView,
    DonationIn, DonationLineIn, Page, PickView, ShipmentLineView, ShipmentView, WrittenOffView,
};
use crate::error::{Fields, Result, ServiceError};
use crate::import::{DocumentCsv, Header, Row};
use crate::parse;
use crate::purchase::money;
use crate::writer::{Document, Outcome};
use crate::{page_limit, Service};

/// The namespace batch and donation ids share.
const SHIPMENT_NS: &str = "shipment";
/// Acknowledgements are recorded under `<shipment>/<acknowledgement_id>`.
const ACK_NS: &str = "acknowledgement";
/// A shipment is closed once: its closing is recorded under the shipment's id.
const CLOSE_NS: &str = "shipment-close";

/// The view of a shipment as it is.
pub fn shipment_view(s: &Shipment) -> ShipmentView {
    let d = s.declared.as_ref();
    ShipmentView {
        shipment_id: s.id.to_string(),
        kind: s.kind.to_string(),
        date: s.date.to_string(),
        from_location: s.from_location.to_string(),
        recipient: s.recipient.as_ref().map(|r| r.to_string()),
        country: s.country.clone(),
        declared_value: d.map(|d| money(d.value)),
        currency: d.map(|d| d.currency.clone()),
        fx_rate: d.map(|d| d.fx_rate.to_string()),
        declared_value_base: d.map(|d| money(d.base_value)),
        status: s.status().to_string(),
        dispatch_seq: s.dispatch_seq,
        closed_on: s.closure.as_ref().map(|c| c.date.to_string()),
        close_reason: s.closure.as_ref().map(|c| c.reason.clone()),
        close_seq: s.closure.as_ref().map(|c| c.seq),
        dispatched_value: money(s.dispatched_value()),
        lines: s
            .lines
            .iter()
            .map(|l| ShipmentLineView {
                destination: l.destination.to_string(),
                sku: l.sku.to_string(),
                lot: l.lot.to_string(),
                dispatched: l.dispatched.to_string(),
                acknowledged: l.acknowledged.to_string(),
                damaged: l.damaged.to_string(),
                short: l.short.to_string(),
                outstanding: l.outstanding().to_string(),
                dispatched_value: money(l.dispatched_value),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// Dispatch: batches and donations.

/// Batches in CSV: one row per line, the document-level columns repeated.
pub(crate) const BATCH_CSV: DocumentCsv = DocumentCsv {
    id_column: "batch_id",
    doc_columns: &["date", "from_location"],
    build: batch_from_rows,
};

/// Donations in CSV: one row per line, the document-level columns repeated.
pub(crate) const DONATION_CSV: DocumentCsv = DocumentCsv {
    id_column: "donation_id",
    doc_columns: &[
        "date",
        "from_location",
        "recipient",
        "declared_value",
        "currency",
        "fx_rate",
    ],
    build: donation_from_rows,
};

fn batch_from_rows(_service: &Service, h: &Header, rows: &[Row]) -> Result<Box<dyn Document>> {
    let first = &rows[0];
    let input = BatchIn {
        batch_id: h.req(first, "batch_id").into(),
        date: h.req(first, "date").into(),
        from_location: h.req(first, "from_location").into(),
        lines: rows
            .iter()
            .map(|r| BatchLineIn {
                destination: h.req(r, "destination").into(),
                sku: h.req(r, "sku").into(),
                qty: DecText(h.req(r, "qty").into()),
                lot: h.get(r, "lot").map(Into::into),
            })
            .collect(),
    };
    Ok(Box::new(parse_batch(&input)?))
}

fn donation_from_rows(service: &Service, h: &Header, rows: &[Row]) -> Result<Box<dyn Document>> {
    let first = &rows[0];
    let input = DonationIn {
        donation_id: h.req(first, "donation_id").into(),
        date: h.req(first, "date").into(),
        from_location: h.req(first, "from_location").into(),
        recipient: h.req(first, "recipient").into(),
        declared_value: DecText(h.req(first, "declared_value").into()),
        currency: h.get(first, "currency").map(Into::into),
        fx_rate: h.get(first, "fx_rate").map(|s| DecText(s.into())),
        lines: rows
            .iter()
            .map(|r| DonationLineIn {
                sku: h.req(r, "sku").into(),
                qty: DecText(h.req(r, "qty").into()),
                lot: h.get(r, "lot").map(Into::into),
            })
            .collect(),
    };
    Ok(Box::new(parse_donation(&input, service.base_currency())?))
}

pub(crate) struct DispatchDoc {
    dispatch: Dispatch,
    body: Value,
}

/// Parses a batch, naming every bad field.
pub(crate) fn parse_batch(input: &BatchIn) -> Result<DispatchDoc> {
    let mut f = Fields::default();
    let id = parse::doc_id(&mut f, "batch_id", &input.batch_id);
    let date = parse::date(&mut f, "date", &input.date);
    let from = parse::location(&mut f, "from_location", &input.from_location);
    let mut lines = Vec::with_capacity(input.lines.len());
    for (i, l) in input.lines.iter().enumerate() {
        let field = |name: &str| format!("lines[{i}].{name}");
        let destination = parse::party(&mut f, &field("destination"), &l.destination);
        let sku = parse::sku(&mut f, &field("sku"), &l.sku);
        let qty = parse::qty(&mut f, &field("qty"), &l.qty);
        let lot = parse::opt_lot(&mut f, &field("lot"), l.lot.as_deref());
        lines.push((|| {
            Some(DispatchLine {
                destination: destination?,
                sku: sku?,
                qty: qty?,
                lot: lot?,
            })
        })());
    }
    f.finish()?;
    let dispatch = Dispatch {
        id: id.expect("parsed"),
        kind: ShipmentKind::Batch,
        date: date.expect("parsed"),
        from_location: from.expect("parsed"),
        recipient: None,
        declared: None,
        lines: lines.into_iter().map(|l| l.expect("parsed")).collect(),
    };
    // The batch as the ledger understood it, so that replays are recognised.
    let body = serde_json::json!({
        "batch_id": dispatch.id,
        "date": dispatch.date.to_string(),
        "from_location": dispatch.from_location,
        "lines": dispatch.lines.iter().map(|l| serde_json::json!({
            "destination": l.destination,
            "sku": l.sku,
            "qty": l.qty.to_string(),
            "lot": l.lot,
        })).collect::<Vec<_>>(),
    });
    Ok(DispatchDoc { dispatch, body })
}

/// Parses a donation, naming every bad field.
pub(crate) fn parse_donation(input: &DonationIn, base_currency: &str) -> Result<DispatchDoc> {
    let mut f = Fields::default();
    let id = parse::doc_id(&mut f, "donation_id", &input.donation_id);
    let date = parse::date(&mut f, "date", &input.date);
    let from = parse::location(&mut f, "from_location", &input.from_location);
    let recipient = parse::party(&mut f, "recipient", &input.recipient);
    let declared_value = parse::money(&mut f, "declared_value", &input.declared_value);
    let currency = input
        .currency
        .clone()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| base_currency.to_owned());
    f.take(
        "currency",
        ledger::docs::check_currency("currency", &currency).map_err(|e| match e {
            Rejection::Invalid { message, .. } => message,
            other => other.to_string(),
        }),
    );
    let fx_rate = parse::opt_rate(&mut f, "fx_rate", input.fx_rate.as_ref());
    let mut lines = Vec::with_capacity(input.lines.len());
    for (i, l) in input.lines.iter().enumerate() {
        let field = |name: &str| format!("lines[{i}].{name}");
        let sku = parse::sku(&mut f, &field("sku"), &l.sku);
        let qty = parse::qty(&mut f, &field("qty"), &l.qty);
        let lot = parse::opt_lot(&mut f, &field("lot"), l.lot.as_deref());
        lines.push((sku, qty, lot));
    }
    f.finish()?;
    let recipient = recipient.expect("parsed");
    let dispatch = Dispatch {
        id: id.expect("parsed"),
        kind: ShipmentKind::Donation,
        date: date.expect("parsed"),
        from_location: from.expect("parsed"),
        recipient: Some(recipient.clone()),
        declared: Some(DeclaredIn {
            value: declared_value.expect("parsed"),
            currency,
            fx_rate: fx_rate.expect("parsed"),
        }),
        lines: lines
            .into_iter()
            .map(|(sku, qty, lot)| DispatchLine {
                destination: recipient.clone(),
                sku: sku.expect("parsed"),
                qty: qty.expect("parsed"),
                lot: lot.expect("parsed"),
            })
            .collect(),
    };
    let declared = dispatch.declared.as_ref().expect("a donation declares");
    let body = serde_json::json!({
        "donation_id": dispatch.id,
        "date": dispatch.date.to_string(),
        "from_location": dispatch.from_location,
        "recipient": recipient,
        "declared_value": declared.value.to_string(),
        "currency": declared.currency,
        "fx_rate": declared.fx_rate.map(|r| r.to_string()),
        "lines": dispatch.lines.iter().map(|l| serde_json::json!({
            "sku": l.sku,
            "qty": l.qty.to_string(),
            "lot": l.lot,
        })).collect::<Vec<_>>(),
    });
    Ok(DispatchDoc { dispatch, body })
}

impl Document for DispatchDoc {
    fn kind(&self) -> &'static str {
        self.dispatch.kind.as_str()
    }
    fn id(&self) -> Option<(&'static str, &str)> {
        Some((SHIPMENT_NS, self.dispatch.id.as_str()))
    }
    fn body(&self) -> &Value {
        &self.body
    }
    fn needs(&self) -> Needs {
        self.dispatch.needs()
    }
    fn decide(&self, state: &State, base_currency: &str) -> Result<Decision, Rejection> {
        self.dispatch.decide(state, base_currency).map(|(d, _)| d)
    }
    fn decide_with_shipment(
        &self,
        state: &State,
        base_currency: &str,
    ) -> Result<(Decision, Option<ShipmentChange>), Rejection> {
        let (d, c) = self.dispatch.decide(state, base_currency)?;
        Ok((d, Some(c)))
    }
    fn respond(&self, entry: &Entry, hash: &Hash, recorded_at: &str, _: &Decision) -> JsonText {
        crate::views::entry_answer(entry, hash, recorded_at)
    }
    fn respond_with_shipment(
        &self,
        _entry: &Entry,
        _hash: &Hash,
        _recorded_at: &str,
        _decision: &Decision,
        moves: &[ShipmentMove],
        shipment: &Shipment,
    ) -> JsonText {
        let view = DispatchView {
            shipment: shipment_view(shipment),
            picked: moves
                .iter()
                .map(|m| PickView {
                    line: m.line.unwrap_or_default(),
                    destination: m.destination.to_string(),
                    sku: m.sku.to_string(),
                    lot: m.lot.to_string(),
                    qty: m.dispatched.to_string(),
                    value: money(m.dispatched_value),
                })
                .collect(),
        };
        JsonText::of(&view)
    }
}

// ---------------------------------------------------------------------------------------
// Acknowledgements.

/// Acknowledgements in CSV: rows of one shipment and date (and `acknowledgement_id`, an
/// optional column) form one acknowledgement.
pub(crate) const ACK_CSV: DocumentCsv = DocumentCsv {
    id_column: "shipment_id",
    doc_columns: &[],
    build: ack_from_rows,
};

fn ack_from_rows(_service: &Service, h: &Header, rows: &[Row]) -> Result<Box<dyn Document>> {
    let first = &rows[0];
    let input = AcknowledgementIn {
        acknowledgement_id: h.get(first, "acknowledgement_id").map(Into::into),
        date: h.req(first, "date").into(),
        lines: rows
            .iter()
            .map(|r| AcknowledgementLineIn {
                destination: h.req(r, "destination").into(),
                sku: h.req(r, "sku").into(),
                lot: h.get(r, "lot").map(Into::into),
                received_qty: h.get(r, "received_qty").map(|s| DecText(s.into())),
                damaged_qty: h.get(r, "damaged_qty").map(|s| DecText(s.into())),
                note: h.get(r, "note").map(Into::into),
            })
            .collect(),
    };
    Ok(Box::new(parse_ack(h.req(first, "shipment_id"), &input)?))
}

pub(crate) struct AckDoc {
    ack: Acknowledgement,
    /// `<shipment>/<acknowledgement_id>`: its id in the `acknowledgement` namespace.
    doc_id: String,
    body: Value,
}

/// Parses an acknowledgement of `shipment_id`, naming every bad field, and gives it its id.
pub(crate) fn parse_ack(shipment_id: &str, input: &AcknowledgementIn) -> Result<AckDoc> {
    let mut f = Fields::default();
    let shipment = parse::doc_id(&mut f, "shipment_id", shipment_id);
    let given = input
        .acknowledgement_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| f.take("acknowledgement_id", DocId::parse(s)));
    let date = parse::date(&mut f, "date", &input.date);
    let zero = DecText("0".into());
    let mut lines = Vec::with_capacity(input.lines.len());
    for (i, l) in input.lines.iter().enumerate() {
        let field = |name: &str| format!("lines[{i}].{name}");
        let destination = parse::party(&mut f, &field("destination"), &l.destination);
        let sku = parse::sku(&mut f, &field("sku"), &l.sku);
        let lot = parse::opt_lot(&mut f, &field("lot"), l.lot.as_deref());
        let received = parse::qty(
            &mut f,
            &field("received_qty"),
            l.received_qty
                .as_ref()
                .filter(|d| !d.0.is_empty())
                .unwrap_or(&zero),
        );
        let damaged = parse::qty(
            &mut f,
            &field("damaged_qty"),
            l.damaged_qty
                .as_ref()
                .filter(|d| !d.0.is_empty())
                .unwrap_or(&zero),
        );
        let note = l.note.as_deref().unwrap_or("").trim().to_owned();
        if note.chars().any(char::is_control) {
            f.push(field("note"), "must not contain control characters");
        }
        lines.push((|| {
            Some(AckLine {
                destination: destination?,
                sku: sku?,
                lot: lot?,
                received: received?,
                damaged: damaged?,
                note,
            })
        })());
    }
    f.finish()?;
    let shipment = shipment.expect("parsed");
    let date = date.expect("parsed");
    let lines: Vec<AckLine> = lines.into_iter().map(|l| l.expect("parsed")).collect();
    // The content without its id: what a derived id is the hash of.
    let mut body = serde_json::json!({
        "shipment_id": shipment,
        "date": date.to_string(),
        "lines": lines.iter().map(|l| serde_json::json!({
            "destination": l.destination,
            "sku": l.sku,
            "lot": l.lot,
            "received_qty": l.received.to_string(),
            "damaged_qty": l.damaged.to_string(),
            "note": l.note,
        })).collect::<Vec<_>>(),
    });
    let id = match given {
        Some(id) => id.expect("parsed"),
        None => derived_ack_id(&body),
    };
    body["acknowledgement_id"] = Value::String(id.to_string());
    Ok(AckDoc {
        doc_id: format!("{shipment}/{id}"),
        ack: Acknowledgement {
            shipment,
            id,
            date,
            lines,
        },
        body,
    })
}

/// `ack-` and the first 96 bits of the SHA-256 of the normalised content: the same
/// acknowledgement, however written, gets the same id.
fn derived_ack_id(content: &Value) -> DocId {
    let hash = crate::writer::body_hash(ACK_NS, &content.to_string());
    DocId::parse(&format!("ack-{}", &hash[..24])).expect("hex digits make an identifier")
}

impl Document for AckDoc {
    fn kind(&self) -> &'static str {
        "acknowledgement"
    }
    fn id(&self) -> Option<(&'static str, &str)> {
        Some((ACK_NS, &self.doc_id))
    }
    fn body(&self) -> &Value {
        &self.body
    }
    fn needs(&self) -> Needs {
        self.ack.needs()
    }
    fn needs_then(&self, state: &State) -> Needs {
        self.ack.needs_then(state)
    }
    fn decide(&self, state: &State, _base_currency: &str) -> Result<Decision, Rejection> {
        self.ack.decide(state).map(|(d, _)| d)
    }
    fn decide_with_shipment(
        &self,
        state: &State,
        _base_currency: &str,
    ) -> Result<(Decision, Option<ShipmentChange>), Rejection> {
        let (d, c) = self.ack.decide(state)?;
        Ok((d, Some(c)))
    }
    fn respond(&self, entry: &Entry, hash: &Hash, recorded_at: &str, _: &Decision) -> JsonText {
        crate::views::entry_answer(entry, hash, recorded_at)
    }
    fn respond_with_shipment(
        &self,
        entry: &Entry,
        _hash: &Hash,
        _recorded_at: &str,
        _decision: &Decision,
        moves: &[ShipmentMove],
        shipment: &Shipment,
    ) -> JsonText {
        let a = &self.ack;
        let view = AcknowledgementView {
            acknowledgement_id: a.id.to_string(),
            shipment_id: a.shipment.to_string(),
            date: a.date.to_string(),
            entry_seq: entry.seq(),
            status: shipment.status().to_string(),
            lines: a
                .lines
                .iter()
                .map(|l| AcknowledgementLineView {
                    destination: l.destination.to_string(),
                    sku: l.sku.to_string(),
                    lot: l.lot.as_ref().map(|x| x.to_string()),
                    received_qty: l.received.to_string(),
                    damaged_qty: l.damaged.to_string(),
                    note: l.note.clone(),
                })
                .collect(),
            moved: moves
                .iter()
                .map(|m| AcknowledgedView {
                    line: m.line.unwrap_or_default(),
                    destination: m.destination.to_string(),
                    sku: m.sku.to_string(),
                    lot: m.lot.to_string(),
                    received: m.received.to_string(),
                    received_value: money(m.received_value),
                    damaged: m.damaged.to_string(),
                    damaged_value: money(m.damaged_value),
                    outstanding: m.outstanding.to_string(),
                })
                .collect(),
        };
        JsonText::of(&view)
    }
}

// ---------------------------------------------------------------------------------------
// Closing.

pub(crate) struct CloseDoc {
    closing: Closing,
    body: Value,
}

pub(crate) fn parse_close(shipment_id: &str, input: &CloseIn) -> Result<CloseDoc> {
    let mut f = Fields::default();
    let shipment = parse::doc_id(&mut f, "shipment_id", shipment_id);
    let date = parse::date(&mut f, "date", &input.date);
    f.finish()?;
    let closing = Closing {
        shipment: shipment.expect("parsed"),
        date: date.expect("parsed"),
        reason: input.reason.trim().to_owned(),
    };
    let body = serde_json::json!({
        "shipment_id": closing.shipment,
        "date": closing.date.to_string(),
        "reason": closing.reason,
    });
    Ok(CloseDoc { closing, body })
}

impl Document for CloseDoc {
    fn kind(&self) -> &'static str {
        "close"
    }
    fn id(&self) -> Option<(&'static str, &str)> {
        Some((CLOSE_NS, self.closing.shipment.as_str()))
    }
    fn body(&self) -> &Value {
        &self.body
    }
    fn needs(&self) -> Needs {
        self.closing.needs()
    }
    fn needs_then(&self, state: &State) -> Needs {
        self.closing.needs_then(state)
    }
    fn decide(&self, state: &State, _base_currency: &str) -> Result<Decision, Rejection> {
        self.closing.decide(state).map(|(d, _)| d)
    }
    fn decide_with_shipment(
        &self,
        state: &State,
        _base_currency: &str,
    ) -> Result<(Decision, Option<ShipmentChange>), Rejection> {
        let (d, c) = self.closing.decide(state)?;
        Ok((d, Some(c)))
    }
    fn respond(&self, entry: &Entry, hash: &Hash, recorded_at: &str, _: &Decision) -> JsonText {
        crate::views::entry_answer(entry, hash, recorded_at)
    }
    fn respond_with_shipment(
        &self,
        entry: &Entry,
        _hash: &Hash,
        _recorded_at: &str,
        _decision: &Decision,
        moves: &[ShipmentMove],
        shipment: &Shipment,
    ) -> JsonText {
        let c = &self.closing;
        let view = CloseView {
            shipment_id: c.shipment.to_string(),
            date: c.date.to_string(),
            reason: c.reason.clone(),
            entry_seq: entry.seq(),
            status: shipment.status().to_string(),
            short_value: money(moves.iter().map(|m| m.short_value).sum()),
            written_off: moves
                .iter()
                .map(|m| WrittenOffView {
                    destination: m.destination.to_string(),
                    sku: m.sku.to_string(),
                    lot: m.lot.to_string(),
                    short: m.short.to_string(),
                    value: money(m.short_value),
                })
                .collect(),
        };
        JsonText::of(&view)
    }
}

// ---------------------------------------------------------------------------------------
// The service's shipment calls.

/// Filter of a shipment list as the client wrote it.
#[derive(Debug, Clone, Default)]
pub struct ShipmentQuery {
    pub kind: Option<String>,
    pub status: Option<String>,
    pub destination: Option<String>,
}

impl Service {
    /// Records a frontline batch: its goods leave stock for `transit:<batch_id>`.
    pub async fn record_batch(
        &self,
        input: &BatchIn,
        actor: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Outcome> {
        let doc = parse_batch(input)?;
        self.submit(Box::new(doc), actor, idempotency_key).await
    }

    /// Records an overseas donation: its goods leave stock for `transit:<donation_id>`.
    pub async fn record_donation(
        &self,
        input: &DonationIn,
        actor: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Outcome> {
        let doc = parse_donation(input, self.base_currency())?;
        self.submit(Box::new(doc), actor, idempotency_key).await
    }

    /// Records an acknowledgement of shipment `shipment_id`.
    pub async fn acknowledge(
        &self,
        shipment_id: &str,
        input: &AcknowledgementIn,
        actor: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Outcome> {
        let doc = parse_ack(shipment_id, input)?;
        self.submit(Box::new(doc), actor, idempotency_key).await
    }

    /// Closes shipment `shipment_id`, writing off what is outstanding as short.
    pub async fn close_shipment(
        &self,
        shipment_id: &str,
        input: &CloseIn,
        actor: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Outcome> {
        let doc = parse_close(shipment_id, input)?;
        self.submit(Box::new(doc), actor, idempotency_key).await
    }

    /// A shipment as it is now; `kind` narrows it to batches or donations.
    pub async fn shipment(&self, id: &str, kind: Option<ShipmentKind>) -> Result<ShipmentView> {
        match self.store().shipment(id).await? {
            Some(s) if kind.is_none_or(|k| k == s.kind) => Ok(shipment_view(&s)),
            _ => Err(Rejection::NotFound {
                what: kind.map_or("shipment", ShipmentKind::as_str),
                id: id.to_owned(),
            }
            .into()),
        }
    }

    /// Shipments in dispatch order, filtered by kind, status and destination.
    pub async fn shipments(
        &self,
        query: &ShipmentQuery,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<ShipmentView>> {
        let mut f = Fields::default();
        let blank = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        let kind = blank(&query.kind);
        if let Some(k) = &kind {
            if ShipmentKind::parse(k).is_none() {
                f.push("kind", "must be batch or donation");
            }
        }
        let status = blank(&query.status);
        if let Some(s) = &status {
            if ShipmentStatus::parse(s).is_none() {
                f.push(
                    "status",
                    "must be dispatched, partly-acknowledged, acknowledged or closed",
                );
            }
        }
        let after = match after {
            None => None,
            Some(c) => match c.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    f.push("after", "is not a cursor this list gave");
                    None
                }
            },
        };
        f.finish()?;
        let limit = page_limit(limit);
        let filter = ShipmentFilter {
            kind,
            status,
            destination: blank(&query.destination),
        };
        let rows = self.store().shipments(&filter, after, limit).await?;
        let next = (rows.len() == limit as usize)
            .then(|| rows.last().map(|s| s.dispatch_seq.to_string()))
            .flatten();
        Ok(Page {
            items: rows.iter().map(shipment_view).collect(),
            next,
        })
    }

    /// The acknowledgements of a shipment, as answered when they were posted, oldest first.
    pub async fn acknowledgements(
        &self,
        shipment_id: &str,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<JsonText>> {
        if self.store().shipment(shipment_id).await?.is_none() {
            return Err(Rejection::NotFound {
                what: "shipment",
                id: shipment_id.to_owned(),
            }
            .into());
        }
        let limit = page_limit(limit);
        let after = after
            .map(|s| {
                s.parse::<u64>()
                    .map_err(|_| ServiceError::field("after", "is not a cursor this list gave"))
            })
            .transpose()?;
        let rows = self
            .store()
            .documents_for("acknowledgement", shipment_id, after, limit)
            .await?;
        let next = (rows.len() == limit as usize)
            .then(|| rows.last().map(|(pos, _)| pos.to_string()))
            .flatten();
        Ok(Page {
            items: rows.into_iter().map(|(_, d)| d.response).collect(),
            next,
        })
    }

    /// One acknowledgement of a shipment, as answered when it was posted.
    pub async fn acknowledgement(&self, shipment_id: &str, ack_id: &str) -> Result<JsonText> {
        self.document(
            ACK_NS,
            "acknowledgement",
            &format!("{shipment_id}/{ack_id}"),
        )
        .await
    }
}
