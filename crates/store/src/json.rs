//! `JsonText`: a JSON value kept as the text it was serialised to, for a document's body and
//! answer, which are written once and then only stored, replayed and sent.

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

/// A JSON value as its compact text. Made by serialising a value once ([`JsonText::of`]) or
/// by checking stored text ([`JsonText::parse`]); never edited. It is written to the database
/// and to a client as that text, so an answer is serialised once, not built as a tree, copied,
/// and serialised again for the database and for the client (7 % of SQLite's import of the
/// acknowledgements, 10 % more documents a second over HTTP: BENCHMARKS-HISTORY.md, session
/// 24).
#[derive(Debug, Clone)]
pub struct JsonText(Box<RawValue>);

impl JsonText {
    /// `value` serialised. Only for types whose serialisation cannot fail: plain structs,
    /// `Value`s, strings and numbers (serde_json fails only on maps with keys that are not
    /// strings, and on a `Serialize` impl that fails on its own).
    pub fn of<T: Serialize + ?Sized>(value: &T) -> JsonText {
        JsonText(serde_json::value::to_raw_value(value).expect("a view serialises"))
    }

    /// Text read back from the database, checked to be one JSON value.
    pub fn parse(text: String) -> Result<JsonText, serde_json::Error> {
        RawValue::from_string(text).map(JsonText)
    }

    /// `null`: the answer an import gets, which counts outcomes and never reads one.
    pub fn null() -> JsonText {
        JsonText::of(&Value::Null)
    }

    /// The text, as stored and sent.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The value as a tree, for a caller that reads fields of it.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.0.get()).expect("JsonText holds one JSON value")
    }
}

/// Two texts are equal when their values are: the same fields in another order, or numbers
/// written otherwise, are the same answer.
impl PartialEq for JsonText {
    fn eq(&self, other: &JsonText) -> bool {
        self.as_str() == other.as_str() || self.to_value() == other.to_value()
    }
}

impl Serialize for JsonText {
    /// Written as the text it holds, not parsed and written again.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn holds_the_text_it_was_made_from_and_writes_it_as_is() {
        #[derive(Serialize)]
        struct View {
            b: u32,
            a: &'static str,
        }
        let t = JsonText::of(&View { b: 2, a: "x" });
        // Fields in the struct's order: no tree sorted them.
        assert_eq!(t.as_str(), r#"{"b":2,"a":"x"}"#);
        #[derive(Serialize)]
        struct Wrap {
            inner: JsonText,
        }
        let w = serde_json::to_string(&Wrap { inner: t.clone() }).unwrap();
        assert_eq!(w, r#"{"inner":{"b":2,"a":"x"}}"#);
        assert_eq!(t.to_value(), json!({ "a": "x", "b": 2 }));
    }

    /// Recorded documents' body hashes were made from `Value::to_string`: the text of a
    /// body must stay that, byte for byte, or a replay would look like a conflicting reuse.
    #[test]
    fn a_values_text_is_its_display_text() {
        let body: Value = serde_json::from_str(
            r#"{"supplier":"S\u00e9","lines":[{"qty":"12.50","unit_price":1.10,"n":null}],"a":"\"q\""}"#,
        )
        .unwrap();
        assert_eq!(JsonText::of(&body).as_str(), body.to_string());
        assert!(JsonText::of(&body)
            .as_str()
            .starts_with(r#"{"a":"\"q\"","lines""#));
    }

    #[test]
    fn equal_when_the_values_are() {
        let a = JsonText::parse(r#"{"a":1,"b":[true,null]}"#.to_owned()).unwrap();
        let b = JsonText::parse(r#"{ "b": [true, null], "a": 1 }"#.to_owned()).unwrap();
        let c = JsonText::parse(r#"{"a":2,"b":[true,null]}"#.to_owned()).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(JsonText::null().as_str(), "null");
    }

    #[test]
    fn refuses_text_that_is_not_one_json_value() {
        for bad in ["", "{", r#"{"a":1} 2"#, "nul"] {
            assert!(JsonText::parse(bad.to_owned()).is_err(), "{bad:?}");
        }
    }
}
