//! What the store keeps for production: bills of materials and the report of each run, and
//! how their columns turn back into domain values (shared by both backends).

use ledger::production::{Bom, BomLine, MaterialUse, RunReport};
use ledger::{BomVersion, DocId, LotNo, Money, Qty, Sku};

use crate::{Result, StoreError};

/// A bill of materials as stored, with the first run that used it (from then on it is fixed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBom {
    pub bom: Bom,
    pub first_run: Option<String>,
}

/// What storing a bill of materials did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BomPut {
    /// There was none under this product and version.
    Created,
    /// The same one was there already.
    Unchanged(StoredBom),
    /// A different one was there, unused by any run, and was replaced.
    Replaced,
    /// A different one is there and a run has used it: nothing was changed.
    InUse(StoredBom),
}

/// A run's report, written by the writer with the run's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductionRunRecord {
    pub entry_seq: u64,
    pub report: RunReport,
}

impl ProductionRunRecord {
    /// The first run of each BOM version among `records`, in their order: the run each
    /// version's `first_run` names when it has none yet, as one update per run in that order
    /// would leave it.
    pub fn first_of_each_bom(records: &[ProductionRunRecord]) -> Vec<&ProductionRunRecord> {
        let mut firsts: Vec<&ProductionRunRecord> = Vec::new();
        for rec in records {
            let r = &rec.report;
            if !firsts
                .iter()
                .any(|f| f.report.product == r.product && f.report.bom_version == r.bom_version)
            {
                firsts.push(rec);
            }
        }
        firsts
    }
}

/// A stored run report, and the entry that reversed the run, if one did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReportRow {
    pub entry_seq: u64,
    pub reversed_by: Option<u64>,
    pub report: RunReport,
}

/// Filter of the production report; each field narrows when set.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub run_id: Option<String>,
    pub product_sku: Option<String>,
}

fn corrupt(what: &str, value: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?}: {e}"))
}

fn sku(s: &str) -> Result<Sku> {
    Sku::parse(s).map_err(|e| corrupt("sku", s, e))
}

/// The columns of a stored bill of materials and its lines `(material_sku, qty)`.
pub fn bom(
    product_sku: &str,
    version: &str,
    output_qty: i64,
    first_run: Option<String>,
    lines: Vec<(String, i64)>,
) -> Result<StoredBom> {
    Ok(StoredBom {
        bom: Bom {
            product: sku(product_sku)?,
            version: BomVersion::parse(version).map_err(|e| corrupt("BOM version", version, e))?,
            output_qty: Qty::from_scaled(output_qty),
            lines: lines
                .into_iter()
                .map(|(s, q)| {
                    Ok(BomLine {
                        sku: sku(&s)?,
                        qty: Qty::from_scaled(q),
                    })
                })
                .collect::<Result<_>>()?,
        },
        first_run,
    })
}

/// The columns of one stored run.
#[derive(Debug)]
pub struct RawRun {
    pub run_id: String,
    pub entry_seq: i64,
    pub reversed_by: Option<i64>,
    pub date: String,
    pub product_sku: String,
    pub bom_version: String,
    pub output_lot: String,
    pub good_qty: i64,
    pub scrap_qty: i64,
    pub material_cost: i64,
    pub labor_cost: i64,
    pub overhead_cost: i64,
    pub total_cost: i64,
    pub unit_cost: i64,
}

/// The columns of one material of a stored run.
#[derive(Debug)]
pub struct RawRunMaterial {
    pub run_id: String,
    pub material_sku: String,
    pub standard_qty: i64,
    pub actual_qty: i64,
    pub actual_cost: i64,
}

/// Rebuilds runs from their rows and their materials' rows (materials ordered by run, then
/// by position).
pub fn runs(raw: Vec<RawRun>, materials: Vec<RawRunMaterial>) -> Result<Vec<RunReportRow>> {
    let mut by_run: std::collections::HashMap<String, Vec<MaterialUse>> =
        std::collections::HashMap::new();
    for m in materials {
        by_run.entry(m.run_id).or_default().push(MaterialUse {
            sku: sku(&m.material_sku)?,
            standard_qty: Qty::from_scaled(m.standard_qty),
            actual_qty: Qty::from_scaled(m.actual_qty),
            actual_cost: Money::from_scaled(m.actual_cost),
        });
    }
    raw.into_iter()
        .map(|r| {
            let materials = by_run.remove(&r.run_id).unwrap_or_default();
            Ok(RunReportRow {
                entry_seq: crate::decode::seq(r.entry_seq),
                reversed_by: r.reversed_by.map(crate::decode::seq),
                report: RunReport {
                    run_id: DocId::parse(&r.run_id).map_err(|e| corrupt("run", &r.run_id, e))?,
                    date: crate::decode::date(&r.date)?,
                    product: sku(&r.product_sku)?,
                    bom_version: BomVersion::parse(&r.bom_version)
                        .map_err(|e| corrupt("BOM version", &r.bom_version, e))?,
                    output_lot: LotNo::parse(&r.output_lot)
                        .map_err(|e| corrupt("lot", &r.output_lot, e))?,
                    good_qty: Qty::from_scaled(r.good_qty),
                    scrap_qty: Qty::from_scaled(r.scrap_qty),
                    material_cost: Money::from_scaled(r.material_cost),
                    labor_cost: Money::from_scaled(r.labor_cost),
                    overhead_cost: Money::from_scaled(r.overhead_cost),
                    total_cost: Money::from_scaled(r.total_cost),
                    unit_cost: Money::from_scaled(r.unit_cost),
                    materials,
                },
            })
        })
        .collect()
}
