//! The allocation race, on every backend: 32 clients at once each try to dispatch 5 units of
//! a lot of 100, for 50 rounds. Each round exactly 20 succeed and 12 are refused with 409; no
//! balance ever goes negative; no client sees a 5xx or a database busy/serialization error.

use std::sync::Arc;

use ppe_tests::{backends, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

const CLIENTS: usize = 32;
const ROUNDS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_dispatches_never_overdraw_a_lot() {
    for backend in backends() {
        let app = Arc::new(spawn_app(backend).await);
        app.post_ok(
            "/api/v1/items",
            &json!({"sku":"MASK","name":"Mask","kind":"supply","unit":"pcs","decimals":0}),
        )
        .await;
        app.post_ok(
            "/api/v1/parties",
            &json!({"code":"SUP","name":"Supplier","kind":"supplier"}),
        )
        .await;
        app.post_ok(
            "/api/v1/parties",
            &json!({"code":"NANWAN","name":"Nanwan","kind":"subdistrict"}),
        )
        .await;
        app.post_ok("/api/v1/locations", &json!({"code":"FG","name":"Store"}))
            .await;
        for round in 0..ROUNDS {
            let lot = format!("R{round}");
            app.post_ok("/api/v1/purchases", &json!({"purchase_id": format!("PO-{round}"), "date":"2020-02-12","supplier":"SUP","location":"FG",
                "lines":[{"sku":"MASK","qty":"100","unit_price":"0.3","lot": lot}]})).await;
            let mut tasks = Vec::with_capacity(CLIENTS);
            for client in 0..CLIENTS {
                let app = app.clone();
                let lot = lot.clone();
                tasks.push(tokio::spawn(async move {
                    let body = json!({"batch_id": format!("B-{round}-{client}"), "date":"2020-02-20","from_location":"FG",
                        "lines":[{"destination":"NANWAN","sku":"MASK","qty":"5","lot": lot}]});
                    let a = app.post("/api/v1/batches", &body).await;
                    (a.status, a.text)
                }));
            }
            let (mut ok, mut refused) = (0, 0);
            for t in tasks {
                let (status, text) = t.await.expect("a client task");
                assert!(!status.is_server_error(), "round {round}: {status} {text}");
                assert!(
                    !text.to_lowercase().contains("busy") && !text.contains("serializ"),
                    "{text}"
                );
                match status {
                    StatusCode::CREATED => ok += 1,
                    StatusCode::CONFLICT => {
                        assert!(text.contains("insufficient-stock"), "{text}");
                        refused += 1;
                    }
                    other => panic!("round {round}: unexpected {other}: {text}"),
                }
            }
            assert_eq!((ok, refused), (20, 12), "round {round} on {backend:?}");
            assert_eq!(
                app.balance("stock:FG", &lot).await,
                ("0".into(), "0.0000".into())
            );
        }
        let v = app.get("/api/v1/verify").await;
        assert_eq!(v.body["ok"], true, "{}", v.text);
        let c = app.get("/api/v1/reports/conservation").await;
        assert_eq!(
            c.body["ok"], true,
            "no balance was ever negative: {}",
            c.text
        );
        Arc::try_unwrap(app)
            .ok()
            .expect("every client is done")
            .stop()
            .await;
    }
}
