//! Forms: what was sent, and what the ledger refused in it.
//!
//! Form fields are named exactly as the API's JSON paths (`purchase_id`, `lines[0].qty`), so a
//! refusal names the same field in a form as in a problem+json answer and lands next to the
//! input of that name. The words come from the API's own mapping of a `ServiceError`.

use std::collections::HashMap;

use axum::http::StatusCode;
use maud::{html, Markup};
use service::ServiceError;

use crate::session::CSRF_FIELD;

/// A submitted form, as ordered pairs.
#[derive(Debug, Clone, Default)]
pub struct FormData {
    values: HashMap<String, String>,
}

impl FormData {
    pub fn parse(body: &[u8]) -> FormData {
        let mut values = HashMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            if k != CSRF_FIELD {
                values.insert(k.into_owned(), v.into_owned());
            }
        }
        FormData { values }
    }

    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> FormData {
        FormData {
            values: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// A field as sent (trimmed: a pasted code often carries a stray space); empty when absent.
    pub fn get(&self, name: &str) -> String {
        self.values
            .get(name)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    }

    /// A field that may be left empty: `None` when it is.
    pub fn opt(&self, name: &str) -> Option<String> {
        Some(self.get(name)).filter(|v| !v.is_empty())
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.values.insert(name.to_owned(), value.to_owned());
    }

    /// The number of rows of a repeated group (`lines[0].sku`, `lines[1].sku`, ...): one past
    /// the highest index sent.
    pub fn rows(&self, group: &str) -> usize {
        let prefix = format!("{group}[");
        self.values
            .keys()
            .filter_map(|k| {
                k.strip_prefix(&prefix)?
                    .split(']')
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .map(|i| i + 1)
            .max()
            .unwrap_or(0)
    }

    /// Whether every field of row `i` of a group is empty: such a row was never filled in.
    pub fn row_is_blank(&self, group: &str, i: usize, fields: &[&str]) -> bool {
        fields
            .iter()
            .all(|f| self.get(&format!("{group}[{i}].{f}")).is_empty())
    }

    /// Drops the rows of a group whose `significant` fields are all empty (a line offered
    /// with its codes filled in but no quantity typed) and renumbers the rest from 0, like
    /// [`FormData::compact_rows`].
    pub fn compact_rows_where(
        &self,
        group: &str,
        fields: &[&str],
        significant: &[&str],
    ) -> (FormData, usize) {
        let mut shown = self.clone();
        let total = self.rows(group);
        let mut n = 0;
        for i in 0..total {
            if self.row_is_blank(group, i, significant) {
                continue;
            }
            for f in fields {
                let v = self.get(&format!("{group}[{i}].{f}"));
                shown.set(&format!("{group}[{n}].{f}"), &v);
            }
            n += 1;
        }
        for i in n..total {
            for f in fields {
                shown.values.remove(&format!("{group}[{i}].{f}"));
            }
        }
        (shown, n)
    }

    /// Drops the rows of a group that were left wholly empty and renumbers the rest from 0.
    /// Answers the form as renumbered: build the document's lines from its rows `0..n`, so
    /// that `lines[i]` in a refusal is row `i` of the form shown again.
    pub fn compact_rows(&self, group: &str, fields: &[&str]) -> (FormData, usize) {
        self.compact_rows_where(group, fields, fields)
    }
}

/// The ledger's refusal of a form: every field it named with its words, and the refusal's
/// own words when it named no field.
#[derive(Debug, Clone, Default)]
pub struct FormErrors {
    pub status: Option<StatusCode>,
    pub fields: Vec<(String, String)>,
    pub detail: Option<String>,
}

impl FormErrors {
    /// The refusal, in the very words and with the very fields the API would answer.
    pub fn from_service(e: ServiceError) -> FormErrors {
        let api = api::error::ApiError::from(e);
        let problem = api.problem();
        FormErrors {
            status: Some(api.status()),
            fields: problem
                .errors
                .iter()
                .map(|f| (f.field.clone(), f.message.clone()))
                .collect(),
            detail: problem.errors.is_empty().then(|| problem.detail.clone()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.detail.is_none()
    }

    /// Names rows of `group` as the form showed them: the ledger's `lines[k]` is the form's
    /// `lines[rows[k]]` when only some rows of the form were sent.
    pub fn renumber(mut self, group: &str, rows: &[usize]) -> FormErrors {
        let prefix = format!("{group}[");
        for (field, _) in &mut self.fields {
            let Some(rest) = field.strip_prefix(&prefix) else {
                continue;
            };
            let Some((k, tail)) = rest.split_once(']') else {
                continue;
            };
            if let Some(row) = k.parse::<usize>().ok().and_then(|k| rows.get(k)) {
                *field = format!("{prefix}{row}]{tail}");
            }
        }
        self
    }

    /// The messages about one field.
    pub fn of(&self, field: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
            .collect()
    }
}

/// The id of a field's input: its name with brackets and dots made plain.
pub fn field_id(name: &str) -> String {
    let mut id = String::from("f-");
    for c in name.chars() {
        id.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '-'
        });
    }
    id
}

/// How an input is typed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Free text; with a list of suggestions when the second value names a `<datalist>`.
    Text(Option<&'static str>),
    /// A decimal: typed as text so that the ledger, not the browser, judges it.
    Decimal,
    Date,
}

/// A form being shown: the values to fill in and the errors to show beside them.
#[derive(Debug, Clone, Copy)]
pub struct FormView<'a> {
    pub data: &'a FormData,
    pub errors: &'a FormErrors,
}

impl FormView<'_> {
    fn input(&self, name: &str, kind: Input, aria_label: Option<&str>, required: bool) -> Markup {
        let id = field_id(name);
        let errors = self.errors.of(name);
        let invalid = !errors.is_empty();
        let (ty, mode, list) = match kind {
            Input::Text(list) => ("text", None, list),
            Input::Decimal => ("text", Some("decimal"), None),
            Input::Date => ("date", None, None),
        };
        html! {
            input #(id) type=(ty) name=(name) value=(self.data.get(name))
                inputmode=[mode] list=[list] aria-label=[aria_label]
                required[required] autocomplete="off"
                aria-invalid=[invalid.then_some("true")]
                aria-describedby=[invalid.then(|| format!("{id}-error"))];
            @if invalid {
                p.field-error id=(format!("{id}-error")) data-field=(name) {
                    @for m in &errors { span { (m) } }
                }
            }
        }
    }

    /// A labelled field with an optional hint and its errors.
    pub fn field(
        &self,
        name: &str,
        label: &str,
        kind: Input,
        hint: Option<&str>,
        required: bool,
    ) -> Markup {
        html! {
            div.field.invalid[!self.errors.of(name).is_empty()] {
                label for=(field_id(name)) { (label) }
                (self.input(name, kind, None, required))
                @if let Some(h) = hint { p.hint { (h) } }
            }
        }
    }

    /// An input in a table cell, labelled by its column for screen readers.
    pub fn cell(&self, name: &str, label: &str, kind: Input) -> Markup {
        html! {
            td.invalid[!self.errors.of(name).is_empty()] {
                (self.input(name, kind, Some(label), false))
            }
        }
    }

    /// The summary at the top of a refused form: the refusal in the ledger's words, every
    /// field it named linked to its input.
    pub fn summary(&self, heading: &str) -> Markup {
        html! {
            @if !self.errors.is_empty() {
                div.error-summary role="alert" tabindex="-1" {
                    p.heading { (heading) }
                    ul {
                        @if let Some(d) = &self.errors.detail { li { (d) } }
                        @for (f, m) in &self.errors.fields {
                            // Most refusals already begin with the field's name; the others
                            // get it in front, so that every line says which field it means.
                            li { a href=(format!("#{}", field_id(f))) {
                                @if m.starts_with(f.as_str()) { (m) } @else { (f) " " (m) }
                            } }
                        }
                    }
                }
            }
        }
    }
}

/// A column of a lines table: the line field it edits, its heading and how it is typed.
#[derive(Debug, Clone, Copy)]
pub struct Column<'a> {
    pub field: &'static str,
    pub label: &'a str,
    pub input: Input,
    pub optional: bool,
}

