//! Production runs: parsing a request into the domain's `ProductionRun`, the answer once
//! posted (with the run's report), CSV import, and the production report (JSON and CSV).
//!
//! A run's answer and report need its BOM, which only the writer's state holds, so a run
//! answers through `Document::finish`, which also hands the report to the batch: the store
//! writes it in the run's transaction and marks the BOM version used.

use ledger::docs::Decision;
use ledger::production::{ProductionRun, RunLine, RunReport};
use ledger::{Account, BomVersion, Entry, Hash, Money, Needs, Qty, Rejection, State};
use serde_json::Value;
use store::{JsonText, ProductionRunRecord, RunFilter, WriteBatch, PAGE_MAX};

use crate::dto::{DecText, Page};
use crate::dto_production::{
    ConsumedView, MaterialUseView, ProductionLineIn, ProductionRunIn, ProductionRunView,
    RunReportView,
};
use crate::error::{Fields, Result, ServiceError};
use crate::export::{Cell, CsvOut};
use crate::import::{DocumentCsv, Header, Row};
use crate::purchase::money;
use crate::writer::Document;
use crate::{page_limit, parse, Service};

/// The kind and id namespace of production runs.
pub(crate) const KIND: &str = "production-run";

/// The columns of `ppe import production` (DESIGN section 4, and `expires_on` for the output
/// lot's expiry).
pub(crate) const CSV_COLUMNS: &[&str] = &[
    "run_id",
    "date",
    "product_sku",
    "bom_version",
    "from_location",
    "to_location",
    "good_qty",
    "scrap_qty",
    "output_lot",
    "labor_cost",
    "overhead_cost",
    "material_sku",
    "material_lot",
    "material_qty",
    "expires_on",
];

/// Columns a production file may leave out: empty cells there mean 0 (scrap, labour,
/// overhead), a made-up lot number, the shelf-life expiry, or the BOM's standard materials.
pub(crate) const CSV_OPTIONAL: &[&str] = &[
    "scrap_qty",
    "output_lot",
    "labor_cost",
    "overhead_cost",
    "material_sku",
    "material_lot",
    "material_qty",
    "expires_on",
];

const MATERIAL_COLUMNS: &[&str] = &["material_sku", "material_lot", "material_qty"];

/// Production runs in CSV: one row per material consumed, the run's columns repeated; a run
/// with a single row and no material cells consumes the BOM's standard quantities.
pub(crate) const CSV: DocumentCsv = DocumentCsv {
    id_column: "run_id",
    doc_columns: &[
        "date",
        "product_sku",
        "bom_version",
        "from_location",
        "to_location",
        "good_qty",
        "scrap_qty",
        "output_lot",
        "labor_cost",
        "overhead_cost",
        "expires_on",
    ],
    build: from_rows,
};

fn from_rows(_service: &Service, h: &Header, rows: &[Row]) -> Result<Box<dyn Document>> {
    let first = &rows[0];
    let names_material = |r: &Row| MATERIAL_COLUMNS.iter().any(|c| h.get(r, c).is_some());
    let lines = if rows.len() == 1 && !names_material(first) {
        Vec::new()
    } else {
        // `lines[i]` must stay the i-th row, so that a refusal names the right line.
        let mut f = Fields::default();
        for (i, r) in rows.iter().enumerate() {
            if h.get(r, "material_sku").is_none() {
                f.push(
                    format!("lines[{i}].sku"),
                    "is empty; a run names a material on every row, or has a single row without any to consume its BOM's standard quantities",
                );
            }
        }
        f.finish()?;
        rows.iter()
            .map(|r| ProductionLineIn {
                sku: h.req(r, "material_sku").into(),
                lot: h.get(r, "material_lot").map(Into::into),
                qty: DecText(h.req(r, "material_qty").into()),
            })
            .collect()
    };
    let opt_dec = |c: &str| h.get(first, c).map(|s| DecText(s.into()));
    let input = ProductionRunIn {
        run_id: h.req(first, "run_id").into(),
        date: h.req(first, "date").into(),
        product_sku: h.req(first, "product_sku").into(),
        bom_version: h.req(first, "bom_version").into(),
        from_location: h.req(first, "from_location").into(),
        to_location: h.req(first, "to_location").into(),
        good_qty: DecText(h.req(first, "good_qty").into()),
        scrap_qty: opt_dec("scrap_qty"),
        output_lot: h.get(first, "output_lot").map(Into::into),
        expires_on: h.get(first, "expires_on").map(Into::into),
        labor_cost: opt_dec("labor_cost"),
        overhead_cost: opt_dec("overhead_cost"),
        lines,
    };
    Ok(Box::new(parse_run(&input)?))
}

