//! The allocation race, on every backend: 32 clients at once each try to dispatch 5 units of
//! a lot of 100, for 50 rounds. Each round exactly 20 succeed and 12 are refused with 409; no
//! balance ever goes negative; no client sees a 5xx or a database busy/serialization error.
//! Then the same race between two services (two writers, as two `ppe serve` processes) over
//! one database, where only the database's write lock keeps them apart.

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

/// Two services over one database, clients alternating between them: the writers' retries of
/// busy and lock-timeout errors stay invisible, and the lot is never overdrawn.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_services_on_one_database_never_overdraw_a_lot() {
    const TWIN_ROUNDS: usize = 10;
    for backend in backends() {
        let app = spawn_app(backend).await;
        let twin = Arc::new(app.twin().await);
        let app = Arc::new(app);
        app.post_ok(
            "/api/v1/items",
            &json!({"sku":"MASK","name":"Mask","kind":"supply","unit":"pcs","decimals":0}),
        )
        .await;
        twin.post_ok(
            "/api/v1/parties",
            &json!({"code":"SUP","name":"Supplier","kind":"supplier"}),
        )
        .await;
        app.post_ok(
            "/api/v1/parties",
            &json!({"code":"NANWAN","name":"Nanwan","kind":"subdistrict"}),
        )
        .await;
        twin.post_ok("/api/v1/locations", &json!({"code":"FG","name":"Store"}))
            .await;
        for round in 0..TWIN_ROUNDS {
            let lot = format!("T{round}");
            let buyer = if round % 2 == 0 { &app } else { &twin };
            buyer.post_ok("/api/v1/purchases", &json!({"purchase_id": format!("PO-{round}"), "date":"2020-02-12","supplier":"SUP","location":"FG",
                "lines":[{"sku":"MASK","qty":"100","unit_price":"0.3","lot": lot}]})).await;
            let mut tasks = Vec::with_capacity(CLIENTS);
            for client in 0..CLIENTS {
                let server = if client % 2 == 0 {
                    app.clone()
                } else {
                    twin.clone()
                };
                let lot = lot.clone();
                tasks.push(tokio::spawn(async move {
                    let body = json!({"batch_id": format!("B-{round}-{client}"), "date":"2020-02-20","from_location":"FG",
                        "lines":[{"destination":"NANWAN","sku":"MASK","qty":"5","lot": lot}]});
                    let a = server.post("/api/v1/batches", &body).await;
                    (a.status, a.text)
                }));
            }
            let (mut ok, mut refused) = (0, 0);
            for t in tasks {
                let (status, text) = t.await.expect("a client task");
                assert!(
                    !status.is_server_error(),
                    "{backend:?} round {round}: {status} {text}"
                );
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
                    other => panic!("{backend:?} round {round}: unexpected {other}: {text}"),
                }
            }
            assert_eq!((ok, refused), (20, 12), "round {round} on {backend:?}");
            for server in [&app, &twin] {
                assert_eq!(
                    server.balance("stock:FG", &lot).await,
                    ("0".into(), "0.0000".into())
                );
            }
        }
        // One chain, written by both: gapless, and every balance agrees with its postings.
        let v = twin.get("/api/v1/verify").await;
        assert_eq!(v.body["ok"], true, "{}", v.text);
        assert_eq!(v.body["entries"], TWIN_ROUNDS * 21, "{}", v.text);
        let c = app.get("/api/v1/reports/conservation").await;
        assert_eq!(c.body["ok"], true, "{}", c.text);
        Arc::try_unwrap(twin)
            .ok()
            .expect("every client is done")
            .stop()
            .await;
        Arc::try_unwrap(app)
            .ok()
            .expect("every client is done")
            .stop()
            .await;
    }
}
