//! Tamper evidence (issue 9, item 6), on every backend: the database refuses UPDATE and DELETE
//! (and TRUNCATE) on entries and postings; and once someone deliberately turns that off
//! (drops the triggers, disables foreign keys) and updates, deletes, swaps or inserts any
//! single row of entries or postings, `verify` (HTTP and `ppe verify`) reports it with the
//! first affected sequence number. A maintained balance changed under the journal is
//! reported as a balance mismatch.

use ppe_tests::{backends, pages_of_one, spawn_app, Backend, TestApp};
use serde_json::json;

/// The ledger every case tampers with: five entries (purchases, one in USD, and a reversal).
async fn ledger(app: &TestApp) {
    for item in [
        json!({"sku":"BAND","name":"Elastic band","kind":"material","unit":"pcs","decimals":0}),
        json!({"sku":"PC","name":"Polycarbonate","kind":"material","unit":"kg","decimals":3}),
    ] {
        app.post_ok("/api/v1/items", &item).await;
    }
    app.post_ok(
        "/api/v1/parties",
        &json!({"code":"SUP","name":"Supplier","kind":"supplier"}),
    )
    .await;
    app.post_ok("/api/v1/locations", &json!({"code":"RAW","name":"Raw"}))
        .await;
    let purchase = |id: &str, currency: &str, rate: Option<&str>, lines: serde_json::Value| {
        json!({"purchase_id":id,"date":"2020-02-12","supplier":"SUP","location":"RAW",
               "currency":currency,"fx_rate":rate,"lines":lines})
    };
    let docs = [
        purchase(
            "PO-1",
            "CNY",
            None,
            json!([{"sku":"BAND","qty":"100","unit_price":"0.2"},{"sku":"PC","qty":"2.5","unit_price":"40"}]),
        ),
        purchase(
            "PO-2",
            "CNY",
            None,
            json!([{"sku":"BAND","qty":"30","unit_price":"0.3"}]),
        ),
        purchase(
            "PO-3",
            "USD",
            Some("7.1"),
            json!([{"sku":"PC","qty":"1.25","unit_price":"5.5"},{"sku":"BAND","qty":"7","unit_price":"0.01"}]),
        ),
    ];
    for d in &docs {
        app.post_ok("/api/v1/purchases", d).await;
    }
    app.post_ok(
        "/api/v1/entries/2/reversal",
        &json!({"memo":"wrong supplier"}),
    )
    .await;
    app.post_ok(
        "/api/v1/purchases",
        &purchase(
            "PO-4",
            "CNY",
            None,
            json!([{"sku":"PC","qty":"1","unit_price":"1"}]),
        ),
    )
    .await;
}

/// One tampering act and the first entry `verify` must name (None: only balances are off).
struct Case {
    name: &'static str,
    sql: &'static str,
    first_bad: Option<u64>,
}

const fn case(name: &'static str, sql: &'static str, first_bad: Option<u64>) -> Case {
    Case {
        name,
        sql,
        first_bad,
    }
}

