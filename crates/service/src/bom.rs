//! Bills of materials: parsing, creating (the same body again is a no-op; a different body
//! replaces a version until a production run has used it, and is refused from then on), lists,
//! CSV import grouped by (product_sku, version), and CSV export in the import columns.
//!
//! BOMs are master data, outside the chain. The store makes a replacement atomic against the
//! writer, which marks a version used in the same transaction as the run that used it.

use std::collections::HashMap;
use std::io::Read;

use ledger::production::{Bom, BomLine};
use ledger::{BomVersion, Item, Rejection, Sku};
use store::{BomPut, StoredBom};

use crate::dto::Page;
use crate::dto_production::{BomIn, BomLineIn, BomLineView, BomView};
use crate::error::{Fields, Result, ServiceError};
use crate::export::{Cell, CsvOut};
use crate::import::{next_row, row_errors, Header, ImportReport, LineIndex, Row, RowError};
use crate::{page_limit, parse, Service};

/// What creating a bill of materials did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BomOutcome {
    Created,
    /// The same body was there already.
    Unchanged,
    /// A different body was there, not yet used by a run, and was replaced.
    Replaced,
}

/// The answer to a create: what happened, and the bill of materials as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct BomSaved {
    pub outcome: BomOutcome,
    pub value: BomView,
}

/// Parses a bill of materials, naming every bad field.
pub(crate) fn parse_bom(input: &BomIn) -> Result<Bom> {
    let mut f = Fields::default();
    let product = parse::sku(&mut f, "product_sku", &input.product_sku);
    let version = f.take("version", BomVersion::parse(&input.version));
    let output_qty = parse::qty(&mut f, "output_qty", &input.output_qty);
    let lines: Vec<Option<BomLine>> = input
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let sku = parse::sku(&mut f, &format!("lines[{i}].sku"), &l.sku);
            let qty = parse::qty(&mut f, &format!("lines[{i}].qty"), &l.qty);
            Some(BomLine {
                sku: sku?,
                qty: qty?,
            })
        })
        .collect();
    f.finish()?;
    Ok(Bom {
        product: product.expect("parsed"),
        version: version.expect("parsed"),
        output_qty: output_qty.expect("parsed"),
        lines: lines.into_iter().map(|l| l.expect("parsed")).collect(),
    })
}

pub fn bom_view(b: &StoredBom) -> BomView {
    BomView {
        product_sku: b.bom.product.to_string(),
        version: b.bom.version.to_string(),
        output_qty: b.bom.output_qty.to_string(),
        lines: b
            .bom
            .lines
            .iter()
            .map(|l| BomLineView {
                sku: l.sku.to_string(),
                qty: l.qty.to_string(),
            })
            .collect(),
        first_run: b.first_run.clone(),
    }
}

fn bom_id(product: &str, version: &str) -> String {
    format!("{product}/{version}")
}

impl Service {
    /// Creates a bill of materials, or finds it unchanged, or replaces a version no run has
    /// used yet; a different body for a version a run has used is refused (409).
    pub async fn create_bom(&self, input: &BomIn) -> Result<BomSaved> {
        let bom = parse_bom(input)?;
        // Items never change once created, so checking them before the store's atomic put is
        // as good as checking them inside it.
        let mut items: HashMap<Sku, Item> = HashMap::new();
        for sku in std::iter::once(&bom.product).chain(bom.lines.iter().map(|l| &l.sku)) {
            if !items.contains_key(sku) {
                if let Some(item) = self.store().item(sku.as_str()).await? {
                    items.insert(sku.clone(), item);
                }
            }
        }
        bom.check(|s| items.get(s))?;
        let stored = StoredBom {
            bom: bom.clone(),
            first_run: None,
        };
        let (outcome, value) = match self.store().put_bom(&bom).await? {
            BomPut::Created => (BomOutcome::Created, bom_view(&stored)),
            BomPut::Replaced => (BomOutcome::Replaced, bom_view(&stored)),
            BomPut::Unchanged(existing) => (BomOutcome::Unchanged, bom_view(&existing)),
            BomPut::InUse(existing) => {
                return Err(Rejection::StateForbids {
                    what: "bill of materials",
                    id: bom_id(bom.product.as_str(), bom.version.as_str()),
                    message: format!(
                        "production run {} has used this version, so it cannot change; give the new body a new version",
                        existing.first_run.as_deref().unwrap_or("?")
                    ),
                }
                .into())
            }
        };
        Ok(BomSaved { outcome, value })
    }

    pub async fn bom(&self, product_sku: &str, version: &str) -> Result<BomView> {
        self.store()
            .bom(product_sku, version)
            .await?
            .map(|b| bom_view(&b))
            .ok_or_else(|| {
                Rejection::NotFound {
                    what: "bill of materials",
                    id: bom_id(product_sku, version),
                }
                .into()
            })
    }

