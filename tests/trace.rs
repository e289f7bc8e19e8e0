//! The auditor's questions on every backend: donations declared against the ledger cost of
//! what was dispatched (per donation and per country), what is still in transit, and a lot
//! traced backward to its suppliers and forward to every recipient, with recall.

use ppe_tests::{backends, spawn_app, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn story(app: &TestApp) {
    for item in [
        json!({"sku":"PC","name":"Polycarbonate","kind":"material","unit":"kg","decimals":3}),
        json!({"sku":"BAND","name":"Elastic band","kind":"material","unit":"pcs","decimals":0}),
        json!({"sku":"GOGGLES","name":"Goggles","kind":"product","unit":"pcs","decimals":0}),
        json!({"sku":"MASK","name":"Mask","kind":"supply","unit":"pcs","decimals":0}),
    ] {
        app.post_ok("/api/v1/items", &item).await;
    }
    for party in [
        json!({"code":"SUP","name":"Supplier","kind":"supplier"}),
        json!({"code":"NANWAN","name":"Nanwan","kind":"subdistrict","country":"CN","city":"Shenzhen"}),
        json!({"code":"XIACUN","name":"Xiacun","kind":"community","parent":"NANWAN"}),
        json!({"code":"NANXIN","name":"Nanxin","kind":"community","parent":"NANWAN"}),
        json!({"code":"KR-DSMC","name":"Keimyung University Dongsan Medical Center","kind":"hospital","country":"KR","city":"Daegu"}),
        json!({"code":"FR-H","name":"Hopital","kind":"hospital","country":"FR","city":"Paris"}),
    ] {
        app.post_ok("/api/v1/parties", &party).await;
    }
    app.post_ok("/api/v1/locations", &json!({"code":"RAW","name":"Raw"}))
        .await;
    app.post_ok(
        "/api/v1/locations",
        &json!({"code":"FG","name":"Finished goods"}),
    )
    .await;
    app.post_ok("/api/v1/purchases", &json!({"purchase_id":"PO-1","date":"2020-02-11","supplier":"SUP","location":"RAW",
        "lines":[{"sku":"PC","qty":"100","unit_price":"40","lot":"PC-LOT"},{"sku":"BAND","qty":"10000","unit_price":"0.2","lot":"BAND-LOT"}]})).await;
    app.post_ok(
        "/api/v1/purchases",
        &json!({"purchase_id":"PO-2","date":"2020-02-12","supplier":"SUP","location":"FG",
        "lines":[{"sku":"MASK","qty":"2000","unit_price":"43.2","lot":"MASK-LOT"}]}),
    )
    .await;
    app.post_ok("/api/v1/boms", &json!({"product_sku":"GOGGLES","version":"v1","output_qty":"1","lines":[{"sku":"PC","qty":"0.04"},{"sku":"BAND","qty":"1"}]})).await;
    // Two runs use the one polycarbonate lot: 48 kg (1920.0000) + 1200 bands (240.0000), and
    // 20 kg (800.0000) + 500 bands (100.0000).
    app.post_ok(
        "/api/v1/production-runs",
        &json!({"run_id":"RUN-1","date":"2020-02-15","product_sku":"GOGGLES","bom_version":"v1",
        "from_location":"RAW","to_location":"FG","good_qty":"1200"}),
    )
    .await;
    app.post_ok(
        "/api/v1/production-runs",
        &json!({"run_id":"RUN-2","date":"2020-02-20","product_sku":"GOGGLES","bom_version":"v1",
        "from_location":"RAW","to_location":"FG","good_qty":"500"}),
    )
    .await;
    // DON-KR: 1000 goggles of RUN-1 (1800.0000) and 1000 masks (43200.0000) cost 45000.0000,
    // declared 60000: over by 33.33%.
    app.post_ok("/api/v1/donations", &json!({"donation_id":"DON-KR","date":"2020-03-10","from_location":"FG","recipient":"KR-DSMC",
        "declared_value":"60000","currency":"CNY","lines":[{"sku":"GOGGLES","qty":"1000","lot":"RUN-1-1"},{"sku":"MASK","qty":"1000"}]})).await;
    // NW-1: the other 200 goggles of RUN-1 to two communities.
    app.post_ok("/api/v1/batches", &json!({"batch_id":"NW-1","date":"2020-03-11","from_location":"FG",
        "lines":[{"destination":"XIACUN","sku":"GOGGLES","qty":"100","lot":"RUN-1-1"},{"destination":"NANXIN","sku":"GOGGLES","qty":"100","lot":"RUN-1-1"}]})).await;
    // DON-FR: 500 goggles of RUN-2 (900.0000) and 1000 masks (43200.0000) cost 44100.0000,
    // declared 5769.23 EUR x 7.8 = 44999.9940: 2.04% over, within the tolerance.
    app.post_ok("/api/v1/donations", &json!({"donation_id":"DON-FR","date":"2020-03-12","from_location":"FG","recipient":"FR-H",
        "declared_value":"5769.23","currency":"EUR","fx_rate":"7.8","lines":[{"sku":"GOGGLES","qty":"500"},{"sku":"MASK","qty":"1000"}]})).await;
    app.post_ok("/api/v1/shipments/DON-KR/acknowledgements", &json!({"date":"2020-03-17",
        "lines":[{"destination":"KR-DSMC","sku":"GOGGLES","received_qty":"1000"},{"destination":"KR-DSMC","sku":"MASK","received_qty":"1000"}]})).await;
    app.post_ok("/api/v1/shipments/NW-1/acknowledgements", &json!({"date":"2020-03-12","lines":[{"destination":"XIACUN","sku":"GOGGLES","received_qty":"100"}]})).await;
    app.post_ok("/api/v1/shipments/DON-FR/acknowledgements", &json!({"date":"2020-03-20",
        "lines":[{"destination":"FR-H","sku":"GOGGLES","received_qty":"500"},{"destination":"FR-H","sku":"MASK","received_qty":"990","damaged_qty":"10"}]})).await;
}

fn row<'a>(rows: &'a Value, key: &str, id: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r[key] == id)
        .unwrap_or_else(|| panic!("no row {id} in {rows}"))
}