fn cases(backend: Backend) -> Vec<Case> {
    let mut v = vec![
        // Updates of each hashed column of an entry.
        case("entry date", "update entries set date = '2020-01-01' where seq = 3", Some(3)),
        case("entry kind", "update entries set kind = 'receipt' where seq = 3", Some(3)),
        case("entry document", "update entries set document = 'PO-X' where seq = 3", Some(3)),
        case("entry actor", "update entries set actor = 'mallory' where seq = 2", Some(2)),
        case("entry reverses", "update entries set reverses = null where seq = 4", Some(4)),
        case("entry reverses impossible", "update entries set reverses = -1 where seq = 4", Some(4)),
        case("entry memo", "update entries set memo = 'typo' where seq = 4", Some(4)),
        case("entry hash", "update entries set hash = '0000000000000000000000000000000000000000000000000000000000000000' where seq = 3", Some(3)),
        case("entry seq renumbered", "update entries set seq = 99 where seq = 5", Some(5)),
        case("entry date unreadable", "update entries set date = 'yesterday' where seq = 2", Some(2)),
        // Deletions.
        case("entry deleted", "delete from entries where seq = 3", Some(3)),
        case("last entry deleted", "delete from entries where seq = 5", Some(5)),
        case("entry deleted with its postings", "delete from postings where seq = 3; delete from entries where seq = 3", Some(3)),
        case("posting deleted", "delete from postings where seq = 3 and idx = 1", Some(3)),
        // Swaps.
        case(
            "two entries' contents swapped",
            "create temp table t as select * from entries where seq in (2, 3);
             update entries set (date, kind, document, actor, reverses, memo, hash, recorded_at) =
               (select date, kind, document, actor, reverses, memo, hash, recorded_at from t
                where t.seq = case entries.seq when 2 then 3 else 2 end)
             where seq in (2, 3)",
            Some(2),
        ),
        case(
            "two entries swapped with their postings",
            "update entries set seq = seq + 1000 where seq in (2, 3);
             update postings set seq = seq + 1000 where seq in (2, 3);
             update entries set seq = 1005 - seq where seq in (1002, 1003);
             update postings set seq = 1005 - seq where seq in (1002, 1003)",
            Some(2),
        ),
        case(
            "two postings of an entry swapped",
            "update postings set idx = idx + 100 where seq = 3 and idx in (0, 1);
             update postings set idx = 101 - idx where seq = 3 and idx in (100, 101)",
            Some(3),
        ),
        case(
            "postings of two entries swapped",
            "update postings set seq = 1000 where seq = 2 and idx = 0;
             update postings set seq = 2 where seq = 3 and idx = 0;
             update postings set seq = 3 where seq = 1000 and idx = 0",
            Some(2),
        ),
        // Updates of each column of a posting.
        case("posting qty", "update postings set qty = qty + 1 where seq = 3 and idx = 0", Some(3)),
        case("posting value", "update postings set value = value - 1 where seq = 3 and idx = 1", Some(3)),
        case("posting value moved between postings", "update postings set value = value + 1 where seq = 1 and idx = 0; ", Some(1)),
        case("posting account", "update postings set account = 'stock:ELSEWHERE' where seq = 3 and idx = 1", Some(3)),
        case("posting account unreadable", "update postings set account = 'nowhere' where seq = 3 and idx = 1", Some(3)),
        case("posting sku", "update postings set sku = 'PC' where seq = 2 and idx = 0", Some(2)),
        case("posting lot", "update postings set lot = 'PO-1-1' where seq = 2 and idx = 0", Some(2)),
        // idx only orders an entry's postings: renumbering that keeps the order changes
        // nothing an entry says; one that reorders them is caught.
        case("posting idx reordered", "update postings set idx = 7 where seq = 3 and idx = 0", Some(3)),
        case("posting extreme qty", "update postings set qty = 9223372036854775807 where seq = 2 and idx = 1", Some(2)),
        // Insertions.
        case(
            "posting inserted",
            "insert into postings (seq, idx, account, sku, lot, qty, value) values (3, 9, 'stock:RAW', 'PC', 'PO-3-1', 0, 1)",
            Some(3),
        ),
        case(
            "posting inserted that overflows its balance",
            "insert into postings (seq, idx, account, sku, lot, qty, value) values (1, 9, 'stock:RAW', 'BAND', 'PO-1-1', 9223372036854775807, 9223372036854775807)",
            Some(1),
        ),
        case(
            "entry appended without moving the head",
            "insert into entries (seq, date, kind, document, actor, reverses, memo, hash, recorded_at)
             select 6, date, kind, document, actor, null, memo, hash, recorded_at from entries where seq = 5",
            Some(6),
        ),
        // Under the journal: a maintained balance, and the head.
        case("balance changed", "update balances set qty = qty + 1000 where account = 'stock:RAW' and lot = 'PO-1-1'", None),
        case("head moved back", "update ledger set seq = 4", Some(5)),
    ];
    if backend == Backend::Sqlite {
        // SQLite stores what it is given: text where an integer belongs.
        v.push(case(
            "posting qty of the wrong type",
            "update postings set qty = 'lots' where seq = 3 and idx = 0",
            Some(3),
        ));
        v.push(case(
            "entry seq of the wrong type",
            "update entries set memo = x'ff00' where seq = 4",
            Some(4),
        ));
    }
    v
}

