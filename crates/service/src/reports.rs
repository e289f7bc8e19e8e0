//! Reports an auditor runs: each is computed once into a [`Report`] (its JSON answer plus
//! typed tables), which is then written as JSON, CSV (spreadsheet-safe) or XLSX (typed numeric
//! cells, with the ledger's head hash and the generation time on the sheet).

use std::borrow::Cow;
use std::fmt::Display;
use std::str::FromStr;
use std::sync::Arc;

use ledger::{Money, Qty};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Value};
use store::{BalanceRow, Violation};

use crate::error::{Result, ServiceError};
use crate::export::{Cell as CsvCell, CsvOut};
use crate::Service;

/// The reports there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportName {
    TrialBalance,
    Conservation,
    Donations,
    InTransit,
    Production,
    Stock,
    /// Trial balance, conservation and verify from one pass over the journal.
    Reconciliation,
}

impl ReportName {
    pub const ALL: &'static [ReportName] = &[
        ReportName::TrialBalance,
        ReportName::Conservation,
        ReportName::Donations,
        ReportName::InTransit,
        ReportName::Production,
        ReportName::Stock,
        ReportName::Reconciliation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportName::TrialBalance => "trial-balance",
            ReportName::Conservation => "conservation",
            ReportName::Donations => "donations",
            ReportName::InTransit => "in-transit",
            ReportName::Production => "production",
            ReportName::Stock => "stock",
            ReportName::Reconciliation => "reconciliation",
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
    /// Percentage a declared value may differ from the ledger cost and still be `ok`
    /// (donations; 5 when not given).
    pub tolerance_pct: Option<rust_decimal::Decimal>,
    /// Only what has been in transit longer than this many days (in-transit).
    pub older_than_days: Option<u32>,
}

/// The donations report's tolerance when none is asked for, in percent.
pub const DEFAULT_TOLERANCE_PCT: u32 = 5;

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
#[derive(Debug, Clone)]
pub struct Table {
    pub title: String,
    pub columns: Vec<&'static str>,
    pub rows: Rows,
}

/// A table's rows. The trial balance's are kept where they were made (4.3M of them at 10M
/// postings) and made into cells one row at a time as the table is written, instead of all
/// held as cells at once.
#[derive(Debug, Clone)]
pub enum Rows {
    Cells(Vec<Vec<Cell>>),
    /// Shared with the report's JSON, which writes the same rows.
    Balances(Arc<dyn BalanceRows>),
}

/// One trial-balance row, borrowed from wherever the rows are kept.
#[derive(Debug, Clone, Copy)]
pub struct BalanceRef<'a> {
    pub account: &'a str,
    pub sku: &'a str,
    pub lot: &'a str,
    pub quantity: Qty,
    pub value: Money,
}

/// The trial balance's rows as their source keeps them (the SQL's rows, or the pass's own
/// sums), read one at a time as the report is written: not copied into rows of another type.
pub trait BalanceRows: std::fmt::Debug + Send + Sync {
    fn len(&self) -> usize;
    fn row(&self, i: usize) -> BalanceRef<'_>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl BalanceRows for Vec<BalanceRow> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }
    fn row(&self, i: usize) -> BalanceRef<'_> {
        let r = &self[i];
        BalanceRef {
            account: &r.account,
            sku: &r.sku,
            lot: &r.lot,
            quantity: r.quantity,
            value: r.value,
        }
    }
}

