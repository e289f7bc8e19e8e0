//! The bad input corpus (issue 9, item 7), on every backend: malformed JSON and CSV from
//! `tests/corpus/http.txt` and `tests/corpus/csv.txt`, plus a few cases too large to keep as
//! text (made below). Every request gets a 4xx problem+json answer naming the field, never a
//! 5xx; every CSV file makes `ppe import` fail with a report naming the line and column; none
//! of them panics; and none writes anything (row counts of every table and the head stay).

use ppe_tests::{backends, spawn_app, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// One HTTP case: what to send and what must come back.
#[derive(Debug)]
struct HttpCase {
    name: String,
    method: Method,
    path: String,
    /// None: any 4xx.
    status: Option<u16>,
    field: Option<String>,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

/// One CSV case: a file of one kind and the line (and column) its report must name.
#[derive(Debug)]
struct CsvCase {
    name: String,
    kind: String,
    line: u64,
    column: Option<String>,
    file: Vec<u8>,
}

/// Replaces the corpus's stand-ins for bytes that a text file cannot show.
fn bytes_of(text: &str) -> Vec<u8> {
    let text = text
        .replace("{BOM}", "\u{feff}")
        .replace("{CR}", "\r")
        .replace("{NUL}", "\0");
    let mut out = Vec::new();
    for (i, part) in text.split("{FF}").enumerate() {
        if i > 0 {
            out.push(0xFF);
        }
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// Splits a corpus file into (header fields, body) pairs.
fn cases_of(corpus: &str) -> Vec<(Vec<String>, String)> {
    let mut out: Vec<(Vec<String>, String)> = Vec::new();
    for line in corpus.split_inclusive('\n') {
        if let Some(header) = line.strip_prefix("=== ") {
            let fields = header.trim_end().split(" | ").map(str::to_owned).collect();
            out.push((fields, String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
        }
        // Lines before the first case are the corpus's own comments.
    }
    out
}

fn http_corpus() -> Vec<HttpCase> {
    let text = include_str!("corpus/http.txt");
    let mut cases: Vec<HttpCase> = cases_of(text)
        .into_iter()
        .map(|(f, body)| {
            assert_eq!(f.len(), 4, "a header needs 4 fields: {f:?}");
            let (method, path) = f[1].split_once(' ').expect("METHOD PATH");
            HttpCase {
                name: f[0].clone(),
                method: method.parse().expect("a method"),
                path: path.to_owned(),
                status: (f[2] != "4xx").then(|| f[2].parse().expect("a status")),
                field: (f[3] != "-").then(|| f[3].clone()),
                body: bytes_of(body.strip_suffix('\n').unwrap_or(&body)),
                headers: Vec::new(),
            }
        })
        .collect();
    // Cases too large, or too particular, to keep as text.
    let purchase = |lines: usize| {
        let line = json!({"sku":"BAND","qty":"1","unit_price":"1"});
        json!({"purchase_id":"PO-BIG","date":"2020-02-12","supplier":"SUP","location":"RAW",
               "lines": vec![line; lines]})
        .to_string()
        .into_bytes()
    };
    let made = |name: &str, status: u16, field: Option<&str>, body: Vec<u8>| HttpCase {
        name: name.to_owned(),
        method: Method::POST,
        path: "/api/v1/purchases".to_owned(),
        status: Some(status),
        field: field.map(str::to_owned),
        body,
        headers: Vec::new(),
    };
    cases.push(made("1001 lines", 422, Some("lines"), purchase(1001)));
    cases.push(made("a body over 1 MiB", 413, None, purchase(30_000)));
    let mut nested = made(
        "arrays nested 10000 deep",
        400,
        None,
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
    );
    nested.status = None;
    cases.push(nested);
    // A decimal is read as any JSON value first: nesting there meets serde_json's depth limit.
    cases.push(made(
        "a quantity nested 10000 deep",
        400,
        None,
        format!(
            r#"{{"purchase_id":"PO-X","date":"2020-02-12","supplier":"SUP","location":"RAW","lines":[{{"sku":"BAND","unit_price":"1","qty":{}{}}}]}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        )
        .into_bytes(),
    ));
    let mut memo = made(
        "a memo of a million characters",
        413,
        None,
        format!("{{\"memo\":\"{}\"}}", "m".repeat(1_100_000)).into_bytes(),
    );
    memo.path = "/api/v1/entries/1/reversal".to_owned();
    cases.push(memo);
    for (name, key) in [
        ("Idempotency-Key too long", "k".repeat(256)),
        ("Idempotency-Key with a space", "a key".to_owned()),
    ] {
        let mut c = made(name, 422, Some("Idempotency-Key"), purchase(1));
        c.headers.push(("idempotency-key".to_owned(), key));
        cases.push(c);
    }
    cases
}

fn csv_corpus() -> Vec<CsvCase> {
    let text = include_str!("corpus/csv.txt");
    let mut cases: Vec<CsvCase> = cases_of(text)
        .into_iter()
        .map(|(f, body)| {
            assert_eq!(f.len(), 4, "a header needs 4 fields: {f:?}");
            CsvCase {
                name: f[0].clone(),
                kind: f[1].clone(),
                line: f[2].parse().expect("a line number"),
                column: (f[3] != "-").then(|| f[3].clone()),
                file: bytes_of(&body),
            }
        })
        .collect();
    let header =
        "purchase_id,date,supplier,location,currency,fx_rate,sku,qty,unit_price,lot,expires_on\n";
    let row = |id: &str, sku: &str| format!("{id},2020-02-12,SUP,RAW,CNY,,{sku},1,1,,\n");
    cases.push(CsvCase {
        name: "a cell of 2000 bytes".into(),
        kind: "purchases".into(),
        line: 2,
        column: Some("sku".into()),
        file: format!("{header}{}", row("PO-X", &"S".repeat(2_000))).into_bytes(),
    });
    cases.push(CsvCase {
        name: "a line of 3 MB".into(),
        kind: "purchases".into(),
        line: 2,
        column: None,
        file: format!("{header}PO-X,{}", "y".repeat(3_000_000)).into_bytes(),
    });
    let mut long = header.to_owned();
    for _ in 0..1_001 {
        long.push_str(&row("PO-LONG", "BAND"));
    }
    cases.push(CsvCase {
        name: "a document of 1001 rows".into(),
        kind: "purchases".into(),
        line: 1_002,
        column: None,
        file: long.into_bytes(),
    });
    cases
}

async fn ledger(app: &TestApp) {
    for item in [
        json!({"sku":"BAND","name":"Elastic band","kind":"material","unit":"pcs","decimals":0}),
        json!({"sku":"PC","name":"Polycarbonate","kind":"material","unit":"kg","decimals":3}),
        json!({"sku":"MASK","name":"Mask","kind":"supply","unit":"pcs","decimals":0,"shelf_life_days":730}),
    ] {
        app.post_ok("/api/v1/items", &item).await;
    }
    for party in [
        json!({"code":"SUP","name":"Supplier","kind":"supplier"}),
        json!({"code":"DONOR","name":"Donor","kind":"donor"}),
        json!({"code":"NANWAN","name":"Nanwan","kind":"subdistrict","country":"CN","city":"Shenzhen"}),
    ] {
        app.post_ok("/api/v1/parties", &party).await;
    }
    app.post_ok("/api/v1/locations", &json!({"code":"RAW","name":"Raw"}))
        .await;
    app.post_ok(
        "/api/v1/purchases",
        &json!({"purchase_id":"PO-0","date":"2020-02-01","supplier":"SUP","location":"RAW",
                "lines":[{"sku":"BAND","qty":"1","unit_price":"1","lot":"TAKEN"}]}),
    )
    .await;
    app.post_ok("/api/v1/entries/1/reversal", &json!({})).await;
}

async fn http_case(app: &TestApp, backend: Backend, c: &HttpCase) {
    let before = app.db.counts().await;
    let mut req = app
        .http
        .request(c.method.clone(), format!("{}{}", app.base, c.path))
        .bearer_auth(&app.admin_token);
    if !c.body.is_empty() || c.method == Method::POST {
        req = req
            .header("content-type", "application/json")
            .body(c.body.clone());
    }
    for (k, v) in &c.headers {
        req = req.header(k, v);
    }
    let res = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{backend:?} {}: the server did not answer: {e}", c.name));
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    let text = res.text().await.unwrap_or_default();
    let what = format!("{backend:?} {}: {status} {text}", c.name);
    assert!(status.is_client_error(), "{what}");
    if let Some(s) = c.status {
        assert_eq!(status, StatusCode::from_u16(s).unwrap(), "{what}");
    }
    assert_eq!(
        content_type.as_deref(),
        Some("application/problem+json"),
        "{what}"
    );
    let body: serde_json::Value = serde_json::from_str(&text).expect("a problem is JSON");
    assert_eq!(body["status"], status.as_u16(), "{what}");
    if let Some(field) = &c.field {
        let named = body["errors"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["field"] == field.as_str()));
        assert!(named, "{what}: the problem should name {field}");
    }
    assert_eq!(app.db.counts().await, before, "{what}: wrote something");
}

async fn csv_case(app: &TestApp, backend: Backend, dir: &std::path::Path, n: usize, c: &CsvCase) {
    let before = app.db.counts().await;
    let path = dir.join(format!("case-{n}.csv"));
    std::fs::write(&path, &c.file).unwrap();
    let (ok, out) = app.ppe(&["import", &c.kind, path.to_str().unwrap()]).await;
    let what = format!("{backend:?} {}: {out}", c.name);
    assert!(!ok, "{what}: the import passed");
    let expected = match &c.column {
        Some(col) => format!("line {}: {col}: ", c.line),
        None => format!("line {}: ", c.line),
    };
    assert!(out.contains(&expected), "{what}: expected {expected:?}");
    assert_eq!(app.db.counts().await, before, "{what}: wrote something");
}

#[tokio::test]
async fn every_bad_input_is_refused_with_a_4xx_naming_the_field_or_line_and_writes_nothing() {
    let http = http_corpus();
    let csv = csv_corpus();
    assert!(
        http.len() + csv.len() >= 100,
        "the corpus has at least 100 cases"
    );
    for backend in backends() {
        let app = spawn_app(backend).await;
        ledger(&app).await;
        for c in &http {
            http_case(&app, backend, c).await;
        }
        let dir = tempfile::tempdir().unwrap();
        for (n, c) in csv.iter().enumerate() {
            csv_case(&app, backend, dir.path(), n, c).await;
        }
        let v = app.get("/api/v1/verify").await;
        assert_eq!(v.body["ok"], true, "{}", v.text);
        assert_eq!(v.body["entries"], 2, "{}", v.text);
        app.stop().await;
    }
}
