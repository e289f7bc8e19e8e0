//! The allocation race, on every backend: 32 clients at once each try to dispatch 5 units of
//! a lot of 100, for 50 rounds. Each round exactly 20 succeed and 12 are refused with 409; no
//! balance ever goes negative; no client sees a 5xx or a database busy/serialization error.
//! Then the same race between two services (two writers, as two `ppe serve` processes) over
//! one database, where only the database's write lock keeps them apart.

use std::sync::Arc;

use ppe_tests::{backends, mask_master_data, spawn_app, Backend, TestApp};
use reqwest::StatusCode;
use serde_json::json;

const CLIENTS: usize = 32;
const ROUNDS: usize = 50;
const TWIN_ROUNDS: usize = 10;

/// The item, parties and location of the race, posted alternately to the servers given.
async fn master_data(servers: &[Arc<TestApp>]) {
    let bodies = mask_master_data();
    for (i, (path, body)) in bodies.iter().enumerate() {
        servers[i % servers.len()].post_ok(path, body).await;
    }
}

/// One round: a lot of 100 bought through one server, then 32 clients at once, spread over
/// the servers, each dispatch 5 of it. Exactly 20 succeed and 12 are refused, and the lot
/// ends empty as every server sees it.
async fn round(backend: Backend, servers: &[Arc<TestApp>], round: usize, lot: &str) {
    servers[round % servers.len()].post_ok("/api/v1/purchases", &json!({"purchase_id": format!("PO-{round}"), "date":"2020-02-12","supplier":"SUP","location":"FG",
        "lines":[{"sku":"MASK","qty":"100","unit_price":"0.3","lot": lot}]})).await;
    let mut tasks = Vec::with_capacity(CLIENTS);
    for client in 0..CLIENTS {
        let server = servers[client % servers.len()].clone();
        let lot = lot.to_owned();
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
    for server in servers {
        assert_eq!(
            server.balance("stock:FG", lot).await,
            ("0".into(), "0.0000".into())
        );
    }
}

/// After the rounds: one gapless chain (a purchase and 20 dispatches a round), every balance
/// agrees with its postings, and no balance was ever negative, entry by entry.
async fn books_are_whole(servers: &[Arc<TestApp>], rounds: usize) {
    let v = servers[servers.len() - 1].get("/api/v1/verify").await;
    assert_eq!(v.body["ok"], true, "{}", v.text);
    assert_eq!(v.body["entries"], rounds * 21, "{}", v.text);
    let c = servers[0].get("/api/v1/reports/conservation").await;
    assert_eq!(
        c.body["ok"], true,
        "no balance was ever negative: {}",
        c.text
    );
}

async fn stop(servers: Vec<Arc<TestApp>>) {
    // The twin first: the first app owns the database and drops it.
    for server in servers.into_iter().rev() {
        Arc::try_unwrap(server)
            .ok()
            .expect("every client is done")
            .stop()
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_dispatches_never_overdraw_a_lot() {
    for backend in backends() {
        let servers = vec![Arc::new(spawn_app(backend).await)];
        master_data(&servers).await;
        for r in 0..ROUNDS {
            round(backend, &servers, r, &format!("R{r}")).await;
        }
        books_are_whole(&servers, ROUNDS).await;
        stop(servers).await;
    }
}

/// Two services over one database, clients alternating between them: the writers' retries of
/// busy and lock-timeout errors stay invisible, and the lot is never overdrawn.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_services_on_one_database_never_overdraw_a_lot() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let twin = app.twin().await;
        let servers = vec![Arc::new(app), Arc::new(twin)];
        master_data(&servers).await;
        for r in 0..TWIN_ROUNDS {
            round(backend, &servers, r, &format!("T{r}")).await;
        }
        books_are_whole(&servers, TWIN_ROUNDS).await;
        stop(servers).await;
    }
}
