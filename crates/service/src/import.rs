//! CSV import: master data row by row, documents grouped by their id. A document is imported
//! whole or not at all; every rejected row is reported with its line number and reason; the
//! same file imported twice changes nothing. Rows are streamed, never all held in memory.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::dto::{ItemIn, LocationIn, PartyIn};
use crate::error::{Result, ServiceError};
use crate::writer::{Document, Outcome};
use crate::Service;

/// Largest number of rows one document may span.
pub const ROWS_PER_DOCUMENT_MAX: usize = ledger::docs::LINES_PER_DOCUMENT_MAX;
/// Documents in flight to the writer, as a multiple of its import batch: the next batch is
/// queued while one commits, and memory stays bounded whatever the size of the file.
const IN_FLIGHT_BATCHES: usize = 2;
/// Longest cell accepted.
const CELL_MAX_LEN: usize = 1_000;

/// What `ppe import` can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    Items,
    Parties,
    Locations,
    Purchases,
    Receipts,
    Batches,
    Donations,
    Acknowledgements,
    Boms,
    Production,
}

impl ImportKind {
    pub const ALL: &'static [ImportKind] = &[
        ImportKind::Items,
        ImportKind::Parties,
        ImportKind::Locations,
        ImportKind::Purchases,
        ImportKind::Receipts,
        ImportKind::Batches,
        ImportKind::Donations,
        ImportKind::Acknowledgements,
        ImportKind::Boms,
        ImportKind::Production,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Items => "items",
            ImportKind::Parties => "parties",
            ImportKind::Locations => "locations",
            ImportKind::Purchases => "purchases",
            ImportKind::Receipts => "receipts",
            ImportKind::Batches => "batches",
            ImportKind::Donations => "donations",
            ImportKind::Acknowledgements => "acknowledgements",
            ImportKind::Boms => "boms",
            ImportKind::Production => "production",
        }
    }

    /// The columns of this kind's CSV (DESIGN section 4), required ones first.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            ImportKind::Items => &["sku", "name", "kind", "unit", "decimals", "shelf_life_days"],
            ImportKind::Parties => &["code", "name", "kind", "country", "city", "parent"],
            ImportKind::Locations => &["code", "name"],
            ImportKind::Purchases => &[
                "purchase_id",
                "date",
                "supplier",
                "location",
                "currency",
                "fx_rate",
                "sku",
                "qty",
                "unit_price",
                "lot",
                "expires_on",
            ],
            ImportKind::Receipts => &[
                "receipt_id",
                "date",
                "donor",
                "location",
                "sku",
                "qty",
                "unit_value",
                "lot",
                "expires_on",
            ],
            ImportKind::Batches => &[
                "batch_id",
                "date",
                "from_location",
                "destination",
                "sku",
                "qty",
                "lot",
            ],
            ImportKind::Donations => &[
                "donation_id",
                "date",
                "from_location",
                "recipient",
                "declared_value",
                "currency",
                "fx_rate",
                "sku",
                "qty",
                "lot",
            ],
            // `acknowledgement_id` is an optional column beyond DESIGN's list.
            ImportKind::Acknowledgements => &[
                "shipment_id",
                "date",
                "destination",
                "sku",
                "lot",
                "received_qty",
                "damaged_qty",
                "note",
                "acknowledgement_id",
            ],
            ImportKind::Boms => &[
                "product_sku",
                "version",
                "output_qty",
                "material_sku",
                "qty",
            ],
            ImportKind::Production => crate::production::CSV_COLUMNS,
        }
    }

    /// How documents of this kind are gathered from rows; `None` for master data.
    fn document(self) -> Option<DocumentCsv> {
        match self {
            ImportKind::Purchases => Some(crate::purchase::CSV),
            ImportKind::Receipts => Some(crate::receipt::CSV),
            ImportKind::Batches => Some(crate::shipment::BATCH_CSV),
            ImportKind::Donations => Some(crate::shipment::DONATION_CSV),
            ImportKind::Acknowledgements => Some(crate::shipment::ACK_CSV),
            ImportKind::Production => Some(crate::production::CSV),
            _ => None,
        }
    }

    /// Columns besides the id whose change starts a new document: one shipment's rows of two
    /// days are two acknowledgements.
    fn split_by(self) -> &'static [&'static str] {
        match self {
            ImportKind::Acknowledgements => &["date", "acknowledgement_id"],
            _ => &[],
        }
    }

    /// Columns that may be left out of the header entirely.
    fn optional(self) -> &'static [&'static str] {
        match self {
            ImportKind::Items => &["decimals", "shelf_life_days"],
            ImportKind::Parties => &["country", "city", "parent"],
            ImportKind::Locations => &[],
            ImportKind::Purchases => &["currency", "fx_rate", "lot", "expires_on"],
            ImportKind::Receipts => &["lot", "expires_on"],
            ImportKind::Batches => &["lot"],
            ImportKind::Donations => &["currency", "fx_rate", "lot"],
            ImportKind::Acknowledgements => &[
                "lot",
                "received_qty",
                "damaged_qty",
                "note",
                "acknowledgement_id",
            ],
            ImportKind::Boms => &[],
            ImportKind::Production => crate::production::CSV_OPTIONAL,
        }
    }

    /// The column a field of a document's line names: DESIGN's JSON lines drop the CSV's
    /// `material_` prefix (`lines[0].qty` of a run is its `material_qty` column).
    fn column_of(self, field: &str) -> String {
        let prefixed = format!("material_{field}");
        if !self.columns().contains(&field) && self.columns().contains(&prefixed.as_str()) {
            prefixed
        } else {
            field.to_owned()
        }
    }
}

