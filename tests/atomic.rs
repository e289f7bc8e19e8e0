//! Atomic documents (issue 9, item 4), on every backend: a document whose last line fails
//! leaves no row of it anywhere (entries, postings, lots, documents, balances, idempotency
//! keys) and the refusal names that line: `lines[2].x` over HTTP, the file's line number and
//! column in a CSV import, whose other documents are imported all the same.

use ppe_tests::{backends, spawn_app, Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn master_data(app: &TestApp) {
    for item in [
        json!({"sku":"BAND","name":"Elastic band","kind":"material","unit":"pcs","decimals":0}),
        json!({"sku":"PC","name":"Polycarbonate","kind":"material","unit":"kg","decimals":3}),
    ] {
        app.post_ok("/api/v1/items", &item).await;
    }
    app.post_ok(
        "/api/v1/parties",
        &json!({"code":"SUP","name":"Supplier","kind":"supplier"}),
    )
    .await;
    app.post_ok(
        "/api/v1/parties",
        &json!({"code":"SUP2","name":"Another supplier","kind":"supplier"}),
    )
    .await;
    app.post_ok("/api/v1/locations", &json!({"code":"RAW","name":"Raw"}))
        .await;
    // A lot that exists, for a line that would create it again.
    app.post_ok(
        "/api/v1/purchases",
        &json!({"purchase_id":"PO-0","date":"2020-02-01","supplier":"SUP","location":"RAW",
                "lines":[{"sku":"BAND","qty":"1","unit_price":"1","lot":"TAKEN"}]}),
    )
    .await;
}

/// Rows that name document `id` or its lots, in every table a document writes.
async fn rows_of(app: &TestApp, id: &str) -> i64 {
    let q = |sql: String| async move { app.db.scalar_i64(&sql).await };
    q(format!(
        "select count(*) from entries where document = '{id}'"
    ))
    .await
        + q(format!(
            "select count(*) from postings where lot like '{id}-%' or lot like 'L-{id}-%'"
        ))
        .await
        + q(format!(
            "select count(*) from lots where origin_doc = '{id}'"
        ))
        .await
        + q(format!("select count(*) from documents where id = '{id}'")).await
        + q(format!(
            "select count(*) from balances where lot like '{id}-%' or lot like 'L-{id}-%'"
        ))
        .await
}

async fn http_story(app: &TestApp) {
    let good =
        |n: usize| json!({"sku":"PC","qty":"2.5","unit_price":"10","lot":format!("L-PO-A-{n}")});
    // (the last line, the field and status the refusal must name)
    let cases: Vec<(Value, &str, StatusCode)> = vec![
        (
            json!({"sku":"NO-SUCH","qty":"1","unit_price":"1"}),
            "lines[2].sku",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"sku":"BAND","qty":"1.5","unit_price":"1"}),
            "lines[2].qty",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"sku":"BAND","qty":"abc","unit_price":"1"}),
            "lines[2].qty",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"sku":"BAND","qty":"1","unit_price":"1","lot":"TAKEN"}),
            "lines[2].lot",
            StatusCode::CONFLICT,
        ),
        (
            json!({"sku":"BAND","qty":"1","unit_price":"1","lot":"L-PO-A-0"}),
            "lines[2].lot",
            StatusCode::CONFLICT,
        ),
        (
            json!({"sku":"BAND","qty":"1","unit_price":"1","expires_on":"2020-01-01"}),
            "lines[2].expires_on",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"sku":"BAND","qty":"1000000000000","unit_price":"99999999"}),
            "lines[2].unit_price",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"sku":"BAND","qty":"1","unit_price":"1","colour":"red"}),
            "lines[2].colour",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (i, (last, field, status)) in cases.into_iter().enumerate() {
        let body = json!({"purchase_id":"PO-A","date":"2020-02-12","supplier":"SUP","location":"RAW",
                          "lines":[good(0), good(1), last]});
        let before = app.db.counts().await;
        let key = format!("atomic-{i}");
        let a = app.post_keyed("/api/v1/purchases", &body, &key).await;
        assert_eq!(a.status, status, "{body}: {}", a.text);
        assert!(
            a.fields().iter().any(|f| f == field),
            "{body}: the refusal should name {field}: {}",
            a.text
        );
        assert_eq!(app.db.counts().await, before, "{body} wrote something");
        assert_eq!(rows_of(app, "PO-A").await, 0, "{body} left rows");
    }
    // The same document with a good last line goes in whole.
    let body = json!({"purchase_id":"PO-A","date":"2020-02-12","supplier":"SUP","location":"RAW",
                      "lines":[good(0), good(1), good(2)]});
    let a = app.post("/api/v1/purchases", &body).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    // entry + 6 postings + 3 lots + document + 6 balances
    assert_eq!(rows_of(app, "PO-A").await, 1 + 6 + 3 + 1 + 6);
}