/// The tables a case may touch, saved once and put back after each case, so that every case
/// tampers with the same good ledger without a fresh database each time.
const RESTORED: &[&str] = &["entries", "postings", "balances", "ledger"];

async fn save(app: &TestApp) {
    for t in RESTORED {
        app.db
            .exec(&format!("create table saved_{t} as select * from {t}"))
            .await;
    }
}

async fn restore(app: &TestApp) {
    let mut sql = app.db.unguarded().to_owned();
    for t in RESTORED {
        sql.push_str(&format!(
            "\ndelete from {t}; insert into {t} select * from saved_{t};"
        ));
    }
    app.db.exec(&sql).await;
}

async fn tamper(app: &TestApp, backend: Backend, c: &Case) {
    app.db
        .exec(&format!("{}\n{};", app.db.unguarded(), c.sql))
        .await;
    let v = app.get("/api/v1/verify").await;
    assert!(
        v.status.is_success(),
        "{backend:?} {}: verify answered {}: {}",
        c.name,
        v.status,
        v.text
    );
    assert_eq!(
        v.body["ok"], false,
        "{backend:?} {}: not detected: {}",
        c.name, v.text
    );
    match c.first_bad {
        Some(seq) => assert_eq!(
            v.body["first_bad_seq"], seq,
            "{backend:?} {}: {}",
            c.name, v.text
        ),
        None => {
            assert!(v.body["first_bad_seq"].is_null(), "{}: {}", c.name, v.text);
            assert!(
                !v.body["balance_mismatches"].as_array().unwrap().is_empty(),
                "{}: {}",
                c.name,
                v.text
            );
        }
    }
    let (ok, out) = app.ppe(&["verify"]).await;
    assert!(!ok, "{backend:?} {}: ppe verify passed: {out}", c.name);
    if let Some(seq) = c.first_bad {
        assert!(
            out.contains(&format!("first bad entry {seq};")),
            "{backend:?} {}: {out}",
            c.name
        );
    }
    restore(app).await;
    let v = app.get("/api/v1/verify").await;
    assert_eq!(
        v.body["ok"], true,
        "{backend:?} after restoring {}: {}",
        c.name, v.text
    );
}

#[tokio::test]
async fn any_single_tampered_row_is_reported_with_the_first_bad_entry() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        ledger(&app).await;
        let v = app.get("/api/v1/verify").await;
        assert_eq!(v.body["ok"], true, "{}", v.text);
        assert_eq!(v.body["entries"], 5);
        save(&app).await;
        for c in cases(backend) {
            tamper(&app, backend, &c).await;
        }
        app.stop().await;
    }
}

/// A full pass reads the journal a page ahead of itself, on SQLite partly on a second
/// connection that reads only up to the head. Entries appended past the head (the head not
/// moved) are in the snapshot all the same, and must reach the pass: a page the second
/// connection finds short is read again on the snapshot's own. Pages of one entry put the
/// page after entry 6 on the second connection.
#[tokio::test]
async fn entries_past_the_head_reach_the_pass_whatever_reads_them() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        ledger(&app).await;
        let mut sql = app.db.unguarded().to_owned();
        for seq in [6, 7] {
            sql.push_str(&format!(
                "\ninsert into entries (seq, date, kind, document, actor, reverses, memo, hash, recorded_at)
                 select {seq}, date, kind, document, actor, null, memo, hash, recorded_at from entries where seq = 5;"
            ));
        }
        app.db.exec(&sql).await;
        let s = app.service.store().snapshot().await.expect("a snapshot");
        assert_eq!(s.head().seq, 5, "{backend:?}");
        assert_eq!(
            pages_of_one(&*s).await,
            vec![1, 2, 3, 4, 5, 6, 7],
            "{backend:?}"
        );
        drop(s);
        app.stop().await;
    }
}