    /// Bills of materials by product and version; the cursor is `product_sku|version`.
    pub async fn boms(&self, after: Option<&str>, limit: Option<u32>) -> Result<Page<BomView>> {
        let limit = page_limit(limit);
        let after = match after {
            None => None,
            Some(c) => match c.split_once('|') {
                Some((p, v)) => Some((p.to_owned(), v.to_owned())),
                None => {
                    return Err(ServiceError::field(
                        "after",
                        "is not a cursor this list gave",
                    ))
                }
            },
        };
        let rows = self.store().boms(after, limit).await?;
        let next = (rows.len() == limit as usize)
            .then(|| {
                rows.last()
                    .map(|b| format!("{}|{}", b.bom.product, b.bom.version))
            })
            .flatten();
        Ok(Page {
            items: rows.iter().map(bom_view).collect(),
            next,
        })
    }

    /// Imports bills of materials from CSV: adjacent rows sharing (product_sku, version) form
    /// one BOM, whose `output_qty` must agree on every row; each BOM is saved whole or not at
    /// all.
    pub(crate) async fn import_boms(
        &self,
        h: &Header,
        reader: &mut csv::Reader<impl Read>,
        record: &mut csv::ByteRecord,
        lines: &LineIndex,
        report: &mut ImportReport,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        type Key = (String, String);
        let key_of = |r: &Row| -> Key {
            (
                h.req(r, "product_sku").to_owned(),
                h.req(r, "version").to_owned(),
            )
        };
        let mut seen: HashMap<Key, u64> = HashMap::new();
        // The BOM being gathered: its key, its rows, and whether a row already spoiled it.
        let mut current: Option<(Key, Vec<Row>, bool)> = None;
        loop {
            let row = match next_row(reader, record, lines, h, None) {
                Ok(r) => r,
                Err(bad) => {
                    report.rows += 1;
                    report.rejected.push(bad.error);
                    continue;
                }
            };
            let key = row.as_ref().map(key_of);
            let continues = matches!((&current, &key), (Some((k, _, _)), Some(n)) if k == n);
            if !continues {
                if let Some((_, rows, spoiled)) = current.take() {
                    if !spoiled {
                        self.import_one_bom(h, &rows, report).await?;
                    }
                }
            }
            let Some(row) = row else { break };
            report.rows += 1;
            progress(report.rows);
            let key = key.expect("a row has a key");
            match &mut current {
                Some((_, rows, spoiled)) if continues => {
                    let first = &rows[0];
                    if h.req(first, "output_qty") != h.req(&row, "output_qty") {
                        report.rejected.push(RowError {
                            line: row.line,
                            column: Some("output_qty".into()),
                            message: format!(
                                "is {:?} where the BOM's first row (line {}) says {:?}",
                                h.req(&row, "output_qty"),
                                first.line,
                                h.req(first, "output_qty")
                            ),
                        });
                        *spoiled = true;
                    } else if rows.len() >= crate::import::ROWS_PER_DOCUMENT_MAX {
                        report.rejected.push(RowError {
                            line: row.line,
                            column: None,
                            message: format!(
                                "a bill of materials may span at most {} rows",
                                crate::import::ROWS_PER_DOCUMENT_MAX
                            ),
                        });
                        *spoiled = true;
                    }
                    rows.push(row);
                }
                _ => {
                    let mut spoiled = false;
                    if let Some(first) = seen.get(&key) {
                        report.rejected.push(RowError {
                            line: row.line,
                            column: Some("version".into()),
                            message: format!(
                                "rows of bill of materials {} must be adjacent; it began at line {first}",
                                bom_id(&key.0, &key.1)
                            ),
                        });
                        spoiled = true;
                    }
                    seen.insert(key.clone(), row.line);
                    current = Some((key, vec![row], spoiled));
                }
            }
        }
        Ok(())
    }

    async fn import_one_bom(
        &self,
        h: &Header,
        rows: &[Row],
        report: &mut ImportReport,
    ) -> Result<()> {
        let first = &rows[0];
        let input = BomIn {
            product_sku: h.req(first, "product_sku").into(),
            version: h.req(first, "version").into(),
            output_qty: crate::dto::DecText(h.req(first, "output_qty").into()),
            lines: rows
                .iter()
                .map(|r| BomLineIn {
                    sku: h.req(r, "material_sku").into(),
                    qty: crate::dto::DecText(h.req(r, "qty").into()),
                })
                .collect(),
        };
        let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
        match self.create_bom(&input).await {
            Ok(saved) if saved.outcome == BomOutcome::Unchanged => report.unchanged += 1,
            Ok(_) => report.created += 1,
            Err(ServiceError::Store(e)) => return Err(ServiceError::Store(e)),
            Err(e) => report.rejected.extend(row_errors(&e, &lines)),
        }
        Ok(())
    }
}

/// Bills of materials as CSV, one row per material, in the import columns.
pub fn boms_csv(rows: &[BomView]) -> String {
    let mut out = CsvOut::new();
    out.header(&[
        "product_sku",
        "version",
        "output_qty",
        "material_sku",
        "qty",
    ]);
    for b in rows {
        for l in &b.lines {
            out.row(&[
                Cell::Text(&b.product_sku),
                Cell::Text(&b.version),
                Cell::Number(&b.output_qty),
                Cell::Text(&l.sku),
                Cell::Number(&l.qty),
            ]);
        }
    }
    out.finish()
}