#[tokio::test]
async fn donations_are_reconciled_against_ledger_cost() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        story(&app).await;
        let r = app.get("/api/v1/reports/donations").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let kr = row(&r.body["rows"], "donation_id", "DON-KR");
        assert_eq!(kr["declared_value"], "60000.0000");
        assert_eq!(kr["ledger_cost"], "45000.0000");
        assert_eq!(kr["difference"], "15000.0000");
        assert_eq!(kr["difference_pct"], "33.33");
        assert_eq!(kr["status"], "over");
        assert_eq!(kr["country"], "KR");
        let fr = row(&r.body["rows"], "donation_id", "DON-FR");
        assert_eq!(fr["declared_value"], "44999.9940");
        assert_eq!(fr["ledger_cost"], "44100.0000");
        assert_eq!(fr["difference_pct"], "2.04");
        assert_eq!(fr["status"], "ok");
        // Per-country totals add up to the per-donation rows.
        for d in r.body["rows"].as_array().unwrap() {
            let c = row(
                &r.body["countries"],
                "country",
                d["country"].as_str().unwrap(),
            );
            assert_eq!(c["declared_value"], d["declared_value"]);
            assert_eq!(c["ledger_cost"], d["ledger_cost"]);
        }
        assert_eq!(r.body["total"]["declared_value"], "104999.9940");
        // A tighter tolerance flags the French donation too.
        let strict = app.get("/api/v1/reports/donations?tolerance_pct=2").await;
        assert_eq!(
            row(&strict.body["rows"], "donation_id", "DON-FR")["status"],
            "over"
        );
        let csv = app.get("/api/v1/reports/donations?format=csv").await;
        assert!(
            csv.text.contains(
                "DON-KR,2020-03-10,KR-DSMC,KR,60000.0000,45000.0000,15000.0000,33.33,over"
            ),
            "{}",
            csv.text
        );
        let (_, table) = app.ppe(&["report", "donations"]).await;
        assert!(
            table.contains("DON-KR")
                && table.contains("33.33")
                && table.contains("countries (2 rows)"),
            "{table}"
        );

        let t = app.get("/api/v1/reports/in-transit").await;
        let rows = t.body["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{}", t.text);
        assert_eq!(rows[0]["shipment_id"], "NW-1");
        assert_eq!(rows[0]["destination"], "NANXIN");
        assert_eq!(rows[0]["outstanding"], "100");
        assert!(rows[0]["age_days"].as_i64().unwrap() > 365);
        let none = app
            .get("/api/v1/reports/in-transit?older_than_days=100000")
            .await;
        assert_eq!(none.body["rows"].as_array().unwrap().len(), 0);
        let prod = app.get("/api/v1/reports/production?format=csv").await;
        assert!(
            prod.text.contains("RUN-1,GOGGLES,1200,0,2160.0000,1.8000"),
            "{}",
            prod.text
        );
        let (ok, p) = app.ppe(&["report", "production"]).await;
        assert!(ok && p.contains("RUN-2"), "{p}");
        app.stop().await;
    }
}