impl FromStr for ImportKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        ImportKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown import kind {s:?}; one of {}",
                    ImportKind::ALL
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

/// One rejected row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    /// Line in the file, the header being line 1.
    pub line: u64,
    pub column: Option<String>,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(c) => write!(f, "line {}: {c}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// Data rows read (not counting the header).
    pub rows: u64,
    /// Records or documents this import created.
    pub created: u64,
    /// Records or documents that were already there, identical.
    pub unchanged: u64,
    pub rejected: Vec<RowError>,
}

/// A data row: its line and its cells by column.
pub(crate) struct Row {
    pub line: u64,
    cells: Vec<String>,
}

/// The header of a file: where each known column is.
pub(crate) struct Header {
    index: HashMap<&'static str, usize>,
    /// The column of each cell, in file order.
    names: Vec<&'static str>,
}

impl Header {
    /// A cell, `None` when the column is absent or the cell empty.
    pub fn get<'r>(&self, row: &'r Row, column: &str) -> Option<&'r str> {
        self.index
            .get(column)
            .map(|&i| row.cells[i].as_str())
            .filter(|s| !s.is_empty())
    }
    /// A cell, empty when absent (the parser then names the field).
    pub fn req<'r>(&self, row: &'r Row, column: &str) -> &'r str {
        self.get(row, column).unwrap_or("")
    }
}

/// How a kind of document is read from CSV: rows sharing the id column form one document,
/// whose document-level columns must agree on every row; `build` turns the rows into a
/// document for the writer (its `lines[i]` fields are the i-th row).
pub(crate) struct DocumentCsv {
    pub id_column: &'static str,
    pub doc_columns: &'static [&'static str],
    pub build: BuildDocument,
}

/// Turns the rows of one document into a document for the writer.
pub(crate) type BuildDocument = fn(&Service, &Header, &[Row]) -> Result<Box<dyn Document>>;

/// Line numbers of records. The csv crate's own are off by one after a CRLF line end and
/// after a blank line (rust-csv issues 395 and 208), so lines are counted here, from the
/// bytes the csv reader takes, at the byte where each record starts.
#[derive(Debug, Clone, Default)]
pub(crate) struct LineIndex(Arc<Mutex<Lines>>);

#[derive(Debug, Default)]
struct Lines {
    /// Offsets of line-end bytes (`\r`, `\n`) read but not yet passed, in order.
    ends: VecDeque<(u64, u8)>,
    /// Bytes read so far.
    read: u64,
    /// `\n`s passed so far.
    passed: u64,
}

