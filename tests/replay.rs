//! Idempotent replay (issue 9, item 2), on every backend: one `Idempotency-Key` and body sent
//! 50 times at once makes exactly one entry and every answer equals the first; the same key
//! with another body is 422 and writes nothing; a request refused (bad input, or refused by
//! the ledger) does not consume its key.

use std::sync::Arc;

use ppe_tests::{backends, spawn_app, Answer, Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Concurrent copies of one request.
const COPIES: usize = 50;

async fn master_data(app: &TestApp) {
    app.post_ok(
        "/api/v1/items",
        &json!({"sku":"BAND","name":"Elastic band","kind":"material","unit":"pcs","decimals":0}),
    )
    .await;
    app.post_ok(
        "/api/v1/parties",
        &json!({"code":"SUP","name":"Supplier","kind":"supplier"}),
    )
    .await;
    app.post_ok("/api/v1/locations", &json!({"code":"RAW","name":"Raw"}))
        .await;
}

fn purchase(id: &str, qty: &str) -> Value {
    json!({"purchase_id":id,"date":"2020-02-12","supplier":"SUP","location":"RAW",
           "lines":[{"sku":"BAND","qty":qty,"unit_price":"0.25"}]})
}

/// Sends `COPIES` copies of one keyed POST at once and returns every answer.
async fn storm(app: &Arc<TestApp>, path: &str, body: &Value, key: &str) -> Vec<Answer> {
    let barrier = Arc::new(tokio::sync::Barrier::new(COPIES));
    let mut tasks = Vec::new();
    for _ in 0..COPIES {
        let (app, path, body, key, barrier) = (
            app.clone(),
            path.to_owned(),
            body.clone(),
            key.to_owned(),
            barrier.clone(),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            app.post_keyed(&path, &body, &key).await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("a request task"));
    }
    answers
}

/// Every answer has the first one's status and body, and exactly one is not a replay.
fn all_equal_to_the_first(answers: &[Answer], what: &str) {
    let first = answers
        .iter()
        .find(|a| a.headers.get("idempotent-replay").is_none())
        .unwrap_or_else(|| panic!("{what}: every answer says it is a replay"));
    assert_eq!(first.status, StatusCode::CREATED, "{what}: {}", first.text);
    let originals = answers
        .iter()
        .filter(|a| a.headers.get("idempotent-replay").is_none())
        .count();
    assert_eq!(originals, 1, "{what}: more than one original answer");
    for a in answers {
        assert_eq!(a.status, first.status, "{what}: {}", a.text);
        assert_eq!(a.body, first.body, "{what}");
        // A replay is the stored text, byte for byte.
        assert_eq!(a.text, first.text, "{what}");
    }
}

async fn replay_story(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    master_data(&app).await;

    // A purchase, 50 times at once under one key.
    let before = app.db.counts().await;
    let answers = storm(
        &app,
        "/api/v1/purchases",
        &purchase("PO-1", "100"),
        "key-po-1",
    )
    .await;
    all_equal_to_the_first(&answers, "purchase");
    let after = app.db.counts().await;
    assert_eq!(after["entries"], before["entries"] + 1, "exactly one entry");
    assert_eq!(after["documents"], before["documents"] + 1);
    assert_eq!(after["idempotency"], before["idempotency"] + 1);
    assert_eq!(app.balance("stock:RAW", "PO-1-1").await.0, "100");
    let seq = answers[0].body["entry_seq"].as_u64().expect("entry_seq");

    // A reversal has no document id: only the key tells the copies apart from new requests.
    // Its memo holds what JSON escapes (quotes, a backslash, control characters, a line
    // separator) and text beyond ASCII: the entry keeps it as text and the stored answer as
    // JSON, and both must give back every byte.
    let memo = "entered \"twice\" \\ tab\t line\n \u{1} \u{2028} 护目镜 🥽";
    let answers = storm(
        &app,
        &format!("/api/v1/entries/{seq}/reversal"),
        &json!({ "memo": memo }),
        "key-rev-1",
    )
    .await;
    all_equal_to_the_first(&answers, "reversal");
    let reversal = answers[0].body["seq"].as_u64().expect("seq");
    let stored = app.get(&format!("/api/v1/entries/{reversal}")).await;
    assert_eq!(stored.body["memo"], memo, "{}", stored.text);
    let after_rev = app.db.counts().await;
    assert_eq!(
        after_rev["entries"],
        after["entries"] + 1,
        "exactly one reversal"
    );
    assert_eq!(app.balance("stock:RAW", "PO-1-1").await.0, "0");

    // The same key with another body: 422, and nothing written.
    let other = app
        .post_keyed("/api/v1/purchases", &purchase("PO-2", "7"), "key-po-1")
        .await;
    assert_eq!(
        other.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        other.text
    );
    assert_eq!(other.body["type"], "/problems/idempotency-key-reused");
    let other = app
        .post_keyed(
            &format!("/api/v1/entries/{seq}/reversal"),
            &json!({"memo":"another memo"}),
            "key-rev-1",
        )
        .await;
    assert_eq!(
        other.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        other.text
    );
    assert_eq!(
        app.db.counts().await,
        after_rev,
        "a reused key wrote nothing"
    );

    // Refusals do not consume a key: bad input (parsing), an unknown reference (the domain),
    // a conflict (the ledger's state); the same key then carries a good request.
    let refusals = [
        (purchase("PO-3", "1.5"), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"purchase_id":"PO-3","date":"2020-02-12","supplier":"NOBODY","location":"RAW",
                   "lines":[{"sku":"BAND","qty":"1","unit_price":"1"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"purchase_id":"PO-3","date":"2020-02-12","supplier":"SUP","location":"RAW",
                   "lines":[{"sku":"BAND","qty":"1","unit_price":"1","lot":"PO-1-1"}]}),
            StatusCode::CONFLICT,
        ),
    ];
    for (body, status) in &refusals {
        let a = app.post_keyed("/api/v1/purchases", body, "key-po-3").await;
        assert_eq!(a.status, *status, "{body}: {}", a.text);
    }
    let malformed = app
        .request(
            reqwest::Method::POST,
            "/api/v1/purchases",
            Some(&app.admin_token),
            None,
            &[
                ("idempotency-key", "key-po-3"),
                ("content-type", "application/json"),
            ],
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.db.counts().await, after_rev, "refusals wrote nothing");
    let good = app
        .post_keyed("/api/v1/purchases", &purchase("PO-3", "3"), "key-po-3")
        .await;
    assert_eq!(good.status, StatusCode::CREATED, "{}", good.text);
    assert!(good.headers.get("idempotent-replay").is_none());

    // A reversal refused by the ledger (already reversed) leaves its key free as well.
    let refused = app
        .post_keyed(
            &format!("/api/v1/entries/{seq}/reversal"),
            &json!({}),
            "key-rev-2",
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    let po3 = good.body["entry_seq"].as_u64().unwrap();
    let rev3 = app
        .post_keyed(
            &format!("/api/v1/entries/{po3}/reversal"),
            &json!({}),
            "key-rev-2",
        )
        .await;
    assert_eq!(rev3.status, StatusCode::CREATED, "{}", rev3.text);
    assert_eq!(rev3.body["reverses"], po3);

    let v = app.get("/api/v1/verify").await;
    assert_eq!(v.body["ok"], true, "{}", v.text);
    Arc::into_inner(app)
        .expect("no request is left")
        .stop()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_and_body_sent_fifty_times_at_once_makes_one_entry() {
    for backend in backends() {
        replay_story(backend).await;
    }
}

/// A batch's first reads in one call (`WriteTx::prefetch`, one round trip) find the
/// documents and keys recorded among ids and keys never used, and load every need (where a
/// lot is held included), whether what it names exists or not, as the posted purchase left
/// it.
#[tokio::test]
async fn a_batch_prefetch_finds_what_is_recorded_and_loads_every_need() {
    use ledger::{Account, LocationCode, LotNo, Needs, PartyCode, Qty, Sku, State};
    for backend in backends() {
        let app = spawn_app(backend).await;
        master_data(&app).await;
        let posted = app
            .post_keyed("/api/v1/purchases", &purchase("PO-P", "100"), "key-p")
            .await;
        assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
        let lot = LotNo::parse(posted.body["lines"][0]["lot"].as_str().unwrap()).unwrap();
        let entry = app
            .get(&format!("/api/v1/entries/{}", posted.body["entry_seq"]))
            .await;
        let actor = entry.body["actor"].as_str().unwrap().to_owned();
        let ids = [("purchase", "PO-NONE"), ("purchase", "PO-P")];
        let keys = [(actor.as_str(), "key-p"), (actor.as_str(), "key-none")];
        let (band, none) = (Sku::parse("BAND").unwrap(), Sku::parse("NONE").unwrap());
        let (raw, no_lot) = (
            Account::parse("stock:RAW").unwrap(),
            LotNo::parse("NO-LOT").unwrap(),
        );
        let mut needs = Needs::default();
        needs.items.extend([band.clone(), none.clone()]);
        needs.parties.insert(PartyCode::parse("SUP").unwrap());
        needs.locations.insert(LocationCode::parse("RAW").unwrap());
        needs.lots.extend([lot.clone(), no_lot.clone()]);
        needs.balances.insert((raw.clone(), lot.clone()));
        needs.groups.insert((raw.clone(), band.clone()));
        needs.holders.insert(lot.clone());
        let store = app.service.store();
        let mut tx = store.begin().await.unwrap();
        let mut state = State::new(None);
        let (documents, keyed) = tx.prefetch(&ids, &keys, &needs, &mut state).await.unwrap();
        drop(tx);
        let found: Vec<_> = documents
            .iter()
            .map(|d| (d.id.as_str(), d.kind.as_str()))
            .collect();
        assert_eq!(found, [("PO-P", "purchase")]);
        // The answer stored is the text the client got, byte for byte.
        assert_eq!(documents[0].response.as_str(), posted.text);
        let found: Vec<_> = keyed.iter().map(|k| (k.key.as_str(), k.status)).collect();
        assert_eq!(found, [("key-p", 201)]);
        assert_eq!(keyed[0].response.as_str(), posted.text);
        // A read answers the same bytes as the post did, alone and in the list.
        let got = app.get("/api/v1/purchases/PO-P").await;
        assert_eq!(got.status, StatusCode::OK, "{}", got.text);
        assert_eq!(got.text, posted.text);
        let listed = app.get("/api/v1/purchases").await;
        assert!(
            listed.text.contains(&posted.text),
            "{} lists {}",
            listed.text,
            posted.text
        );
        assert!(state.missing(&needs).is_empty(), "every need is loaded");
        assert!(state.item(&band).is_some() && state.item(&none).is_none());
        assert!(state.party(&PartyCode::parse("SUP").unwrap()).is_some());
        assert!(state
            .location(&LocationCode::parse("RAW").unwrap())
            .is_some());
        assert_eq!(state.lot(&lot).map(|l| &l.sku), Some(&band));
        assert!(state.lot(&no_lot).is_none());
        let hundred = Qty::parse("100").unwrap();
        assert_eq!(state.balance(&raw, &lot).qty, hundred);
        let picked: Vec<_> = state
            .lots_in(&raw, &band)
            .into_iter()
            .map(|(l, b)| (l.lot.clone(), b.qty))
            .collect();
        assert_eq!(picked, [(lot.clone(), hundred)]);
        let held_in_stock: Vec<_> = state
            .holders(&lot)
            .iter()
            .filter(|(a, _)| a.guarded())
            .map(|(a, b)| (a.clone(), b.qty))
            .collect();
        assert_eq!(held_in_stock, [(raw.clone(), hundred)]);
        app.stop().await;
    }
}
