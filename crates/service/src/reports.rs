//! Reports an auditor runs: each is computed once into a [`Report`] (its JSON answer plus
//! typed tables), which is then written as JSON, CSV (spreadsheet-safe) or XLSX (typed numeric
//! cells, with the ledger's head hash and the generation time on the sheet).

use std::str::FromStr;

use ledger::{Money, Qty};
use serde_json::{json, Value};
use store::Violation;

use crate::error::{Result, ServiceError};
use crate::export::{Cell as CsvCell, CsvOut};
use crate::Service;

/// The reports there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportName {
    TrialBalance,
    Conservation,
    Stock,
}

impl ReportName {
    pub const ALL: &'static [ReportName] = &[
        ReportName::TrialBalance,
        ReportName::Conservation,
        ReportName::Stock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportName::TrialBalance => "trial-balance",
            ReportName::Conservation => "conservation",
            ReportName::Stock => "stock",
        }
    }
}

impl FromStr for ReportName {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        ReportName::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown report {s:?}; one of {}",
                    ReportName::ALL
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

/// What a report may be asked for; each report reads the fields it understands.
#[derive(Debug, Clone, Default)]
pub struct ReportParams {
    /// Entries up to and including this date (trial balance).
    pub as_of: Option<time::Date>,
    /// Only lots expiring within this many days of today (stock).
    pub expiring_within_days: Option<u32>,
}

/// One cell of a report table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// An exact decimal, written as text in CSV and as a number in XLSX.
    Number(String),
    Empty,
}

impl Cell {
    fn qty(q: Qty) -> Cell {
        Cell::Number(q.to_string())
    }
    fn money(m: Money) -> Cell {
        Cell::Number(crate::money(m))
    }
    fn opt_text(s: Option<String>) -> Cell {
        s.map_or(Cell::Empty, Cell::Text)
    }
}

/// A table of a report: a title (the sheet name in XLSX), columns and rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub title: String,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

/// A computed report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub name: &'static str,
    /// The JSON answer (DESIGN section 4's shape).
    pub json: Value,
    /// The main table first; CSV writes it, XLSX writes every table on its own sheet.
    pub tables: Vec<Table>,
    /// The ledger's head when the report was made, so a file can be tied to the journal.
    pub head_hash: String,
    pub entries: u64,
    pub generated_at: String,
}

impl Report {
    /// The main table as spreadsheet-safe CSV (RFC 4180 quoting).
    pub fn to_csv(&self) -> String {
        let t = &self.tables[0];
        let mut out = CsvOut::new();
        out.header(&t.columns);
        for row in &t.rows {
            let cells: Vec<CsvCell<'_>> = row
                .iter()
                .map(|c| match c {
                    Cell::Text(s) => CsvCell::Text(s),
                    Cell::Number(s) => CsvCell::Number(s),
                    Cell::Empty => CsvCell::Number(""),
                })
                .collect();
            out.row(&cells);
        }
        out.finish()
    }

    /// Every table as a sheet of an XLSX workbook: a header row, numbers as numeric cells, and
    /// below the table the head hash, entry count and generation time.
    pub fn to_xlsx(&self) -> Result<Vec<u8>> {
        use rust_xlsxwriter::{Format, Workbook};
        let fail = |e: rust_xlsxwriter::XlsxError| {
            ServiceError::field("format", format!("cannot write xlsx: {e}"))
        };
        let mut wb = Workbook::new();
        let bold = Format::new().set_bold();
        let number = Format::new().set_num_format("0.0000");
        for t in &self.tables {
            let sheet = wb.add_worksheet();
            sheet.set_name(sheet_name(&t.title)).map_err(fail)?;
            for (c, name) in t.columns.iter().enumerate() {
                sheet
                    .write_string_with_format(0, col(c), *name, &bold)
                    .map_err(fail)?;
            }
            for (r, row) in t.rows.iter().enumerate() {
                let r = u32::try_from(r + 1)
                    .map_err(|_| ServiceError::field("format", "too many rows for xlsx"))?;
                for (c, cell) in row.iter().enumerate() {
                    match cell {
                        Cell::Text(s) => {
                            // write_string stores text as text: a leading '=' is not a formula.
                            sheet.write_string(r, col(c), s).map_err(fail)?;
                        }
                        Cell::Number(s) => {
                            // A spreadsheet number is a binary double by definition; the exact
                            // decimal is kept in the JSON and CSV forms of the same report.
                            let n: f64 = s.parse().map_err(|_| {
                                ServiceError::field("format", format!("{s} is not a number"))
                            })?;
                            sheet
                                .write_number_with_format(r, col(c), n, &number)
                                .map_err(fail)?;
                        }
                        Cell::Empty => {}
                    }
                }
            }
            let foot = u32::try_from(t.rows.len() + 2).unwrap_or(u32::MAX - 3);
            sheet
                .write_string_with_format(foot, 0, "head_hash", &bold)
                .map_err(fail)?;
            sheet.write_string(foot, 1, &self.head_hash).map_err(fail)?;
            sheet
                .write_string_with_format(foot + 1, 0, "entries", &bold)
                .map_err(fail)?;
            sheet
                .write_string(foot + 1, 1, self.entries.to_string())
                .map_err(fail)?;
            sheet
                .write_string_with_format(foot + 2, 0, "generated_at", &bold)
                .map_err(fail)?;
            sheet
                .write_string(foot + 2, 1, &self.generated_at)
                .map_err(fail)?;
        }
        wb.save_to_buffer().map_err(fail)
    }
}

fn col(c: usize) -> u16 {
    u16::try_from(c).expect("a report has few columns")
}

