//! Shipments on every backend: the Daegu donation dispatched, acknowledged over two days and
//! reconciled to the ten-thousandth; a frontline batch to three communities of Nanwan
//! acknowledged per community and closed short; refusals that name what was wrong and write
//! nothing; reversals refused while goods are in transit; CSV import of receipts, batches,
//! donations and acknowledgements that changes nothing the second time.

use ppe_tests::{backends, spawn_app, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn master_data(app: &TestApp) {
    for item in [
        json!({"sku":"GOGGLES","name":"Goggles","kind":"product","unit":"pcs","decimals":0}),
        json!({"sku":"MASK","name":"Mask","kind":"supply","unit":"pcs","decimals":0,"shelf_life_days":730}),
        json!({"sku":"GLOVES","name":"Gloves","kind":"supply","unit":"pair","decimals":0}),
    ] {
        app.post_ok("/api/v1/items", &item).await;
    }
    for party in [
        json!({"code":"SUP-G","name":"Goggles supplier","kind":"supplier"}),
        json!({"code":"SUP-M","name":"Mask supplier","kind":"supplier"}),
        json!({"code":"DONOR-RC","name":"Red Cross","kind":"donor"}),
        json!({"code":"CH-GOV","name":"District allocation","kind":"channel"}),
        json!({"code":"NANWAN","name":"Nanwan","kind":"subdistrict"}),
        json!({"code":"XIACUN","name":"Xiacun","kind":"community","parent":"NANWAN"}),
        json!({"code":"NANXIN","name":"Nanxin","kind":"community","parent":"NANWAN"}),
        json!({"code":"ZHANGSHUBU","name":"Zhangshubu","kind":"community","parent":"NANWAN"}),
        json!({"code":"KR-DSMC","name":"Keimyung University Dongsan Medical Center","kind":"hospital","country":"KR","city":"Daegu"}),
        json!({"code":"FR-HEGP","name":"Hopital europeen Georges-Pompidou","kind":"hospital","country":"FR","city":"Paris"}),
    ] {
        app.post_ok("/api/v1/parties", &party).await;
    }
    for loc in [
        json!({"code":"FG","name":"Finished goods"}),
        json!({"code":"NW-STORE","name":"Nanwan store"}),
    ] {
        app.post_ok("/api/v1/locations", &loc).await;
    }
}

fn daegu_donation() -> Value {
    json!({"donation_id":"DON-KR-1","date":"2020-03-10","from_location":"FG","recipient":"KR-DSMC",
           "declared_value":"8523456.78","currency":"KRW","fx_rate":"0.00581234",
           "lines":[{"sku":"GOGGLES","qty":"1000"},{"sku":"MASK","qty":1000}]})
}

fn masks_990_10() -> Value {
    json!({"date":"2020-03-18","lines":[{"destination":"KR-DSMC","sku":"MASK","received_qty":"990","damaged_qty":"10","note":"10 crushed in the carton"}]})
}

/// Asserts a refusal: its status, problem type, field (when given), and that nothing was
/// written.
async fn refused(
    app: &TestApp,
    path: &str,
    body: &Value,
    status: StatusCode,
    kind: &str,
    field: Option<&str>,
) -> Value {
    let before = app.entry_count().await;
    let a = app.post(path, body).await;
    assert_eq!(a.status, status, "{path} {body}: {}", a.text);
    assert_eq!(a.body["type"], format!("/problems/{kind}"), "{}", a.text);
    if let Some(f) = field {
        assert!(
            a.fields().iter().any(|x| x == f),
            "expected field {f}: {}",
            a.text
        );
    }
    assert_eq!(
        a.headers.get("content-type").unwrap(),
        "application/problem+json"
    );
    assert_eq!(app.entry_count().await, before, "a refusal wrote an entry");
    a.body
}

/// The Daegu story; returns the head hash it leaves.
async fn daegu(backend: Backend) -> String {
    let app = spawn_app(backend).await;
    master_data(&app).await;
    let g = app
        .post_ok(
            "/api/v1/purchases",
            &json!({"purchase_id":"PO-G","date":"2020-03-01","supplier":"SUP-G","location":"FG",
        "lines":[{"sku":"GOGGLES","qty":"1000","unit_price":"21.3333","lot":"GOG-1"}]}),
        )
        .await;
    assert_eq!(g["total_value"], "21333.3000");
    // 3000 x 1.2345 x 7.0123 = 25970.05305, a tie at 4 decimals: half-even keeps 25970.0530.
    let m = app.post_ok("/api/v1/purchases", &json!({"purchase_id":"PO-M","date":"2020-03-02","supplier":"SUP-M","location":"FG",
        "currency":"USD","fx_rate":"7.0123","lines":[{"sku":"MASK","qty":"3000","unit_price":"1.2345","lot":"MASK-1"}]})).await;
    assert_eq!(m["total_value"], "25970.0530");

    // Dispatch: the goods' ledger value moves to transit at once.
    let d = app.post("/api/v1/donations", &daegu_donation()).await;
    assert_eq!(d.status, StatusCode::CREATED, "{}", d.text);
    let d = d.body;
    assert_eq!(d["kind"], "donation");
    assert_eq!(d["status"], "dispatched");
    assert_eq!(d["country"], "KR");
    assert_eq!(d["declared_value"], "8523456.7800");
    // 8523456.78 KRW x 0.00581234 = 49541.2287806652, rounded once.
    assert_eq!(d["declared_value_base"], "49541.2288");
    // 21333.3000 + 1000/3000 of 25970.0530 (8656.68433... -> 8656.6843).
    assert_eq!(d["dispatched_value"], "29989.9843");
    assert_eq!(d["picked"][1]["lot"], "MASK-1");
    assert_eq!(d["picked"][1]["value"], "8656.6843");
    assert_eq!(
        app.balance("transit:DON-KR-1", "GOG-1").await,
        ("1000".into(), "21333.3000".into())
    );
    assert_eq!(
        app.balance("transit:DON-KR-1", "MASK-1").await,
        ("1000".into(), "8656.6843".into())
    );
    assert_eq!(
        app.balance("stock:FG", "MASK-1").await,
        ("2000".into(), "17313.3687".into())
    );
    assert_eq!(
        app.balance("stock:FG", "GOG-1").await,
        ("0".into(), "0.0000".into())
    );
    // The same donation again is a replay; another body under its id is refused, and so is a
    // batch under it (batch and donation ids share one namespace).
    let replay = app.post("/api/v1/donations", &daegu_donation()).await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.body, d);
    assert_eq!(replay.headers.get("idempotent-replay").unwrap(), "true");
    let mut other = daegu_donation();
    other["declared_value"] = json!("1");
    refused(
        &app,
        "/api/v1/donations",
        &other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "exists-with-different-body",
        None,
    )
    .await;
    refused(
        &app,
        "/api/v1/batches",
        &json!({"batch_id":"DON-KR-1","date":"2020-03-10","from_location":"FG",
        "lines":[{"destination":"NANWAN","sku":"MASK","qty":"1"}]}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "exists-with-different-body",
        None,
    )
    .await;

    // The purchases cannot be reversed while their goods are on the way; the refusal names the
    // shipment holding them. Nor can the dispatch itself.
    let entries = app.get("/api/v1/entries").await.body;
    let seq_of = |doc: &str| {
        entries["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["document"] == doc)
            .unwrap()["seq"]
            .as_u64()
            .unwrap()
    };
    let r = refused(
        &app,
        &format!("/api/v1/entries/{}/reversal", seq_of("PO-G")),
        &json!({}),
        StatusCode::CONFLICT,
        "not-reversible",
        None,
    )
    .await;
    let detail = r["detail"].as_str().unwrap();
    assert!(detail.contains("transit:DON-KR-1 holds 1000"), "{detail}");
    let r = refused(
        &app,
        &format!("/api/v1/entries/{}/reversal", seq_of("DON-KR-1")),
        &json!({}),
        StatusCode::CONFLICT,
        "not-reversible",
        None,
    )
    .await;
    assert!(
        r["detail"]
            .as_str()
            .unwrap()
            .contains("belongs to shipment DON-KR-1"),
        "{r}"
    );

    // Refusals of acknowledgements name what was wrong and write nothing.
    let ack = "/api/v1/shipments/DON-KR-1/acknowledgements";
    let r = refused(
        &app,
        ack,
        &json!({"date":"2020-03-17","lines":[{"destination":"KR-DSMC","sku":"MASK","received_qty":"1001"}]}),
        StatusCode::CONFLICT,
        "more-than-outstanding",
        Some("lines[0].received_qty"),
    )
    .await;
    assert_eq!(r["outstanding"], "1000");
    assert_eq!(r["requested"], "1001");
    refused(&app, ack, &json!({"date":"2020-03-17","lines":[{"destination":"FR-HEGP","sku":"MASK","received_qty":"1"}]}),
        StatusCode::UNPROCESSABLE_ENTITY, "not-on-shipment", Some("lines[0].destination")).await;
    refused(&app, ack, &json!({"date":"2020-03-17","lines":[{"destination":"KR-DSMC","sku":"MASK","lot":"GOG-1","received_qty":"1"}]}),
        StatusCode::UNPROCESSABLE_ENTITY, "not-on-shipment", Some("lines[0].lot")).await;
    refused(&app, ack, &json!({"date":"2020-03-17","lines":[{"destination":"KR-DSMC","sku":"GLOVES","received_qty":"1"}]}),
        StatusCode::UNPROCESSABLE_ENTITY, "not-on-shipment", Some("lines[0].sku")).await;
    refused(
        &app,
        ack,
        &json!({"date":"2020-03-17","lines":[{"destination":"KR-DSMC","sku":"MASK"}]}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("lines[0].received_qty"),
    )
    .await;
    refused(&app, ack, &json!({"date":"2020-03-09","lines":[{"destination":"KR-DSMC","sku":"MASK","received_qty":"1"}]}),
        StatusCode::UNPROCESSABLE_ENTITY, "invalid", Some("date")).await;
    refused(&app, ack, &json!({"date":"2020-03-17","lines":[{"destination":"KR-DSMC","sku":"MASK","received_qty":"1.5"}]}),
        StatusCode::UNPROCESSABLE_ENTITY, "invalid", Some("lines[0].received_qty")).await;
    refused(
        &app,
        "/api/v1/shipments/NO-SUCH/acknowledgements",
        &json!({"date":"2020-03-17","lines":[{"destination":"KR-DSMC","sku":"MASK","received_qty":"1"}]}),
        StatusCode::NOT_FOUND,
        "not-found",
        None,
    )
    .await;

    // Over two days: the goggles on the 17th, the masks (990 good, 10 damaged) on the 18th.
    let a1 = app
        .post_ok(
            ack,
            &json!({"acknowledgement_id":"DSMC-0317","date":"2020-03-17",
        "lines":[{"destination":"KR-DSMC","sku":"GOGGLES","lot":"GOG-1","received_qty":"1000"}]}),
        )
        .await;
    assert_eq!(a1["acknowledgement_id"], "DSMC-0317");
    assert_eq!(a1["status"], "partly-acknowledged");
    assert_eq!(a1["moved"][0]["received_value"], "21333.3000");
    let s = app.get("/api/v1/shipments/DON-KR-1").await.body;
    assert_eq!(s["status"], "partly-acknowledged");
    let a2 = app.post(ack, &masks_990_10()).await;
    assert_eq!(a2.status, StatusCode::CREATED, "{}", a2.text);
    let a2 = a2.body;
    let ack_id = a2["acknowledgement_id"].as_str().unwrap().to_owned();
    assert!(ack_id.starts_with("ack-"), "a derived id: {ack_id}");
    assert_eq!(a2["status"], "acknowledged");
    // 8656.6843 x 990 / 1000 = 8570.117457 -> 8570.1175; the last 10 take the rest exactly.
    assert_eq!(a2["moved"][0]["received_value"], "8570.1175");
    assert_eq!(a2["moved"][0]["damaged_value"], "86.5668");
    assert_eq!(a2["moved"][0]["outstanding"], "0");
    for lot in ["GOG-1", "MASK-1"] {
        assert_eq!(
            app.balance("transit:DON-KR-1", lot).await,
            ("0".into(), "0.0000".into()),
            "transit is empty"
        );
    }
    assert_eq!(
        app.balance("recipient:KR-DSMC", "GOG-1").await,
        ("1000".into(), "21333.3000".into())
    );
    assert_eq!(
        app.balance("recipient:KR-DSMC", "MASK-1").await,
        ("990".into(), "8570.1175".into())
    );
    assert_eq!(
        app.balance("loss", "MASK-1").await,
        ("10".into(), "86.5668".into())
    );
    // The same acknowledgement again (numbers written differently) is recognised: no entry.
    let entries = app.entry_count().await;
    let mut again = masks_990_10();
    again["lines"][0]["received_qty"] = json!(990);
    let replay = app.post(ack, &again).await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.body, a2);
    assert_eq!(app.entry_count().await, entries);
    // Nothing is left to acknowledge or to close.
    refused(&app, ack, &json!({"date":"2020-03-19","lines":[{"destination":"KR-DSMC","sku":"MASK","received_qty":"1"}]}),
        StatusCode::CONFLICT, "more-than-outstanding", Some("lines[0].received_qty")).await;
    refused(
        &app,
        "/api/v1/shipments/DON-KR-1/close",
        &json!({"date":"2020-03-20","reason":"done"}),
        StatusCode::CONFLICT,
        "state-forbids",
        None,
    )
    .await;

    // Status and history.
    let s = app.get("/api/v1/shipments/DON-KR-1").await.body;
    assert_eq!(s["status"], "acknowledged");
    assert_eq!(s["dispatched_value"], "29989.9843");
    assert_eq!(s["declared_value_base"], "49541.2288");
    let lines = s["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["acknowledged"], "990");
    assert_eq!(lines[1]["damaged"], "10");
    assert_eq!(lines[1]["outstanding"], "0");
    assert_eq!(
        app.get("/api/v1/donations/DON-KR-1").await.body["status"],
        "acknowledged"
    );
    assert_eq!(
        app.get("/api/v1/batches/DON-KR-1").await.status,
        StatusCode::NOT_FOUND
    );
    let acks = app
        .get("/api/v1/shipments/DON-KR-1/acknowledgements")
        .await
        .body;
    assert_eq!(acks["items"].as_array().unwrap().len(), 2);
    assert_eq!(acks["items"][0]["acknowledgement_id"], "DSMC-0317");
    let one = app
        .get(&format!(
            "/api/v1/shipments/DON-KR-1/acknowledgements/{ack_id}"
        ))
        .await;
    assert_eq!(one.body, a2);
    let v = app.get("/api/v1/verify").await;
    assert_eq!(v.body["ok"], true, "{}", v.text);
    let head = v.body["head_hash"].as_str().unwrap().to_owned();
    app.stop().await;
    head
}

#[tokio::test]
async fn the_daegu_donation_is_dispatched_acknowledged_and_reconciled() {
    let mut heads = Vec::new();
    for backend in backends() {
        heads.push((backend, daegu(backend).await));
    }
    // The same operations chain to the same head on every backend.
    for (b, h) in &heads {
        assert_eq!(h, &heads[0].1, "{b:?} gave another head hash");
    }
}

#[tokio::test]
async fn a_frontline_batch_is_acknowledged_per_community_and_closed_short() {
    for backend in backends() {
        frontline(backend).await;
    }
}

async fn frontline(backend: Backend) {
    let app = spawn_app(backend).await;
    master_data(&app).await;
    // In-kind receipts from a donor and a channel, one lot per line with the giver as source.
    let rc1 = app.post("/api/v1/receipts", &json!({"receipt_id":"RC-1","date":"2020-02-08","donor":"DONOR-RC","location":"NW-STORE","lines":[
        {"sku":"MASK","qty":"500","unit_value":"0","lot":"M-OLD","expires_on":"2020-02-15"},
        {"sku":"MASK","qty":"300","unit_value":"0.80","lot":"M-SOON","expires_on":"2020-06-30"},
        {"sku":"MASK","qty":"400","unit_value":"0.75","lot":"M-LATE","expires_on":"2021-01-31"}]})).await;
    assert_eq!(rc1.status, StatusCode::CREATED, "{}", rc1.text);
    assert_eq!(rc1.body["total_value"], "540.0000");
    assert_eq!(rc1.body["lines"][0]["value"], "0.0000");
    let rc2 = app.post_ok("/api/v1/receipts", &json!({"receipt_id":"RC-2","date":"2020-02-09","donor":"CH-GOV","location":"NW-STORE","lines":[
        {"sku":"GLOVES","qty":"600","unit_value":"0.35"}]})).await;
    assert_eq!(rc2["lines"][0]["lot"], "RC-2-1");
    assert_eq!(
        app.balance("donor:DONOR-RC", "M-SOON").await,
        ("-300".into(), "-240.0000".into())
    );
    assert_eq!(
        app.get("/api/v1/receipts/RC-2").await.body["total_value"],
        "210.0000"
    );
    assert_eq!(
        app.get("/api/v1/receipts").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // A supplier sells and a hospital receives: neither gives in kind.
    for donor in ["SUP-G", "KR-DSMC"] {
        refused(&app, "/api/v1/receipts", &json!({"receipt_id":"RC-X","date":"2020-02-09","donor":donor,"location":"NW-STORE","lines":[
            {"sku":"GLOVES","qty":"1","unit_value":"0"}]}), StatusCode::UNPROCESSABLE_ENTITY, "wrong-kind", Some("donor")).await;
    }
    refused(&app, "/api/v1/receipts", &json!({"receipt_id":"RC-X","date":"2020-02-09","donor":"DONOR-RC","location":"NW-STORE","lines":[
        {"sku":"GLOVES","qty":"1","unit_value":"-1"}]}), StatusCode::UNPROCESSABLE_ENTITY, "invalid", Some("lines[0].unit_value")).await;

    // Refusals of a batch: an expired lot, more than on hand (the expired lot does not count),
    // a destination that is not frontline.
    let batch = |lines: Value| json!({"batch_id":"NW-X","date":"2020-02-20","from_location":"NW-STORE","lines":lines});
    refused(
        &app,
        "/api/v1/batches",
        &batch(json!([{"destination":"XIACUN","sku":"MASK","qty":"10","lot":"M-OLD"}])),
        StatusCode::CONFLICT,
        "lot-expired",
        Some("lines[0].lot"),
    )
    .await;
    let r = refused(
        &app,
        "/api/v1/batches",
        &batch(json!([{"destination":"XIACUN","sku":"MASK","qty":"701"}])),
        StatusCode::CONFLICT,
        "insufficient-stock",
        Some("lines[0].qty"),
    )
    .await;
    assert_eq!(r["available"], "700");
    assert_eq!(r["requested"], "701");
    refused(
        &app,
        "/api/v1/batches",
        &batch(json!([{"destination":"KR-DSMC","sku":"MASK","qty":"1"}])),
        StatusCode::UNPROCESSABLE_ENTITY,
        "wrong-kind",
        Some("lines[0].destination"),
    )
    .await;
    // Two lines that together take more than there is.
    refused(
        &app,
        "/api/v1/batches",
        &batch(json!([{"destination":"XIACUN","sku":"GLOVES","qty":"400"},{"destination":"NANXIN","sku":"GLOVES","qty":"201"}])),
        StatusCode::CONFLICT,
        "insufficient-stock",
        Some("lines[1].qty"),
    )
    .await;

    // A batch to three communities of Nanwan: lots picked earliest expiry first, the expired
    // lot skipped.
    let b = app
        .post(
            "/api/v1/batches",
            &json!({"batch_id":"NW-B1","date":"2020-02-20","from_location":"NW-STORE","lines":[
        {"destination":"XIACUN","sku":"MASK","qty":"200"},
        {"destination":"NANXIN","sku":"MASK","qty":"200"},
        {"destination":"ZHANGSHUBU","sku":"MASK","qty":"150"},
        {"destination":"XIACUN","sku":"GLOVES","qty":"100"},
        {"destination":"NANXIN","sku":"GLOVES","qty":"100"}]}),
        )
        .await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.text);
    let picked: Vec<(String, String, String, String)> = b.body["picked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["destination"].as_str().unwrap().into(),
                p["lot"].as_str().unwrap().into(),
                p["qty"].as_str().unwrap().into(),
                p["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    let row = |d: &str, l: &str, q: &str, v: &str| (d.into(), l.into(), q.into(), v.into());
    assert_eq!(
        picked,
        vec![
            row("XIACUN", "M-SOON", "200", "160.0000"),
            row("NANXIN", "M-SOON", "100", "80.0000"),
            row("NANXIN", "M-LATE", "100", "75.0000"),
            row("ZHANGSHUBU", "M-LATE", "150", "112.5000"),
            row("XIACUN", "RC-2-1", "100", "35.0000"),
            row("NANXIN", "RC-2-1", "100", "35.0000"),
        ]
    );
    assert_eq!(b.body["dispatched_value"], "497.5000");
    assert_eq!(
        app.balance("transit:NW-B1", "M-LATE").await,
        ("250".into(), "187.5000".into())
    );

    // Until acknowledged, what is outstanding shows per destination.
    let outstanding = |s: &Value| -> Vec<(String, String, String)> {
        s["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["destination"].as_str().unwrap().into(),
                    l["sku"].as_str().unwrap().into(),
                    l["outstanding"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let s = app.get("/api/v1/shipments/NW-B1").await.body;
    assert_eq!(s["status"], "dispatched");
    let o = |d: &str, k: &str, q: &str| (d.to_owned(), k.to_owned(), q.to_owned());
    assert_eq!(
        outstanding(&s),
        vec![
            o("XIACUN", "MASK", "200"),
            o("NANXIN", "MASK", "100"),
            o("NANXIN", "MASK", "100"),
            o("ZHANGSHUBU", "MASK", "150"),
            o("XIACUN", "GLOVES", "100"),
            o("NANXIN", "GLOVES", "100"),
        ]
    );

    // Xiacun acknowledges everything (5 pairs of gloves damaged); Nanxin 150 masks, which are
    // taken from its lots in the order they were sent.
    let ack = "/api/v1/shipments/NW-B1/acknowledgements";
    let x = app
        .post_ok(
            ack,
            &json!({"date":"2020-02-21","lines":[
        {"destination":"XIACUN","sku":"MASK","received_qty":"200"},
        {"destination":"XIACUN","sku":"GLOVES","received_qty":"95","damaged_qty":"5"}]}),
        )
        .await;
    assert_eq!(x["status"], "partly-acknowledged");
    let n = app
        .post_ok(
            ack,
            &json!({"date":"2020-02-22","lines":[
        {"destination":"NANXIN","sku":"MASK","received_qty":"150"}]}),
        )
        .await;
    let moved: Vec<(String, String)> = n["moved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["lot"].as_str().unwrap().into(),
                m["received"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        moved,
        vec![
            ("M-SOON".into(), "100".into()),
            ("M-LATE".into(), "50".into())
        ]
    );
    assert_eq!(
        app.balance("recipient:XIACUN", "M-SOON").await,
        ("200".into(), "160.0000".into())
    );
    assert_eq!(app.balance("loss", "RC-2-1").await.0, "5");
    let s = app.get("/api/v1/shipments/NW-B1").await.body;
    assert_eq!(
        outstanding(&s),
        vec![
            o("XIACUN", "MASK", "0"),
            o("NANXIN", "MASK", "0"),
            o("NANXIN", "MASK", "50"),
            o("ZHANGSHUBU", "MASK", "150"),
            o("XIACUN", "GLOVES", "0"),
            o("NANXIN", "GLOVES", "100"),
        ]
    );
    // The in-transit report lists what is outstanding, line by line, of open shipments only.
    let in_transit = || async {
        let r = app.get("/api/v1/reports/in-transit").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let f = |k: &str| l[k].as_str().unwrap().to_owned();
                (
                    f("shipment_id"),
                    f("destination"),
                    f("sku"),
                    f("outstanding"),
                )
            })
            .collect::<Vec<_>>()
    };
    let t = |s: &str, d: &str, k: &str, q: &str| {
        (s.to_owned(), d.to_owned(), k.to_owned(), q.to_owned())
    };
    assert_eq!(
        in_transit().await,
        vec![
            t("NW-B1", "NANXIN", "MASK", "50"),
            t("NW-B1", "ZHANGSHUBU", "MASK", "150"),
            t("NW-B1", "NANXIN", "GLOVES", "100"),
        ]
    );

    // Lists filter by kind, status and destination.
    let ids = |v: Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["shipment_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(app
            .get("/api/v1/shipments?kind=batch&status=partly-acknowledged")
            .await
            .body),
        vec!["NW-B1"]
    );
    assert_eq!(
        ids(app
            .get("/api/v1/shipments?destination=ZHANGSHUBU")
            .await
            .body),
        vec!["NW-B1"]
    );
    assert!(ids(app.get("/api/v1/shipments?status=closed").await.body).is_empty());
    assert!(ids(app.get("/api/v1/donations").await.body).is_empty());
    assert_eq!(ids(app.get("/api/v1/batches").await.body), vec!["NW-B1"]);
    let bad = app.get("/api/v1/shipments?status=lost").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.fields(), vec!["status"]);

    // Closing writes off what is still outstanding as short, at the value left in transit.
    refused(
        &app,
        "/api/v1/shipments/NW-B1/close",
        &json!({"date":"2020-03-01","reason":"  "}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("reason"),
    )
    .await;
    let close = json!({"date":"2020-03-01","reason":"the rest was lost in transit"});
    let c = app.post("/api/v1/shipments/NW-B1/close", &close).await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.text);
    assert_eq!(c.body["status"], "closed");
    // Nanxin's 50 and Zhangshubu's 150 of M-LATE (150.0000 left in transit) and Nanxin's 100
    // pairs of gloves (35.0000).
    assert_eq!(c.body["short_value"], "185.0000");
    for lot in ["M-SOON", "M-LATE", "RC-2-1"] {
        assert_eq!(
            app.balance("transit:NW-B1", lot).await,
            ("0".into(), "0.0000".into())
        );
    }
    assert_eq!(
        app.balance("loss", "M-LATE").await,
        ("200".into(), "150.0000".into())
    );
    let s = app.get("/api/v1/shipments/NW-B1").await.body;
    assert_eq!(s["status"], "closed");
    assert_eq!(s["close_reason"], "the rest was lost in transit");
    assert_eq!(s["lines"][3]["short"], "150");
    // No further acknowledgements; closing again is a replay; another closing is refused.
    refused(&app, ack, &json!({"date":"2020-03-02","lines":[{"destination":"ZHANGSHUBU","sku":"MASK","received_qty":"1"}]}),
        StatusCode::CONFLICT, "state-forbids", None).await;
    let again = app.post("/api/v1/shipments/NW-B1/close", &close).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, c.body);
    refused(
        &app,
        "/api/v1/shipments/NW-B1/close",
        &json!({"date":"2020-03-02","reason":"other"}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "exists-with-different-body",
        None,
    )
    .await;
    assert_eq!(
        ids(app.get("/api/v1/shipments?status=closed").await.body),
        vec!["NW-B1"]
    );

    // Roles: a coordinator ships and acknowledges; an auditor may not; a manufacturer may not
    // acknowledge.
    let token = |role: &str| {
        let app = &app;
        let role = role.to_owned();
        async move {
            app.post_ok(
                "/api/v1/tokens",
                &json!({"name": format!("t-{role}"), "role": role}),
            )
            .await["token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let coordinator = token("coordinator").await;
    let auditor = token("auditor").await;
    let manufacturer = token("manufacturer").await;
    let b2 = json!({"batch_id":"NW-B2","date":"2020-03-02","from_location":"NW-STORE","lines":[{"destination":"NANWAN","sku":"GLOVES","qty":"10"}]});
    let post = |token: &str, path: &str, body: &Value| {
        let (token, path, body) = (token.to_owned(), path.to_owned(), body.clone());
        let app = &app;
        async move {
            app.request(Method::POST, &path, Some(&token), Some(&body), &[])
                .await
                .status
        }
    };
    assert_eq!(
        post(&auditor, "/api/v1/batches", &b2).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(&coordinator, "/api/v1/batches", &b2).await,
        StatusCode::CREATED
    );
    // The closed shipment has nothing in transit; the new one has all it carries.
    assert_eq!(
        in_transit().await,
        vec![t("NW-B2", "NANWAN", "GLOVES", "10")]
    );
    let a = json!({"date":"2020-03-03","lines":[{"destination":"NANWAN","sku":"GLOVES","received_qty":"10"}]});
    assert_eq!(
        post(
            &manufacturer,
            "/api/v1/shipments/NW-B2/acknowledgements",
            &a
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(&coordinator, "/api/v1/shipments/NW-B2/acknowledgements", &a).await,
        StatusCode::CREATED
    );
    assert!(in_transit().await.is_empty());
    let v = app.get("/api/v1/verify").await;
    assert_eq!(v.body["ok"], true, "{}", v.text);
    // The OpenAPI document describes the new routes.
    let doc = app
        .request(Method::GET, "/api/v1/openapi.json", None, None, &[])
        .await
        .body;
    for path in [
        "/api/v1/receipts",
        "/api/v1/batches/{id}",
        "/api/v1/donations",
        "/api/v1/shipments",
        "/api/v1/shipments/{id}/acknowledgements",
        "/api/v1/shipments/{id}/close",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} is not in the OpenAPI document"
        );
    }

    // The database checks the domain's rules a second time, and verify a third.
    let e = app
        .db
        .exec_refused(
            "update shipment_lines set damaged_qty = dispatched_qty where shipment_id = 'NW-B2'",
        )
        .await;
    assert!(e.to_lowercase().contains("check"), "{e}");
    let e = app
        .db
        .exec_refused("update shipment_lines set dispatched_qty = dispatched_qty + 1")
        .await;
    assert!(e.contains("append-only"), "{e}");
    app.db
        .exec("update shipment_lines set acknowledged_qty = acknowledged_qty - 1000 where shipment_id = 'NW-B2'")
        .await;
    let v = app.get("/api/v1/verify").await;
    assert_eq!(v.body["ok"], false, "{}", v.text);
    assert!(
        v.text.contains(
            "shipment NW-B2 lot RC-2-1: its lines have 1 outstanding but transit:NW-B2 holds 0"
        ),
        "{}",
        v.text
    );
    // The other way round: lines with nothing outstanding (as acknowledged again), and a
    // transit balance that holds goods. The check groups only lines with something
    // outstanding, so this group comes from the balance alone.
    app.db
        .exec("update shipment_lines set acknowledged_qty = acknowledged_qty + 1000 where shipment_id = 'NW-B2'")
        .await;
    let v = app.get("/api/v1/verify").await;
    assert_eq!(v.body["ok"], true, "{}", v.text);
    app.db
        .exec("update balances set qty = qty + 2000 where account = 'transit:NW-B2' and lot = 'RC-2-1'")
        .await;
    let v = app.get("/api/v1/verify").await;
    assert_eq!(v.body["ok"], false, "{}", v.text);
    assert!(
        v.text.contains(
            "shipment NW-B2 lot RC-2-1: its lines have 0 outstanding but transit:NW-B2 holds 2"
        ),
        "{}",
        v.text
    );
    app.stop().await;
}

#[tokio::test]
async fn shipments_import_from_csv_and_reimport_changes_nothing() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        master_data(&app).await;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, body).unwrap();
            p.to_str().unwrap().to_owned()
        };
        let receipts = write(
            "receipts.csv",
            "receipt_id,date,donor,location,sku,qty,unit_value,lot,expires_on\n\
             RC-1,2020-02-08,DONOR-RC,FG,MASK,2000,0.5,M-1,2021-02-08\n\
             RC-1,2020-02-08,DONOR-RC,FG,GLOVES,500,0,,\n\
             RC-2,2020-02-09,SUP-M,FG,MASK,10,0,,\n\
             RC-3,2020-02-09,CH-GOV,FG,GOGGLES,100,20,G-1,\n",
        );
        let (ok, out) = app.ppe(&["import", "receipts", &receipts]).await;
        assert!(!ok, "{out}");
        assert!(
            out.contains("4 rows, 2 created, 0 unchanged, 1 rejected"),
            "{out}"
        );
        assert!(out.contains("line 4: donor:"), "{out}");
        let batches = write(
            "batches.csv",
            "batch_id,date,from_location,destination,sku,qty,lot\n\
             B-1,2020-02-20,FG,XIACUN,MASK,300,\n\
             B-1,2020-02-20,FG,NANXIN,MASK,200,M-1\n\
             B-1,2020-02-20,FG,NANXIN,GLOVES,100,\n\
             B-2,2020-02-21,FG,ZHANGSHUBU,MASK,5000,\n",
        );
        let (ok, out) = app.ppe(&["import", "batches", &batches]).await;
        assert!(!ok, "{out}");
        assert!(
            out.contains("4 rows, 1 created, 0 unchanged, 1 rejected"),
            "{out}"
        );
        assert!(out.contains("line 5: qty:"), "{out}");
        let donations = write(
            "donations.csv",
            "donation_id,date,from_location,recipient,declared_value,currency,fx_rate,sku,qty,lot\n\
             DON-FR-1,2020-03-12,FG,FR-HEGP,6500,EUR,7.7812,GOGGLES,100,\n\
             DON-FR-1,2020-03-12,FG,FR-HEGP,6500,EUR,7.7812,MASK,1000,\n",
        );
        let (ok, out) = app.ppe(&["import", "donations", &donations]).await;
        assert!(ok, "{out}");
        let d = app.get("/api/v1/donations/DON-FR-1").await.body;
        assert_eq!(d["declared_value_base"], "50577.8000");
        assert_eq!(d["country"], "FR");
        // Acknowledgements over two days of one shipment are two documents; a third row that
        // acknowledges more than was sent is refused by its line.
        let acks = write(
            "acks.csv",
            "shipment_id,date,destination,sku,lot,received_qty,damaged_qty,note\n\
             B-1,2020-02-21,XIACUN,MASK,,300,,\n\
             B-1,2020-02-21,NANXIN,GLOVES,,100,,\n\
             B-1,2020-02-22,NANXIN,MASK,M-1,190,10,\"wet, 10 spoiled\"\n\
             DON-FR-1,2020-03-20,FR-HEGP,GOGGLES,,101,,\n\
             DON-FR-1,2020-03-21,FR-HEGP,MASK,,1000,,\n",
        );
        let (ok, out) = app.ppe(&["import", "acknowledgements", &acks]).await;
        assert!(!ok, "{out}");
        assert!(
            out.contains("5 rows, 3 created, 0 unchanged, 1 rejected"),
            "{out}"
        );
        assert!(out.contains("line 5: received_qty:"), "{out}");
        let b1 = app.get("/api/v1/shipments/B-1").await.body;
        assert_eq!(b1["status"], "acknowledged");
        assert_eq!(
            app.get("/api/v1/shipments/DON-FR-1").await.body["status"],
            "partly-acknowledged"
        );
        assert_eq!(app.balance("loss", "M-1").await.0, "10");
        // Every file again: nothing changes.
        let count = app.entry_count().await;
        for (kind, file, summary) in [
            ("receipts", &receipts, "0 created, 2 unchanged, 1 rejected"),
            ("batches", &batches, "0 created, 1 unchanged, 1 rejected"),
            (
                "donations",
                &donations,
                "0 created, 1 unchanged, 0 rejected",
            ),
            (
                "acknowledgements",
                &acks,
                "0 created, 3 unchanged, 1 rejected",
            ),
        ] {
            let (_, out) = app.ppe(&["import", kind, file]).await;
            assert!(out.contains(summary), "{kind}: {out}");
        }
        assert_eq!(app.entry_count().await, count);
        let v = app.get("/api/v1/verify").await;
        assert_eq!(v.body["ok"], true, "{}", v.text);
        app.stop().await;
    }
}

/// Many acknowledgements in one group commit: each is decided against what the earlier ones
/// of the same batch left outstanding, so together they never take more than was sent.
#[tokio::test]
async fn acknowledgements_in_one_group_commit_see_each_other() {
    use service::dto::{AcknowledgementIn, AcknowledgementLineIn, BatchIn, BatchLineIn, DecText};
    use service::ServiceError;
    for backend in backends() {
        let writer = service::WriterConfig {
            max_wait: std::time::Duration::from_millis(200),
            ..service::WriterConfig::default()
        };
        let app = ppe_tests::spawn_app_with(backend, api::ApiConfig::default(), writer).await;
        master_data(&app).await;
        app.post_ok("/api/v1/receipts", &json!({"receipt_id":"RC-1","date":"2020-02-08","donor":"DONOR-RC","location":"NW-STORE",
            "lines":[{"sku":"MASK","qty":"10","unit_value":"0.3333"}]})).await;
        let entries = app.entry_count().await;
        let batch = BatchIn {
            batch_id: "B-G".into(),
            date: "2020-02-20".into(),
            from_location: "NW-STORE".into(),
            lines: vec![BatchLineIn {
                destination: "XIACUN".into(),
                sku: "MASK".into(),
                qty: DecText("10".into()),
                lot: None,
            }],
        };
        let ack = |i: usize| AcknowledgementIn {
            acknowledgement_id: Some(format!("A-{i}")),
            date: "2020-02-21".into(),
            lines: vec![AcknowledgementLineIn {
                destination: "XIACUN".into(),
                sku: "MASK".into(),
                lot: None,
                received_qty: Some(DecText("1".into())),
                damaged_qty: None,
                note: None,
            }],
        };
        let s = app.service.clone();
        // The dispatch is queued first; the acknowledgements follow while the writer waits
        // for more, so they share its commit.
        let (dispatched, acks) = tokio::join!(s.record_batch(&batch, "t", None), async {
            let mut set = tokio::task::JoinSet::new();
            for i in 0..15 {
                let (s, a) = (s.clone(), ack(i));
                set.spawn(async move { s.acknowledge("B-G", &a, "t", None).await });
            }
            set.join_all().await
        });
        assert!(dispatched.is_ok(), "{dispatched:?}");
        let ok = acks.iter().filter(|r| r.is_ok()).count();
        let over = acks
            .iter()
            .filter(|r| {
                matches!(r, Err(ServiceError::Rejected(e)) if e.code() == "more-than-outstanding")
            })
            .count();
        assert_eq!((ok, over), (10, 5), "{acks:?}");
        assert_eq!(app.entry_count().await, entries + 11);
        // One commit: every entry of the shipment carries the same recording time.
        let journal = app.get("/api/v1/entries").await.body;
        let mut times: Vec<&str> = journal["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["document"] == "B-G")
            .map(|e| e["recorded_at"].as_str().unwrap())
            .collect();
        times.dedup();
        assert_eq!(times.len(), 1, "{times:?}");
        let sh = app.get("/api/v1/shipments/B-G").await.body;
        assert_eq!(sh["status"], "acknowledged");
        assert_eq!(
            app.balance("recipient:XIACUN", "RC-1-1").await,
            ("10".into(), "3.3330".into())
        );
        assert_eq!(
            app.balance("transit:B-G", "RC-1-1").await,
            ("0".into(), "0.0000".into())
        );
        let v = app.get("/api/v1/verify").await;
        assert_eq!(v.body["ok"], true, "{}", v.text);
        app.stop().await;
    }
}