impl LineIndex {
    /// The line (from 1) of a record the csv reader says starts at byte `at`: line ends at
    /// `at` itself (the LF of a CRLF, blank lines) come before the record, not in it.
    fn line_at(&self, mut at: u64) -> u64 {
        let mut l = self.0.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(&(offset, byte)) = l.ends.front() {
            if offset > at {
                break;
            }
            if byte == b'\n' {
                l.passed += 1;
            }
            if offset == at {
                at += 1;
            }
            l.ends.pop_front();
        }
        l.passed + 1
    }
}

/// A reader that tells a [`LineIndex`] where lines end.
struct Counting<R> {
    inner: R,
    lines: LineIndex,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut l = self.lines.0.lock().unwrap_or_else(|e| e.into_inner());
        let start = l.read;
        for (i, b) in buf[..n].iter().enumerate() {
            if matches!(b, b'\r' | b'\n') {
                l.ends.push_back((start + i as u64, *b));
            }
        }
        l.read += n as u64;
        Ok(n)
    }
}

/// Skips a UTF-8 byte-order mark.
fn skip_bom<R: BufRead>(mut r: R) -> std::io::Result<R> {
    let buf = r.fill_buf()?;
    if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
        r.consume(3);
    }
    Ok(r)
}

fn header(
    kind: ImportKind,
    reader: &mut csv::Reader<impl Read>,
) -> std::result::Result<Header, RowError> {
    let at_line_1 = |message: String| RowError {
        line: 1,
        column: None,
        message,
    };
    let headers = reader
        .headers()
        .map_err(|e| at_line_1(format!("cannot read the header: {e}")))?
        .clone();
    let mut index = HashMap::new();
    let mut names = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let Some(&known) = kind.columns().iter().find(|c| **c == h.trim()) else {
            return Err(at_line_1(format!(
                "unknown column {h:?}; the columns of {} are {}",
                kind.as_str(),
                kind.columns().join(",")
            )));
        };
        names.push(known);
        if index.insert(known, i).is_some() {
            return Err(at_line_1(format!("column {known:?} appears twice")));
        }
    }
    if let Some(missing) = kind
        .columns()
        .iter()
        .find(|c| !index.contains_key(*c) && !kind.optional().contains(c))
    {
        return Err(at_line_1(format!("missing column {missing:?}")));
    }
    Ok(Header { index, names })
}

/// A row that cannot be read: why, and the id of the document it names when that cell at
/// least can be read (so that the document is refused whole rather than imported without it).
pub(crate) struct BadRow {
    pub error: RowError,
    pub id: Option<String>,
}

pub(crate) fn next_row(
    reader: &mut csv::Reader<impl Read>,
    record: &mut csv::ByteRecord,
    lines: &LineIndex,
    h: &Header,
    id_column: Option<&str>,
) -> std::result::Result<Option<Row>, BadRow> {
    match reader.read_byte_record(record) {
        Ok(false) => Ok(None),
        Ok(true) => {
            let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
            let id = id_column
                .and_then(|c| h.index.get(c))
                .and_then(|&i| record.get(i))
                .and_then(|b| std::str::from_utf8(b).ok())
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty());
            let bad = |column: Option<&str>, message: String| BadRow {
                error: RowError {
                    line,
                    column: column.map(str::to_owned),
                    message,
                },
                id: id.clone(),
            };
            if record.len() != h.names.len() {
                return Err(bad(
                    None,
                    format!(
                        "has {} cells where the header has {}",
                        record.len(),
                        h.names.len()
                    ),
                ));
            }
            let mut cells = Vec::with_capacity(record.len());
            for (i, cell) in record.iter().enumerate() {
                let column = h.names.get(i).copied();
                if cell.len() > CELL_MAX_LEN {
                    return Err(bad(
                        column,
                        format!("is longer than {CELL_MAX_LEN} bytes ({} bytes)", cell.len()),
                    ));
                }
                match std::str::from_utf8(cell) {
                    Ok(c) => cells.push(c.trim().to_owned()),
                    Err(_) => return Err(bad(column, "is not valid UTF-8".to_owned())),
                }
            }
            Ok(Some(Row { line, cells }))
        }
        Err(e) => {
            let line = e.position().map_or(0, |p| lines.line_at(p.byte()));
            Err(BadRow {
                error: RowError {
                    line,
                    column: None,
                    message: e.to_string(),
                },
                id: None,
            })
        }
    }
}