async fn csv_story(app: &TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let header =
        "purchase_id,date,supplier,location,currency,fx_rate,sku,qty,unit_price,lot,expires_on\n";
    // (the bad document's last row, the column the report must name)
    let cases: Vec<(&str, Option<&str>)> = vec![
        ("PO-B,2020-02-12,SUP,RAW,CNY,,NO-SUCH,1,1,,", Some("sku")),
        ("PO-B,2020-02-12,SUP,RAW,CNY,,BAND,1.5,1,,", Some("qty")),
        ("PO-B,2020-02-12,SUP,RAW,CNY,,BAND,1e3,1,,", Some("qty")),
        ("PO-B,2020-02-12,SUP,RAW,CNY,,BAND,1,1,TAKEN,", Some("lot")),
        (
            "PO-B,2020-02-12,SUP,RAW,CNY,,BAND,1,1,,2020-02-30",
            Some("expires_on"),
        ),
        ("PO-B,2020-02-12,SUP2,RAW,CNY,,BAND,1,1,,", Some("supplier")),
        ("PO-B,2020-02-12,SUP,RAW,CNY,,BAND,1,1", None),
        (
            "PO-B,2020-02-12,SUP,RAW,CNY,,BAND,1000000000000,99999999,,",
            Some("unit_price"),
        ),
    ];
    for (n, (last, column)) in cases.into_iter().enumerate() {
        // Good documents on either side, so the bad one shares the writer's batches with them.
        let file = format!(
            "{header}OK-{n}-1,2020-02-12,SUP,RAW,CNY,,PC,1,1,,\n\
             PO-B,2020-02-12,SUP,RAW,CNY,,PC,1.5,2,,\n\
             PO-B,2020-02-12,SUP,RAW,CNY,,BAND,3,2,,\n\
             {last}\n\
             OK-{n}-2,2020-02-12,SUP,RAW,CNY,,PC,1,1,,\n"
        );
        let path = dir.path().join(format!("case-{n}.csv"));
        std::fs::write(&path, &file).unwrap();
        let before = app.db.counts().await;
        let (ok, out) = app
            .ppe(&["import", "purchases", path.to_str().unwrap()])
            .await;
        assert!(!ok, "{out}");
        let expected = match column {
            Some(c) => format!("line 5: {c}:"),
            None => "line 5:".to_owned(),
        };
        assert!(
            out.contains(&expected),
            "{last}: expected {expected:?} in {out}"
        );
        assert!(
            out.contains("2 created"),
            "{last}: the good documents are imported: {out}"
        );
        assert_eq!(rows_of(app, "PO-B").await, 0, "{last} left rows of PO-B");
        let after = app.db.counts().await;
        assert_eq!(after["entries"], before["entries"] + 2, "{out}");
        assert_eq!(after["documents"], before["documents"] + 2, "{out}");
    }

    // A document whose rows are not adjacent is refused whole, before any of it is written.
    let path = dir.path().join("split.csv");
    std::fs::write(
        &path,
        format!(
            "{header}PO-C,2020-02-12,SUP,RAW,CNY,,PC,1,1,,\n\
             OK-C,2020-02-12,SUP,RAW,CNY,,PC,1,1,,\n\
             PO-C,2020-02-12,SUP,RAW,CNY,,BAND,1,1,,\n"
        ),
    )
    .unwrap();
    let (ok, out) = app
        .ppe(&["import", "purchases", path.to_str().unwrap()])
        .await;
    assert!(
        !ok && out.contains("line 4: purchase_id: rows of document PO-C must be adjacent"),
        "{out}"
    );
    assert!(out.contains("1 created"), "{out}");
    assert_eq!(rows_of(app, "PO-C").await, 0, "{out}");

    // A row whose document cannot be told (its id is not UTF-8) refuses its neighbours.
    let path = dir.path().join("unreadable.csv");
    let mut bytes = format!(
        "{header}PO-D,2020-02-12,SUP,RAW,CNY,,PC,1,1,,\n\
         PO-D,2020-02-12,SUP,RAW,CNY,,PC,2,1,,\n"
    )
    .into_bytes();
    bytes.extend_from_slice(b"PO-\xffD,2020-02-12,SUP,RAW,CNY,,PC,1,1,,\n");
    bytes.extend_from_slice(
        b"PO-E,2020-02-12,SUP,RAW,CNY,,PC,1,1,,\nOK-E,2020-02-12,SUP,RAW,CNY,,PC,1,1,,\n",
    );
    std::fs::write(&path, bytes).unwrap();
    let (ok, out) = app
        .ppe(&["import", "purchases", path.to_str().unwrap()])
        .await;
    assert!(
        !ok && out.contains("line 4: purchase_id: is not valid UTF-8"),
        "{out}"
    );
    assert!(out.contains("document PO-D is not imported"), "{out}");
    assert!(out.contains("document PO-E is not imported"), "{out}");
    assert!(out.contains("1 created"), "{out}");
    assert_eq!(
        rows_of(app, "PO-D").await + rows_of(app, "PO-E").await,
        0,
        "{out}"
    );
}

async fn atomic_story(backend: Backend) {
    let app = spawn_app(backend).await;
    master_data(&app).await;
    http_story(&app).await;
    csv_story(&app).await;
    let v = app.get("/api/v1/verify").await;
    assert_eq!(v.body["ok"], true, "{}", v.text);
    app.stop().await;
}

#[tokio::test]
async fn a_document_whose_last_line_fails_leaves_no_row_and_names_the_line() {
    for backend in backends() {
        atomic_story(backend).await;
    }
}
