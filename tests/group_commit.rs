//! A group commit larger than one part, on every backend. The writer hands the database each
//! part of a large batch (about 2 048 postings) while it decides the rest; the documents
//! decided after a part was handed must still see it (a repeat of an earlier document is a
//! replay, a conflicting reuse a 409, a repeated idempotency key a replay), the balances of
//! keys new to the batch and of keys stored before it must come out right, a shipment written
//! with an early part and acknowledged in a later one must be stored as the later one left it,
//! and the whole batch must still be one commit.

use std::future::Future;
use std::pin::Pin;

use futures_util::future::join_all;
use ppe_tests::{backends, mask_master_data, spawn_app_with, Backend, TestApp};
use serde_json::json;
use service::dto::{AcknowledgementIn, BatchIn, PurchaseIn};
use service::{Outcome, ServiceError};
use store::JsonText;

/// Purchases of ten lines each: 20 postings a document, so 150 of them are about three parts.
const PURCHASES: usize = 150;

fn purchase(id: &str, price: &str) -> PurchaseIn {
    let lines: Vec<_> = (0..10)
        .map(|j| json!({"sku":"MASK","qty":"10","unit_price": price,"lot": format!("L-{id}-{j}")}))
        .collect();
    serde_json::from_value(
        json!({"purchase_id": id, "date":"2020-02-12","supplier":"SUP",
        "location":"FG","lines": lines}),
    )
    .expect("a purchase")
}

/// A server whose writer runs with `writer`, with the mask's master data and a lot `OLD` of
/// 1 000 at FG bought before the test's documents.
async fn app_with_old_lot(backend: Backend, writer: service::WriterConfig) -> TestApp {
    let app = spawn_app_with(backend, api::ApiConfig::default(), writer).await;
    for (path, body) in mask_master_data() {
        app.post_ok(path, &body).await;
    }
    app.post_ok(
        "/api/v1/purchases",
        &json!({"purchase_id":"PO-OLD","date":"2020-02-11","supplier":"SUP","location":"FG",
        "lines":[{"sku":"MASK","qty":"1000","unit_price":"0.5","lot":"OLD"}]}),
    )
    .await;
    app
}

