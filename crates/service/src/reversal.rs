//! Reversals: the negated postings of one entry, refused when that would break invariant 2.

use ledger::docs::{Decision, Reversal};
use ledger::{Entry, Hash, Needs, Rejection, State};
use serde_json::Value;
use store::JsonText;

use crate::dto::ReversalIn;
use crate::error::{Fields, Result};
use crate::parse;
use crate::writer::Document;

pub(crate) struct ReversalDoc {
    reversal: Reversal,
    body: Value,
}

pub(crate) fn parse(seq: u64, input: &ReversalIn) -> Result<ReversalDoc> {
    let mut f = Fields::default();
    let date = parse::opt_date(&mut f, "date", input.date.as_deref());
    let memo = input.memo.clone().unwrap_or_default();
    if memo.chars().count() > ledger::master::NAME_MAX_LEN {
        f.push(
            "memo",
            format!("is longer than {} characters", ledger::master::NAME_MAX_LEN),
        );
    }
    f.finish()?;
    let date = date.expect("parsed");
    let body = serde_json::json!({"seq": seq, "date": date.map(|d| d.to_string()), "memo": memo});
    Ok(ReversalDoc {
        reversal: Reversal { seq, date, memo },
        body,
    })
}

impl Document for ReversalDoc {
    fn kind(&self) -> &'static str {
        "reversal"
    }
    fn id(&self) -> Option<(&'static str, &str)> {
        None
    }
    fn body(&self) -> &Value {
        &self.body
    }
    fn needs(&self) -> Needs {
        self.reversal.needs_first()
    }
    fn needs_then(&self, state: &State) -> Needs {
        self.reversal.needs_then(state)
    }
    fn decide(&self, state: &State, _base_currency: &str) -> Result<Decision, Rejection> {
        self.reversal.decide(state)
    }
    fn respond(
        &self,
        entry: &Entry,
        hash: &Hash,
        recorded_at: &str,
        _decision: &Decision,
    ) -> JsonText {
        crate::views::entry_answer(entry, hash, recorded_at)
    }
}