/// Turns a service error about one document into row errors with line numbers: a field
/// `lines[i].x` names the i-th row of the document and column x; any other field names the
/// first row.
pub(crate) fn row_errors(e: &ServiceError, lines: &[u64]) -> Vec<RowError> {
    let locate = |field: Option<&str>, message: String| -> RowError {
        let first = lines.first().copied().unwrap_or(0);
        let Some(field) = field else {
            return RowError {
                line: first,
                column: None,
                message,
            };
        };
        if let Some(rest) = field.strip_prefix("lines[") {
            if let Some((i, col)) = rest.split_once("].") {
                if let Some(&line) = i.parse::<usize>().ok().and_then(|i| lines.get(i)) {
                    return RowError {
                        line,
                        column: Some(col.to_owned()),
                        message,
                    };
                }
            }
        }
        RowError {
            line: first,
            column: Some(field.to_owned()),
            message,
        }
    };
    match e {
        ServiceError::Invalid(fields) => fields
            .iter()
            .map(|f| locate(Some(&f.field), f.message.clone()))
            .collect(),
        ServiceError::Rejected(r) => vec![locate(r.field(), r.to_string())],
        other => vec![locate(None, other.to_string())],
    }
}

fn opt_u32(h: &Header, row: &Row, column: &str) -> std::result::Result<Option<u32>, RowError> {
    h.get(row, column)
        .map(|s| {
            s.parse::<u32>().map_err(|_| RowError {
                line: row.line,
                column: Some(column.into()),
                message: format!("{s:?} is not a whole number"),
            })
        })
        .transpose()
}

/// What tells one document's rows from the next: the id column, and the columns a kind
/// splits documents by (written as `id (column value, ...)` in messages).
fn document_key(h: &Header, row: &Row, id_column: &str, split_by: &[&str]) -> String {
    let id = h.req(row, id_column);
    let parts: Vec<String> = split_by
        .iter()
        .filter_map(|c| h.get(row, c).map(|v| format!("{c} {v}")))
        .collect();
    if parts.is_empty() {
        id.to_owned()
    } else {
        format!("{id} ({})", parts.join(", "))
    }
}

/// The ids of documents whose rows are not adjacent, found by reading only the id column.
/// Anything else wrong with the file is left to the real pass to report.
fn split_documents<R: BufRead>(
    input: &mut R,
    id_column: &str,
    split_by: &[&str],
) -> std::io::Result<HashSet<String>> {
    let input = skip_bom(input)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(input);
    let mut split = HashSet::new();
    let Ok(headers) = reader.byte_headers().cloned() else {
        return Ok(split);
    };
    let Some(at) = headers
        .iter()
        .position(|h| h.trim_ascii() == id_column.as_bytes())
    else {
        return Ok(split);
    };
    // The columns that split one id into several documents, as `document_key` writes them.
    let parts: Vec<(&str, usize)> = split_by
        .iter()
        .filter_map(|c| {
            headers
                .iter()
                .position(|h| h.trim_ascii() == c.as_bytes())
                .map(|i| (*c, i))
        })
        .collect();
    // Fingerprints, not the ids: memory grows by 16 bytes a document (see `fingerprint`).
    let mut seen: HashSet<u128> = HashSet::new();
    let mut last: Option<String> = None;
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) if e.is_io_error() => {
                return Err(match e.into_kind() {
                    csv::ErrorKind::Io(io) => io,
                    other => std::io::Error::other(format!("{other:?}")),
                })
            }
            Err(_) => continue,
        }
        // Rows the real pass cannot read do not count: they neither split nor join documents.
        let readable = record.len() == headers.len()
            && record
                .iter()
                .all(|c| c.len() <= CELL_MAX_LEN && std::str::from_utf8(c).is_ok());
        let Some(id) = record
            .get(at)
            .filter(|_| readable)
            .and_then(|c| std::str::from_utf8(c).ok())
            .map(|c| c.trim().to_owned())
        else {
            continue;
        };
        let keyed: Vec<String> = parts
            .iter()
            .filter_map(|(c, i)| {
                let v = record
                    .get(*i)
                    .and_then(|v| std::str::from_utf8(v).ok())?
                    .trim();
                (!v.is_empty()).then(|| format!("{c} {v}"))
            })
            .collect();
        let id = if keyed.is_empty() || id.is_empty() {
            id
        } else {
            format!("{id} ({})", keyed.join(", "))
        };
        if last.as_deref() == Some(id.as_str()) {
            continue;
        }
        // An empty id ends the document before it, as it does in the real pass.
        if !id.is_empty() && !seen.insert(fingerprint(&id)) {
            split.insert(id.clone());
        }
        last = Some(id);
    }
    Ok(split)
}