pub(crate) struct ProductionRunDoc {
    run: ProductionRun,
    body: Value,
}

fn opt_qty(f: &mut Fields, field: &str, d: Option<&DecText>) -> Option<Qty> {
    match d.filter(|d| !d.0.is_empty()) {
        None => Some(Qty::ZERO),
        Some(d) => parse::qty(f, field, d),
    }
}

fn opt_money(f: &mut Fields, field: &str, d: Option<&DecText>) -> Option<Money> {
    match d.filter(|d| !d.0.is_empty()) {
        None => Some(Money::ZERO),
        Some(d) => parse::money(f, field, d),
    }
}

/// Parses a production run request, naming every bad field.
pub(crate) fn parse_run(input: &ProductionRunIn) -> Result<ProductionRunDoc> {
    let mut f = Fields::default();
    let id = parse::doc_id(&mut f, "run_id", &input.run_id);
    let date = parse::date(&mut f, "date", &input.date);
    let product = parse::sku(&mut f, "product_sku", &input.product_sku);
    let bom_version = f.take("bom_version", BomVersion::parse(&input.bom_version));
    let from = parse::location(&mut f, "from_location", &input.from_location);
    let to = parse::location(&mut f, "to_location", &input.to_location);
    let good_qty = parse::qty(&mut f, "good_qty", &input.good_qty);
    let scrap_qty = opt_qty(&mut f, "scrap_qty", input.scrap_qty.as_ref());
    let output_lot = parse::opt_lot(&mut f, "output_lot", input.output_lot.as_deref());
    let expires_on = parse::opt_date(&mut f, "expires_on", input.expires_on.as_deref());
    let labor_cost = opt_money(&mut f, "labor_cost", input.labor_cost.as_ref());
    let overhead_cost = opt_money(&mut f, "overhead_cost", input.overhead_cost.as_ref());
    let lines: Vec<Option<RunLine>> = input
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let field = |name: &str| format!("lines[{i}].{name}");
            let sku = parse::sku(&mut f, &field("sku"), &l.sku);
            let lot = parse::opt_lot(&mut f, &field("lot"), l.lot.as_deref());
            let qty = parse::qty(&mut f, &field("qty"), &l.qty);
            Some(RunLine {
                sku: sku?,
                lot: lot?,
                qty: qty?,
            })
        })
        .collect();
    f.finish()?;
    let run = ProductionRun {
        id: id.expect("parsed"),
        date: date.expect("parsed"),
        product: product.expect("parsed"),
        bom_version: bom_version.expect("parsed"),
        from: from.expect("parsed"),
        to: to.expect("parsed"),
        good_qty: good_qty.expect("parsed"),
        scrap_qty: scrap_qty.expect("parsed"),
        output_lot: output_lot.expect("parsed"),
        expires_on: expires_on.expect("parsed"),
        labor_cost: labor_cost.expect("parsed"),
        overhead_cost: overhead_cost.expect("parsed"),
        lines: lines.into_iter().map(|l| l.expect("parsed")).collect(),
    };
    let body = normalised(&run);
    Ok(ProductionRunDoc { run, body })
}

/// The run as the ledger understood it: absent and zero scrap, labour and overhead, numbers
/// or strings, `40` or `40.00`, normalise to the same body, so a replay is recognised.
fn normalised(r: &ProductionRun) -> Value {
    serde_json::json!({
        "run_id": r.id,
        "date": r.date.to_string(),
        "product_sku": r.product,
        "bom_version": r.bom_version,
        "from_location": r.from,
        "to_location": r.to,
        "good_qty": r.good_qty.to_string(),
        "scrap_qty": r.scrap_qty.to_string(),
        "output_lot": r.output_lot,
        "expires_on": r.expires_on.map(|d| d.to_string()),
        "labor_cost": r.labor_cost.to_string(),
        "overhead_cost": r.overhead_cost.to_string(),
        "lines": r.lines.iter().map(|l| serde_json::json!({
            "sku": l.sku,
            "lot": l.lot,
            "qty": l.qty.to_string(),
        })).collect::<Vec<_>>(),
    })
}

