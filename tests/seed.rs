//! The seed data set `longgang-2020` on every backend: `ppe seed` on an empty database gives
//! the donations report its README promises (6 donations to 6 countries, 6,000 goggles and
//! 6,000 masks, about 300,000 CNY declared, exactly the planted flags), the one shipment still
//! in transit, a clean verify and conservation, and a trace from Daegu's goggles back to their
//! run and material lots; seeding twice changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use ppe_tests::{backends, spawn_app, TestApp};
use reqwest::StatusCode;
use serde_json::Value;

/// The seed's README: its table of what the donations report must show.
const SEED_README: &str = include_str!("../seeds/longgang-2020/README.md");

/// The rows of the README's expectations table, by their first cell (`DON-...` and `total`),
/// each as column -> cell.
fn planted() -> BTreeMap<String, BTreeMap<String, String>> {
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_owned())
            .collect()
    };
    let mut lines = SEED_README.lines();
    let header = cells(
        lines
            .by_ref()
            .find(|l| l.starts_with("| donation_id |"))
            .expect("the README's table of expected donations"),
    );
    let mut rows = BTreeMap::new();
    for line in lines.skip(1).take_while(|l| l.starts_with('|')) {
        let row: BTreeMap<String, String> = header.iter().cloned().zip(cells(line)).collect();
        rows.insert(row["donation_id"].clone(), row);
    }
    rows
}

/// A decimal string as an integer at 4 decimals, exactly (no floating point).
fn scaled(s: &str) -> i128 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    assert!(frac.len() <= 4, "{s}");
    let negative = int.starts_with('-');
    let int: i128 = int.trim_start_matches('-').parse().expect("a decimal");
    let frac: i128 = format!("{frac:0<4}").parse().expect("a decimal");
    let v = int * 10_000 + frac;
    if negative {
        -v
    } else {
        v
    }
}

async fn json_of(app: &TestApp, args: &[&str]) -> Value {
    let (ok, out) = app.ppe(args).await;
    assert!(ok, "ppe {args:?}: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ppe {args:?}: {e}: {out}"))
}