/// The refusal of a document next to a row that cannot be read and names no document.
fn unreadable_neighbour(line: u64, id: &str, bad_line: u64) -> RowError {
    RowError {
        line,
        column: None,
        message: format!(
            "document {id} is not imported: line {bad_line} beside it cannot be read and may be one of its rows"
        ),
    }
}

/// A document being gathered from its rows.
struct Gathered {
    id: String,
    rows: Vec<Row>,
}

impl Service {
    /// Imports a CSV file of one kind. `progress` is told the rows read so far.
    ///
    /// A file of documents is read twice: first only the id column, to find documents whose
    /// rows are not adjacent (such a document is refused whole, before any of it is written),
    /// then the rows themselves.
    pub async fn import_csv<R: Read + Seek>(
        &self,
        kind: ImportKind,
        input: R,
        actor: &str,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<ImportReport> {
        let file_error = |e: std::io::Error| ServiceError::field("file", e);
        let mut input = std::io::BufReader::new(input);
        let split = match kind.document() {
            Some(spec) => {
                let split = split_documents(&mut input, spec.id_column, kind.split_by())
                    .map_err(file_error)?;
                input.seek(SeekFrom::Start(0)).map_err(file_error)?;
                split
            }
            None => HashSet::new(),
        };
        let lines = LineIndex::default();
        let input = Counting {
            inner: skip_bom(input).map_err(file_error)?,
            lines: lines.clone(),
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            // Rows of the wrong length are read and reported here, so that the document they
            // name can be refused whole.
            .flexible(true)
            .from_reader(input);
        let mut report = ImportReport::default();
        let h = match header(kind, &mut reader) {
            Ok(h) => h,
            Err(e) => {
                report.rejected.push(e);
                return Ok(report);
            }
        };
        let mut record = csv::ByteRecord::new();
        match kind.document() {
            None if kind == ImportKind::Boms => {
                self.import_boms(&h, &mut reader, &mut record, &lines, &mut report, progress)
                    .await?
            }
            Some(spec) => {
                self.import_documents(
                    &spec,
                    kind.split_by(),
                    split,
                    &h,
                    &mut reader,
                    &mut record,
                    &lines,
                    actor,
                    &mut report,
                    progress,
                )
                .await?
            }
            None => loop {
                let row = match next_row(&mut reader, &mut record, &lines, &h, None) {
                    Ok(Some(r)) => r,
                    Ok(None) => break,
                    Err(bad) => {
                        report.rows += 1;
                        report.rejected.push(bad.error);
                        continue;
                    }
                };
                report.rows += 1;
                let created = match kind {
                    ImportKind::Items => match opt_u32(&h, &row, "decimals")
                        .and_then(|d| Ok((d, opt_u32(&h, &row, "shelf_life_days")?)))
                    {
                        Ok((decimals, shelf_life_days)) => {
                            let item = ItemIn {
                                sku: h.req(&row, "sku").into(),
                                name: h.req(&row, "name").into(),
                                kind: h.req(&row, "kind").into(),
                                unit: h.req(&row, "unit").into(),
                                decimals: decimals.unwrap_or(0),
                                shelf_life_days,
                            };
                            self.create_item(&item).await.map(|c| c.created)
                        }
                        Err(e) => {
                            report.rejected.push(e);
                            continue;
                        }
                    },
                    ImportKind::Parties => {
                        let party = PartyIn {
                            code: h.req(&row, "code").into(),
                            name: h.req(&row, "name").into(),
                            kind: h.req(&row, "kind").into(),
                            country: h.get(&row, "country").map(Into::into),
                            city: h.get(&row, "city").map(Into::into),
                            parent: h.get(&row, "parent").map(Into::into),
                        };
                        self.create_party(&party).await.map(|c| c.created)
                    }
                    ImportKind::Locations => self
                        .create_location(&LocationIn {
                            code: h.req(&row, "code").into(),
                            name: h.req(&row, "name").into(),
                        })
                        .await
                        .map(|c| c.created),
                    _ => unreachable!("documents are imported above"),
                };
                match created {
                    Ok(true) => report.created += 1,
                    Ok(false) => report.unchanged += 1,
                    Err(ServiceError::Store(e)) => return Err(ServiceError::Store(e)),
                    Err(e) => report.rejected.extend(row_errors(&e, &[row.line])),
                }
                progress(report.rows);
            },
        }
        for e in &mut report.rejected {
            if let Some(c) = &mut e.column {
                *c = kind.column_of(c);
            }
        }
        report.rejected.sort_by_key(|e| e.line);
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    async fn import_documents(
        &self,
        spec: &DocumentCsv,
        split_by: &[&str],
        split: HashSet<String>,
        h: &Header,
        reader: &mut csv::Reader<impl Read>,
        record: &mut csv::ByteRecord,
        lines: &LineIndex,
        actor: &str,
        report: &mut ImportReport,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        // Where each document began, to refuse rows of one document that are not adjacent.
        // Keyed by a 128-bit fingerprint of the id rather than the id itself, so that memory
        // grows by 24 bytes a document, not by the id's allocation; two ids of one file
        // collide with a chance of about n^2 / 2^129, nothing at any file size.
        let mut seen: HashMap<u128, u64> = HashMap::new();
        let mut current: Option<Gathered> = None;
        // Documents refused whole: split ones from the start, others as their rows show.
        let mut bad_docs: HashSet<String> = split;
        // The line of an unreadable row whose document is unknown, until the next row is read.
        let mut poison_next: Option<u64> = None;
        let window = IN_FLIGHT_BATCHES * self.writer_config().import_batch_max.max(1);
        let mut in_flight: VecDeque<(Vec<u64>, oneshot::Receiver<Result<Outcome>>)> =
            VecDeque::new();
        loop {
            let row = match next_row(reader, record, lines, h, Some(spec.id_column)) {
                Ok(r) => r,
                Err(bad) => {
                    report.rows += 1;
                    let line = bad.error.line;
                    report.rejected.push(bad.error);
                    match bad.id {
                        // The row names its document: that document is refused whole.
                        Some(id) => {
                            bad_docs.insert(id);
                        }
                        // A row whose document cannot be told may belong to the document
                        // before it or to the one after: both are refused.
                        None => {
                            if let Some(c) = &current {
                                if bad_docs.insert(c.id.clone()) {
                                    report.rejected.push(unreadable_neighbour(
                                        c.rows[0].line,
                                        &c.id,
                                        line,
                                    ));
                                }
                            }
                            poison_next = Some(line);
                        }
                    }
                    continue;
                }
            };
            if let (Some(bad_line), Some(r)) = (poison_next, &row) {
                let id = h.req(r, spec.id_column).to_owned();
                if !id.is_empty() && bad_docs.insert(id.clone()) {
                    report
                        .rejected
                        .push(unreadable_neighbour(r.line, &id, bad_line));
                }
                poison_next = None;
            }
            let id = row
                .as_ref()
                .map(|r| document_key(h, r, spec.id_column, split_by));
            let continues = matches!((&current, &id), (Some(c), Some(i)) if &c.id == i);
            if !continues {
                if let Some(done) = current.take() {
                    let lines: Vec<u64> = done.rows.iter().map(|r| r.line).collect();
                    // A row that named only the id (it could not be read further) refuses every
                    // document of that id.
                    let plain_id = h.req(&done.rows[0], spec.id_column);
                    if !bad_docs.contains(&done.id) && !bad_docs.contains(plain_id) {
                        match (spec.build)(self, h, &done.rows) {
                            Ok(doc) => in_flight
                                .push_back((lines, self.enqueue(doc, actor, None, true).await?)),
                            Err(e) => report.rejected.extend(row_errors(&e, &lines)),
                        }
                    }
                    // A sliding window: wait for the oldest only, so the writer's queue never
                    // runs dry while answers are counted.
                    while in_flight.len() >= window {
                        if let Some(oldest) = in_flight.pop_front() {
                            settle_one(oldest, report).await?;
                        }
                    }
                }
            }
            let Some(row) = row else { break };
            report.rows += 1;
            progress(report.rows);
            let id = id.expect("a row has an id");
            if h.req(&row, spec.id_column).is_empty() {
                report.rejected.push(RowError {
                    line: row.line,
                    column: Some(spec.id_column.into()),
                    message: "is empty".into(),
                });
                continue;
            }
            match &mut current {
                Some(c) if continues => {
                    // Document-level columns must agree on every row of the document.
                    let first = &c.rows[0];
                    if let Some(column) = spec
                        .doc_columns
                        .iter()
                        .find(|col| h.req(first, col) != h.req(&row, col))
                    {
                        report.rejected.push(RowError {
                            line: row.line,
                            column: Some((*column).into()),
                            message: format!(
                                "is {:?} where the document's first row (line {}) says {:?}",
                                h.req(&row, column),
                                first.line,
                                h.req(first, column)
                            ),
                        });
                        bad_docs.insert(id.clone());
                    } else if c.rows.len() >= ROWS_PER_DOCUMENT_MAX {
                        report.rejected.push(RowError {
                            line: row.line,
                            column: None,
                            message: format!(
                                "a document may span at most {ROWS_PER_DOCUMENT_MAX} rows"
                            ),
                        });
                        bad_docs.insert(id.clone());
                    }
                    c.rows.push(row);
                }
                _ => {
                    let print = fingerprint(&id);
                    if let Some(first) = seen.get(&print) {
                        report.rejected.push(RowError {
                            line: row.line,
                            column: Some(spec.id_column.into()),
                            message: format!(
                                "rows of document {id} must be adjacent; it began at line {first}"
                            ),
                        });
                        bad_docs.insert(id.clone());
                    }
                    seen.insert(print, row.line);
                    current = Some(Gathered {
                        id,
                        rows: vec![row],
                    });
                }
            }
        }
        settle(&mut in_flight, report).await
    }
}

/// Waits for documents in flight and counts their outcomes.
async fn settle(
    in_flight: &mut VecDeque<(Vec<u64>, oneshot::Receiver<Result<Outcome>>)>,
    report: &mut ImportReport,
) -> Result<()> {
    while let Some(one) = in_flight.pop_front() {
        settle_one(one, report).await?;
    }
    Ok(())
}

/// Waits for one document in flight and counts its outcome.
async fn settle_one(
    (lines, rx): (Vec<u64>, oneshot::Receiver<Result<Outcome>>),
    report: &mut ImportReport,
) -> Result<()> {
    match rx.await.map_err(|_| ServiceError::WriterGone)? {
        Ok(o) if o.replayed => report.unchanged += 1,
        Ok(_) => report.created += 1,
        Err(ServiceError::Store(e)) => return Err(ServiceError::Store(e)),
        Err(e) => report.rejected.extend(row_errors(&e, &lines)),
    }
    Ok(())
}

/// A 128-bit fingerprint of a document key (SHA-256, truncated): stable, and collision-free
/// in practice.
fn fingerprint(id: &str) -> u128 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(id.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    u128::from_le_bytes(b)
}