#[tokio::test]
async fn a_batch_written_in_parts_is_one_commit_that_sees_itself() {
    for backend in backends() {
        // The writer waits for the whole burst, so that it is one batch.
        let writer = service::WriterConfig {
            max_wait: std::time::Duration::from_millis(500),
            ..service::WriterConfig::default()
        };
        // A lot stored before the batch: the batch updates its balance instead of creating it.
        let app = app_with_old_lot(backend, writer).await;
        let before = app.entry_count().await;

        let s = &app.service;
        // Dispatched first, so written with the batch's first part; acknowledged in part
        // after the purchases, so changed again in its last.
        let early: BatchIn = serde_json::from_value(
            json!({"batch_id":"B-0","date":"2020-02-20","from_location":"FG",
            "lines":[{"destination":"NANWAN","sku":"MASK","qty":"10","lot":"OLD"}]}),
        )
        .expect("a batch");
        let ack: AcknowledgementIn =
            serde_json::from_value(json!({"acknowledgement_id":"A-0","date":"2020-02-21",
            "lines":[{"destination":"NANWAN","sku":"MASK","lot":"OLD","received_qty":"6"}]}))
            .expect("an acknowledgement");
        let batch: BatchIn = serde_json::from_value(
            json!({"batch_id":"B-1","date":"2020-02-20","from_location":"FG",
            "lines":[{"destination":"NANWAN","sku":"MASK","qty":"10","lot":"OLD"},
                     {"destination":"NANWAN","sku":"MASK","qty":"4","lot":"L-PO-0-0"}]}),
        )
        .expect("a batch");
        let purchases: Vec<PurchaseIn> = (0..PURCHASES)
            .map(|i| purchase(&format!("PO-{i}"), "0.5"))
            .collect();
        let keyed = purchase("PO-K", "0.5");
        let conflicting = purchase("PO-1", "0.7");
        // `join_all` polls its futures in order, and each is queued on its first poll: the
        // writer takes them in this order, in one batch. Unconstrained, so that tokio's
        // cooperative budget does not make a later one wait while the rest are queued.
        type Queued<'a> = Pin<Box<dyn Future<Output = Result<Outcome, ServiceError>> + Send + 'a>>;
        let mut queued: Vec<Queued> = vec![Box::pin(s.record_batch(&early, "t", None))];
        for p in &purchases {
            queued.push(Box::pin(s.record_purchase(p, "t", None)));
        }
        queued.push(Box::pin(s.record_purchase(&keyed, "t", Some("K"))));
        queued.push(Box::pin(s.record_purchase(&purchases[0], "t", None)));
        queued.push(Box::pin(s.record_purchase(&conflicting, "t", None)));
        queued.push(Box::pin(s.record_purchase(&keyed, "t", Some("K"))));
        queued.push(Box::pin(s.acknowledge("B-0", &ack, "t", None)));
        queued.push(Box::pin(s.record_batch(&batch, "t", None)));
        let mut firsts = tokio::task::unconstrained(join_all(queued)).await;
        let mut rest = firsts.split_off(PURCHASES + 1).into_iter();
        let early_dispatched = firsts.remove(0);
        let mut next = || rest.next().expect("queued above");
        let (keyed_first, repeat, conflict, keyed_again, acknowledged, dispatched) =
            (next(), next(), next(), next(), next(), next());
        let created = |r: &Result<Outcome, ServiceError>| match r {
            Ok(o) => o.status == 201 && !o.replayed,
            Err(_) => false,
        };
        assert!(firsts.iter().all(created), "{backend:?}: {firsts:?}");
        assert!(created(&keyed_first), "{backend:?}: {keyed_first:?}");
        assert!(created(&dispatched), "{backend:?}: {dispatched:?}");
        assert!(
            created(&early_dispatched),
            "{backend:?}: {early_dispatched:?}"
        );
        assert!(created(&acknowledged), "{backend:?}: {acknowledged:?}");
        // Decided long after the first purchase's part was handed to the database.
        let repeat = repeat.expect("a repeat is a replay");
        assert!(repeat.replayed, "{backend:?}: {repeat:?}");
        assert_eq!(
            Some(&repeat.body),
            firsts[0].as_ref().ok().map(|o| &o.body),
            "{backend:?}"
        );
        match conflict {
            Err(ServiceError::Rejected(r)) => {
                assert_eq!(r.code(), "exists-with-different-body", "{backend:?}");
            }
            other => panic!("{backend:?}: expected a conflict, got {other:?}"),
        }
        let keyed_again = keyed_again.expect("a repeated key is a replay");
        assert!(keyed_again.replayed, "{backend:?}");
        assert_eq!(
            keyed_again.body,
            keyed_first.expect("created above").body,
            "{backend:?}"
        );

        // One entry per created document, all from one commit.
        let after = app.entry_count().await;
        assert_eq!(after, before + PURCHASES as u64 + 4, "{backend:?}");
        let first = app.get(&format!("/api/v1/entries/{}", before + 1)).await;
        let last = app.get(&format!("/api/v1/entries/{after}")).await;
        assert_eq!(
            first.body["recorded_at"], last.body["recorded_at"],
            "{backend:?}: {} / {}",
            first.text, last.text
        );
        // A key stored before the batch, keys created in its first part, and a transit key
        // of the shipment it created.
        for (account, lot, qty) in [
            ("stock:FG", "OLD", "980"),
            ("transit:B-0", "OLD", "4"),
            ("recipient:NANWAN", "OLD", "6"),
            ("transit:B-1", "OLD", "10"),
            ("stock:FG", "L-PO-0-0", "6"),
            ("transit:B-1", "L-PO-0-0", "4"),
            ("stock:FG", "L-PO-149-9", "10"),
            ("supplier:SUP", "L-PO-149-9", "-10"),
        ] {
            assert_eq!(
                app.balance(account, lot).await.0,
                qty,
                "{backend:?}: {account} {lot}"
            );
        }
        // The shipment as the acknowledgement left it, not as its dispatch wrote it.
        let b0 = app.get("/api/v1/shipments/B-0").await;
        assert_eq!(
            b0.body["status"], "partly-acknowledged",
            "{backend:?}: {}",
            b0.text
        );
        assert_eq!(
            b0.body["lines"][0]["acknowledged"], "6",
            "{backend:?}: {}",
            b0.text
        );
        assert_eq!(
            b0.body["lines"][0]["outstanding"], "4",
            "{backend:?}: {}",
            b0.text
        );
        // Reconciliation compares every shipment's outstanding lines with its transit balance.
        let r = app.get("/api/v1/reports/reconciliation").await;
        assert_eq!(r.body["ok"], true, "{backend:?}: {}", r.text);
        app.stop().await;
    }
}

