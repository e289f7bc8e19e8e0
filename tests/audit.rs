//! Audit tools on every backend: the trial balance and the conservation report computed from
//! postings, a balance edited behind the service's back named by conservation, period close,
//! and exports an auditor can trust (spreadsheet-safe CSV, typed XLSX tied to the head hash).

use std::io::Read;

use ppe_tests::{backends, spawn_app, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn journal(app: &TestApp) {
    app.post_ok(
        "/api/v1/items",
        &json!({"sku":"PC","name":"Polycarbonate","kind":"material","unit":"kg","decimals":3}),
    )
    .await;
    app.post_ok("/api/v1/items", &json!({"sku":"MASK","name":"Mask","kind":"supply","unit":"pcs","decimals":0,"shelf_life_days":365})).await;
    app.post_ok(
        "/api/v1/parties",
        &json!({"code":"SUP","name":"=HYPERLINK(\"http://x\")","kind":"supplier"}),
    )
    .await;
    app.post_ok("/api/v1/locations", &json!({"code":"RAW","name":"Raw"}))
        .await;
    app.post_ok("/api/v1/purchases", &json!({"purchase_id":"PO-1","date":"2020-02-12","supplier":"SUP","location":"RAW",
        "lines":[{"sku":"PC","qty":"100","unit_price":"40"},{"sku":"MASK","qty":"1000","unit_price":"1.25"}]})).await;
    app.post_ok("/api/v1/purchases", &json!({"purchase_id":"PO-2","date":"2020-03-02","supplier":"SUP","location":"RAW","currency":"EUR","fx_rate":"7.8",
        "lines":[{"sku":"PC","qty":"10.5","unit_price":"5.13"}]})).await;
    app.post_ok(
        "/api/v1/purchases",
        &json!({"purchase_id":"PO-3","date":"2020-03-03","supplier":"SUP","location":"RAW",
        "lines":[{"sku":"MASK","qty":"10","unit_price":"1"}]}),
    )
    .await;
    app.post_ok("/api/v1/entries/3/reversal", &json!({"memo":"duplicate"}))
        .await;
}

fn rows(report: &Value) -> Vec<Value> {
    report["rows"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn trial_balance_and_conservation_hold_and_catch_an_edited_balance() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        journal(&app).await;
        let tb = app.get("/api/v1/reports/trial-balance").await;
        assert_eq!(tb.status, StatusCode::OK, "{}", tb.text);
        // Per (sku, lot), over all accounts, quantity and value sum to zero.
        let mut sums: std::collections::BTreeMap<(String, String), (i128, i128)> =
            Default::default();
        for r in rows(&tb.body) {
            let key = (
                r["sku"].as_str().unwrap().to_owned(),
                r["lot"].as_str().unwrap().to_owned(),
            );
            let e = sums.entry(key).or_default();
            e.0 += scaled(r["quantity"].as_str().unwrap(), 3);
            e.1 += scaled(r["value"].as_str().unwrap(), 4);
        }
        assert!(!sums.is_empty());
        for (k, v) in &sums {
            assert_eq!(*v, (0, 0), "{k:?} does not sum to zero");
        }
        assert_eq!(tb.body["total_value"], "0.0000");
        // The reversed purchase left nothing behind; the others are there.
        assert!(rows(&tb.body).iter().all(|r| r["lot"] != "PO-3-1"));
        assert!(rows(&tb.body).iter().any(|r| r["account"] == "stock:RAW"
            && r["lot"] == "PO-2-1"
            && r["value"] == "420.1470"));
        // As of a date: entries after it are left out.
        let early = app
            .get("/api/v1/reports/trial-balance?as_of=2020-02-29")
            .await;
        assert!(
            rows(&early.body).iter().all(|r| r["lot"] != "PO-2-1"),
            "{}",
            early.text
        );
        assert!(rows(&early.body).iter().any(|r| r["lot"] == "PO-1-1"));

        let c = app.get("/api/v1/reports/conservation").await;
        assert_eq!(c.body["ok"], true, "{}", c.text);
        assert_eq!(c.body["violations"].as_array().unwrap().len(), 0);
        let (ok, out) = app.ppe(&["report", "conservation"]).await;
        assert!(ok && out.contains("ok: no violation"), "{out}");

        // Edit a maintained balance behind the service's back: conservation names it.
        app.db.exec("update balances set qty = qty - 1000 where account = 'stock:RAW' and lot = 'PO-1-1'").await;
        let c = app.get("/api/v1/reports/conservation").await;
        assert_eq!(c.body["ok"], false);
        let named = c.body["violations"].as_array().unwrap().iter().any(|v| {
            v["check"] == "balance"
                && v["account"] == "stock:RAW"
                && v["lot"] == "PO-1-1"
                && v["found"] == "99"
                && v["expected"] == "100"
        });
        assert!(named, "{}", c.text);
        let (ok, out) = app.ppe(&["report", "conservation"]).await;
        assert!(!ok && out.contains("PO-1-1"), "{out}");
        // Verify says so too.
        assert_eq!(app.get("/api/v1/verify").await.body["ok"], false);
        app.stop().await;
    }
}

/// The `reconciliation` report reads the journal once (crate::scan) and must say exactly what
/// the separate reports say, whose SQL computes the same checks independently: on a clean
/// journal and after each of several edits behind the service's back (rows kept in order).
#[tokio::test]
async fn the_one_pass_reconciliation_agrees_with_the_separate_reports() {
    fn sorted(v: &Value) -> Vec<String> {
        let mut out: Vec<String> = v
            .as_array()
            .unwrap_or_else(|| panic!("an array: {v}"))
            .iter()
            .map(Value::to_string)
            .collect();
        out.sort();
        out
    }
    for backend in backends() {
        let app = spawn_app(backend).await;
        journal(&app).await;
        let (ok, out) = app.ppe(&["report", "reconciliation"]).await;
        assert!(ok && out.contains("chain"), "{backend:?}: {out}");
        let unguard = match backend {
            Backend::Sqlite => "drop trigger if exists postings_append_only_update",
            Backend::Postgres => "alter table postings disable trigger postings_append_only_update",
        };
        let edits = [
            ("clean", ""),
            (
                "a maintained balance",
                "update balances set qty = qty - 1000, value = value + 7 where account = 'stock:RAW' and lot = 'PO-1-1'",
            ),
            (
                "a stock posting taken below zero",
                "update postings set qty = qty - 20000 where seq = 2 and idx = 1",
            ),
            (
                "a posting naming another item",
                "update postings set sku = 'MASK' where seq = 1 and idx = 0",
            ),
            (
                "a posting's value",
                "update postings set value = value - 5 where seq = 4 and idx = 0",
            ),
            // One account then holds lot PO-3-1 as two items: two of the pass's keys share
            // one maintained balance (account, lot), and are compared with it as one.
            (
                "a lot posted as two items in one account",
                "update postings set sku = 'PC' where seq = 4 and idx = 1",
            ),
            // Postings with no balance, and a balance with no postings: the directions a
            // lookup of each balance among the pass's keys (PostgreSQL) must both find.
            (
                "a maintained balance deleted",
                "delete from balances where account = 'supplier:SUP' and lot = 'PO-2-1'",
            ),
            (
                "a balance with no postings",
                "insert into balances (account, lot, sku, qty, value, guarded)
                 select 'loss', lot, sku, 5, 0, false from lots where lot = 'PO-2-1'",
            ),
        ];
        let mut checks_seen = std::collections::BTreeSet::new();
        for (what, sql) in edits {
            if !sql.is_empty() {
                app.db.exec(&format!("{unguard};\n{sql}")).await;
            }
            let r = app.get("/api/v1/reports/reconciliation").await;
            assert_eq!(r.status, StatusCode::OK, "{backend:?} {what}: {}", r.text);
            let tb = app.get("/api/v1/reports/trial-balance").await;
            let c = app.get("/api/v1/reports/conservation").await;
            let v = app.get("/api/v1/verify").await;
            assert_eq!(
                sorted(&r.body["trial_balance"]["rows"]),
                sorted(&tb.body["rows"]),
                "{backend:?} {what}: trial balance"
            );
            assert_eq!(
                r.body["trial_balance"]["total_value"], tb.body["total_value"],
                "{backend:?} {what}"
            );
            assert_eq!(
                sorted(&r.body["conservation"]["violations"]),
                sorted(&c.body["violations"]),
                "{backend:?} {what}: conservation"
            );
            assert_eq!(r.body["verify"], v.body, "{backend:?} {what}: verify");
            let all_ok = c.body["ok"] == true && v.body["ok"] == true;
            assert_eq!(r.body["ok"], all_ok, "{backend:?} {what}: {}", r.text);
            assert_eq!(all_ok, sql.is_empty(), "{backend:?} {what}: {}", r.text);
            for x in c.body["violations"].as_array().unwrap() {
                checks_seen.insert(x["check"].as_str().unwrap().to_owned());
            }
            let (ok, out) = app
                .ppe(&["report", "reconciliation", "--format", "csv"])
                .await;
            assert_eq!(ok, sql.is_empty(), "{backend:?} {what}: {out}");
            assert!(
                out.starts_with("check,ok,detail"),
                "{backend:?} {what}: {out}"
            );
        }
        // The edits reached every check the pass computes.
        for check in [
            "entry-quantity",
            "entry-value",
            "negative-balance",
            "lot-quantity",
            "lot-value",
            "ledger-value",
            "lot-item",
            "balance",
        ] {
            assert!(
                checks_seen.contains(check),
                "{backend:?}: {check} never found: {checks_seen:?}"
            );
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn an_edited_posting_is_named_by_conservation() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        journal(&app).await;
        let disable = match backend {
            Backend::Sqlite => "drop trigger postings_append_only_update",
            Backend::Postgres => "alter table postings disable trigger postings_append_only_update",
        };
        app.db.exec(disable).await;
        app.db
            .exec("update postings set qty = qty + 1000 where seq = 2 and idx = 1")
            .await;
        let c = app.get("/api/v1/reports/conservation").await;
        let checks: Vec<&str> = c.body["violations"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["check"].as_str())
            .collect();
        for check in ["entry-quantity", "lot-quantity", "balance"] {
            assert!(checks.contains(&check), "{check} missing: {}", c.text);
        }
        let entry = c.body["violations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["check"] == "entry-quantity")
            .unwrap()
            .clone();
        assert_eq!(entry["seq"], 2);
        app.stop().await;
    }
}

fn scaled(s: &str, scale: u32) -> i128 {
    let neg = s.starts_with('-');
    let s = s.trim_start_matches('-');
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    let mut f = f.to_owned();
    while f.len() < scale as usize {
        f.push('0');
    }
    let v: i128 = format!("{i}{f}").parse().unwrap();
    if neg {
        -v
    } else {
        v
    }
}

#[tokio::test]
async fn a_closed_period_refuses_its_dates() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        journal(&app).await;
        let before = app.entry_count().await;
        let close = app
            .post("/api/v1/periods/close", &json!({"through":"2020-02-29"}))
            .await;
        assert_eq!(close.status, StatusCode::CREATED, "{}", close.text);
        assert_eq!(close.body["kind"], "period-close");
        // The answer is the entry, with the date closed through beside its fields.
        assert_eq!(close.body["closed_through"], "2020-02-29");
        assert!(close.body["seq"].is_u64(), "{}", close.text);
        assert_eq!(
            app.entry_count().await,
            before + 1,
            "closing is an entry in the chain"
        );
        let inside = json!({"purchase_id":"PO-9","date":"2020-02-15","supplier":"SUP","location":"RAW","lines":[{"sku":"PC","qty":"1","unit_price":"1"}]});
        let refused = app.post("/api/v1/purchases", &inside).await;
        assert_eq!(refused.status, StatusCode::CONFLICT);
        assert_eq!(refused.body["type"], "/problems/period-closed");
        let mut after = inside.clone();
        after["date"] = json!("2020-03-01");
        assert_eq!(
            app.post("/api/v1/purchases", &after).await.status,
            StatusCode::CREATED
        );
        // Reversing an entry of the closed period is refused as well.
        let rev = app.post("/api/v1/entries/1/reversal", &json!({})).await;
        assert_eq!(rev.status, StatusCode::CONFLICT, "{}", rev.text);
        // A close cannot move back; the same close again is a replay.
        assert_eq!(
            app.post("/api/v1/periods/close", &json!({"through":"2020-02-01"}))
                .await
                .status,
            StatusCode::CONFLICT
        );
        let again = app
            .post("/api/v1/periods/close", &json!({"through":"2020-02-29"}))
            .await;
        assert_eq!(again.body, close.body);
        // Only an admin closes a period.
        let maker = app.token("manufacturer", "m").await;
        let a = app
            .request(
                Method::POST,
                "/api/v1/periods/close",
                Some(&maker),
                Some(&json!({"through":"2020-03-31"})),
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        assert_eq!(app.get("/api/v1/verify").await.body["ok"], true);
        app.stop().await;
    }
}

#[tokio::test]
async fn exports_are_safe_and_typed() {
    let app = spawn_app(Backend::Sqlite).await;
    journal(&app).await;
    let csv = app.get("/api/v1/parties?format=csv").await;
    assert!(
        csv.text
            .contains(r#"SUP,"'=HYPERLINK(""http://x"")",supplier"#),
        "{}",
        csv.text
    );
    let tb = app.get("/api/v1/reports/trial-balance?format=csv").await;
    assert_eq!(
        tb.headers.get("content-type").unwrap(),
        "text/csv; charset=utf-8"
    );
    assert!(
        tb.text.starts_with("account,sku,lot,quantity,value\n"),
        "{}",
        tb.text
    );
    // A negative number stays a number: only text cells are defused.
    assert!(
        tb.text
            .contains("supplier:SUP,MASK,PO-1-2,-1000,-1250.0000"),
        "{}",
        tb.text
    );

    let res = app
        .http
        .get(format!(
            "{}/api/v1/reports/trial-balance?format=xlsx",
            app.base
        ))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = res.bytes().await.unwrap();
    let mut zip =
        zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("an xlsx is a zip");
    let mut sheet = String::new();
    zip.by_name("xl/worksheets/sheet1.xml")
        .expect("a sheet")
        .read_to_string(&mut sheet)
        .unwrap();
    let mut strings = String::new();
    zip.by_name("xl/sharedStrings.xml")
        .expect("shared strings")
        .read_to_string(&mut strings)
        .unwrap();
    // Numbers are numeric cells (no t="s"), the header and the head hash are strings.
    assert!(
        sheet.contains("<v>-1250</v>") || sheet.contains("<v>-1250.0</v>"),
        "{sheet}"
    );
    assert!(!sheet.contains("<f>"), "no formula anywhere");
    let head = app.get("/api/v1/verify").await.body["head_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(strings.contains(&head), "the head hash is on the sheet");
    assert!(strings.contains("generated_at"));

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stock.xlsx");
    let (ok, printed) = app
        .ppe(&[
            "report",
            "stock",
            "--format",
            "xlsx",
            "--out",
            out.to_str().unwrap(),
        ])
        .await;
    assert!(ok && printed.contains(&head), "{printed}");
    let len = std::fs::metadata(&out).unwrap().len();
    assert!(len > 1000);
    assert!(printed.contains(&format!("({len} bytes;")), "{printed}");
    // JSON to a file: what the API answers, and the size it says it wrote.
    let out = dir.path().join("stock.json");
    let (ok, printed) = app
        .ppe(&[
            "report",
            "stock",
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
        ])
        .await;
    let written = std::fs::read(&out).unwrap();
    assert!(
        ok && printed.contains(&format!("({} bytes;", written.len())),
        "{printed}"
    );
    let from_file: serde_json::Value = serde_json::from_slice(&written).unwrap();
    assert_eq!(from_file, app.get("/api/v1/reports/stock").await.body);
    let (ok, table) = app.ppe(&["report", "stock"]).await;
    assert!(
        ok && table.contains("PO-1-1") && table.contains("2021-02-11"),
        "{table}"
    );
    app.stop().await;
}
