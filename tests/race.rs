//! The allocation race, on every backend: 32 clients at once each try to dispatch 5 units of
//! a lot of 100, for 50 rounds. Each round exactly 20 succeed and 12 are refused with 409; no
//! balance ever goes negative; no client sees a 5xx or a database busy/serialization error.
//! Then the same race between two services (two writers, as two `ppe serve` processes) over
//! one database, where only the database's write lock keeps them apart. And `verify` and the
//! reconciliation report, run while clients post, see the ledger at one moment: no false
//! finding from an entry or a balance written half-way through their pass.

use std::sync::Arc;

use ppe_tests::{backends, mask_master_data, pages_of_one, spawn_app, Backend, TestApp};
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

/// Writers post purchases without pause while `verify` and the reconciliation report run
/// again and again. Each pass reads the head, every entry and every maintained balance; were
/// they read at different moments, an entry appended meanwhile would show as "the head says
/// entry N" and a balance moved meanwhile as a mismatch. Every pass must be clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_while_clients_post_sees_one_moment() {
    const WRITERS: usize = 4;
    const PASSES: usize = 24;
    for backend in backends() {
        let app = Arc::new(spawn_app(backend).await);
        master_data(std::slice::from_ref(&app)).await;
        let stop_writing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let (app, stop_writing) = (app.clone(), stop_writing.clone());
            writers.push(tokio::spawn(async move {
                let mut n = 0usize;
                while !stop_writing.load(std::sync::atomic::Ordering::Relaxed) {
                    // A lot bought, then half of it dispatched: passes meet both new balances
                    // and balances that move.
                    let lot = format!("L{w}-{n}");
                    app.post_ok("/api/v1/purchases", &json!({"purchase_id": format!("PO-W{w}-{n}"), "date":"2020-02-12","supplier":"SUP","location":"FG",
                        "lines":[{"sku":"MASK","qty":"10","unit_price":"0.3","lot": lot}]})).await;
                    app.post_ok("/api/v1/batches", &json!({"batch_id": format!("B-W{w}-{n}"), "date":"2020-02-20","from_location":"FG",
                        "lines":[{"destination":"NANWAN","sku":"MASK","qty":"5","lot": lot}]})).await;
                    n += 1;
                }
                // Entries written: a purchase and a batch each time.
                2 * n
            }));
        }
        let mut seen = Vec::new();
        // PASSES passes at least, and more (within bounds) until the passes have seen the
        // journal grow, however slowly the writers get going on a busy machine.
        let mut pass = 0;
        while pass < PASSES || (seen.first() == seen.last() && pass < 10 * PASSES) {
            let path = if pass % 2 == 0 {
                "/api/v1/verify"
            } else {
                "/api/v1/reports/reconciliation"
            };
            pass += 1;
            let a = app.get(path).await;
            assert_eq!(a.status, StatusCode::OK, "{backend:?} {path}: {}", a.text);
            assert_eq!(
                a.body.pointer("/ok"),
                Some(&json!(true)),
                "{backend:?} pass {pass}, {path} while clients post: {}",
                a.text
            );
            let entries = a
                .body
                .pointer("/entries")
                .or(a.body.pointer("/verify/entries"));
            seen.push(entries.and_then(|e| e.as_u64()).expect("entries"));
        }
        stop_writing.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut written = 0;
        for w in writers {
            written += w.await.expect("a writer");
        }
        // The passes ran while the journal grew: they saw different moments of it.
        assert!(
            seen.first() < seen.last(),
            "{backend:?}: the journal grew during the passes: {seen:?}"
        );
        books_are_whole_after(&app, written as u64).await;
        stop(vec![app]).await;
    }
}

/// `verify` once the writers have stopped: the whole chain, every entry counted.
async fn books_are_whole_after(app: &TestApp, entries: u64) {
    let v = app.get("/api/v1/verify").await;
    assert_eq!(v.body["ok"], true, "{}", v.text);
    assert_eq!(v.body["entries"], entries, "{}", v.text);
}