/// Rounds of [`batches_decided_while_the_one_before_commits_see_it`]: seven documents each.
const ROUNDS: usize = 12;

/// Batches decided while the batch before them commits (the writer's chain), on every
/// backend. With batches of six, the queued documents cut into about fourteen batches, each
/// decided on the state the one before it left while that one commits. Their answers must be
/// those of one document after another in queue order: a lot bought in one batch is dispatched
/// from in the next, a stored lot runs out part-way and later dispatches are refused, a
/// purchase repeated or reused with another body in a later batch is a replay or a conflict,
/// and a repeated idempotency key a replay. A balance the chain created in one batch and
/// changed in the next must be added to, not inserted again (the write would fail, and the
/// batch fall back to the plain path: so the test also counts the batches decided ahead).
#[tokio::test]
async fn batches_decided_while_the_one_before_commits_see_it() {
    for backend in backends() {
        let writer = service::WriterConfig {
            max_batch: 6,
            ..service::WriterConfig::default()
        };
        let app = app_with_old_lot(backend, writer).await;
        let before = app.entry_count().await;
        let ahead_before = app.service.batches_decided_ahead();
        let s = &app.service;
        let bought = |k: usize, price: &str| -> PurchaseIn {
            serde_json::from_value(json!({"purchase_id": format!("P-{k}"), "date":"2020-02-12",
                "supplier":"SUP","location":"FG",
                "lines":[{"sku":"MASK","qty":"10","unit_price": price,"lot": format!("L-{k}")}]}))
            .expect("a purchase")
        };
        let dispatched = |id: String, qty: &str, lot: String| -> BatchIn {
            serde_json::from_value(
                json!({"batch_id": id,"date":"2020-02-20","from_location":"FG",
                "lines":[{"destination":"NANWAN","sku":"MASK","qty": qty,"lot": lot}]}),
            )
            .expect("a batch")
        };
        let purchases: Vec<_> = (0..ROUNDS).map(|k| bought(k, "0.5")).collect();
        let conflicting: Vec<_> = (0..ROUNDS).map(|k| bought(k, "0.7")).collect();
        let keyed: Vec<PurchaseIn> = (0..ROUNDS)
            .map(|k| {
                serde_json::from_value(json!({"purchase_id": format!("Q-{k}"), "date":"2020-02-12",
                    "supplier":"SUP","location":"FG",
                    "lines":[{"sku":"MASK","qty":"1","unit_price":"0.5","lot": format!("Q-{k}")}]}))
                .expect("a purchase")
            })
            .collect();
        let from_new: Vec<_> = (0..ROUNDS)
            .map(|k| dispatched(format!("D-{k}"), "4", format!("L-{}", k.max(1) - 1)))
            .collect();
        let from_old: Vec<_> = (0..ROUNDS)
            .map(|k| dispatched(format!("E-{k}"), "100", "OLD".into()))
            .collect();
        let keys: Vec<String> = (0..ROUNDS).map(|k| format!("K-{k}")).collect();
        // In queue order (see the test above): each round buys a lot, dispatches from the lot
        // the round before bought, takes 100 of the stored lot, repeats and reuses the round
        // before's purchase, and buys under a key the round before used.
        type Queued<'a> = Pin<Box<dyn Future<Output = Result<Outcome, ServiceError>> + Send + 'a>>;
        let mut queued: Vec<Queued> = Vec::new();
        for k in 0..ROUNDS {
            queued.push(Box::pin(s.record_purchase(&purchases[k], "t", None)));
            if k > 0 {
                queued.push(Box::pin(s.record_batch(&from_new[k], "t", None)));
            }
            queued.push(Box::pin(s.record_batch(&from_old[k], "t", None)));
            if k > 0 {
                queued.push(Box::pin(s.record_purchase(&purchases[k - 1], "t", None)));
                queued.push(Box::pin(s.record_purchase(&conflicting[k - 1], "t", None)));
                queued.push(Box::pin(s.record_purchase(
                    &keyed[k - 1],
                    "t",
                    Some(&keys[k - 1]),
                )));
            }
            queued.push(Box::pin(s.record_purchase(&keyed[k], "t", Some(&keys[k]))));
        }
        let mut answers = tokio::task::unconstrained(join_all(queued))
            .await
            .into_iter();
        let mut next = || answers.next().expect("queued above");
        let created = |r: &Result<Outcome, ServiceError>| matches!(r, Ok(o) if o.status == 201 && !o.replayed);
        let mut bodies: Vec<JsonText> = Vec::new();
        let mut keyed_bodies: Vec<JsonText> = Vec::new();
        let mut created_count = 0u64;
        for k in 0..ROUNDS {
            let bought = next();
            assert!(created(&bought), "{backend:?} round {k}: {bought:?}");
            bodies.push(bought.expect("created").body);
            created_count += 1;
            if k > 0 {
                let d = next();
                assert!(created(&d), "{backend:?} round {k}: {d:?}");
                created_count += 1;
            }
            // 1 000 in the stored lot: ten rounds take 100 each, the last two find none.
            let e = next();
            if k < 10 {
                assert!(created(&e), "{backend:?} round {k}: {e:?}");
                created_count += 1;
            } else {
                match e {
                    Err(ServiceError::Rejected(r)) => {
                        assert_eq!(r.code(), "insufficient-stock", "{backend:?} round {k}");
                    }
                    other => panic!("{backend:?} round {k}: expected a refusal, got {other:?}"),
                }
            }
            if k > 0 {
                let repeat = next().expect("a repeat is a replay");
                assert!(repeat.replayed, "{backend:?} round {k}");
                // A replay is the stored answer, byte for byte.
                assert_eq!(
                    repeat.body.as_str(),
                    bodies[k - 1].as_str(),
                    "{backend:?} round {k}"
                );
                match next() {
                    Err(ServiceError::Rejected(r)) => {
                        assert_eq!(r.code(), "exists-with-different-body", "{backend:?}");
                    }
                    other => panic!("{backend:?} round {k}: expected a conflict, got {other:?}"),
                }
                let again = next().expect("a repeated key is a replay");
                assert!(again.replayed, "{backend:?} round {k}");
                assert_eq!(
                    again.body.as_str(),
                    keyed_bodies[k - 1].as_str(),
                    "{backend:?} round {k}"
                );
            }
            let q = next();
            assert!(created(&q), "{backend:?} round {k}: {q:?}");
            keyed_bodies.push(q.expect("created").body);
            created_count += 1;
        }
        assert_eq!(
            app.entry_count().await,
            before + created_count,
            "{backend:?}"
        );
        for (account, lot, qty) in [
            ("stock:FG", "OLD", "0"),
            ("transit:E-9", "OLD", "100"),
            ("stock:FG", "L-0", "6"),
            ("transit:D-1", "L-0", "4"),
            ("stock:FG", "L-10", "6"),
            ("stock:FG", "L-11", "10"),
            ("supplier:SUP", "L-11", "-10"),
        ] {
            assert_eq!(
                app.balance(account, lot).await.0,
                qty,
                "{backend:?}: {account} {lot}"
            );
        }
        // About fourteen batches; all but the first few (the writer may take the first
        // documents before the rest are queued) decided while the one before committed.
        let ahead = app.service.batches_decided_ahead() - ahead_before;
        assert!(ahead >= 8, "{backend:?}: {ahead} batches decided ahead");
        let r = app.get("/api/v1/reports/reconciliation").await;
        assert_eq!(r.body["ok"], true, "{backend:?}: {}", r.text);
        app.stop().await;
    }
}
