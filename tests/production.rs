//! Production on every backend: bills of materials, the worked example of a goggles run costed
//! exactly into its output lot, the run report (JSON and CSV), refusals that write nothing,
//! FEFO that never picks an expired lot, many small runs emptying a lot to exactly zero value,
//! stock counts, reversal of a run refused while its output has moved on, CSV import, roles,
//! and the same head hash on SQLite and PostgreSQL.

use ppe_tests::{backends, spawn_app, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn master_data(app: &TestApp) {
    for item in [
        json!({"sku":"PC-SHEET","name":"Polycarbonate sheet","kind":"material","unit":"kg","decimals":3}),
        json!({"sku":"BAND","name":"Elastic band","kind":"material","unit":"pcs","decimals":0}),
        json!({"sku":"GOGGLES","name":"Goggles","kind":"product","unit":"pcs","decimals":0,"shelf_life_days":730}),
        json!({"sku":"MASK","name":"Mask","kind":"supply","unit":"pcs","decimals":0}),
    ] {
        app.post_ok("/api/v1/items", &item).await;
    }
    app.post_ok(
        "/api/v1/parties",
        &json!({"code":"SUP-PC","name":"Polycarbonate supplier","kind":"supplier"}),
    )
    .await;
    for (code, name) in [("RAW", "Raw-material store"), ("FG", "Finished goods")] {
        app.post_ok("/api/v1/locations", &json!({"code":code,"name":name}))
            .await;
    }
}

/// 100 kg of polycarbonate at 40.00 and 10,000 bands at 0.20: lots PO-1-1 and PO-1-2.
async fn buy_materials(app: &TestApp) {
    app.post_ok("/api/v1/purchases", &json!({"purchase_id":"PO-1","date":"2020-02-12","supplier":"SUP-PC","location":"RAW",
        "lines":[{"sku":"PC-SHEET","qty":"100","unit_price":"40.00"},{"sku":"BAND","qty":"10000","unit_price":"0.20"}]})).await;
}

fn goggles_bom() -> Value {
    json!({"product_sku":"GOGGLES","version":"2020-02","output_qty":"1",
           "lines":[{"sku":"PC-SHEET","qty":"0.04"},{"sku":"BAND","qty":"1"}]})
}

fn worked_run() -> Value {
    json!({"run_id":"RUN-1","date":"2020-02-15","product_sku":"GOGGLES","bom_version":"2020-02",
           "from_location":"RAW","to_location":"FG","good_qty":"1950","scrap_qty":"50",
           "labor_cost":"3000.00","overhead_cost":"600.00",
           "lines":[{"sku":"PC-SHEET","qty":"82"},{"sku":"BAND","lot":"PO-1-2","qty":2000}]})
}

/// The sum of the values of every balance of an account.
async fn account_value(app: &TestApp, account: &str) -> String {
    let a = app
        .get(&format!("/api/v1/balances?account={account}"))
        .await;
    let mut units: i64 = 0;
    for row in a.body["items"].as_array().unwrap() {
        let v = row["value"].as_str().unwrap().replace('.', "");
        units += v.parse::<i64>().unwrap();
    }
    format!("{units}")
}

async fn head_hash(app: &TestApp) -> String {
    let v = app.get("/api/v1/verify").await;
    assert_eq!(v.body["ok"], true, "{}", v.text);
    v.body["head_hash"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_worked_example_on_every_backend() {
    let mut heads = Vec::new();
    for backend in backends() {
        heads.push((backend, worked_example(backend).await));
    }
    for (b, h) in &heads {
        assert_eq!(h, &heads[0].1, "{b:?} gave another head hash");
    }
}

async fn worked_example(backend: Backend) -> String {
    let app = spawn_app(backend).await;
    master_data(&app).await;
    buy_materials(&app).await;

    // A bill of materials: created, then the same body again changes nothing.
    let created = app.post("/api/v1/boms", &goggles_bom()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["first_run"], Value::Null);
    let mut same = goggles_bom();
    same["lines"][1]["qty"] = json!(1);
    let again = app.post("/api/v1/boms", &same).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body, created.body);
    let got = app.get("/api/v1/boms/GOGGLES/2020-02").await;
    assert_eq!(got.body["lines"][0], json!({"sku":"PC-SHEET","qty":"0.04"}));

    // The run of the worked example.
    let entries = app.entry_count().await;
    let run = app.post("/api/v1/production-runs", &worked_run()).await;
    assert_eq!(run.status, StatusCode::CREATED, "{}", run.text);
    let r = &run.body;
    assert_eq!(r["output_lot"], "RUN-1-1");
    assert_eq!(
        r["expires_on"], "2022-02-14",
        "the run date plus 730 days of shelf life"
    );
    assert_eq!(r["report"]["total_cost"], "7280.0000");
    assert_eq!(r["report"]["material_cost"], "3680.0000");
    assert_eq!(r["report"]["unit_cost"], "3.7333");
    assert_eq!(
        r["report"]["materials"],
        json!([
            {"material_sku":"PC-SHEET","standard_qty":"80","actual_qty":"82","variance_qty":"2","actual_cost":"3280.0000"},
            {"material_sku":"BAND","standard_qty":"2000","actual_qty":"2000","variance_qty":"0","actual_cost":"400.0000"}
        ])
    );
    assert_eq!(
        r["consumed"],
        json!([
            {"sku":"PC-SHEET","lot":"PO-1-1","qty":"82","value":"3280.0000"},
            {"sku":"BAND","lot":"PO-1-2","qty":"2000","value":"400.0000"}
        ])
    );
    assert_eq!(app.entry_count().await, entries + 1, "one entry per run");

    // The output lot holds the whole cost; raw stock dropped by exactly what was consumed;
    // the run's account holds zero value; scrap went to loss at value 0.
    assert_eq!(
        app.balance("stock:FG", "RUN-1-1").await,
        ("1950".into(), "7280.0000".into())
    );
    assert_eq!(
        app.balance("stock:RAW", "PO-1-1").await,
        ("18".into(), "720.0000".into())
    );
    assert_eq!(
        app.balance("stock:RAW", "PO-1-2").await,
        ("8000".into(), "1600.0000".into())
    );
    assert_eq!(account_value(&app, "production:RUN-1").await, "0");
    assert_eq!(
        app.balance("loss", "RUN-1-1").await,
        ("50".into(), "0.0000".into())
    );
    assert_eq!(
        app.balance("conversion", "RUN-1-1").await,
        ("0".into(), "-3600.0000".into())
    );
    let entry = app
        .get(&format!("/api/v1/entries/{}", r["entry_seq"]))
        .await;
    assert_eq!(entry.body["kind"], "production");
    let labour: Vec<&Value> = entry.body["postings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["account"] == "conversion")
        .collect();
    assert_eq!(labour.len(), 2, "labour and overhead, value only");
    assert!(labour
        .iter()
        .all(|p| p["quantity"] == "0" && p["lot"] == "RUN-1-1"));

    // The purchase cannot be reversed now that the run has consumed some of it.
    let rev = app.post("/api/v1/entries/1/reversal", &json!({})).await;
    assert_eq!(rev.status, StatusCode::CONFLICT, "{}", rev.text);
    let detail = rev.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("82 of lot PO-1-1 (PC-SHEET) have left stock:RAW")
            && detail.contains("production:RUN-1 holds 82"),
        "{detail}"
    );

    // The same run again is a replay; another body under its id is refused; neither writes.
    let replay = app.post("/api/v1/production-runs", &worked_run()).await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(
        replay
            .headers
            .get("idempotent-replay")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    let mut other = worked_run();
    other["good_qty"] = json!("1949");
    let refused = app.post("/api/v1/production-runs", &other).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.entry_count().await, entries + 1);

    // GET shows the run with its report, and so does the production report, in JSON and CSV.
    let got = app.get("/api/v1/production-runs/RUN-1").await;
    assert_eq!(got.body["report"], r["report"]);
    let list = app.get("/api/v1/production-runs").await;
    assert_eq!(list.body["items"][0]["run_id"], "RUN-1");
    let report = app.get("/api/v1/reports/production").await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.text);
    assert_eq!(report.body["items"][0], r["report"]);
    let csv = app.get("/api/v1/reports/production?format=csv").await;
    let mut lines = csv.text.lines();
    assert!(
        lines.next().unwrap().starts_with(
            "run_id,product_sku,good_qty,scrap_qty,total_cost,unit_cost,material_sku,standard_qty,actual_qty,variance_qty,"
        ),
        "{}",
        csv.text
    );
    assert!(lines
        .next()
        .unwrap()
        .starts_with("RUN-1,GOGGLES,1950,50,7280.0000,3.7333,PC-SHEET,80,82,2,3280.0000,"));
    assert!(lines
        .next()
        .unwrap()
        .starts_with("RUN-1,GOGGLES,1950,50,7280.0000,3.7333,BAND,2000,2000,0,400.0000,"));

    // The BOM is now fixed: a different body is refused, the same body is still a no-op.
    let used = app.get("/api/v1/boms/GOGGLES/2020-02").await;
    assert_eq!(used.body["first_run"], "RUN-1");
    let mut changed = goggles_bom();
    changed["lines"][0]["qty"] = json!("0.041");
    let refused = app.post("/api/v1/boms", &changed).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert!(
        refused.body["detail"].as_str().unwrap().contains("RUN-1"),
        "{}",
        refused.text
    );
    assert_eq!(
        app.post("/api/v1/boms", &goggles_bom()).await.status,
        StatusCode::OK
    );
    // Before its first run a version may be replaced.
    let mut draft = goggles_bom();
    draft["version"] = json!("draft");
    app.post_ok("/api/v1/boms", &draft).await;
    draft["lines"] = json!([{"sku":"PC-SHEET","qty":"0.05"}]);
    let replaced = app.post("/api/v1/boms", &draft).await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text);
    let got = app.get("/api/v1/boms/GOGGLES/draft").await;
    assert_eq!(got.body["lines"], json!([{"sku":"PC-SHEET","qty":"0.05"}]));
    let boms = app.get("/api/v1/boms?format=csv").await;
    assert_eq!(
        boms.text,
        "product_sku,version,output_qty,material_sku,qty\nGOGGLES,2020-02,1,PC-SHEET,0.04\nGOGGLES,2020-02,1,BAND,1\nGOGGLES,draft,1,PC-SHEET,0.05\n"
    );

    // A count that finds 3 goggles missing moves 3 pcs and their value to loss (7280 x 3 /
    // 1950 = 11.2), and a second lot counted as it stands posts nothing but zeros.
    let count = app
        .post(
            "/api/v1/stock-counts",
            &json!({"count_id":"C-1","date":"2020-03-01","location":"FG",
        "lines":[{"sku":"GOGGLES","lot":"RUN-1-1","counted_qty":"1947"}]}),
        )
        .await;
    assert_eq!(count.status, StatusCode::CREATED, "{}", count.text);
    assert_eq!(
        count.body["lines"][0],
        json!({"sku":"GOGGLES","lot":"RUN-1-1","book_qty":"1950","counted_qty":"1947","difference_qty":"-3","difference_value":"-11.2000"})
    );
    assert_eq!(
        app.balance("stock:FG", "RUN-1-1").await,
        ("1947".into(), "7268.8000".into())
    );
    assert_eq!(
        app.balance("loss", "RUN-1-1").await,
        ("53".into(), "11.2000".into())
    );

    // The run cannot be reversed while some of its output has left FG: the refusal says where.
    let run_seq = r["entry_seq"].as_u64().unwrap();
    let rev = app
        .post(&format!("/api/v1/entries/{run_seq}/reversal"), &json!({}))
        .await;
    assert_eq!(rev.status, StatusCode::CONFLICT, "{}", rev.text);
    assert_eq!(rev.body["type"], "/problems/not-reversible");
    let detail = rev.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("3 of lot RUN-1-1 (GOGGLES) have left stock:FG"),
        "{detail}"
    );
    assert!(detail.contains("loss holds 3"), "{detail}");
    // Once the count is reversed, so can the run be: raw stock is whole again.
    let count_seq = count.body["entry_seq"].as_u64().unwrap();
    app.post_ok(&format!("/api/v1/entries/{count_seq}/reversal"), &json!({}))
        .await;
    let rev = app
        .post(
            &format!("/api/v1/entries/{run_seq}/reversal"),
            &json!({"memo":"wrong BOM"}),
        )
        .await;
    assert_eq!(rev.status, StatusCode::CREATED, "{}", rev.text);
    assert_eq!(
        app.balance("stock:RAW", "PO-1-1").await,
        ("100".into(), "4000.0000".into())
    );
    assert_eq!(
        app.balance("stock:FG", "RUN-1-1").await,
        ("0".into(), "0.0000".into())
    );
    let reversal_seq = rev.body["seq"].as_u64().unwrap();
    let got = app.get("/api/v1/production-runs/RUN-1").await;
    assert_eq!(got.body["report"]["reversed_by"], reversal_seq);
    let list = app.get("/api/v1/production-runs").await;
    assert_eq!(list.body["items"][0]["report"]["reversed_by"], reversal_seq);
    let report = app.get("/api/v1/reports/production?run_id=RUN-1").await;
    assert_eq!(report.body["items"][0]["reversed_by"], reversal_seq);

    let head = head_hash(&app).await;
    let (ok, out) = app.ppe(&["verify"]).await;
    assert!(ok, "{out}");
    app.stop().await;
    head
}