/// Sheet names are at most 31 characters and may not hold some punctuation.
fn sheet_name(title: &str) -> String {
    title
        .chars()
        .filter(|c| !matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\'))
        .take(31)
        .collect()
}

fn violation_json(v: &Violation) -> Value {
    let amount = |x: i64| {
        if v.is_value {
            crate::money(Money::from_scaled(x))
        } else {
            Qty::from_scaled(x).to_string()
        }
    };
    json!({
        "check": v.check,
        "seq": v.seq,
        "account": v.account,
        "sku": v.sku,
        "lot": v.lot,
        "measure": if v.is_value { "value" } else { "quantity" },
        "expected": amount(v.expected),
        "found": amount(v.found),
    })
}

impl Service {
    /// Computes a report.
    pub async fn report(&self, name: ReportName, params: &ReportParams) -> Result<Report> {
        let head = self.store().head().await?;
        let generated_at = self
            .now()
            .format(&time::format_description::well_known::Rfc3339)
            .expect("the current time formats");
        let (json, tables) = match name {
            ReportName::TrialBalance => {
                let rows = self.store().trial_balance(params.as_of).await?;
                let json = json!({
                    "as_of": params.as_of.map(|d| d.to_string()),
                    "rows": rows.iter().map(crate::views::balance_view).collect::<Vec<_>>(),
                    "total_value": crate::money(rows.iter().map(|r| r.value).sum()),
                });
                let table = Table {
                    title: "trial-balance".into(),
                    columns: vec!["account", "sku", "lot", "quantity", "value"],
                    rows: rows
                        .iter()
                        .map(|r| {
                            vec![
                                Cell::Text(r.account.clone()),
                                Cell::Text(r.sku.clone()),
                                Cell::Text(r.lot.clone()),
                                Cell::qty(r.quantity),
                                Cell::money(r.value),
                            ]
                        })
                        .collect(),
                };
                (json, vec![table])
            }
            ReportName::Conservation => {
                let violations = self.store().conservation_violations().await?;
                let json = json!({"ok": violations.is_empty(), "violations": violations.iter().map(violation_json).collect::<Vec<_>>()});
                let table = Table {
                    title: "conservation".into(),
                    columns: vec![
                        "check", "seq", "account", "sku", "lot", "measure", "expected", "found",
                    ],
                    rows: json["violations"]
                        .as_array()
                        .expect("an array")
                        .iter()
                        .map(|v| {
                            let t = |k: &str| v[k].as_str().map(str::to_owned);
                            vec![
                                Cell::opt_text(t("check")),
                                v["seq"]
                                    .as_u64()
                                    .map_or(Cell::Empty, |s| Cell::Number(s.to_string())),
                                Cell::opt_text(t("account")),
                                Cell::opt_text(t("sku")),
                                Cell::opt_text(t("lot")),
                                Cell::opt_text(t("measure")),
                                Cell::Number(t("expected").unwrap_or_default()),
                                Cell::Number(t("found").unwrap_or_default()),
                            ]
                        })
                        .collect(),
                };
                (json, vec![table])
            }
            ReportName::Stock => {
                let today = self.now().date();
                let horizon = params
                    .expiring_within_days
                    .map(|d| today + time::Duration::days(i64::from(d)));
                let rows: Vec<_> = self
                    .store()
                    .stock()
                    .await?
                    .into_iter()
                    .filter(|r| horizon.is_none_or(|h| r.expires_on.is_some_and(|e| e <= h)))
                    .collect();
                let json = json!({
                    "expiring_within_days": params.expiring_within_days,
                    "rows": rows.iter().map(|r| json!({
                        "location": r.location, "sku": r.sku, "lot": r.lot,
                        "quantity": r.quantity.to_string(), "value": crate::money(r.value),
                        "expires_on": r.expires_on.map(|d| d.to_string()),
                    })).collect::<Vec<_>>(),
                });
                let table = Table {
                    title: "stock".into(),
                    columns: vec!["location", "sku", "lot", "quantity", "value", "expires_on"],
                    rows: rows
                        .iter()
                        .map(|r| {
                            vec![
                                Cell::Text(r.location.clone()),
                                Cell::Text(r.sku.clone()),
                                Cell::Text(r.lot.clone()),
                                Cell::qty(r.quantity),
                                Cell::money(r.value),
                                Cell::opt_text(r.expires_on.map(|d| d.to_string())),
                            ]
                        })
                        .collect(),
                };
                (json, vec![table])
            }
        };
        Ok(Report {
            name: name.as_str(),
            json,
            tables,
            head_hash: head.hash.to_hex(),
            entries: head.seq,
            generated_at,
        })
    }
}

/// Turns `rust_decimal` text into a percentage with 2 decimals, half-even (for reports that
/// compare amounts).
pub fn percent(
    part: rust_decimal::Decimal,
    whole: rust_decimal::Decimal,
) -> Option<rust_decimal::Decimal> {
    if whole.is_zero() {
        return None;
    }
    Some(ledger::num::round_half_even(
        part * rust_decimal::Decimal::ONE_HUNDRED / whole,
        2,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_half_even() {
        let d = |s: &str| rust_decimal::Decimal::from_str(s).unwrap();
        assert_eq!(percent(d("15000"), d("45000")), Some(d("33.33")));
        assert_eq!(percent(d("1"), d("8")), Some(d("12.50")));
        assert_eq!(percent(d("1"), d("0")), None);
    }

    #[test]
    fn sheet_names_are_legal() {
        assert_eq!(sheet_name("a/b:c"), "abc");
        assert_eq!(sheet_name(&"x".repeat(40)).len(), 31);
    }
}
