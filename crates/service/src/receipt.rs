//! In-kind receipts: parsing a request into the domain's `Receipt`, its answer once posted,
//! and its CSV form.

use ledger::shipment::{Receipt, ReceiptLine};
use ledger::{Account, Entry, Money, Needs, Rejection, State};
use serde_json::Value;
use store::JsonText;

use crate::dto::{DecText, ReceiptIn, ReceiptLineIn, ReceiptLineView, ReceiptView};
use crate::error::{Fields, Result};
use crate::import::{DocumentCsv, Header, Row};
use crate::parse;
use crate::purchase::money;
use crate::writer::{Document, Outcome};
use crate::Service;

/// Receipts in CSV: one row per line, the document-level columns repeated.
pub(crate) const CSV: DocumentCsv = DocumentCsv {
    id_column: "receipt_id",
    doc_columns: &["date", "donor", "location"],
    build: from_rows,
};

fn from_rows(_service: &Service, h: &Header, rows: &[Row]) -> Result<Box<dyn Document>> {
    let first = &rows[0];
    let input = ReceiptIn {
        receipt_id: h.req(first, "receipt_id").into(),
        date: h.req(first, "date").into(),
        donor: h.req(first, "donor").into(),
        location: h.req(first, "location").into(),
        lines: rows
            .iter()
            .map(|r| ReceiptLineIn {
                sku: h.req(r, "sku").into(),
                qty: DecText(h.req(r, "qty").into()),
                unit_value: DecText(h.req(r, "unit_value").into()),
                lot: h.get(r, "lot").map(Into::into),
                expires_on: h.get(r, "expires_on").map(Into::into),
            })
            .collect(),
    };
    Ok(Box::new(parse(&input)?))
}

pub(crate) struct ReceiptDoc {
    receipt: Receipt,
    body: Value,
}

/// Parses a receipt request, naming every bad field.
pub(crate) fn parse(input: &ReceiptIn) -> Result<ReceiptDoc> {
    let mut f = Fields::default();
    let id = parse::doc_id(&mut f, "receipt_id", &input.receipt_id);
    let date = parse::date(&mut f, "date", &input.date);
    let donor = parse::party(&mut f, "donor", &input.donor);
    let location = parse::location(&mut f, "location", &input.location);
    let mut lines = Vec::with_capacity(input.lines.len());
    for (i, l) in input.lines.iter().enumerate() {
        let field = |name: &str| format!("lines[{i}].{name}");
        let sku = parse::sku(&mut f, &field("sku"), &l.sku);
        let qty = parse::qty(&mut f, &field("qty"), &l.qty);
        let unit_value = parse::money(&mut f, &field("unit_value"), &l.unit_value);
        let lot = parse::opt_lot(&mut f, &field("lot"), l.lot.as_deref());
        let expires_on = parse::opt_date(&mut f, &field("expires_on"), l.expires_on.as_deref());
        lines.push((|| {
            Some(ReceiptLine {
                sku: sku?,
                qty: qty?,
                unit_value: unit_value?,
                lot: lot?,
                expires_on: expires_on?,
            })
        })());
    }
    f.finish()?;
    let receipt = Receipt {
        id: id.expect("parsed"),
        date: date.expect("parsed"),
        donor: donor.expect("parsed"),
        location: location.expect("parsed"),
        lines: lines
            .into_iter()
            .map(|l| l.expect("all lines parsed"))
            .collect(),
    };
    // The receipt as the ledger understood it, so that the same document written any way
    // (numbers or strings, `0.50` or `0.5`) is recognised as a replay.
    let body = serde_json::json!({
        "receipt_id": receipt.id,
        "date": receipt.date.to_string(),
        "donor": receipt.donor,
        "location": receipt.location,
        "lines": receipt.lines.iter().map(|l| serde_json::json!({
            "sku": l.sku,
            "qty": l.qty.to_string(),
            "unit_value": l.unit_value.to_string(),
            "lot": l.lot,
            "expires_on": l.expires_on.map(|d| d.to_string()),
        })).collect::<Vec<_>>(),
    });
    Ok(ReceiptDoc { receipt, body })
}

impl Document for ReceiptDoc {
    fn kind(&self) -> &'static str {
        "receipt"
    }
    fn id(&self) -> Option<(&'static str, &str)> {
        Some(("receipt", self.receipt.id.as_str()))
    }
    fn body(&self) -> &Value {
        &self.body
    }
    fn needs(&self) -> Needs {
        self.receipt.needs()
    }
    fn decide(
        &self,
        state: &State,
        _base_currency: &str,
    ) -> Result<ledger::docs::Decision, Rejection> {
        self.receipt.decide(state)
    }
    fn respond(
        &self,
        entry: &Entry,
        _hash: &ledger::Hash,
        _recorded_at: &str,
        decision: &ledger::docs::Decision,
    ) -> JsonText {
        let r = &self.receipt;
        let stock = Account::Stock(r.location.clone());
        // Each line made one lot and one stock posting, in line order.
        let stock_postings: Vec<_> = entry
            .postings()
            .iter()
            .filter(|x| x.account == stock)
            .collect();
        assert_eq!(
            stock_postings.len(),
            r.lines.len(),
            "one stock posting per receipt line"
        );
        let lines = r
            .lines
            .iter()
            .zip(&stock_postings)
            .zip(&decision.new_lots)
            .map(|((l, posting), lot)| ReceiptLineView {
                sku: l.sku.to_string(),
                qty: l.qty.to_string(),
                unit_value: l.unit_value.to_string(),
                lot: lot.lot.to_string(),
                expires_on: lot.expires_on.map(|d| d.to_string()),
                value: money(posting.value),
            })
            .collect();
        let total: Money = stock_postings.iter().map(|x| x.value).sum();
        let view = ReceiptView {
            receipt_id: r.id.to_string(),
            date: r.date.to_string(),
            donor: r.donor.to_string(),
            location: r.location.to_string(),
            entry_seq: entry.seq(),
            total_value: money(total),
            lines,
        };
        JsonText::of(&view)
    }
}

impl Service {
    /// Records an in-kind receipt.
    pub async fn record_receipt(
        &self,
        input: &ReceiptIn,
        actor: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Outcome> {
        let doc = parse(input)?;
        self.submit(Box::new(doc), actor, idempotency_key).await
    }
}