#[tokio::test]
async fn refusals_name_what_is_wrong_and_write_nothing() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        master_data(&app).await;
        buy_materials(&app).await;
        // An expired lot of bands (expired 2020-02-01) and one that is good until 2020-06-01.
        app.post_ok("/api/v1/purchases", &json!({"purchase_id":"PO-2","date":"2020-01-01","supplier":"SUP-PC","location":"RAW",
            "lines":[{"sku":"BAND","qty":"500","unit_price":"0.10","lot":"BAND-OLD","expires_on":"2020-02-01"},
                     {"sku":"BAND","qty":"300","unit_price":"0.30","lot":"BAND-SOON","expires_on":"2020-06-01"}]})).await;
        app.post_ok("/api/v1/boms", &goggles_bom()).await;

        // BOMs: the product must be a product, the lines materials or supplies.
        let bad_boms = [
            (
                json!({"product_sku":"PC-SHEET","version":"v","output_qty":"1","lines":[{"sku":"BAND","qty":"1"}]}),
                "product_sku",
            ),
            (
                json!({"product_sku":"GOGGLES","version":"v","output_qty":"1","lines":[{"sku":"GOGGLES","qty":"1"}]}),
                "lines[0].sku",
            ),
            (
                json!({"product_sku":"GOGGLES","version":"v","output_qty":"1","lines":[{"sku":"NOPE","qty":"1"}]}),
                "lines[0].sku",
            ),
            (
                json!({"product_sku":"GOGGLES","version":"v","output_qty":"1","lines":[{"sku":"BAND","qty":"0"}]}),
                "lines[0].qty",
            ),
            (
                json!({"product_sku":"GOGGLES","version":"v","output_qty":"0.5","lines":[{"sku":"BAND","qty":"1"}]}),
                "output_qty",
            ),
            (
                json!({"product_sku":"GOGGLES","version":"v w","output_qty":"1","lines":[{"sku":"BAND","qty":"1"}]}),
                "version",
            ),
            (
                json!({"product_sku":"GOGGLES","version":"v","output_qty":"1","lines":[]}),
                "lines",
            ),
        ];
        for (body, field) in bad_boms {
            let a = app.post("/api/v1/boms", &body).await;
            assert_eq!(
                a.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{body}: {}",
                a.text
            );
            assert!(
                a.fields().iter().any(|f| f == field),
                "{body}: expected {field}, got {}",
                a.text
            );
        }
        // MASK is a supply: a BOM may name it.
        app.post_ok("/api/v1/boms", &json!({"product_sku":"GOGGLES","version":"kit","output_qty":"10","lines":[{"sku":"MASK","qty":"1"},{"sku":"BAND","qty":"10"}]})).await;

        let entries = app.entry_count().await;
        let run = |f: &dyn Fn(&mut Value)| {
            let mut r = worked_run();
            r["run_id"] = json!("RUN-X");
            f(&mut r);
            r
        };
        // More polycarbonate than there is: 409 naming the sku, the lot, available and requested.
        let a = app
            .post(
                "/api/v1/production-runs",
                &run(&|r| r["lines"][0]["qty"] = json!("100.5")),
            )
            .await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
        assert_eq!(a.body["type"], "/problems/insufficient-stock");
        assert_eq!(a.body["sku"], "PC-SHEET");
        assert_eq!(a.body["lot"], Value::Null, "picked, not named");
        assert_eq!(a.body["available"], "100");
        assert_eq!(a.body["requested"], "100.5");
        assert_eq!(a.fields(), vec!["lines[0].qty"]);
        // A named lot: the lot is named too.
        let a = app
            .post(
                "/api/v1/production-runs",
                &run(&|r| r["lines"][1]["qty"] = json!(10001)),
            )
            .await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
        assert_eq!(a.body["lot"], "PO-1-2");
        assert_eq!(a.body["available"], "10000");
        assert_eq!(a.body["requested"], "10001");
        // Picking never takes the expired lot: of 10,800 bands only 10,300 are available.
        let a = app
            .post(
                "/api/v1/production-runs",
                &run(&|r| r["lines"][1] = json!({"sku":"BAND","qty":"10301"})),
            )
            .await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
        assert_eq!(a.body["available"], "10300");
        // Naming the expired lot is refused.
        let a = app
            .post(
                "/api/v1/production-runs",
                &run(&|r| r["lines"][1] = json!({"sku":"BAND","lot":"BAND-OLD","qty":"1"})),
            )
            .await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
        assert_eq!(a.body["type"], "/problems/lot-expired");
        // Other refusals, each naming its field.
        let cases: Vec<(Value, StatusCode, &str)> = vec![
            (
                run(&|r| r["bom_version"] = json!("1999")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "bom_version",
            ),
            (
                run(&|r| r["product_sku"] = json!("BAND")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "product_sku",
            ),
            (
                run(&|r| r["good_qty"] = json!("0")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "good_qty",
            ),
            (
                run(&|r| r["good_qty"] = json!("1.5")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "good_qty",
            ),
            (
                run(&|r| r["scrap_qty"] = json!("-1")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "scrap_qty",
            ),
            (
                run(&|r| r["labor_cost"] = json!("1.00001")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "labor_cost",
            ),
            (
                run(&|r| r["lines"][0]["sku"] = json!("GOGGLES")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "lines[0].sku",
            ),
            (
                run(&|r| r["lines"][1]["qty"] = json!("0.5")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "lines[1].qty",
            ),
            (
                run(&|r| r["to_location"] = json!("NOWHERE")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "to_location",
            ),
            (
                run(&|r| r["output_lot"] = json!("PO-1-1")),
                StatusCode::CONFLICT,
                "output_lot",
            ),
            (
                run(&|r| r["expires_on"] = json!("2020-01-01")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "expires_on",
            ),
            (
                run(&|r| r["colour"] = json!("red")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "colour",
            ),
        ];
        for (body, status, field) in cases {
            let a = app.post("/api/v1/production-runs", &body).await;
            assert_eq!(a.status, status, "{body}: {}", a.text);
            assert!(
                a.fields().iter().any(|f| f == field),
                "{body}: expected {field}, got {}",
                a.text
            );
        }
        // Without materials the run consumes the BOM's standard, and is refused the same way
        // when the standard is more than there is (0.04 kg x 3000 = 120 kg).
        let a = app
            .post(
                "/api/v1/production-runs",
                &run(&|r| {
                    r["lines"] = json!([]);
                    r["good_qty"] = json!("2950");
                }),
            )
            .await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
        assert_eq!(a.body["requested"], "120");
        assert_eq!(a.fields(), vec!["bom.lines[0].qty"]);
        // Stock counts refuse what they cannot count.
        let count = |lines: Value| json!({"count_id":"C-X","date":"2020-03-01","location":"RAW","lines":lines});
        for (lines, field) in [
            (
                json!([{"sku":"BAND","lot":"PO-1-1","counted_qty":"1"}]),
                "lines[0].lot",
            ),
            (
                json!([{"sku":"BAND","lot":"NO-LOT","counted_qty":"1"}]),
                "lines[0].lot",
            ),
            (
                json!([{"sku":"BAND","lot":"PO-1-2","counted_qty":"-1"}]),
                "lines[0].counted_qty",
            ),
            (
                json!([{"sku":"BAND","lot":"PO-1-2","counted_qty":"1.5"}]),
                "lines[0].counted_qty",
            ),
            (
                json!([{"sku":"BAND","lot":"PO-1-2","counted_qty":"1"},{"sku":"BAND","lot":"PO-1-2","counted_qty":"2"}]),
                "lines[1].lot",
            ),
            (json!([]), "lines"),
        ] {
            let a = app
                .post("/api/v1/stock-counts", &count(lines.clone()))
                .await;
            assert!(a.status.is_client_error(), "{lines}: {}", a.text);
            assert!(
                a.fields().iter().any(|f| f == field),
                "{lines}: expected {field}, got {}",
                a.text
            );
        }
        assert_eq!(
            app.entry_count().await,
            entries,
            "no refusal wrote anything"
        );
        assert_eq!(
            app.balance("stock:RAW", "PO-1-1").await,
            ("100".into(), "4000.0000".into())
        );
        assert_eq!(
            app.get("/api/v1/reports/production").await.body["items"],
            json!([])
        );
        assert_eq!(
            app.get("/api/v1/boms/GOGGLES/2020-02").await.body["first_run"],
            Value::Null,
            "a refused run does not fix its BOM"
        );

        // FEFO: a run without lots takes the earliest-expiring good lot first, never the
        // expired one.
        let ok = app
            .post_ok(
                "/api/v1/production-runs",
                &run(&|r| r["lines"] = json!([{"sku":"BAND","qty":"400"}])),
            )
            .await;
        assert_eq!(
            ok["consumed"],
            json!([
                {"sku":"BAND","lot":"BAND-SOON","qty":"300","value":"90.0000"},
                {"sku":"BAND","lot":"PO-1-2","qty":"100","value":"20.0000"}
            ])
        );
        assert_eq!(
            app.balance("stock:RAW", "BAND-OLD").await,
            ("500".into(), "50.0000".into())
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn many_small_runs_empty_a_lot_to_exactly_zero_value() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        master_data(&app).await;
        // 7 kg at 1.00 USD x 7.12345678 = 49.86419746 -> 49.8642, which 7 does not divide.
        app.post_ok("/api/v1/purchases", &json!({"purchase_id":"PO-7","date":"2020-02-12","supplier":"SUP-PC","location":"RAW",
            "currency":"USD","fx_rate":"7.12345678","lines":[{"sku":"PC-SHEET","qty":"7","unit_price":"1"}]})).await;
        app.post_ok("/api/v1/boms", &goggles_bom()).await;
        let mut costs: i64 = 0;
        for (i, qty) in ["1", "1.5", "0.25", "2", "1.125", "0.001", "1.124"]
            .iter()
            .enumerate()
        {
            let r = app.post_ok("/api/v1/production-runs", &json!({"run_id":format!("SMALL-{i}"),"date":"2020-02-16","product_sku":"GOGGLES",
                "bom_version":"2020-02","from_location":"RAW","to_location":"FG","good_qty":"1",
                "lines":[{"sku":"PC-SHEET","qty":qty}]})).await;
            let cost = r["report"]["total_cost"].as_str().unwrap().replace('.', "");
            costs += cost.parse::<i64>().unwrap();
            assert_eq!(
                app.balance("stock:FG", &format!("SMALL-{i}-1")).await.1,
                r["report"]["total_cost"].as_str().unwrap()
            );
        }
        assert_eq!(
            app.balance("stock:RAW", "PO-7-1").await,
            ("0".into(), "0.0000".into()),
            "emptied: no value left behind"
        );
        assert_eq!(
            costs, 498_642,
            "every unit of value went into an output lot"
        );
        let one_more = app
            .post(
                "/api/v1/production-runs",
                &json!({"run_id":"SMALL-X","date":"2020-02-16","product_sku":"GOGGLES",
            "bom_version":"2020-02","from_location":"RAW","to_location":"FG","good_qty":"1",
            "lines":[{"sku":"PC-SHEET","qty":"0.001"}]}),
            )
            .await;
        assert_eq!(one_more.status, StatusCode::CONFLICT);
        assert_eq!(one_more.body["available"], "0");
        head_hash(&app).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn stock_counts_value_surplus_and_shortfall_at_average() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        master_data(&app).await;
        buy_materials(&app).await;
        let c = app
            .post_ok(
                "/api/v1/stock-counts",
                &json!({"count_id":"C-RAW","date":"2020-03-01","location":"RAW",
            "lines":[{"sku":"PC-SHEET","lot":"PO-1-1","counted_qty":"100.5"},
                     {"sku":"BAND","lot":"PO-1-2","counted_qty":10000}]}),
            )
            .await;
        assert_eq!(c["lines"][0]["difference_qty"], "0.5");
        assert_eq!(
            c["lines"][0]["difference_value"], "20.0000",
            "at 40.00 a kg"
        );
        assert_eq!(c["lines"][1]["difference_qty"], "0");
        assert_eq!(c["difference_value"], "20.0000");
        assert_eq!(
            app.balance("stock:RAW", "PO-1-1").await,
            ("100.5".into(), "4020.0000".into())
        );
        assert_eq!(
            app.balance("loss", "PO-1-1").await,
            ("-0.5".into(), "-20.0000".into())
        );
        // A lot counted to zero leaves exactly zero value.
        app.post_ok(
            "/api/v1/stock-counts",
            &json!({"count_id":"C-ZERO","date":"2020-03-02","location":"RAW",
            "lines":[{"sku":"PC-SHEET","lot":"PO-1-1","counted_qty":"0"}]}),
        )
        .await;
        assert_eq!(
            app.balance("stock:RAW", "PO-1-1").await,
            ("0".into(), "0.0000".into())
        );
        // Found where the location held none of the lot: its value there is unknown, so 0.
        let found = app
            .post_ok(
                "/api/v1/stock-counts",
                &json!({"count_id":"C-FOUND","date":"2020-03-03","location":"FG",
            "lines":[{"sku":"BAND","lot":"PO-1-2","counted_qty":"5"}]}),
            )
            .await;
        assert_eq!(found["lines"][0]["book_qty"], "0");
        assert_eq!(found["lines"][0]["difference_value"], "0.0000");
        let got = app.get("/api/v1/stock-counts/C-RAW").await;
        assert_eq!(got.body, c);
        assert_eq!(
            app.get("/api/v1/stock-counts").await.body["items"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        head_hash(&app).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn boms_and_runs_import_from_csv() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        master_data(&app).await;
        buy_materials(&app).await;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, body).unwrap();
            p.to_str().unwrap().to_owned()
        };
        let boms = write(
            "boms.csv",
            "product_sku,version,output_qty,material_sku,qty\n\
             GOGGLES,2020-02,1,PC-SHEET,0.04\n\
             GOGGLES,2020-02,1,BAND,1\n\
             GOGGLES,bad,1,PC-SHEET,0.04\n\
             GOGGLES,bad,1,GOGGLES,1\n\
             GOGGLES,per-100,100,PC-SHEET,4\n\
             GOGGLES,per-100,100,BAND,100\n",
        );
        let (ok, out) = app.ppe(&["import", "boms", &boms]).await;
        assert!(!ok, "{out}");
        assert!(
            out.contains("6 rows, 2 created, 0 unchanged, 1 rejected"),
            "{out}"
        );
        assert!(out.contains("line 5: material_sku:"), "{out}");
        let (_, out) = app.ppe(&["import", "boms", &boms]).await;
        assert!(out.contains("0 created, 2 unchanged, 1 rejected"), "{out}");
        assert_eq!(
            app.get("/api/v1/boms/GOGGLES/per-100").await.body["output_qty"],
            "100"
        );

        let runs = write(
            "production.csv",
            "run_id,date,product_sku,bom_version,from_location,to_location,good_qty,scrap_qty,output_lot,labor_cost,overhead_cost,material_sku,material_lot,material_qty\n\
             RUN-1,2020-02-15,GOGGLES,2020-02,RAW,FG,1950,50,,3000.00,600.00,PC-SHEET,,82\n\
             RUN-1,2020-02-15,GOGGLES,2020-02,RAW,FG,1950,50,,3000.00,600.00,BAND,PO-1-2,2000\n\
             RUN-2,2020-02-16,GOGGLES,per-100,RAW,FG,100,,G-0216,,,,,\n\
             RUN-3,2020-02-17,GOGGLES,2020-02,RAW,FG,10,0,,,,BAND,,10.5\n",
        );
        let (ok, out) = app.ppe(&["import", "production", &runs]).await;
        assert!(!ok, "{out}");
        assert!(
            out.contains("4 rows, 2 created, 0 unchanged, 1 rejected"),
            "{out}"
        );
        assert!(out.contains("line 5: material_qty:"), "{out}");
        assert_eq!(
            app.balance("stock:FG", "RUN-1-1").await,
            ("1950".into(), "7280.0000".into())
        );
        // RUN-2 has no material rows: the standard of 4 kg and 100 bands per 100 goggles.
        let r2 = app.get("/api/v1/production-runs/RUN-2").await;
        assert_eq!(r2.body["output_lot"], "G-0216");
        assert_eq!(
            r2.body["report"]["materials"],
            json!([
                {"material_sku":"PC-SHEET","standard_qty":"4","actual_qty":"4","variance_qty":"0","actual_cost":"160.0000"},
                {"material_sku":"BAND","standard_qty":"100","actual_qty":"100","variance_qty":"0","actual_cost":"20.0000"}
            ])
        );
        assert_eq!(r2.body["report"]["unit_cost"], "1.8000");
        let count = app.entry_count().await;
        let (_, out) = app.ppe(&["import", "production", &runs]).await;
        assert!(out.contains("0 created, 2 unchanged, 1 rejected"), "{out}");
        assert_eq!(app.entry_count().await, count);
        // A run that names materials on some rows but not all is refused whole.
        let mixed = write(
            "mixed.csv",
            "run_id,date,product_sku,bom_version,from_location,to_location,good_qty,material_sku,material_qty\n\
             RUN-4,2020-02-18,GOGGLES,2020-02,RAW,FG,10,BAND,10\n\
             RUN-4,2020-02-18,GOGGLES,2020-02,RAW,FG,10,,\n",
        );
        let (ok, out) = app.ppe(&["import", "production", &mixed]).await;
        assert!(!ok && out.contains("line 3: material_sku:"), "{out}");
        assert_eq!(app.entry_count().await, count);
        app.stop().await;
    }
}

#[tokio::test]
async fn roles_and_the_openapi_document() {
    let app = spawn_app(Backend::Sqlite).await;
    master_data(&app).await;
    buy_materials(&app).await;
    let token = |role| {
        let s = app.service.clone();
        async move {
            s.create_token(&format!("t-{role}"), role, None)
                .await
                .unwrap()
                .token
        }
    };
    use service::auth::Role;
    let maker = token(Role::Manufacturer).await;
    let coordinator = token(Role::Coordinator).await;
    let auditor = token(Role::Auditor).await;
    let post = |t: &str, path: &str, body: Value| {
        let t = t.to_owned();
        let path = path.to_owned();
        let app = &app;
        async move {
            app.request(Method::POST, &path, Some(&t), Some(&body), &[])
                .await
                .status
        }
    };
    assert_eq!(
        post(&auditor, "/api/v1/boms", goggles_bom()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(&coordinator, "/api/v1/boms", goggles_bom()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(&maker, "/api/v1/boms", goggles_bom()).await,
        StatusCode::CREATED
    );
    assert_eq!(
        post(&coordinator, "/api/v1/production-runs", worked_run()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(&maker, "/api/v1/production-runs", worked_run()).await,
        StatusCode::CREATED
    );
    let count = json!({"count_id":"C-1","date":"2020-03-01","location":"FG","lines":[{"sku":"GOGGLES","lot":"RUN-1-1","counted_qty":"1950"}]});
    assert_eq!(
        post(&auditor, "/api/v1/stock-counts", count.clone()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(&coordinator, "/api/v1/stock-counts", count).await,
        StatusCode::CREATED
    );
    let report = app
        .request(
            Method::GET,
            "/api/v1/reports/production",
            Some(&auditor),
            None,
            &[],
        )
        .await;
    assert_eq!(report.status, StatusCode::OK);
    let run = app
        .request(
            Method::GET,
            "/api/v1/production-runs/RUN-1",
            Some(&auditor),
            None,
            &[],
        )
        .await;
    assert_eq!(run.body["entry_seq"], 2);
    assert_eq!(
        app.get("/api/v1/production-runs/NOPE").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v1/boms/GOGGLES/NOPE").await.status,
        StatusCode::NOT_FOUND
    );
    let doc = app
        .request(Method::GET, "/api/v1/openapi.json", None, None, &[])
        .await;
    for path in [
        "/api/v1/boms",
        "/api/v1/boms/{product_sku}/{version}",
        "/api/v1/production-runs",
        "/api/v1/production-runs/{id}",
        "/api/v1/stock-counts",
        "/api/v1/stock-counts/{id}",
        "/api/v1/reports/production",
    ] {
        assert!(
            doc.body["paths"][path].is_object(),
            "{path} is not documented"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_bom_never_changes_under_a_run_that_uses_it() {
    for backend in backends() {
        let app = std::sync::Arc::new(spawn_app(backend).await);
        master_data(&app).await;
        buy_materials(&app).await;
        let body = |pc: &str| {
            json!({"product_sku":"GOGGLES","version":"race","output_qty":"1",
                   "lines":[{"sku":"PC-SHEET","qty":pc},{"sku":"BAND","qty":"1"}]})
        };
        app.post_ok("/api/v1/boms", &body("0.04")).await;
        // Replacements of the version race runs that consume its standard quantities.
        let mut tasks = Vec::new();
        for i in 0..24 {
            let app = app.clone();
            let bom = body(if i % 2 == 0 { "0.05" } else { "0.04" });
            tasks.push(tokio::spawn(async move {
                if i % 4 == 3 {
                    let run = json!({"run_id":format!("RACE-{i}"),"date":"2020-02-15","product_sku":"GOGGLES",
                        "bom_version":"race","from_location":"RAW","to_location":"FG","good_qty":"10"});
                    let a = app.post("/api/v1/production-runs", &run).await;
                    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
                } else {
                    let a = app.post("/api/v1/boms", &bom).await;
                    assert!(
                        a.status == StatusCode::OK
                            || a.status == StatusCode::CREATED
                            || a.status == StatusCode::CONFLICT,
                        "{}",
                        a.text
                    );
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // Every run consumed what the BOM, as it now stands for good, says.
        let bom = app.get("/api/v1/boms/GOGGLES/race").await.body;
        assert!(bom["first_run"].is_string(), "{bom}");
        let pc = bom["lines"][0]["qty"].as_str().unwrap().to_owned();
        let standard = if pc == "0.05" { "0.5" } else { "0.4" };
        let report = app
            .get("/api/v1/reports/production?product_sku=GOGGLES")
            .await;
        let runs = report.body["items"].as_array().unwrap();
        assert_eq!(runs.len(), 6);
        for r in runs {
            assert_eq!(r["materials"][0]["standard_qty"], standard, "{r}");
            assert_eq!(r["materials"][0]["actual_qty"], standard, "{r}");
        }
        head_hash(&app).await;
        match std::sync::Arc::try_unwrap(app) {
            Ok(app) => app.stop().await,
            Err(_) => panic!("every task is done"),
        }
    }
}