#[tokio::test]
async fn the_database_refuses_to_change_entries_and_postings() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        ledger(&app).await;
        let before = app.db.counts().await;
        let mut refused = vec![
            "update entries set memo = 'x' where seq = 2",
            "update entries set seq = seq + 100",
            "delete from entries where seq = 5",
            "delete from entries",
            "update postings set qty = qty + 1 where seq = 2 and idx = 0",
            "update postings set account = 'loss'",
            "delete from postings where seq = 3 and idx = 1",
            "delete from postings",
        ];
        if backend == Backend::Postgres {
            refused.push("truncate postings");
            refused.push("truncate entries cascade");
        }
        for sql in refused {
            let e = app.db.exec_refused(sql).await;
            assert!(e.contains("append-only"), "{backend:?} {sql}: {e}");
        }
        assert_eq!(app.db.counts().await, before);
        let v = app.get("/api/v1/verify").await;
        assert_eq!(v.body["ok"], true, "{}", v.text);
        app.stop().await;
    }
}

/// References are the database's second check, on both backends: a row naming an entry, lot,
/// item, party or shipment that does not exist is refused (foreign keys on SQLite; checks per
/// insert statement on PostgreSQL, migration 0007), and so is deleting what rows refer to or
/// changing its key.
#[tokio::test]
async fn the_database_refuses_rows_that_refer_to_nothing() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        ledger(&app).await;
        let before = app.db.counts().await;
        let dangling = [
            "insert into postings (seq, idx, account, sku, lot, qty, value) values (1, 99, 'loss', 'BAND', 'NO-SUCH-LOT', 0, 0)",
            "insert into postings (seq, idx, account, sku, lot, qty, value) select 999, 0, 'loss', sku, lot, 0, 0 from lots limit 1",
            "insert into balances (account, lot, sku, qty, value, guarded) values ('loss', 'NO-SUCH-LOT', 'BAND', 0, 0, false)",
            "insert into lots (lot, sku, origin_kind, origin_doc, origin_seq) values ('L-NEW', 'NO-SUCH-ITEM', 'purchase', 'PO-1', 1)",
            "insert into lots (lot, sku, origin_kind, origin_doc, origin_seq) values ('L-NEW', 'BAND', 'purchase', 'PO-1', 999)",
        ];
        for sql in dangling {
            let e = app.db.exec_refused(sql).await.to_lowercase();
            assert!(
                e.contains("foreign key") || e.contains("does not exist"),
                "{backend:?} {sql}: {e}"
            );
        }
        for sql in [
            "delete from lots where lot = (select min(lot) from lots)",
            "update lots set lot = 'RENAMED' where lot = (select min(lot) from lots)",
            "delete from items where sku = 'BAND'",
            "update items set sku = 'BAND-2' where sku = 'BAND'",
        ] {
            let e = app.db.exec_refused(sql).await.to_lowercase();
            assert!(
                e.contains("foreign key")
                    || e.contains("never deleted")
                    || e.contains("append-only"),
                "{backend:?} {sql}: {e}"
            );
        }
        assert_eq!(app.db.counts().await, before, "{backend:?}");
        app.stop().await;
    }
}

/// SQLite stores what it is given: a maintained balance edited to text where a number belongs
/// cannot be read back. `verify` answers with that as a finding instead of failing (the read
/// used to panic), and `ppe verify` says which column.
#[tokio::test]
async fn an_unreadable_balance_is_a_finding_of_verify() {
    let app = spawn_app(Backend::Sqlite).await;
    ledger(&app).await;
    app.db
        .exec(&format!(
            "{}\nupdate balances set qty = 'lots' where account = 'stock:RAW' and lot = 'PO-1-1';",
            app.db.unguarded()
        ))
        .await;
    let v = app.get("/api/v1/verify").await;
    assert!(v.status.is_success(), "{}", v.text);
    assert_eq!(v.body["ok"], false, "{}", v.text);
    assert!(v.body["first_bad_seq"].is_null(), "{}", v.text);
    let problems = v.body["problems"].as_array().expect("problems");
    assert!(
        problems.iter().any(|p| p
            .as_str()
            .is_some_and(|p| p.contains("a balance cannot be read: qty is text"))),
        "{}",
        v.text
    );
    let (ok, out) = app.ppe(&["verify"]).await;
    assert!(!ok, "ppe verify passed: {out}");
    assert!(out.contains("a balance cannot be read"), "{out}");
    app.stop().await;
}
