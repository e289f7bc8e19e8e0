//! The foundation story, on every backend: master data, purchases in two currencies with exact
//! rounding, idempotent replays, refusals that write nothing, reversal, verify and tampering,
//! CSV import, and the same head hash on SQLite and PostgreSQL.

use ppe_tests::{backends, spawn_app, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn master_data(app: &TestApp) {
    app.post_ok("/api/v1/items", &json!({"sku":"PC-SHEET","name":"Polycarbonate sheet","kind":"material","unit":"kg","decimals":3})).await;
    app.post_ok(
        "/api/v1/items",
        &json!({"sku":"BAND","name":"Elastic band","kind":"material","unit":"pcs","decimals":0}),
    )
    .await;
    app.post_ok(
        "/api/v1/parties",
        &json!({"code":"SUP-PC","name":"Polycarbonate supplier","kind":"supplier"}),
    )
    .await;
    app.post_ok(
        "/api/v1/parties",
        &json!({"code":"DONOR-1","name":"A donor","kind":"donor"}),
    )
    .await;
    app.post_ok(
        "/api/v1/locations",
        &json!({"code":"RAW","name":"Raw-material store"}),
    )
    .await;
}

fn purchase_cny() -> Value {
    json!({"purchase_id":"PO-1","date":"2020-02-12","supplier":"SUP-PC","location":"RAW","currency":"CNY",
           "lines":[{"sku":"PC-SHEET","qty":"100","unit_price":"40.00"},{"sku":"BAND","qty":10000,"unit_price":"0.2"}]})
}

fn purchase_usd() -> Value {
    // 1000 x 1.2345 x 7.12345678 = 8793.90739491 exactly: rounded once it is 8793.9074;
    // rounding price x rate first (8.7939) would give 8793.9000.
    // 3.333 x 1.2345 x 7.0123 = 28.85272893855 -> 28.8527.
    json!({"purchase_id":"PO-2","date":"2020-02-20","supplier":"SUP-PC","location":"RAW","currency":"USD","fx_rate":"7.12345678",
           "lines":[{"sku":"BAND","qty":"1000","unit_price":"1.2345","lot":"BAND-USD"}]})
}

#[tokio::test]
async fn foundation_story() {
    for backend in backends() {
        story(backend).await;
    }
}

async fn story(backend: Backend) {
    let app = spawn_app(backend).await;
    let health = app.request(Method::GET, "/healthz", None, None, &[]).await;
    assert_eq!(health.status, StatusCode::OK);

    master_data(&app).await;
    let p1 = app.post("/api/v1/purchases", &purchase_cny()).await;
    assert_eq!(p1.status, StatusCode::CREATED, "{}", p1.text);
    assert_eq!(p1.body["lines"][0]["value"], "4000.0000");
    assert_eq!(p1.body["lines"][1]["value"], "2000.0000");
    let p2 = app.post_ok("/api/v1/purchases", &purchase_usd()).await;
    assert_eq!(
        p2["lines"][0]["value"], "8793.9074",
        "rounded once, half-even"
    );
    let p3 = app.post_ok("/api/v1/purchases", &json!({"purchase_id":"PO-3","date":"2020-02-21","supplier":"SUP-PC","location":"RAW","currency":"USD","fx_rate":"7.0123",
        "lines":[{"sku":"PC-SHEET","qty":"3.333","unit_price":"1.2345"},{"sku":"PC-SHEET","qty":"2.5","unit_price":"0.0001","lot":"TIE"}]})).await;
    assert_eq!(p3["lines"][0]["value"], "28.8527");
    // 2.5 x 0.0001 x 7.0123 = 0.00175307... -> 0.0018
    assert_eq!(p3["lines"][1]["value"], "0.0018");

    assert_eq!(
        app.balance("stock:RAW", "PO-1-1").await,
        ("100".into(), "4000.0000".into())
    );
    assert_eq!(
        app.balance("stock:RAW", "BAND-USD").await,
        ("1000".into(), "8793.9074".into())
    );
    assert_eq!(
        app.balance("supplier:SUP-PC", "BAND-USD").await,
        ("-1000".into(), "-8793.9074".into())
    );
    assert_eq!(
        app.balance("stock:RAW", "PO-3-1").await,
        ("3.333".into(), "28.8527".into())
    );
    let entries = app.entry_count().await;
    assert_eq!(entries, 3);

    // The same purchase again: the same answer, no new entry. Numbers or strings, 40 or 40.00:
    // the same document.
    let mut again = purchase_cny();
    again["lines"][0]["unit_price"] = json!(40);
    let replay = app.post("/api/v1/purchases", &again).await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.body, p1.body);
    assert_eq!(
        replay
            .headers
            .get("idempotent-replay")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    assert_eq!(app.entry_count().await, entries);
    // The same id with a different body is refused and adds nothing.
    let mut different = purchase_cny();
    different["lines"][0]["qty"] = json!("101");
    let refused = app.post("/api/v1/purchases", &different).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    assert_eq!(refused.body["type"], "/problems/exists-with-different-body");
    assert_eq!(app.entry_count().await, entries);

    // An Idempotency-Key replays its first answer; another body under it is refused.
    let keyed = json!({"purchase_id":"PO-K","date":"2020-02-22","supplier":"SUP-PC","location":"RAW","lines":[{"sku":"BAND","qty":"5","unit_price":"0.2"}]});
    let k1 = app
        .request(
            Method::POST,
            "/api/v1/purchases",
            Some(&app.admin_token),
            Some(&keyed),
            &[("idempotency-key", "k-1")],
        )
        .await;
    let k2 = app
        .request(
            Method::POST,
            "/api/v1/purchases",
            Some(&app.admin_token),
            Some(&keyed),
            &[("idempotency-key", "k-1")],
        )
        .await;
    assert_eq!(k1.status, StatusCode::CREATED);
    assert_eq!(k2.body, k1.body);
    let mut other = keyed.clone();
    other["purchase_id"] = json!("PO-K2");
    let k3 = app
        .request(
            Method::POST,
            "/api/v1/purchases",
            Some(&app.admin_token),
            Some(&other),
            &[("idempotency-key", "k-1")],
        )
        .await;
    assert_eq!(k3.status, StatusCode::UNPROCESSABLE_ENTITY);
    let entries = app.entry_count().await;
    assert_eq!(entries, 4);

    // Refusals name the field and write nothing.
    let bad = |line: Value| json!({"purchase_id":"PO-BAD","date":"2020-02-12","supplier":"SUP-PC","location":"RAW","lines":[line]});
    let cases: Vec<(Value, &str)> = vec![
        (
            bad(json!({"sku":"BAND","qty":"1.5","unit_price":"1"})),
            "lines[0].qty",
        ),
        (
            bad(json!({"sku":"BAND","qty":"-1","unit_price":"1"})),
            "lines[0].qty",
        ),
        (
            bad(json!({"sku":"BAND","qty":"1","unit_price":"1.00001"})),
            "lines[0].unit_price",
        ),
        (
            bad(json!({"sku":"NO-SUCH","qty":"1","unit_price":"1"})),
            "lines[0].sku",
        ),
        (
            bad(json!({"sku":"BAND","qty":"1","unit_price":"1","colour":"red"})),
            "lines[0].colour",
        ),
        (
            bad(json!({"sku":"BAND","qty":"1e3","unit_price":"1"})),
            "lines[0].qty",
        ),
        (
            json!({"purchase_id":"PO-BAD","date":"2020-02-30","supplier":"SUP-PC","location":"RAW","lines":[{"sku":"BAND","qty":"1","unit_price":"1"}]}),
            "date",
        ),
        (
            json!({"purchase_id":"PO-BAD","date":"2020-02-12","supplier":"DONOR-1","location":"RAW","lines":[{"sku":"BAND","qty":"1","unit_price":"1"}]}),
            "supplier",
        ),
        (
            json!({"purchase_id":"PO-BAD","date":"2020-02-12","supplier":"SUP-PC","location":"RAW","currency":"USD","lines":[{"sku":"BAND","qty":"1","unit_price":"1"}]}),
            "fx_rate",
        ),
        (
            json!({"purchase_id":"PO-BAD","date":"2020-02-12","supplier":"SUP-PC","location":"RAW","lines":[]}),
            "lines",
        ),
    ];
    for (body, field) in cases {
        let a = app.post("/api/v1/purchases", &body).await;
        assert!(a.status.is_client_error(), "{body} answered {}", a.status);
        assert!(
            a.fields().iter().any(|f| f == field),
            "{body}: expected field {field}, got {}",
            a.text
        );
        assert_eq!(
            a.headers.get("content-type").unwrap(),
            "application/problem+json"
        );
    }
    let garbled = app
        .request(
            Method::POST,
            "/api/v1/purchases",
            Some(&app.admin_token),
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(garbled.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.entry_count().await, entries);

    // Reversal returns the balances to zero; a second reversal is refused.
    let rev = app
        .post(
            "/api/v1/entries/1/reversal",
            &json!({"memo":"entered twice"}),
        )
        .await;
    assert_eq!(rev.status, StatusCode::CREATED, "{}", rev.text);
    assert_eq!(rev.body["reverses"], 1);
    assert_eq!(
        app.balance("stock:RAW", "PO-1-1").await,
        ("0".into(), "0.0000".into())
    );
    assert_eq!(
        app.balance("supplier:SUP-PC", "PO-1-1").await,
        ("0".into(), "0.0000".into())
    );
    let twice = app.post("/api/v1/entries/1/reversal", &json!({})).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(twice.body["type"], "/problems/already-reversed");
    let missing = app.post("/api/v1/entries/999/reversal", &json!({})).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // The journal pages and shows each entry whole.
    let page = app.get("/api/v1/entries?limit=2").await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
    let next = page.body["next"]
        .as_str()
        .expect("a next cursor")
        .to_owned();
    let page2 = app
        .get(&format!("/api/v1/entries?limit=2&after={next}"))
        .await;
    assert_eq!(page2.body["items"][0]["seq"], 3);
    let e1 = app.get("/api/v1/entries/1").await;
    assert_eq!(e1.body["postings"].as_array().unwrap().len(), 4);
    assert_eq!(e1.body["actor"], "admin");

    // Verify: ok with the head hash over HTTP and from the CLI.
    let v = app.get("/api/v1/verify").await;
    assert_eq!(v.body["ok"], true, "{}", v.text);
    assert_eq!(v.body["entries"], 5);
    let head = v.body["head_hash"].as_str().unwrap().to_owned();
    assert_eq!(head, app.get("/api/v1/entries/5").await.body["hash"]);
    let (ok, out) = app.ppe(&["verify"]).await;
    assert!(ok, "{out}");
    assert!(out.contains(&head), "{out}");

    // Entries and postings refuse UPDATE and DELETE; a deliberate act (dropping the trigger)
    // can change a row, and verify then names the entry.
    let refused = app
        .db
        .exec_refused("update postings set qty = qty + 1 where seq = 2 and idx = 0")
        .await;
    assert!(refused.contains("append-only"), "{refused}");
    let refused = app
        .db
        .exec_refused("delete from entries where seq = 5")
        .await;
    assert!(refused.contains("append-only"), "{refused}");
    let drop_trigger = match backend {
        Backend::Sqlite => "drop trigger postings_append_only_update",
        Backend::Postgres => "alter table postings disable trigger postings_append_only_update",
    };
    app.db.exec(drop_trigger).await;
    app.db
        .exec("update postings set value = value + 1 where seq = 2 and idx = 1")
        .await;
    let v = app.get("/api/v1/verify").await;
    assert_eq!(v.body["ok"], false);
    assert_eq!(v.body["first_bad_seq"], 2, "{}", v.text);
    let (ok, out) = app.ppe(&["verify"]).await;
    assert!(!ok);
    assert!(out.contains("first bad entry 2"), "{out}");
    app.stop().await;
}

/// One fixed sequence of operations; the head hash it leaves.
async fn fixed_operations(backend: Backend) -> String {
    let app = spawn_app(backend).await;
    master_data(&app).await;
    app.post_ok("/api/v1/purchases", &purchase_cny()).await;
    app.post_ok("/api/v1/purchases", &purchase_usd()).await;
    app.post_ok(
        "/api/v1/entries/2/reversal",
        &json!({"date":"2020-02-25","memo":"wrong supplier"}),
    )
    .await;
    let head = app.get("/api/v1/verify").await.body["head_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    app.stop().await;
    head
}

#[tokio::test]
async fn the_same_operations_give_the_same_head_hash_on_every_backend() {
    let mut heads = Vec::new();
    for backend in backends() {
        heads.push((backend, fixed_operations(backend).await));
    }
    // Run twice on SQLite, too: the hash depends on the operations alone, not on time.
    heads.push((Backend::Sqlite, fixed_operations(Backend::Sqlite).await));
    let first = &heads[0].1;
    assert_ne!(first, &"0".repeat(64));
    for (b, h) in &heads {
        assert_eq!(h, first, "{b:?} gave another head hash");
    }
}

#[tokio::test]
async fn csv_import_reports_lines_and_is_idempotent() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, body).unwrap();
            p.to_str().unwrap().to_owned()
        };
        let items = write("items.csv", "\u{feff}sku,name,kind,unit,decimals,shelf_life_days\nPC-SHEET,Polycarbonate,material,kg,3,\nBAND,\"Band, elastic\",material,pcs,0,\nMASK,Mask,supply,pcs,0,730\n");
        let parties = write("parties.csv", "code,name,kind,country,city,parent\nSUP-PC,PC supplier,supplier,,,\nNANWAN,Nanwan,subdistrict,CN,Shenzhen,\nXIACUN,Xiacun,community,,,NANWAN\nKR-DSMC,Keimyung University Dongsan Medical Center,hospital,KR,Daegu,\n");
        let locations = write("locations.csv", "code,name\nRAW,Raw store\n");
        let purchases = write(
            "purchases.csv",
            "purchase_id,date,supplier,location,currency,fx_rate,sku,qty,unit_price,lot,expires_on\n\
             PO-1,2020-02-12,SUP-PC,RAW,CNY,,PC-SHEET,100,40.00,,\n\
             PO-1,2020-02-12,SUP-PC,RAW,CNY,,BAND,10000,0.20,,\n\
             PO-2,2020-02-13,SUP-PC,RAW,CNY,,MASK,500,1.5,,\n\
             PO-2,2020-02-13,SUP-PC,RAW,CNY,,BAND,1.5,0.20,,\n\
             PO-3,2020-02-14,SUP-PC,RAW,USD,7.1,MASK,100,0.25,,2021-01-01\n",
        );
        for (kind, file) in [
            ("items", &items),
            ("parties", &parties),
            ("locations", &locations),
        ] {
            let (ok, out) = app.ppe(&["import", kind, file]).await;
            assert!(ok, "{out}");
        }
        let (ok, out) = app.ppe(&["import", "purchases", &purchases]).await;
        assert!(!ok, "a bad row fails the import: {out}");
        // PO-2's second row (line 5) has a fractional quantity of a pcs item: PO-2 is refused
        // whole, the others are imported.
        assert!(out.contains("line 5: qty:"), "{out}");
        assert!(
            out.contains("5 rows, 2 created, 0 unchanged, 1 rejected"),
            "{out}"
        );
        assert_eq!(
            app.balance("stock:RAW", "PO-2-1").await,
            ("0".into(), "0.0000".into()),
            "no row of PO-2 was written"
        );
        assert_eq!(
            app.balance("stock:RAW", "PO-3-1").await,
            ("100".into(), "177.5000".into())
        );
        let count = app.entry_count().await;
        // The same file again changes nothing.
        let (_, out) = app.ppe(&["import", "purchases", &purchases]).await;
        assert!(out.contains("0 created, 2 unchanged, 1 rejected"), "{out}");
        let (ok, out) = app.ppe(&["import", "items", &items]).await;
        assert!(ok && out.contains("0 created, 3 unchanged"), "{out}");
        assert_eq!(app.entry_count().await, count);
        // Unknown columns and short rows are named by line.
        let broken = write("broken.csv", "code,name,colour\nX,Y,red\n");
        let (ok, out) = app.ppe(&["import", "locations", &broken]).await;
        assert!(
            !ok && out.contains("line 1: unknown column \"colour\""),
            "{out}"
        );
        let short = write("short.csv", "code,name\nA,Store A\nB\n");
        let (ok, out) = app.ppe(&["import", "locations", &short]).await;
        assert!(
            !ok && out.contains("line 3: has 1 cells where the header has 2"),
            "{out}"
        );
        // Master data come back as CSV, in the import columns.
        let csv = app.get("/api/v1/parties?format=csv").await;
        assert!(
            csv.text.starts_with("code,name,kind,country,city,parent\n"),
            "{}",
            csv.text
        );
        assert!(
            csv.text.contains("XIACUN,Xiacun,community,,,NANWAN"),
            "{}",
            csv.text
        );
        app.stop().await;
    }
}