async fn head(app: &TestApp) -> (u64, String) {
    let v = json_of(app, &["verify", "--json"]).await;
    assert_eq!(v["ok"], true, "{v}");
    (
        v["entries"].as_u64().unwrap(),
        v["head_hash"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn seed_list_names_longgang_2020() {
    let app = spawn_app(ppe_tests::Backend::Sqlite).await;
    let (ok, out) = app.ppe(&["seed", "--list"]).await;
    assert!(ok && out.starts_with("longgang-2020 "), "{out}");
    assert!(out.contains("acknowledgements.csv"), "{out}");
    app.stop().await;
}

#[tokio::test]
async fn longgang_2020_loads_once_and_the_reports_find_what_its_readme_plants() {
    let planted = planted();
    assert_eq!(planted.len(), 7, "6 donations and the total: {planted:?}");
    let mut heads = Vec::new();
    for backend in backends() {
        let app = spawn_app(backend).await;
        assert_eq!(app.entry_count().await, 0);

        let (ok, out) = app.ppe(&["seed", "longgang-2020"]).await;
        assert!(ok, "{backend:?}: {out}");
        assert!(
            out.lines()
                .filter(|l| l.contains(".csv:"))
                .all(|l| l.ends_with(" 0 rejected")),
            "{out}"
        );
        let (entries, hash) = head(&app).await;
        assert_eq!(entries, 47, "{backend:?}");
        heads.push(hash.clone());

        // Donations: 6, to 6 countries, 1,000 goggles and 1,000 masks each.
        let report = json_of(&app, &["report", "donations", "--format", "json"]).await;
        assert_eq!(report["tolerance_pct"], "5", "{report}");
        assert_eq!(report["base_currency"], "CNY");
        let rows = report["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 6, "{report}");
        let countries: BTreeSet<&str> = rows
            .iter()
            .map(|r| r["country"].as_str().unwrap())
            .collect();
        assert_eq!(
            countries,
            BTreeSet::from(["DE", "ES", "FR", "GB", "IT", "KR"])
        );
        assert_eq!(report["countries"].as_array().unwrap().len(), 6);
        let mut dispatched: BTreeMap<String, i128> = BTreeMap::new();
        for r in rows {
            for d in r["dispatched"].as_array().unwrap() {
                *dispatched
                    .entry(d["sku"].as_str().unwrap().to_owned())
                    .or_default() += scaled(d["qty"].as_str().unwrap());
            }
        }
        assert_eq!(
            dispatched,
            BTreeMap::from([
                ("GOGGLES".to_owned(), 6_000 * 10_000),
                ("MASK".to_owned(), 6_000 * 10_000)
            ])
        );
        // Declared together within 1% of 300,000 CNY.
        let declared: i128 = rows
            .iter()
            .map(|r| scaled(r["declared_value"].as_str().unwrap()))
            .sum();
        assert_eq!(
            declared,
            scaled(report["total"]["declared_value"].as_str().unwrap())
        );
        let story = 300_000 * 10_000;
        assert!(
            (declared - story).abs() * 100 <= story,
            "declared {declared} is not within 1% of 300,000"
        );

        // Exactly the rows and flags of the seed's README.
        for r in rows {
            let id = r["donation_id"].as_str().unwrap();
            let want = planted
                .get(id)
                .unwrap_or_else(|| panic!("{id} is not in the README"));
            for (column, cell) in want {
                assert_eq!(
                    r[column.as_str()],
                    cell.as_str(),
                    "{backend:?} {id} {column}"
                );
            }
        }
        let flagged: Vec<(&str, &str)> = rows
            .iter()
            .filter(|r| r["status"] != "ok")
            .map(|r| {
                (
                    r["donation_id"].as_str().unwrap(),
                    r["status"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(flagged, [("DON-IT-MILAN", "over")]);
        let total = &planted["total"];
        for column in [
            "declared_value",
            "ledger_cost",
            "difference",
            "difference_pct",
            "status",
        ] {
            assert_eq!(
                report["total"][column],
                total[column].as_str(),
                "total {column}"
            );
        }
        // The CLI and the API answer the same report.
        let api = app.get("/api/v1/reports/donations").await;
        assert_eq!(api.status, StatusCode::OK, "{}", api.text);
        assert_eq!(api.body["rows"], report["rows"]);

        // In transit: the London donation and nothing else.
        let t = json_of(&app, &["report", "in-transit", "--format", "json"]).await;
        let transit: BTreeSet<(&str, &str, &str, &str)> = t["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["shipment_id"].as_str().unwrap(),
                    r["sku"].as_str().unwrap(),
                    r["lot"].as_str().unwrap(),
                    r["outstanding"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            transit,
            BTreeSet::from([
                ("DON-GB-LONDON", "GOGGLES", "GOG-200305", "1000"),
                ("DON-GB-LONDON", "MASK", "MASK-200320", "1000"),
            ])
        );

        // Clean books.
        let (ok, out) = app.ppe(&["verify"]).await;
        assert!(ok && out.starts_with("ok: 47 entries"), "{out}");
        let c = json_of(&app, &["report", "conservation", "--format", "json"]).await;
        assert_eq!(c["ok"], true, "{c}");
        assert_eq!(c["violations"], serde_json::json!([]));

        // The goggles received in Daegu, traced back to their run and material lots.
        let b = app
            .get("/api/v1/balances?account=recipient:KR-DSMC&sku=GOGGLES")
            .await;
        let received = b.body["items"].as_array().unwrap();
        assert_eq!(received.len(), 1, "{}", b.text);
        assert_eq!(received[0]["quantity"], "1000");
        let lot = received[0]["lot"].as_str().unwrap().to_owned();
        let trace = json_of(&app, &["trace", &lot, "--json"]).await;
        assert_eq!(trace["direction"], "backward");
        assert_eq!(trace["sku"], "GOGGLES");
        let runs = trace["tree"]["children"].as_array().unwrap();
        assert_eq!(runs.len(), 1, "{trace}");
        assert_eq!(runs[0]["kind"], "run");
        assert_eq!(runs[0]["id"], "RUN-GOG-01");
        let materials: BTreeSet<(&str, &str)> = runs[0]["children"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["kind"].as_str().unwrap(), m["id"].as_str().unwrap()))
            .collect();
        assert_eq!(
            materials,
            BTreeSet::from([
                ("lot", "PC-200211"),
                ("lot", "STRAP-200212"),
                ("lot", "TPE-200211")
            ])
        );
        let pc = &runs[0]["children"].as_array().unwrap()[0];
        assert_eq!(pc["children"][0]["kind"], "purchase");
        assert_eq!(pc["children"][0]["children"][0]["kind"], "supplier");
        let api = app
            .get(&format!("/api/v1/trace/{lot}?direction=backward"))
            .await;
        assert_eq!(api.status, StatusCode::OK, "{}", api.text);
        assert_eq!(api.body["tree"], trace["tree"]);
        // Forward, the same lot reached Daegu on 17 March 2020, the first of the donations.
        let forward = json_of(&app, &["trace", &lot, "--forward", "--json"]).await;
        let daegu = forward["recall"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["recipient"] == "KR-DSMC")
            .unwrap_or_else(|| panic!("Daegu is not in the recall: {forward}"));
        assert_eq!(daegu["date"], "2020-03-17");
        assert_eq!(daegu["city"], "Daegu");
        assert_eq!(daegu["shipment_id"], "DON-KR-DAEGU");

        // Seeding again changes nothing.
        let (ok, again) = app.ppe(&["seed", "longgang-2020"]).await;
        assert!(ok, "{again}");
        assert!(
            again
                .lines()
                .filter(|l| l.contains(".csv:"))
                .all(|l| l.contains(" 0 created,") && l.ends_with(" 0 rejected")),
            "{again}"
        );
        assert_eq!(head(&app).await, (entries, hash.clone()), "{backend:?}");
        let report_again = json_of(&app, &["report", "donations", "--format", "json"]).await;
        assert_eq!(report_again["rows"], report["rows"]);
        app.stop().await;
    }
    // The same operations give the same chain on every backend.
    assert!(heads.windows(2).all(|w| w[0] == w[1]), "{heads:?}");
}
