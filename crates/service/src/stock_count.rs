//! Stock counts: parsing a request into the domain's `StockCount`, and the answer once posted
//! (per line the book quantity, the count and the difference moved to or from `loss`).

use ledger::docs::Decision;
use ledger::production::{CountLine, StockCount};
use ledger::{Entry, Hash, LotNo, Money, Needs, Rejection, State};
use serde_json::Value;
use store::JsonText;

use crate::dto_production::{StockCountIn, StockCountLineView, StockCountView};
use crate::error::{Fields, Result};
use crate::purchase::money;
use crate::writer::Document;
use crate::{parse, Service};

/// The kind and id namespace of stock counts.
pub(crate) const KIND: &str = "stock-count";

pub(crate) struct StockCountDoc {
    count: StockCount,
    body: Value,
}

/// Parses a stock count request, naming every bad field.
pub(crate) fn parse_count(input: &StockCountIn) -> Result<StockCountDoc> {
    let mut f = Fields::default();
    let id = parse::doc_id(&mut f, "count_id", &input.count_id);
    let date = parse::date(&mut f, "date", &input.date);
    let location = parse::location(&mut f, "location", &input.location);
    let lines: Vec<Option<CountLine>> = input
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let field = |name: &str| format!("lines[{i}].{name}");
            let sku = parse::sku(&mut f, &field("sku"), &l.sku);
            let lot = f.take(field("lot"), LotNo::parse(&l.lot));
            let counted = parse::qty(&mut f, &field("counted_qty"), &l.counted_qty);
            Some(CountLine {
                sku: sku?,
                lot: lot?,
                counted: counted?,
            })
        })
        .collect();
    f.finish()?;
    let count = StockCount {
        id: id.expect("parsed"),
        date: date.expect("parsed"),
        location: location.expect("parsed"),
        lines: lines.into_iter().map(|l| l.expect("parsed")).collect(),
    };
    let body = serde_json::json!({
        "count_id": count.id,
        "date": count.date.to_string(),
        "location": count.location,
        "lines": count.lines.iter().map(|l| serde_json::json!({
            "sku": l.sku,
            "lot": l.lot,
            "counted_qty": l.counted.to_string(),
        })).collect::<Vec<_>>(),
    });
    Ok(StockCountDoc { count, body })
}

impl Document for StockCountDoc {
    fn kind(&self) -> &'static str {
        KIND
    }
    fn id(&self) -> Option<(&'static str, &str)> {
        Some((KIND, self.count.id.as_str()))
    }
    fn body(&self) -> &Value {
        &self.body
    }
    fn needs(&self) -> Needs {
        self.count.needs()
    }
    fn decide(&self, state: &State, _base_currency: &str) -> Result<Decision, Rejection> {
        self.count.decide(state)
    }
    fn respond(&self, entry: &Entry, _: &Hash, _: &str, _: &Decision) -> JsonText {
        let c = &self.count;
        // Each line made two postings, the stock one first (StockCount::decide).
        let stock_postings = entry.postings().iter().step_by(2);
        let lines: Vec<StockCountLineView> = c
            .lines
            .iter()
            .zip(stock_postings)
            .map(|(l, p)| StockCountLineView {
                sku: l.sku.to_string(),
                lot: l.lot.to_string(),
                book_qty: (l.counted - p.qty).to_string(),
                counted_qty: l.counted.to_string(),
                difference_qty: p.qty.to_string(),
                difference_value: money(p.value),
            })
            .collect();
        let total: Money = entry.postings().iter().step_by(2).map(|p| p.value).sum();
        let view = StockCountView {
            count_id: c.id.to_string(),
            date: c.date.to_string(),
            location: c.location.to_string(),
            entry_seq: entry.seq(),
            difference_value: money(total),
            lines,
        };
        JsonText::of(&view)
    }
}

impl Service {
    /// Records a stock count.
    pub async fn record_stock_count(
        &self,
        input: &StockCountIn,
        actor: &str,
        idempotency_key: Option<&str>,
    ) -> Result<crate::Outcome> {
        let doc = parse_count(input)?;
        self.submit(Box::new(doc), actor, idempotency_key).await
    }
}