impl Rows {
    pub fn len(&self) -> usize {
        match self {
            Rows::Cells(r) => r.len(),
            Rows::Balances(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i`'s cells; a balance's are made when asked for.
    pub fn row(&self, i: usize) -> Cow<'_, [Cell]> {
        match self {
            Rows::Cells(r) => Cow::Borrowed(&r[i]),
            Rows::Balances(r) => {
                let b = r.row(i);
                Cow::Owned(vec![
                    Cell::Text(b.account.to_owned()),
                    Cell::Text(b.sku.to_owned()),
                    Cell::Text(b.lot.to_owned()),
                    Cell::qty(b.quantity),
                    Cell::money(b.value),
                ])
            }
        }
    }

    /// Every row's cells, in order.
    pub fn iter(&self) -> impl Iterator<Item = Cow<'_, [Cell]>> + '_ {
        (0..self.len()).map(|i| self.row(i))
    }
}

/// A computed report.
#[derive(Debug, Clone)]
pub struct Report {
    pub name: &'static str,
    /// The JSON answer (DESIGN section 4's shape), except the trial balance's rows: where they
    /// belong it holds `null`, and [`Report::body`] writes them in as it is serialized.
    pub json: Value,
    /// The main table first; CSV writes it, XLSX writes every table on its own sheet.
    pub tables: Vec<Table>,
    /// The ledger's head when the report was made, so a file can be tied to the journal.
    pub head_hash: String,
    pub entries: u64,
    pub generated_at: String,
    /// The trial balance's rows and the path of keys to where they belong in `json`.
    balances: Option<(&'static [&'static str], Arc<dyn BalanceRows>)>,
}

impl Report {
    /// The whole JSON answer, to serialize: `json` with the trial balance's rows written in
    /// row by row, never built as JSON values (half a million rows at 1M postings).
    pub fn body(&self) -> Body<'_> {
        match &self.balances {
            Some((path, rows)) => Body {
                value: &self.json,
                path,
                rows: Some(Fill::Rows(&**rows)),
            },
            None => Body {
                value: &self.json,
                path: &[],
                rows: None,
            },
        }
    }

    /// Writes the JSON answer exactly as `serde_json` writes [`Report::body`] (compact, or
    /// pretty with two spaces a level), with the trial balance's rows formatted in chunks by
    /// [`JSON_ROW_THREADS`] threads while this one writes them in order: at 10M postings they
    /// are 4.3M objects, and serializing them one by one was most of the answer's two seconds.
    pub fn write_json(&self, w: &mut dyn std::io::Write, pretty: bool) -> std::io::Result<()> {
        let Some((path, rows)) = &self.balances else {
            return if pretty {
                serde_json::to_writer_pretty(w, &self.json)
            } else {
                serde_json::to_writer(w, &self.json)
            }
            .map_err(std::io::Error::from);
        };
        // The rest of the answer, with `null` where the rows go, and where that is.
        let written = std::cell::Cell::new(0);
        let at = std::cell::Cell::new(None);
        let marked = Body {
            value: &self.json,
            path,
            rows: Some(Fill::Mark {
                written: &written,
                at: &at,
            }),
        };
        let mut doc = Counted {
            out: Vec::new(),
            written: &written,
        };
        if pretty {
            serde_json::to_writer_pretty(&mut doc, &marked)?;
        } else {
            serde_json::to_writer(&mut doc, &marked)?;
        }
        let at = at.get().expect("the report's JSON holds its rows' path");
        let (before, after) = doc.out.split_at(at);
        let after = after
            .strip_prefix(b"null")
            .expect("the rows' place holds null");
        w.write_all(before)?;
        let rows = &**rows;
        if rows.is_empty() {
            w.write_all(b"[]")?;
            return w.write_all(after);
        }
        // Pretty, the array opens on the line of its key: its rows go two spaces deeper.
        let indent = pretty.then(|| {
            let line = before.rsplit(|&b| b == b'\n').next().unwrap_or(before);
            line.iter().take_while(|&&b| b == b' ').count()
        });
        let layout = Layout::new(indent);
        let chunks = rows.len().div_ceil(JSON_ROWS_CHUNK);
        w.write_all(b"[")?;
        std::thread::scope(|scope| -> std::io::Result<()> {
            let mut formatted = Vec::with_capacity(JSON_ROW_THREADS);
            for t in 0..JSON_ROW_THREADS {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
                let layout = &layout;
                scope.spawn(move || {
                    for c in (t..chunks).step_by(JSON_ROW_THREADS) {
                        let end = ((c + 1) * JSON_ROWS_CHUNK).min(rows.len());
                        // The writer gave up (its error is returned): stop.
                        if tx
                            .send(layout.rows(rows, c * JSON_ROWS_CHUNK..end))
                            .is_err()
                        {
                            return;
                        }
                    }
                });
                formatted.push(rx);
            }
            for c in 0..chunks {
                // A formatting thread that panicked dropped its sender; the scope then
                // carries its panic on.
                let Ok(chunk) = formatted[c % JSON_ROW_THREADS].recv() else {
                    break;
                };
                w.write_all(&chunk)?;
            }
            Ok(())
        })?;
        w.write_all(&layout.end)?;
        w.write_all(b"]")?;
        w.write_all(after)
    }

    /// The whole JSON answer as one value, for a caller that reads it rather than writes it.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self.body()).expect("a report serializes")
    }

    /// The main table as spreadsheet-safe CSV (RFC 4180 quoting).
    pub fn to_csv(&self) -> String {
        let t = &self.tables[0];
        let mut out = CsvOut::new();
        out.header(&t.columns);
        for row in t.rows.iter() {
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

/// A report's JSON answer, serialized: its `json` value with the trial balance's rows written
/// in at `path` (see [`Report::body`]).
pub struct Body<'a> {
    value: &'a Value,
    path: &'a [&'static str],
    rows: Option<Fill<'a>>,
}

/// What a [`Body`] writes at its path.
#[derive(Clone, Copy)]
enum Fill<'a> {
    /// The rows, serialized one by one.
    Rows(&'a dyn BalanceRows),
    /// `null`, noting how many bytes the writer had taken when it got there
    /// ([`Report::write_json`] writes the rows there itself).
    Mark {
        written: &'a std::cell::Cell<usize>,
        at: &'a std::cell::Cell<Option<usize>>,
    },
}

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let Some(fill) = self.rows else {
            return self.value.serialize(s);
        };
        let Some((key, rest)) = self.path.split_first() else {
            return match fill {
                Fill::Rows(rows) => {
                    s.collect_seq((0..rows.len()).map(|i| BalanceJson(rows.row(i))))
                }
                Fill::Mark { written, at } => {
                    at.set(Some(written.get()));
                    s.serialize_unit()
                }
            };
        };
        let Value::Object(fields) = self.value else {
            return self.value.serialize(s);
        };
        let mut map = s.serialize_map(Some(fields.len()))?;
        for (k, v) in fields {
            if k == key {
                let inner = Body {
                    value: v,
                    path: rest,
                    rows: Some(fill),
                };
                map.serialize_entry(k, &inner)?;
            } else {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

/// Rows formatted together by one thread of [`Report::write_json`]: large enough that handing
/// a chunk over costs nothing beside formatting it, small enough that the chunks in flight
/// (two a thread) hold a few megabytes.
const JSON_ROWS_CHUNK: usize = 8_192;

/// Threads that format the rows' chunks while the caller's thread writes them in order.
const JSON_ROW_THREADS: usize = 2;

/// A writer into memory that counts what it was given, where a [`Fill::Mark`] can see it.
struct Counted<'a> {
    out: Vec<u8>,
    written: &'a std::cell::Cell<usize>,
}

impl std::io::Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.extend_from_slice(buf);
        self.written.set(self.out.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How [`Report::write_json`] lays the rows out: as `serde_json` does, compact or pretty
/// (two spaces a level).
struct Layout {
    /// Before each row but the first, and before the first: `,` and the row's indent.
    between: Vec<u8>,
    first: Vec<u8>,
    /// Before each field but the first, and before the first, and after the last.
    field_between: Vec<u8>,
    field_first: Vec<u8>,
    fields_end: Vec<u8>,
    /// What separates a field's name from its value.
    colon: &'static [u8],
    /// After the last row.
    end: Vec<u8>,
}

impl Layout {
    /// `indent`: spaces before the line that opens the array (`"rows": [`); `None`: compact.
    fn new(indent: Option<usize>) -> Layout {
        match indent {
            None => Layout {
                between: b",".to_vec(),
                first: Vec::new(),
                field_between: b",".to_vec(),
                field_first: Vec::new(),
                fields_end: Vec::new(),
                colon: b":",
                end: Vec::new(),
            },
            Some(n) => {
                let line = |spaces: usize| {
                    let mut v = b"\n".to_vec();
                    v.resize(1 + spaces, b' ');
                    v
                };
                Layout {
                    between: [b",".as_slice(), &line(n + 2)].concat(),
                    first: line(n + 2),
                    field_between: [b",".as_slice(), &line(n + 4)].concat(),
                    field_first: line(n + 4),
                    fields_end: line(n + 2),
                    colon: b": ",
                    end: line(n),
                }
            }
        }
    }

    /// Rows `range` as JSON, each preceded by its separator.
    fn rows(&self, rows: &dyn BalanceRows, range: std::ops::Range<usize>) -> Vec<u8> {
        use std::io::Write as _;
        // About 120 bytes a row compact, twice that pretty: one allocation a chunk.
        let mut out = Vec::with_capacity(range.len() * 256);
        for i in range {
            out.extend_from_slice(if i == 0 { &self.first } else { &self.between });
            let r = rows.row(i);
            out.push(b'{');
            self.field(&mut out, "account", true);
            json_str(&mut out, r.account);
            self.field(&mut out, "lot", false);
            json_str(&mut out, r.lot);
            // Numbers are written as text of digits, a sign and a point: nothing to escape.
            self.field(&mut out, "quantity", false);
            write!(out, "\"{}\"", r.quantity).expect("writes to memory");
            self.field(&mut out, "sku", false);
            json_str(&mut out, r.sku);
            self.field(&mut out, "value", false);
            write!(out, "\"{}\"", crate::purchase::MoneyText(r.value)).expect("writes to memory");
            out.extend_from_slice(&self.fields_end);
            out.push(b'}');
        }
        out
    }

    /// A field's separator, its name and what separates the name from the value.
    fn field(&self, out: &mut Vec<u8>, name: &str, first: bool) {
        out.extend_from_slice(if first {
            &self.field_first
        } else {
            &self.field_between
        });
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.push(b'"');
        out.extend_from_slice(self.colon);
    }
}

/// A JSON string as `serde_json` writes it: as it is when nothing in it needs escaping (ids,
/// accounts and lots nearly always), else by `serde_json` itself.
fn json_str(out: &mut Vec<u8>, text: &str) {
    if text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        serde_json::to_writer(&mut *out, text).expect("a string serializes into memory");
    } else {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

/// One trial-balance row as JSON: a [`crate::dto::BalanceView`], written field by field, in
/// the order a `serde_json::Map` keeps its keys (a unit test holds the two equal).
struct BalanceJson<'a>(BalanceRef<'a>);

impl Serialize for BalanceJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let r = &self.0;
        let mut map = s.serialize_map(Some(5))?;
        map.serialize_entry("account", r.account)?;
        map.serialize_entry("lot", r.lot)?;
        map.serialize_entry("quantity", &Text(&r.quantity))?;
        map.serialize_entry("sku", r.sku)?;
        map.serialize_entry("value", &Text(crate::purchase::MoneyText(r.value)))?;
        map.end()
    }
}

/// Text written straight from its `Display`, without a `String` first.
struct Text<T>(T);

impl<T: Display> Serialize for Text<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
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
        // Reconciliation reads the whole ledger at one moment, which also fixes the head the
        // report names; the other reports read the head and then their rows.
        let snapshot = match name {
            ReportName::Reconciliation => Some(self.store().snapshot().await?),
            _ => None,
        };
        let head = match &snapshot {
            Some(s) => s.head().clone(),
            None => self.store().head().await?,
        };
        let generated_at = self
            .now()
            .format(&time::format_description::well_known::Rfc3339)
            .expect("the current time formats");
        // The trial balance's rows, where a report has them, and where they go in its JSON.
        let mut balances = None;
        let (json, tables) = match name {
            ReportName::TrialBalance => {
                let rows = self.store().trial_balance(params.as_of).await?;
                let (json, tables, rows) = trial_balance_section(params.as_of, Arc::new(rows));
                balances = Some((&["rows"][..], rows));
                (json, tables)
            }
            ReportName::Conservation => {
                let violations = self.store().conservation_violations().await?;
                conservation_section(&violations)
            }
            ReportName::Reconciliation => {
                let snapshot = snapshot
                    .as_deref()
                    .expect("opened above for reconciliation");
                let (json, tables, rows) = Box::pin(self.reconciliation(snapshot)).await?;
                balances = Some((&["trial_balance", "rows"][..], rows));
                (json, tables)
            }
            // Boxed: each report's future is large, and they would all sit inline in this one.
            ReportName::Donations => Box::pin(self.donations_report(params)).await?,
            ReportName::InTransit => Box::pin(self.in_transit_report(params)).await?,
            ReportName::Production => Box::pin(self.production_table()).await?,
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
                    rows: Rows::Cells(
                        rows.iter()
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
                    ),
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
            balances,
        })
    }
}

/// The trial balance's JSON (with `null` where its rows go) and its table, which share the
/// rows: they are written out row by row, never held as JSON values or cells.
fn trial_balance_section(
    as_of: Option<time::Date>,
    rows: Arc<dyn BalanceRows>,
) -> (Value, Vec<Table>, Arc<dyn BalanceRows>) {
    let total_value = crate::money((0..rows.len()).map(|i| rows.row(i).value).sum());
    let json = object([
        ("as_of", json!(as_of.map(|d| d.to_string()))),
        ("rows", Value::Null),
        ("total_value", Value::String(total_value)),
    ]);
    let table = Table {
        title: "trial-balance".into(),
        columns: vec!["account", "sku", "lot", "quantity", "value"],
        rows: Rows::Balances(Arc::clone(&rows)),
    };
    (json, vec![table], rows)
}

/// A JSON object of the fields given, moved in. `json!` would serialize each value again (a
/// deep copy).
fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// The conservation report's JSON and table.
fn conservation_section(violations: &[Violation]) -> (Value, Vec<Table>) {
    let json = json!({"ok": violations.is_empty(), "violations": violations.iter().map(violation_json).collect::<Vec<_>>()});
    let table = Table {
        title: "conservation".into(),
        columns: vec![
            "check", "seq", "account", "sku", "lot", "measure", "expected", "found",
        ],
        rows: Rows::Cells(
            json["violations"]
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
        ),
    };
    (json, vec![table])
}

impl Service {
    /// Trial balance, conservation and verify from one read of the journal (`crate::scan`),
    /// where the three separate reports read it once each. The conservation checks that need
    /// other tables (lot items, maintained balances) are added to the pass's own. A journal
    /// with an unreadable row falls back to the SQL of the separate reports, which read past it;
    /// one with a lot posted as two items, to their conservation checks, which judge balances
    /// per (account, lot) as they are kept.
    async fn reconciliation(
        &self,
        snapshot: &dyn store::Snapshot,
    ) -> Result<(Value, Vec<Table>, Arc<dyn BalanceRows>)> {
        let store = self.store();
        // Each phase's time goes to the debug log (`RUST_LOG=service=debug`): where a large
        // ledger's reconciliation spends its seconds, without a profiler.
        let started = std::time::Instant::now();
        let scan = crate::scan::run(snapshot, &|_, _| {}).await?;
        let scanned = started.elapsed();
        let (verify, mismatches) = crate::verify::report(store, snapshot, &scan).await?;
        let verified = started.elapsed();
        let (rows, violations) = if scan.complete && scan.lot_of_two_items {
            // A damaged ledger: the SQL checks judge its balances as they are kept.
            (
                Arc::new(scan.into_trial_balance()) as Arc<dyn BalanceRows>,
                store.conservation_violations().await?,
            )
        } else if scan.complete {
            let mut violations = scan.violations();
            violations.extend(scan.lot_item_violations(snapshot, store).await?);
            for m in mismatches {
                violations.extend(m.violations());
            }
            (
                Arc::new(scan.into_trial_balance()) as Arc<dyn BalanceRows>,
                violations,
            )
        } else {
            (
                Arc::new(store.trial_balance(None).await?) as Arc<dyn BalanceRows>,
                store.conservation_violations().await?,
            )
        };
        tracing::debug!(
            pass_ms = scanned.as_millis(),
            balances_ms = (verified - scanned).as_millis(),
            lots_ms = (started.elapsed() - verified).as_millis(),
            keys = rows.len(),
            "reconciliation computed"
        );
        let total_rows = rows.len();
        let (tb_json, tb_tables, rows) = trial_balance_section(None, rows);
        let total_value = tb_json["total_value"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let (cons_json, cons_tables) = conservation_section(&violations);
        let ok = verify.ok && violations.is_empty();
        let summary = Table {
            title: "reconciliation".into(),
            columns: vec!["check", "ok", "detail"],
            rows: Rows::Cells(vec![
                vec![
                    Cell::Text("chain".into()),
                    Cell::Text(verify.ok.to_string()),
                    Cell::Text(format!(
                        "{} entries, head {}{}",
                        verify.entries,
                        verify.head_hash,
                        verify
                            .first_bad_seq
                            .map_or(String::new(), |s| format!(", first bad entry {s}"))
                    )),
                ],
                vec![
                    Cell::Text("conservation".into()),
                    Cell::Text(violations.is_empty().to_string()),
                    Cell::Text(format!("{} violations", violations.len())),
                ],
                vec![
                    Cell::Text("trial-balance".into()),
                    Cell::Text("true".into()),
                    Cell::Text(format!("{total_rows} rows, total value {total_value}")),
                ],
            ]),
        };
        let json = object([
            ("ok", Value::Bool(ok)),
            ("verify", json!(verify)),
            ("trial_balance", tb_json),
            ("conservation", cons_json),
        ]);
        let mut tables = vec![summary];
        tables.extend(tb_tables);
        tables.extend(cons_tables);
        Ok((json, tables, rows))
    }
}

/// Every shipment of a kind (and of a status, when one is given), paging through the store.
async fn all_shipments(
    service: &Service,
    kind: &str,
    status: Option<ledger::ShipmentStatus>,
) -> Result<Vec<ledger::Shipment>> {
    let filter = store::ShipmentFilter {
        kind: Some(kind.to_owned()),
        status: status.map(|s| s.as_str().to_owned()),
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = service
            .store()
            .shipments(&filter, after, store::PAGE_MAX)
            .await?;
        let full = page.len() == store::PAGE_MAX as usize;
        after = page.last().map(|s| s.dispatch_seq);
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

/// Declared value against ledger cost: the difference (declared - cost), its percentage of
/// the cost (2 decimals, half-even) and the status against the tolerance.
fn compare(
    declared: Money,
    cost: Money,
    tolerance_pct: rust_decimal::Decimal,
) -> (Money, Option<rust_decimal::Decimal>, &'static str) {
    let difference = declared - cost;
    let pct = percent(difference.decimal(), cost.decimal());
    let status = match pct {
        // Nothing dispatched has no cost to compare with: any declared value is over.
        None if difference.is_zero() => "ok",
        None => "over",
        Some(p) if p.abs() <= tolerance_pct => "ok",
        Some(p) if p > rust_decimal::Decimal::ZERO => "over",
        Some(_) => "under",
    };
    (difference, pct, status)
}

impl Service {
    async fn donations_report(&self, params: &ReportParams) -> Result<(Value, Vec<Table>)> {
        let tolerance = params
            .tolerance_pct
            .unwrap_or(rust_decimal::Decimal::from(DEFAULT_TOLERANCE_PCT));
        if tolerance.is_sign_negative() {
            return Err(ServiceError::field("tolerance_pct", "must not be negative"));
        }
        let donations = all_shipments(self, "donation", None).await?;
        let mut rows = Vec::new();
        let mut json_rows = Vec::new();
        // Per country: donations, declared, cost, and what was dispatched per sku.
        let mut countries: std::collections::BTreeMap<String, (u64, Money, Money)> =
            Default::default();
        for d in &donations {
            let declared = d.declared.as_ref().map_or(Money::ZERO, |x| x.base_value);
            let cost = d.dispatched_value();
            let (difference, pct, status) = compare(declared, cost, tolerance);
            let country = d.country.clone().unwrap_or_default();
            let c = countries.entry(country.clone()).or_default();
            c.0 += 1;
            c.1 += declared;
            c.2 += cost;
            let mut per_sku: std::collections::BTreeMap<String, Qty> = Default::default();
            for l in &d.lines {
                *per_sku.entry(l.sku.to_string()).or_default() += l.dispatched;
            }
            let recipient = d
                .recipient
                .as_ref()
                .map(|r| r.to_string())
                .unwrap_or_default();
            let pct_text = pct.map(|p| format!("{p:.2}"));
            json_rows.push(json!({
                "donation_id": d.id, "date": d.date.to_string(), "recipient": recipient, "country": country,
                "currency": d.declared.as_ref().map(|x| x.currency.clone()),
                "declared_in_currency": d.declared.as_ref().map(|x| crate::money(x.value)),
                "declared_value": crate::money(declared), "ledger_cost": crate::money(cost),
                "difference": crate::money(difference), "difference_pct": pct_text, "status": status,
                "shipment_status": d.status().as_str(),
                "dispatched": per_sku.iter().map(|(sku, q)| json!({"sku": sku, "qty": q.to_string()})).collect::<Vec<_>>(),
            }));
            rows.push(vec![
                Cell::Text(d.id.to_string()),
                Cell::Text(d.date.to_string()),
                Cell::Text(recipient),
                Cell::Text(country),
                Cell::money(declared),
                Cell::money(cost),
                Cell::money(difference),
                pct_text.map_or(Cell::Empty, Cell::Number),
                Cell::Text(status.to_owned()),
            ]);
        }
        let mut country_rows = Vec::new();
        let mut json_countries = Vec::new();
        let (mut all_declared, mut all_cost) = (Money::ZERO, Money::ZERO);
        for (country, (n, declared, cost)) in &countries {
            let (difference, pct, status) = compare(*declared, *cost, tolerance);
            all_declared += *declared;
            all_cost += *cost;
            let pct_text = pct.map(|p| format!("{p:.2}"));
            json_countries.push(json!({
                "country": country, "donations": n, "declared_value": crate::money(*declared), "ledger_cost": crate::money(*cost),
                "difference": crate::money(difference), "difference_pct": pct_text, "status": status,
            }));
            country_rows.push(vec![
                Cell::Text(country.clone()),
                Cell::Number(n.to_string()),
                Cell::money(*declared),
                Cell::money(*cost),
                Cell::money(difference),
                pct_text.map_or(Cell::Empty, Cell::Number),
                Cell::Text(status.to_owned()),
            ]);
        }
        let (difference, pct, status) = compare(all_declared, all_cost, tolerance);
        let total = json!({"donations": donations.len(), "declared_value": crate::money(all_declared), "ledger_cost": crate::money(all_cost),
                      "difference": crate::money(difference), "difference_pct": pct.map(|p| format!("{p:.2}")), "status": status});
        let json = object([
            ("tolerance_pct", Value::String(tolerance.to_string())),
            ("base_currency", json!(self.base_currency())),
            ("rows", Value::Array(json_rows)),
            ("countries", Value::Array(json_countries)),
            ("total", total),
        ]);
        let tables = vec![
            Table {
                title: "donations".into(),
                columns: vec![
                    "donation_id",
                    "date",
                    "recipient",
                    "country",
                    "declared_value",
                    "ledger_cost",
                    "difference",
                    "difference_pct",
                    "status",
                ],
                rows: Rows::Cells(rows),
            },
            Table {
                title: "countries".into(),
                columns: vec![
                    "country",
                    "donations",
                    "declared_value",
                    "ledger_cost",
                    "difference",
                    "difference_pct",
                    "status",
                ],
                rows: Rows::Cells(country_rows),
            },
        ];
        Ok((json, tables))
    }

    async fn in_transit_report(&self, params: &ReportParams) -> Result<(Value, Vec<Table>)> {
        let today = self.now().date();
        let mut rows = Vec::new();
        let mut json_rows = Vec::new();
        for kind in ["batch", "donation"] {
            // Only an open shipment has anything outstanding, and the store finds those by
            // the index of (kind, status, dispatch order): a ledger's shipments are mostly
            // acknowledged or closed (three in four of the generated 10M postings'), and the
            // report need not read them. Each status comes as a list of its own; the report
            // keeps the order of dispatch.
            let mut open = Vec::new();
            for status in ledger::ShipmentStatus::OPEN {
                open.extend(all_shipments(self, kind, Some(*status)).await?);
            }
            open.sort_by_key(|s| s.dispatch_seq);
            for s in open {
                assert!(s.status().is_open(), "the store filtered by status");
                let age_days = (today - s.date).whole_days().max(0);
                if params
                    .older_than_days
                    .is_some_and(|d| age_days <= i64::from(d))
                {
                    continue;
                }
                for l in s.lines.iter().filter(|l| l.outstanding().is_positive()) {
                    json_rows.push(json!({
                        "shipment_id": s.id, "kind": kind, "date": s.date.to_string(), "destination": l.destination, "sku": l.sku, "lot": l.lot,
                        "dispatched": l.dispatched.to_string(), "acknowledged": l.acknowledged.to_string(), "damaged": l.damaged.to_string(),
                        "outstanding": l.outstanding().to_string(), "age_days": age_days,
                    }));
                    rows.push(vec![
                        Cell::Text(s.id.to_string()),
                        Cell::Text(l.destination.to_string()),
                        Cell::Text(l.sku.to_string()),
                        Cell::Text(l.lot.to_string()),
                        Cell::qty(l.dispatched),
                        Cell::qty(l.acknowledged),
                        Cell::qty(l.damaged),
                        Cell::qty(l.outstanding()),
                        Cell::Number(age_days.to_string()),
                    ]);
                }
            }
        }
        let json = object([
            ("as_of", Value::String(today.to_string())),
            ("older_than_days", json!(params.older_than_days)),
            ("rows", Value::Array(json_rows)),
        ]);
        let table = Table {
            title: "in-transit".into(),
            columns: vec![
                "shipment_id",
                "destination",
                "sku",
                "lot",
                "dispatched",
                "acknowledged",
                "damaged",
                "outstanding",
                "age_days",
            ],
            rows: Rows::Cells(rows),
        };
        Ok((json, vec![table]))
    }

    /// The production report, whole, as a report table (its JSON is the report's pages).
    async fn production_table(&self) -> Result<(Value, Vec<Table>)> {
        let query = crate::production::ReportQuery::default();
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .production_report(&query, after.as_deref(), Some(store::PAGE_MAX))
                .await?;
            items.extend(page.items);
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        // The table is the report's CSV, one row per run and material, read back into cells.
        let csv = self.production_report_csv(&query).await?;
        let mut reader = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
        let columns = crate::production::REPORT_COLUMNS;
        let text_columns = [
            "run_id",
            "product_sku",
            "material_sku",
            "date",
            "bom_version",
            "output_lot",
        ];
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| ServiceError::field("report", e))?;
            rows.push(
                record
                    .iter()
                    .zip(columns.iter())
                    .map(|(v, c)| match (v, text_columns.contains(c)) {
                        ("", _) => Cell::Empty,
                        (v, true) => Cell::Text(v.trim_start_matches('\'').to_owned()),
                        (v, false) => Cell::Number(v.to_owned()),
                    })
                    .collect(),
            );
        }
        let json = json!({"rows": items});
        Ok((
            json,
            vec![Table {
                title: "production".into(),
                columns: columns.to_vec(),
                rows: Rows::Cells(rows),
            }],
        ))
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

    /// The trial balance's rows are built by hand for speed; they must stay the API's
    /// `BalanceView`, and the table must say the same.
    #[test]
    fn trial_balance_rows_are_balance_views() {
        let rows = vec![
            store::BalanceRow {
                account: "stock:RAW".into(),
                sku: "PC".into(),
                lot: "PO-1-1".into(),
                quantity: Qty::from_scaled(-12_345),
                value: Money::from_scaled(987_654_321),
            },
            store::BalanceRow {
                account: "supplier:S1".into(),
                sku: "PC".into(),
                lot: "PO-1-1".into(),
                quantity: Qty::from_scaled(12_345),
                value: Money::from_scaled(-987_654_320),
            },
        ];
        let views: Vec<Value> = rows
            .iter()
            .map(|r| serde_json::to_value(crate::views::balance_view(r)).unwrap())
            .collect();
        let (json, tables, rows) = trial_balance_section(None, Arc::new(rows));
        // The JSON holds a place for the rows; the body writes them there, and as the API's
        // views, byte for byte.
        assert_eq!(json["rows"], Value::Null);
        let report = Report {
            name: "trial-balance",
            json,
            tables,
            head_hash: String::new(),
            entries: 0,
            generated_at: String::new(),
            balances: Some((&["rows"], rows)),
        };
        let whole = report.to_value();
        assert_eq!(whole["rows"], Value::Array(views.clone()));
        assert_eq!(whole["total_value"], "0.0001");
        assert_eq!(
            serde_json::to_string(&report.body()).unwrap(),
            serde_json::to_string(&whole).unwrap()
        );
        assert_eq!(
            serde_json::to_string_pretty(&report.body()).unwrap(),
            serde_json::to_string_pretty(&whole).unwrap()
        );
        let t = &report.tables[0];
        assert_eq!(t.rows.len(), 2);
        for (row, view) in t.rows.iter().zip(&views) {
            for (cell, column) in row.iter().zip(&t.columns) {
                let text = match cell {
                    Cell::Text(s) | Cell::Number(s) => s.as_str(),
                    Cell::Empty => "",
                };
                assert_eq!(view[*column], text, "{column}");
            }
        }
    }

    /// Rows go where the path says, however deep, and nowhere else.
    #[test]
    fn a_body_writes_rows_at_its_path_only() {
        let row = store::BalanceRow {
            account: "stock:RAW".into(),
            sku: "PC".into(),
            lot: "L\"1".into(),
            quantity: Qty::from_scaled(1_500),
            value: Money::from_scaled(25_000),
        };
        let rows: Arc<dyn BalanceRows> = Arc::new(vec![row]);
        let value = json!({"ok": true, "trial_balance": {"rows": null, "total_value": "2.5000"}, "rows": null});
        let body = Body {
            value: &value,
            path: &["trial_balance", "rows"],
            rows: Some(Fill::Rows(&*rows)),
        };
        let out = serde_json::to_value(&body).unwrap();
        assert_eq!(
            out,
            json!({"ok": true, "rows": null, "trial_balance": {"rows": [
                {"account": "stock:RAW", "lot": "L\"1", "quantity": "1.5", "sku": "PC", "value": "2.5000"}
            ], "total_value": "2.5000"}})
        );
    }

    /// `write_json` writes the bytes `serde_json` writes for the same body, compact and
    /// pretty, with the rows at a nested path and as the whole answer, across chunks, with
    /// texts that need escaping and numbers of every sign.
    #[test]
    fn written_json_is_serde_jsons_byte_for_byte() {
        let texts = [
            "stock:RAW",
            "L\"1",
            "a\\b",
            "line\nbreak",
            "\u{1}ctl",
            "护目镜",
            "",
        ];
        let many: Vec<store::BalanceRow> = (0..(2 * JSON_ROWS_CHUNK + 17) as i64)
            .map(|i| store::BalanceRow {
                account: format!("{}:{i}", texts[(i % 7) as usize]),
                sku: texts[((i / 7) % 7) as usize].to_owned(),
                lot: format!("LOT-{i}{}", texts[((i / 3) % 7) as usize]),
                quantity: Qty::from_scaled((i - 9_000) * 1_001),
                value: Money::from_scaled(if i % 5 == 0 { 0 } else { -i * 12_345 }),
            })
            .collect();
        let report = |rows: Vec<store::BalanceRow>, path: &'static [&'static str]| {
            let json = if path.is_empty() {
                Value::Null
            } else {
                json!({"ok": true, "trial_balance": {"rows": null, "total_value": "2.5000"},
                       "verify": {"head": "ab\"c", "entries": 3}, "zz": [1, {"a": []}]})
            };
            Report {
                name: "t",
                json,
                tables: Vec::new(),
                head_hash: String::new(),
                entries: 0,
                generated_at: String::new(),
                balances: Some((path, Arc::new(rows) as Arc<dyn BalanceRows>)),
            }
        };
        let nested: &'static [&'static str] = &["trial_balance", "rows"];
        let cases = [
            report(many.clone(), nested),
            report(many.clone(), &[]),
            report(many[..3].to_vec(), nested),
            report(Vec::new(), nested),
            report(Vec::new(), &[]),
        ];
        for (n, r) in cases.iter().enumerate() {
            for pretty in [false, true] {
                let expected = if pretty {
                    serde_json::to_vec_pretty(&r.body()).unwrap()
                } else {
                    serde_json::to_vec(&r.body()).unwrap()
                };
                let mut got = Vec::new();
                r.write_json(&mut got, pretty).unwrap();
                assert!(
                    got == expected,
                    "case {n}, pretty {pretty}: first difference at byte {:?}",
                    got.iter().zip(&expected).position(|(a, b)| a != b)
                );
            }
        }
        // And a report without rows writes its value.
        let plain = Report {
            balances: None,
            ..report(Vec::new(), nested)
        };
        let mut got = Vec::new();
        plain.write_json(&mut got, true).unwrap();
        assert_eq!(got, serde_json::to_vec_pretty(&plain.json).unwrap());
    }

    /// A writer that fails stops the formatting threads and returns its error.
    #[test]
    fn a_failing_writer_ends_the_written_json() {
        struct Full(usize);
        impl std::io::Write for Full {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if self.0 < buf.len() {
                    return Err(std::io::Error::other("disk full"));
                }
                self.0 -= buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let rows: Vec<store::BalanceRow> = (0..(5 * JSON_ROWS_CHUNK) as i64)
            .map(|i| store::BalanceRow {
                account: format!("a{i}"),
                sku: "PC".into(),
                lot: "L".into(),
                quantity: Qty::from_scaled(i),
                value: Money::from_scaled(i),
            })
            .collect();
        let report = Report {
            name: "t",
            json: json!({"rows": null}),
            tables: Vec::new(),
            head_hash: String::new(),
            entries: 0,
            generated_at: String::new(),
            balances: Some((&["rows"], Arc::new(rows) as Arc<dyn BalanceRows>)),
        };
        let err = report
            .write_json(&mut Full(3 * JSON_ROWS_CHUNK * 40), false)
            .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
    }

    #[test]
    fn sheet_names_are_legal() {
        assert_eq!(sheet_name("a/b:c"), "abc");
        assert_eq!(sheet_name(&"x".repeat(40)).len(), 31);
    }
}