fn collect<'a>(n: &'a Value, kind: &str, out: &mut Vec<&'a Value>) {
    if n["kind"] == kind {
        out.push(n);
    }
    for c in n["children"].as_array().into_iter().flatten() {
        collect(c, kind, out);
    }
}

fn qty(v: &Value) -> i64 {
    v["quantity"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_material_lot_is_traced_to_every_recipient() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        story(&app).await;
        let f = app.get("/api/v1/trace/PC-LOT?direction=forward").await;
        assert_eq!(f.status, StatusCode::OK, "{}", f.text);
        let mut runs = Vec::new();
        collect(&f.body["tree"], "run", &mut runs);
        let names: Vec<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(names, ["RUN-1", "RUN-2"]);
        let mut shipments = Vec::new();
        collect(&f.body["tree"], "shipment", &mut shipments);
        let shipped: i64 = shipments.iter().map(|s| qty(s)).sum();
        assert_eq!(shipped, 1700);
        let mut recipients = Vec::new();
        collect(&f.body["tree"], "recipient", &mut recipients);
        let mut transit = Vec::new();
        collect(&f.body["tree"], "in-transit", &mut transit);
        let arrived: i64 = recipients.iter().map(|r| qty(r)).sum();
        let on_the_way: i64 = transit.iter().map(|r| qty(r)).sum();
        assert_eq!(
            arrived + on_the_way,
            shipped,
            "every goggle shipped is accounted for"
        );
        let recall = f.body["recall"].as_array().unwrap();
        let who: std::collections::BTreeMap<&str, i64> = recall
            .iter()
            .map(|r| {
                (
                    r["recipient"].as_str().unwrap(),
                    r["quantity"].as_str().unwrap().parse::<i64>().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            who,
            [("FR-H", 500), ("KR-DSMC", 1000), ("XIACUN", 100)]
                .into_iter()
                .collect()
        );
        let kr = recall.iter().find(|r| r["recipient"] == "KR-DSMC").unwrap();
        assert_eq!(kr["date"], "2020-03-17");
        assert_eq!(kr["city"], "Daegu");

        // Backward from the goggles Daegu received: the run, its material lots, the supplier.
        let b = app.get("/api/v1/trace/RUN-1-1").await;
        let mut run = Vec::new();
        collect(&b.body["tree"], "run", &mut run);
        assert_eq!(run[0]["id"], "RUN-1");
        let materials: Vec<&str> = run[0]["children"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(materials, ["PC-LOT", "BAND-LOT"]);
        assert_eq!(run[0]["children"][0]["quantity"], "48");
        let mut suppliers = Vec::new();
        collect(&b.body["tree"], "supplier", &mut suppliers);
        assert!(suppliers.iter().all(|s| s["id"] == "SUP") && suppliers.len() == 2);
        let (ok, out) = app.ppe(&["trace", "PC-LOT", "--forward"]).await;
        assert!(
            ok && out.contains("recall: 3 deliveries") && out.contains("KR-DSMC"),
            "{out}"
        );
        let (_, out) = app.ppe(&["trace", "RUN-1-1"]).await;
        assert!(
            out.contains("run RUN-1") && out.contains("supplier SUP"),
            "{out}"
        );
        // The store's read of several entries at once, which the forward trace reads a
        // step's runs with: each entry that exists once, in sequence, as read one by one.
        let store = app.service.store();
        let all = store.entries(0, 1_000).await.expect("the journal");
        let head = all.last().expect("entries").entry.seq();
        let some = store
            .entries_of(&[head, 1, head + 10, head, 2])
            .await
            .expect("entries by number");
        let expected: Vec<_> = [1, 2, head]
            .iter()
            .map(|&seq| all.iter().find(|e| e.entry.seq() == seq).expect("read"))
            .map(|e| (&e.entry, e.hash))
            .collect();
        let found: Vec<_> = some.iter().map(|e| (&e.entry, e.hash)).collect();
        assert_eq!(found, expected);
        assert!(store.entries_of(&[]).await.expect("none").is_empty());
        assert_eq!(
            app.get("/api/v1/trace/NO-SUCH").await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            app.get("/api/v1/trace/PC-LOT?direction=sideways")
                .await
                .status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        app.stop().await;
    }
}