/// A run's report as answered and listed.
pub(crate) fn report_view(
    r: &RunReport,
    entry_seq: u64,
    reversed_by: Option<u64>,
) -> RunReportView {
    RunReportView {
        run_id: r.run_id.to_string(),
        date: r.date.to_string(),
        product_sku: r.product.to_string(),
        bom_version: r.bom_version.to_string(),
        output_lot: r.output_lot.to_string(),
        good_qty: r.good_qty.to_string(),
        scrap_qty: r.scrap_qty.to_string(),
        material_cost: money(r.material_cost),
        labor_cost: money(r.labor_cost),
        overhead_cost: money(r.overhead_cost),
        total_cost: money(r.total_cost),
        unit_cost: money(r.unit_cost),
        entry_seq,
        reversed_by,
        materials: r
            .materials
            .iter()
            .map(|m| MaterialUseView {
                material_sku: m.sku.to_string(),
                standard_qty: m.standard_qty.to_string(),
                actual_qty: m.actual_qty.to_string(),
                variance_qty: m.variance_qty().to_string(),
                actual_cost: money(m.actual_cost),
            })
            .collect(),
    }
}

impl Document for ProductionRunDoc {
    fn kind(&self) -> &'static str {
        KIND
    }
    fn id(&self) -> Option<(&'static str, &str)> {
        Some((KIND, self.run.id.as_str()))
    }
    fn body(&self) -> &Value {
        &self.body
    }
    fn needs(&self) -> Needs {
        self.run.needs()
    }
    fn needs_then(&self, state: &State) -> Needs {
        self.run.needs_then(state)
    }
    fn decide(&self, state: &State, _base_currency: &str) -> Result<Decision, Rejection> {
        self.run.decide(state)
    }
    fn respond(&self, _: &Entry, _: &Hash, _: &str, _: &Decision) -> JsonText {
        unreachable!("the writer answers a run through finish, which reads the run's BOM")
    }
    fn finish(
        &self,
        state: &State,
        entry: &Entry,
        _hash: &Hash,
        _recorded_at: &str,
        decision: &Decision,
        batch: &mut WriteBatch,
    ) -> JsonText {
        let r = &self.run;
        let report = r.report(state, entry);
        let from = Account::Stock(r.from.clone());
        // The materials' postings out of the source location, in the order they were picked.
        let consumed = entry
            .postings()
            .iter()
            .filter(|p| p.account == from && p.qty.is_negative())
            .map(|p| ConsumedView {
                sku: p.sku.to_string(),
                lot: p.lot.to_string(),
                qty: (-p.qty).to_string(),
                value: money(-p.value),
            })
            .collect();
        let output = &decision.new_lots[0];
        let view = ProductionRunView {
            run_id: r.id.to_string(),
            date: r.date.to_string(),
            product_sku: r.product.to_string(),
            bom_version: r.bom_version.to_string(),
            from_location: r.from.to_string(),
            to_location: r.to.to_string(),
            good_qty: r.good_qty.to_string(),
            scrap_qty: r.scrap_qty.to_string(),
            output_lot: output.lot.to_string(),
            expires_on: output.expires_on.map(|d| d.to_string()),
            labor_cost: money(r.labor_cost),
            overhead_cost: money(r.overhead_cost),
            entry_seq: entry.seq(),
            consumed,
            report: report_view(&report, entry.seq(), None),
        };
        batch.production_runs.push(ProductionRunRecord {
            entry_seq: entry.seq(),
            report,
        });
        JsonText::of(&view)
    }
}

/// The filter of the production report, as the client wrote it.
#[derive(Debug, Clone, Default)]
pub struct ReportQuery {
    pub run_id: Option<String>,
    pub product_sku: Option<String>,
}

impl ReportQuery {
    fn filter(&self) -> RunFilter {
        RunFilter {
            run_id: self.run_id.clone().filter(|s| !s.is_empty()),
            product_sku: self.product_sku.clone().filter(|s| !s.is_empty()),
        }
    }
}

impl Service {
    /// Records a production run.
    pub async fn record_production_run(
        &self,
        input: &ProductionRunIn,
        actor: &str,
        idempotency_key: Option<&str>,
    ) -> Result<crate::Outcome> {
        let doc = parse_run(input)?;
        self.submit(Box::new(doc), actor, idempotency_key).await
    }

    /// A recorded run as it was answered, with its report's reversal as it stands now.
    pub async fn production_run(&self, id: &str) -> Result<Value> {
        // The stored text is read as a tree here: the reversal is written into it.
        let mut doc = self.document(KIND, KIND, id).await?.to_value();
        self.overlay_reversals(std::slice::from_mut(&mut doc))
            .await?;
        Ok(doc)
    }

