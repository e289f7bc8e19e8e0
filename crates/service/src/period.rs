//! Period close: after it, entries dated on or before the closed date are refused (409).

use ledger::docs::{Decision, PeriodClose};
use ledger::{Entry, Hash, Needs, Rejection, State};
use serde_json::Value;
use store::JsonText;

use crate::dto::{EntryView, PeriodCloseIn};
use crate::error::{Fields, Result};
use crate::parse;
use crate::writer::Document;

pub(crate) struct PeriodCloseDoc {
    close: PeriodClose,
    id: String,
    body: Value,
}

pub(crate) fn parse(input: &PeriodCloseIn) -> Result<PeriodCloseDoc> {
    let mut f = Fields::default();
    let through = parse::date(&mut f, "through", &input.through);
    f.finish()?;
    let close = PeriodClose {
        through: through.expect("parsed"),
    };
    let body = serde_json::json!({"through": close.through.to_string()});
    Ok(PeriodCloseDoc {
        id: close.through.to_string(),
        close,
        body,
    })
}

impl Document for PeriodCloseDoc {
    fn kind(&self) -> &'static str {
        "period-close"
    }
    fn id(&self) -> Option<(&'static str, &str)> {
        Some(("period", &self.id))
    }
    fn body(&self) -> &Value {
        &self.body
    }
    fn needs(&self) -> Needs {
        Needs::default()
    }
    fn decide(&self, state: &State, _base_currency: &str) -> Result<Decision, Rejection> {
        self.close.decide(state)
    }
    fn respond(
        &self,
        entry: &Entry,
        hash: &Hash,
        recorded_at: &str,
        _decision: &Decision,
    ) -> JsonText {
        JsonText::of(&PeriodCloseAnswer {
            entry: crate::views::entry_view(entry, hash, recorded_at),
            closed_through: self.close.through.to_string(),
        })
    }
}

/// A period close answers its entry and the last date it closed.
#[derive(serde::Serialize)]
struct PeriodCloseAnswer {
    #[serde(flatten)]
    entry: EntryView,
    closed_through: String,
}