/// The texts a lines table shows around its rows.
#[derive(Debug, Clone, Copy)]
pub struct LinesText<'a> {
    pub legend: &'a str,
    pub optional: &'a str,
    pub add_line: &'a str,
    pub hint: Option<&'a str>,
}

impl FormView<'_> {
    /// The lines of a document as a table of inputs named `lines[i].field`, with the errors
    /// about `lines` itself above it and a button that adds a row (without script it asks the
    /// server for one more row; `app.js` adds it in place).
    pub fn lines_table(
        &self,
        table_id: &str,
        columns: &[Column<'_>],
        rows: usize,
        text: LinesText<'_>,
    ) -> Markup {
        html! {
            fieldset.lines {
                legend { (text.legend) }
                @for m in self.errors.of("lines") {
                    p.field-error data-field="lines" { (m) }
                }
                div.table-wrap { table.form-lines #(table_id) {
                    thead { tr {
                        @for c in columns {
                            th { (c.label) @if c.optional { " " span.muted { "(" (text.optional) ")" } } }
                        }
                    } }
                    tbody {
                        @for i in 0..rows {
                            tr.line data-line=(i) {
                                @for c in columns {
                                    (self.cell(&format!("lines[{i}].{}", c.field), c.label, c.input))
                                }
                            }
                        }
                    }
                } }
                @if let Some(h) = text.hint { p.hint { (h) } }
                button.secondary type="submit" name="action" value="add_line" data-add-line=(table_id) formnovalidate {
                    "+ " (text.add_line)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_a_group_are_counted_from_the_highest_index() {
        let f = FormData::parse(b"purchase_id=PO-1&lines%5B0%5D.sku=A&lines%5B2%5D.qty=3&_csrf=x");
        assert_eq!(f.rows("lines"), 3);
        assert!(f.row_is_blank("lines", 1, &["sku", "qty"]));
        assert!(!f.row_is_blank("lines", 2, &["sku", "qty"]));
        assert_eq!(
            f.get("_csrf"),
            "",
            "the CSRF token is not a field of the document"
        );
        assert_eq!(f.opt("missing"), None);
        let (compact, n) = f.compact_rows("lines", &["sku", "qty"]);
        assert_eq!(n, 2);
        assert_eq!(compact.get("lines[0].sku"), "A");
        assert_eq!(compact.get("lines[1].qty"), "3");
        assert_eq!(compact.rows("lines"), 2);
    }

    #[test]
    fn refused_lines_are_named_as_the_form_showed_them() {
        let e = ServiceError::Invalid(vec![
            service::FieldError {
                field: "lines[0].received_qty".into(),
                message: "m".into(),
            },
            service::FieldError {
                field: "lines".into(),
                message: "n".into(),
            },
        ]);
        let errors = FormErrors::from_service(e).renumber("lines", &[2]);
        assert_eq!(errors.of("lines[2].received_qty"), vec!["m"]);
        assert_eq!(errors.of("lines"), vec!["n"]);
    }

    #[test]
    fn field_errors_are_the_apis() {
        let e = ServiceError::field("lines[0].qty", "must be greater than zero");
        let errors = FormErrors::from_service(e);
        assert_eq!(errors.status, Some(StatusCode::UNPROCESSABLE_ENTITY));
        assert_eq!(errors.of("lines[0].qty"), vec!["must be greater than zero"]);
        assert!(errors.detail.is_none());
        assert_eq!(field_id("lines[0].qty"), "f-lines-0--qty");
    }
}