    /// Recorded runs, oldest first, each with its report's reversal as it stands now.
    pub async fn production_runs(
        &self,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Value>> {
        let page = self.documents(KIND, after, limit).await?;
        let mut items: Vec<Value> = page.items.iter().map(JsonText::to_value).collect();
        self.overlay_reversals(&mut items).await?;
        Ok(Page {
            items,
            next: page.next,
        })
    }

    /// Sets `report.reversed_by` of recorded run answers from the ledger: a run's answer is
    /// recorded once, its reversal may come later. Runs and their report rows are stored in
    /// the same order, so one query covers a page.
    async fn overlay_reversals(&self, runs: &mut [Value]) -> Result<()> {
        let seqs: Vec<u64> = runs
            .iter()
            .filter_map(|r| r["entry_seq"].as_u64())
            .collect();
        let (Some(first), Some(count)) = (seqs.iter().min(), u32::try_from(seqs.len()).ok()) else {
            return Ok(());
        };
        let rows = self
            .store()
            .production_runs(&RunFilter::default(), Some(first - 1), count.min(PAGE_MAX))
            .await?;
        for r in runs.iter_mut() {
            if let Some(row) = rows
                .iter()
                .find(|x| Some(x.entry_seq) == r["entry_seq"].as_u64())
            {
                r["report"]["reversed_by"] = row.reversed_by.into();
            }
        }
        Ok(())
    }

    /// The production report: per run, output, costs and material variance, in the order the
    /// runs were recorded; the cursor is the last run's entry.
    pub async fn production_report(
        &self,
        query: &ReportQuery,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<RunReportView>> {
        let limit = page_limit(limit);
        let after =
            match after {
                None => None,
                Some(c) => Some(c.parse::<u64>().map_err(|_| {
                    ServiceError::field("after", "is not a cursor this report gave")
                })?),
            };
        let rows = self
            .store()
            .production_runs(&query.filter(), after, limit)
            .await?;
        let next = (rows.len() == limit as usize)
            .then(|| rows.last().map(|r| r.entry_seq.to_string()))
            .flatten();
        Ok(Page {
            items: rows
                .iter()
                .map(|r| report_view(&r.report, r.entry_seq, r.reversed_by))
                .collect(),
            next,
        })
    }

    /// The whole production report as CSV: one row per run and material.
    pub async fn production_report_csv(&self, query: &ReportQuery) -> Result<String> {
        let mut out = CsvOut::new();
        out.header(REPORT_COLUMNS);
        let mut after = None;
        loop {
            let rows = self
                .store()
                .production_runs(&query.filter(), after, PAGE_MAX)
                .await?;
            for r in &rows {
                report_rows(
                    &mut out,
                    &report_view(&r.report, r.entry_seq, r.reversed_by),
                );
            }
            match rows.last() {
                Some(last) if rows.len() == PAGE_MAX as usize => after = Some(last.entry_seq),
                _ => break,
            }
        }
        Ok(out.finish())
    }
}

/// The production report's CSV columns: DESIGN's first, then the rest of the JSON fields.
pub const REPORT_COLUMNS: &[&str] = &[
    "run_id",
    "product_sku",
    "good_qty",
    "scrap_qty",
    "total_cost",
    "unit_cost",
    "material_sku",
    "standard_qty",
    "actual_qty",
    "variance_qty",
    "actual_cost",
    "date",
    "bom_version",
    "output_lot",
    "material_cost",
    "labor_cost",
    "overhead_cost",
    "entry_seq",
    "reversed_by",
];

/// One CSV row per material of a run (a run without materials still gets one row).
fn report_rows(out: &mut CsvOut, r: &RunReportView) {
    let seq = r.entry_seq.to_string();
    let reversed = r.reversed_by.map(|s| s.to_string()).unwrap_or_default();
    let row = |out: &mut CsvOut, m: Option<&MaterialUseView>| {
        let text = |f: fn(&MaterialUseView) -> &str| m.map_or("", f);
        out.row(&[
            Cell::Text(&r.run_id),
            Cell::Text(&r.product_sku),
            Cell::Number(&r.good_qty),
            Cell::Number(&r.scrap_qty),
            Cell::Number(&r.total_cost),
            Cell::Number(&r.unit_cost),
            Cell::Text(text(|m| &m.material_sku)),
            Cell::Number(text(|m| &m.standard_qty)),
            Cell::Number(text(|m| &m.actual_qty)),
            Cell::Number(text(|m| &m.variance_qty)),
            Cell::Number(text(|m| &m.actual_cost)),
            Cell::Text(&r.date),
            Cell::Text(&r.bom_version),
            Cell::Text(&r.output_lot),
            Cell::Number(&r.material_cost),
            Cell::Number(&r.labor_cost),
            Cell::Number(&r.overhead_cost),
            Cell::Number(&seq),
            Cell::Number(&reversed),
        ]);
    };
    if r.materials.is_empty() {
        row(out, None);
    }
    for m in &r.materials {
        row(out, Some(m));
    }
}