/// A snapshot keeps its moment: entries posted after it opened are in neither its head, its
/// journal, its balances nor its lots; a snapshot opened after them sees them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_does_not_see_what_is_written_after_it() {
    use store::{BalanceFilter, Snapshot};
    let purchase = |id: &str, lot: &str| {
        json!({"purchase_id": id, "date":"2020-02-12","supplier":"SUP","location":"FG",
            "lines":[{"sku":"MASK","qty":"10","unit_price":"0.3","lot": lot}]})
    };
    let stock = BalanceFilter {
        account: Some("stock:FG".into()),
        ..BalanceFilter::default()
    };
    // (lot, quantity at storage scale) of every stock:FG balance the snapshot holds.
    async fn held(s: &dyn Snapshot, filter: &BalanceFilter) -> Vec<(String, i64)> {
        let rows = s.balances(filter, None, 100).await.expect("balances");
        rows.into_iter()
            .map(|b| (b.lot, b.quantity.scaled()))
            .collect()
    }
    for backend in backends() {
        let app = Arc::new(spawn_app(backend).await);
        master_data(std::slice::from_ref(&app)).await;
        app.post_ok("/api/v1/purchases", &purchase("PO-1", "A"))
            .await;
        let before = app.service.store().snapshot().await.expect("a snapshot");
        // One balance moves (half of lot A dispatched), one is new (lot B).
        app.post_ok(
            "/api/v1/batches",
            &json!({"batch_id": "B-1", "date":"2020-02-20","from_location":"FG",
            "lines":[{"destination":"NANWAN","sku":"MASK","qty":"5","lot": "A"}]}),
        )
        .await;
        app.post_ok("/api/v1/purchases", &purchase("PO-3", "B"))
            .await;
        let after = app.service.store().snapshot().await.expect("a snapshot");
        let lots = ["A".to_owned(), "B".to_owned()];
        for (name, s, entries, balances, lot_count) in [
            ("before", &before, 1, vec![("A".to_owned(), 10_000)], 1),
            (
                "after",
                &after,
                3,
                vec![("A".to_owned(), 5_000), ("B".to_owned(), 10_000)],
                2,
            ),
        ] {
            assert_eq!(s.head().seq, entries, "{backend:?} {name}: head");
            let page = s.journal_page(0, 100).await.expect("a page");
            assert_eq!(page.len() as u64, entries, "{backend:?} {name}: journal");
            // Page by page: each page is full, so each read starts the next one's ahead; then
            // from the start again, past a page read ahead for another call. The same entries.
            for round in 0..2 {
                let seqs = pages_of_one(&**s).await;
                let all: Vec<i64> = (1..=i64::try_from(entries).unwrap()).collect();
                assert_eq!(seqs, all, "{backend:?} {name}: pages of one, round {round}");
            }
            assert_eq!(held(&**s, &stock).await, balances, "{backend:?} {name}");
            let found = s.lots(&lots).await.expect("lots");
            assert_eq!(found.len(), lot_count, "{backend:?} {name}: lots");
            // The whole lots table, a page of one at a time, in lot order: what the moment
            // holds and nothing created after it.
            let (mut items, mut after) = (Vec::new(), String::new());
            loop {
                let page = s.lot_items(&after, 1).await.expect("lot items");
                assert!(page.len() <= 1, "{backend:?} {name}: a page of one");
                let Some((lot, _)) = page.last() else { break };
                after.clone_from(lot);
                items.extend(page);
            }
            let expected: Vec<(String, String)> = lots[..lot_count]
                .iter()
                .map(|l| (l.clone(), "MASK".to_owned()))
                .collect();
            assert_eq!(items, expected, "{backend:?} {name}: lot items");
            // Every balance that is not zero, as the store reads them for a pass: a page of
            // one at a time in key order (SQLite), or in parts in table order (PostgreSQL, by
            // ranges of the table's pages). Either way what the filtered, decoded read of the
            // same moment gives, and nothing written after it.
            let parts = s.balance_parts().await.expect("the parts");
            assert_eq!(parts.is_some(), backend == Backend::Postgres, "{name}");
            let mut read = Vec::new();
            if let Some(parts) = parts {
                for part in 0..parts {
                    let page = s.balance_part(part).await.expect("a part");
                    read.extend(
                        page.iter()
                            .map(|(a, l, q, v)| (a.to_owned(), l.to_owned(), q, v)),
                    );
                }
                read.sort();
            } else {
                let mut after = None;
                loop {
                    let page = s.balance_page(after.take(), 1).await.expect("balances");
                    assert!(page.len() <= 1, "{backend:?} {name}: a page of one");
                    read.extend(
                        page.iter()
                            .map(|(a, l, q, v)| (a.to_owned(), l.to_owned(), q, v)),
                    );
                    let Some((a, l)) = page.last() else { break };
                    after = Some((a.to_owned(), l.to_owned()));
                }
            }
            let all: Vec<(String, String, i64, i64)> = s
                .balances(&BalanceFilter::default(), None, 100)
                .await
                .expect("balances")
                .into_iter()
                .map(|b| (b.account, b.lot, b.quantity.scaled(), b.value.scaled()))
                .collect();
            assert!(
                !all.is_empty() && read == all,
                "{backend:?} {name}: {read:?}"
            );
            // SQLite counts the moment's balances; PostgreSQL's figure is only an estimate.
            let hint = s.balances_hint().await.expect("a hint");
            if backend == Backend::Sqlite {
                assert!(hint >= all.len() as u64, "{backend:?} {name}: {hint}");
            }
            assert!(s.shipment_mismatches().await.expect("shipments").is_empty());
        }
        // A transit balance edited under the journal after both snapshots: neither's transit
        // check sees it; a snapshot taken now does.
        app.db
            .exec("update balances set qty = qty + 1000 where account = 'transit:B-1'")
            .await;
        for (name, s) in [("before", &before), ("after", &after)] {
            let m = s.shipment_mismatches().await.expect("shipments");
            assert!(m.is_empty(), "{backend:?} {name}: {m:?}");
        }
        let now = app.service.store().snapshot().await.expect("a snapshot");
        let m = now.shipment_mismatches().await.expect("shipments");
        assert_eq!(m.len(), 1, "{backend:?} now: {m:?}");
        drop((before, after, now));
        stop(vec![app]).await;
    }
}

/// A full pass reads a snapshot's journal a page ahead of itself, on SQLite on two
/// connections: the second opens while the pass is under way, after entries were posted that
/// the snapshot does not hold, and must still give the snapshot's entries only. Pages of one
/// entry put every other page on the second connection, the one after the head among them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_reads_only_its_snapshots_entries_on_every_connection() {
    let purchase = |n: usize| {
        json!({"purchase_id": format!("PO-{n}"), "date":"2020-02-12","supplier":"SUP",
            "location":"FG","lines":[{"sku":"MASK","qty":"10","unit_price":"0.3"}]})
    };
    for backend in backends() {
        let app = Arc::new(spawn_app(backend).await);
        master_data(std::slice::from_ref(&app)).await;
        for n in 0..4 {
            app.post_ok("/api/v1/purchases", &purchase(n)).await;
        }
        let s = app.service.store().snapshot().await.expect("a snapshot");
        for n in 4..8 {
            app.post_ok("/api/v1/purchases", &purchase(n)).await;
        }
        assert_eq!(pages_of_one(&*s).await, vec![1, 2, 3, 4], "{backend:?}");
        drop(s);
        stop(vec![app]).await;
    }
}
