//! Purchases: parsing a request into the domain's `Purchase`, and the answer once posted.

use ledger::docs::{Decision, Purchase, PurchaseLine};
use ledger::{Account, Entry, Money, Needs, Rejection, State};
use serde_json::Value;
use store::JsonText;

use crate::dto::{DecText, PurchaseIn, PurchaseLineIn, PurchaseLineView, PurchaseView};
use crate::error::{Fields, Result};
use crate::import::{DocumentCsv, Header, Row};
use crate::parse;
use crate::writer::Document;
use crate::Service;

/// Purchases in CSV: one row per line, the document-level columns repeated.
pub(crate) const CSV: DocumentCsv = DocumentCsv {
    id_column: "purchase_id",
    doc_columns: &["date", "supplier", "location", "currency", "fx_rate"],
    build: from_rows,
};

fn from_rows(service: &Service, h: &Header, rows: &[Row]) -> Result<Box<dyn Document>> {
    let first = &rows[0];
    let input = PurchaseIn {
        purchase_id: h.req(first, "purchase_id").into(),
        date: h.req(first, "date").into(),
        supplier: h.req(first, "supplier").into(),
        location: h.req(first, "location").into(),
        currency: h.get(first, "currency").map(Into::into),
        fx_rate: h.get(first, "fx_rate").map(|s| DecText(s.into())),
        lines: rows
            .iter()
            .map(|r| PurchaseLineIn {
                sku: h.req(r, "sku").into(),
                qty: DecText(h.req(r, "qty").into()),
                unit_price: DecText(h.req(r, "unit_price").into()),
                lot: h.get(r, "lot").map(Into::into),
                expires_on: h.get(r, "expires_on").map(Into::into),
            })
            .collect(),
    };
    Ok(Box::new(parse(&input, service.base_currency())?))
}

pub(crate) struct PurchaseDoc {
    purchase: Purchase,
    body: Value,
}

/// Parses a purchase request, naming every bad field.
pub(crate) fn parse(input: &PurchaseIn, base_currency: &str) -> Result<PurchaseDoc> {
    let mut f = Fields::default();
    let id = parse::doc_id(&mut f, "purchase_id", &input.purchase_id);
    let date = parse::date(&mut f, "date", &input.date);
    let supplier = parse::party(&mut f, "supplier", &input.supplier);
    let location = parse::location(&mut f, "location", &input.location);
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
        lines.push(parse_line(&mut f, i, l));
    }
    f.finish()?;
    let lines = lines
        .into_iter()
        .map(|l| l.expect("all lines parsed"))
        .collect();
    let purchase = Purchase {
        id: id.expect("parsed"),
        date: date.expect("parsed"),
        supplier: supplier.expect("parsed"),
        location: location.expect("parsed"),
        currency,
        fx_rate: fx_rate.expect("parsed"),
        lines,
    };
    let body = normalised(&purchase);
    Ok(PurchaseDoc { purchase, body })
}

fn parse_line(f: &mut Fields, i: usize, l: &PurchaseLineIn) -> Option<PurchaseLine> {
    let field = |name: &str| format!("lines[{i}].{name}");
    let sku = parse::sku(f, &field("sku"), &l.sku);
    let qty = parse::qty(f, &field("qty"), &l.qty);
    let unit_price = parse::money(f, &field("unit_price"), &l.unit_price);
    let lot = parse::opt_lot(f, &field("lot"), l.lot.as_deref());
    let expires_on = parse::opt_date(f, &field("expires_on"), l.expires_on.as_deref());
    Some(PurchaseLine {
        sku: sku?,
        qty: qty?,
        unit_price: unit_price?,
        lot: lot?,
        expires_on: expires_on?,
    })
}

/// The purchase as the ledger understood it: the same document written any way (numbers or
/// strings, `1.50` or `1.5`, an empty rate for the base currency) normalises to the same body.
fn normalised(p: &Purchase) -> Value {
    serde_json::json!({
        "purchase_id": p.id,
        "date": p.date.to_string(),
        "supplier": p.supplier,
        "location": p.location,
        "currency": p.currency,
        "fx_rate": p.fx_rate.map(|r| r.to_string()),
        "lines": p.lines.iter().map(|l| serde_json::json!({
            "sku": l.sku,
            "qty": l.qty.to_string(),
            "unit_price": l.unit_price.to_string(),
            "lot": l.lot,
            "expires_on": l.expires_on.map(|d| d.to_string()),
        })).collect::<Vec<_>>(),
    })
}

impl Document for PurchaseDoc {
    fn kind(&self) -> &'static str {
        "purchase"
    }
    fn id(&self) -> Option<(&'static str, &str)> {
        Some(("purchase", self.purchase.id.as_str()))
    }
    fn body(&self) -> &Value {
        &self.body
    }
    fn needs(&self) -> Needs {
        self.purchase.needs()
    }
    fn decide(&self, state: &State, base_currency: &str) -> Result<Decision, Rejection> {
        self.purchase.decide(state, base_currency)
    }
    fn respond(
        &self,
        entry: &Entry,
        _hash: &ledger::Hash,
        _recorded_at: &str,
        decision: &Decision,
    ) -> JsonText {
        let p = &self.purchase;
        let stock = Account::Stock(p.location.clone());
        // Each line made one lot and one stock posting, in line order.
        let stock_postings: Vec<_> = entry
            .postings()
            .iter()
            .filter(|x| x.account == stock)
            .collect();
        assert_eq!(
            stock_postings.len(),
            p.lines.len(),
            "one stock posting per purchase line"
        );
        let lines: Vec<PurchaseLineView> = p
            .lines
            .iter()
            .zip(stock_postings.iter())
            .zip(decision.new_lots.iter())
            .map(|((l, posting), lot)| PurchaseLineView {
                sku: l.sku.to_string(),
                qty: l.qty.to_string(),
                unit_price: l.unit_price.to_string(),
                lot: lot.lot.to_string(),
                expires_on: lot.expires_on.map(|d| d.to_string()),
                value: money(posting.value),
            })
            .collect();
        let total: Money = stock_postings.iter().map(|x| x.value).sum();
        let view = PurchaseView {
            purchase_id: p.id.to_string(),
            date: p.date.to_string(),
            supplier: p.supplier.to_string(),
            location: p.location.to_string(),
            currency: p.currency.clone(),
            fx_rate: p.fx_rate.map_or_else(|| "1".to_owned(), |r| r.to_string()),
            entry_seq: entry.seq(),
            total_value: money(total),
            lines,
        };
        JsonText::of(&view)
    }
}

/// Money as written in answers: always 4 decimals, the ledger's precision.
pub fn money(m: Money) -> String {
    MoneyText(m).to_string()
}

/// [`money`]'s text, written where it is displayed, without a `String` first.
pub struct MoneyText(pub Money);

impl std::fmt::Display for MoneyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0.at_scale(), f)
    }
}
