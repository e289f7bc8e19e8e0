//! CSV export in the import columns, quoted per RFC 4180, with cells a spreadsheet would run
//! as a formula made safe (ASVS 1.2.10): a leading `=`, `+`, `-`, `@`, tab or carriage return
//! gets a `'` in front, so the cell opens as text.

use crate::dto::{ItemIn, LocationIn, PartyIn};

/// A cell made safe to open in a spreadsheet.
pub fn safe_cell(s: &str) -> std::borrow::Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}").into(),
        _ => s.into(),
    }
}

/// Numbers are written as they are: a negative quantity is data, not a formula. Every other
/// cell goes through [`safe_cell`].
pub struct CsvOut {
    w: csv::Writer<Vec<u8>>,
}

impl Default for CsvOut {
    fn default() -> Self {
        Self::new()
    }
}

impl CsvOut {
    pub fn new() -> CsvOut {
        CsvOut {
            w: csv::WriterBuilder::new()
                .quote_style(csv::QuoteStyle::Necessary)
                .from_writer(Vec::new()),
        }
    }
    pub fn header(&mut self, columns: &[&str]) -> &mut Self {
        self.w.write_record(columns).expect("writing to memory");
        self
    }
    /// A row of text cells (made safe) and numeric cells (written as they are).
    pub fn row(&mut self, cells: &[Cell<'_>]) -> &mut Self {
        let out: Vec<std::borrow::Cow<'_, str>> = cells
            .iter()
            .map(|c| match c {
                Cell::Text(s) => safe_cell(s),
                Cell::Number(s) => std::borrow::Cow::Borrowed(*s),
            })
            .collect();
        self.w
            .write_record(out.iter().map(|c| c.as_ref()))
            .expect("writing to memory");
        self
    }
    pub fn finish(self) -> String {
        String::from_utf8(self.w.into_inner().expect("writing to memory")).expect("cells are UTF-8")
    }
}

/// One cell of an exported row.
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    Text(&'a str),
    /// A number the ledger produced (never user text).
    Number(&'a str),
}

pub fn items_csv(rows: &[ItemIn]) -> String {
    let mut out = CsvOut::new();
    out.header(&["sku", "name", "kind", "unit", "decimals", "shelf_life_days"]);
    for i in rows {
        let decimals = i.decimals.to_string();
        let shelf = i.shelf_life_days.map(|d| d.to_string()).unwrap_or_default();
        out.row(&[
            Cell::Text(&i.sku),
            Cell::Text(&i.name),
            Cell::Text(&i.kind),
            Cell::Text(&i.unit),
            Cell::Number(&decimals),
            Cell::Number(&shelf),
        ]);
    }
    out.finish()
}

pub fn parties_csv(rows: &[PartyIn]) -> String {
    let mut out = CsvOut::new();
    out.header(&["code", "name", "kind", "country", "city", "parent"]);
    for p in rows {
        let opt = |o: &Option<String>| o.clone().unwrap_or_default();
        let (country, city, parent) = (opt(&p.country), opt(&p.city), opt(&p.parent));
        out.row(&[
            Cell::Text(&p.code),
            Cell::Text(&p.name),
            Cell::Text(&p.kind),
            Cell::Text(&country),
            Cell::Text(&city),
            Cell::Text(&parent),
        ]);
    }
    out.finish()
}

pub fn locations_csv(rows: &[LocationIn]) -> String {
    let mut out = CsvOut::new();
    out.header(&["code", "name"]);
    for l in rows {
        out.row(&[Cell::Text(&l.code), Cell::Text(&l.name)]);
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_open_as_text_and_cells_are_quoted() {
        let rows = vec![PartyIn {
            code: "X".into(),
            name: "=HYPERLINK(\"http://x\")".into(),
            kind: "donor".into(),
            country: None,
            city: Some("a,b".into()),
            parent: None,
        }];
        let csv = parties_csv(&rows);
        let line = csv.lines().nth(1).unwrap();
        assert_eq!(line, r#"X,"'=HYPERLINK(""http://x"")",donor,,"a,b","#);
        for bad in ["=1", "+1", "-1", "@x", "\tx", "\rx"] {
            assert!(safe_cell(bad).starts_with('\''), "{bad:?}");
        }
        assert_eq!(safe_cell("ok"), "ok");
    }
}
