//! Opens `PgStore` on a fresh database of the server named by `PPE_TEST_POSTGRES_URL` and
//! checks a first write end to end, the references checked per statement, the writer's own
//! connection, and the plan of a writer's lookup on tables without statistics. Skipped (with
//! a message) when the variable is unset.

use std::time::{SystemTime, UNIX_EPOCH};

use ledger::{
    Account, Balance, DocId, Entry, EntryHeader, EntryKind, Hash, Item, ItemKind, LocationCode,
    Lot, LotNo, Money, PartyCode, Posting, Qty, Sku,
};
use sqlx::Connection;
use store::{
    BalanceFilter, DocumentRecord, Head, Inserted, JsonText, Store, StoreError, StoredEntry,
    WriteBatch,
};
use store_postgres::PgStore;

/// The same server URL with another database name (keeping any `?query`).
fn with_database(url: &str, name: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let (scheme, rest) = url.split_at(start);
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{scheme}{authority}/{name}{query}")
}

/// A new empty database on the server of `PPE_TEST_POSTGRES_URL`: a connection to the
/// server's own database (to drop it after), its name and its URL. None when the variable
/// is unset.
async fn scratch_database() -> Option<(sqlx::PgConnection, String, String)> {
    let Ok(url) = std::env::var("PPE_TEST_POSTGRES_URL") else {
        println!("skipped: set PPE_TEST_POSTGRES_URL (postgres://user@host:port/db) to run the PostgreSQL store tests");
        return None;
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    let name = format!("ppe_t_{}_{nanos}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&url)
        .await
        .expect("connect to PPE_TEST_POSTGRES_URL");
    sqlx::query(&format!("create database {name}"))
        .execute(&mut admin)
        .await
        .expect("create database");
    let db_url = with_database(&url, &name);
    Some((admin, name, db_url))
}

/// Closes the store's connections, then drops its scratch database.
async fn drop_scratch(mut admin: sqlx::PgConnection, name: &str, store: &PgStore) {
    store.pool().close().await;
    sqlx::query(&format!("drop database {name} with (force)"))
        .execute(&mut admin)
        .await
        .expect("drop database");
}

#[tokio::test]
async fn opens_migrates_and_writes() {
    let Some((admin, name, db_url)) = scratch_database().await else {
        return;
    };

    // Opening twice runs the migrations twice: the second run finds them applied.
    let first = PgStore::open(&db_url).await.expect("first open");
    first.pool().close().await;
    let store = PgStore::open(&db_url).await.expect("second open");
    assert_eq!(store.backend(), "postgres");
    assert_eq!(store.base_currency().await.expect("base currency"), "CNY");

    // An empty ledger: seq 0 and the all-zero hash.
    assert_eq!(
        store.head().await.expect("head"),
        Head {
            seq: 0,
            hash: Hash::GENESIS,
            closed_through: None
        }
    );

    let sku = Sku::parse("MASK-N95").expect("sku");
    let item = Item::new(
        sku.clone(),
        "N95 mask",
        ItemKind::Product,
        "pc",
        0,
        Some(1825),
    )
    .expect("item");
    assert_eq!(
        store.insert_item(&item).await.expect("insert item"),
        Inserted::Created
    );
    assert_eq!(
        store.insert_item(&item).await.expect("insert item again"),
        Inserted::Existing(item.clone())
    );
    assert_eq!(
        store.item("MASK-N95").await.expect("read item"),
        Some(item.clone())
    );
    assert_eq!(store.items(None, 10).await.expect("list items"), vec![item]);

    // One purchase entry: 10 masks worth 100 from a supplier into stock, on a new lot.
    let date = time::macros::date!(2020 - 03 - 17);
    let doc = DocId::parse("PO-1").expect("doc id");
    let lot_no = LotNo::parse("PO-1-1").expect("lot");
    let stock = Account::Stock(LocationCode::parse("RAW").expect("location"));
    let supplier = Account::Supplier(PartyCode::parse("S1").expect("party"));
    let (qty, value) = (Qty::from_scaled(10_000), Money::from_scaled(1_000_000));
    let posting = |account: &Account, sign: i64| Posting {
        account: account.clone(),
        sku: sku.clone(),
        lot: lot_no.clone(),
        qty: Qty::from_scaled(sign * qty.scaled()),
        value: Money::from_scaled(sign * value.scaled()),
    };
    let header = EntryHeader {
        seq: 1,
        date,
        kind: EntryKind::Purchase,
        document: doc.clone(),
        actor: "tester".into(),
        reverses: None,
        memo: "first".into(),
    };
    let entry = Entry::new(header, vec![posting(&stock, 1), posting(&supplier, -1)])
        .expect("balanced entry");
    let hash = entry.chain_hash(&Hash::GENESIS);
    let lot = Lot {
        lot: lot_no.clone(),
        sku: sku.clone(),
        origin_kind: EntryKind::Purchase,
        origin_doc: doc,
        origin_seq: 1,
        expires_on: Some(time::macros::date!(2025 - 03 - 16)),
        source: Some(PartyCode::parse("S1").expect("party")),
    };
    let document = DocumentRecord {
        namespace: "purchase".into(),
        id: "PO-1".into(),
        kind: "purchase".into(),
        body_hash: "b".repeat(64),
        body: JsonText::of(&serde_json::json!({ "id": "PO-1" })),
        response: JsonText::of(&serde_json::json!({ "seq": 1 })),
        entry_seq: Some(1),
    };
    let batch = WriteBatch {
        entries: vec![StoredEntry {
            entry: entry.clone(),
            hash,
            recorded_at: "2020-03-17T08:00:00Z".into(),
        }],
        lots: vec![lot],
        deltas: vec![
            (
                stock.clone(),
                lot_no.clone(),
                sku.clone(),
                Balance { qty, value },
            ),
            (
                supplier.clone(),
                lot_no.clone(),
                sku.clone(),
                Balance {
                    qty: Qty::from_scaled(-qty.scaled()),
                    value: Money::from_scaled(-value.scaled()),
                },
            ),
        ],
        documents: vec![document.clone()],
        idempotency: Vec::new(),
        head: Some(Head {
            seq: 1,
            hash,
            closed_through: None,
        }),
        // Records of later documents' own tables (production runs, ...) are not exercised here.
        ..WriteBatch::default()
    };
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.head().seq, 0);
    tx.write(&batch).await.expect("write");
    tx.commit().await.expect("commit");

    assert_eq!(
        store.head().await.expect("head after write"),
        Head {
            seq: 1,
            hash,
            closed_through: None
        }
    );
    let read = store.entries(0, 10).await.expect("entries");
    assert_eq!(read.len(), 1);
    assert_eq!((&read[0].entry, read[0].hash), (&entry, hash));
    assert_eq!(
        store.document("purchase", "PO-1").await.expect("document"),
        Some(document)
    );
    let balances = store
        .balances(&BalanceFilter::default(), None, 10)
        .await
        .expect("balances");
    assert_eq!(
        balances
            .iter()
            .map(|b| b.account.as_str())
            .collect::<Vec<_>>(),
        ["stock:RAW", "supplier:S1"]
    );
    assert!(store
        .balance_mismatches()
        .await
        .expect("mismatches")
        .is_empty());

    // An outflow of a guarded account that leaves it positive is written: 4 masks to loss.
    let header = EntryHeader {
        seq: 2,
        date,
        kind: EntryKind::StockCount,
        document: DocId::parse("SC-1").expect("doc id"),
        actor: "tester".into(),
        reverses: None,
        memo: String::new(),
    };
    let loss = Account::Loss;
    let out = |account: &Account, sign: i64| Posting {
        account: account.clone(),
        sku: sku.clone(),
        lot: lot_no.clone(),
        qty: Qty::from_scaled(sign * 4_000),
        value: Money::from_scaled(sign * 400_000),
    };
    let entry2 = Entry::new(header, vec![out(&stock, -1), out(&loss, 1)]).expect("balanced entry");
    let hash2 = entry2.chain_hash(&hash);
    let delta = |sign: i64| Balance {
        qty: Qty::from_scaled(sign * 4_000),
        value: Money::from_scaled(sign * 400_000),
    };
    let batch = WriteBatch {
        entries: vec![StoredEntry {
            entry: entry2,
            hash: hash2,
            recorded_at: "2020-03-17T09:00:00Z".into(),
        }],
        deltas: vec![
            (stock.clone(), lot_no.clone(), sku.clone(), delta(-1)),
            (loss, lot_no.clone(), sku.clone(), delta(1)),
        ],
        head: Some(Head {
            seq: 2,
            hash: hash2,
            closed_through: None,
        }),
        ..WriteBatch::default()
    };
    let mut tx = store.begin().await.expect("begin outflow");
    tx.write(&batch).await.expect("write outflow");
    tx.commit().await.expect("commit outflow");
    let only_stock = BalanceFilter {
        account: Some("stock:RAW".into()),
        ..BalanceFilter::default()
    };
    let balances = store
        .balances(&only_stock, None, 10)
        .await
        .expect("stock balance");
    assert_eq!(
        (balances[0].quantity, balances[0].value),
        (Qty::from_scaled(6_000), Money::from_scaled(600_000))
    );
    assert!(store
        .balance_mismatches()
        .await
        .expect("mismatches after outflow")
        .is_empty());

    // A guarded balance cannot go negative: the database refuses it as a constraint.
    let mut tx = store.begin().await.expect("begin again");
    let overdraw = WriteBatch {
        deltas: vec![(
            stock,
            lot_no,
            sku,
            Balance {
                qty: Qty::from_scaled(-20_000),
                value: Money::ZERO,
            },
        )],
        ..WriteBatch::default()
    };
    assert!(matches!(
        tx.write(&overdraw).await,
        Err(StoreError::Constraint(_))
    ));
    drop(tx);

    // Entries and postings are append-only, even for someone reaching under the service.
    let refused = sqlx::query("update entries set memo = 'x'")
        .execute(store.pool())
        .await
        .expect_err("update of an entry must be refused");
    assert!(refused.to_string().contains("append-only"), "{refused}");
    let refused = sqlx::query("delete from postings")
        .execute(store.pool())
        .await
        .expect_err("delete of postings must be refused");
    assert!(refused.to_string().contains("append-only"), "{refused}");

    // Every row a statement inserts or updates names rows that exist (the checks per statement
    // of migrations 0007 and 0013, which probe each distinct key once): one bad row among good
    // ones refuses the statement as a foreign key violation, naming what is missing.
    let refusals = [
        (
            "insert into postings (seq, idx, account, sku, lot, qty, value)
             values (2, 8, 'loss', 'MASK-N95', 'PO-1-1', 0, 0),
                    (2, 9, 'loss', 'MASK-N95', 'PO-1-1', 0, 0),
                    (2, 10, 'loss', 'MASK-N95', 'PO-404-1', 0, 0)",
            "a posting names a lot that does not exist",
        ),
        (
            "insert into postings (seq, idx, account, sku, lot, qty, value)
             values (2, 8, 'loss', 'MASK-N95', 'PO-1-1', 0, 0),
                    (404, 0, 'loss', 'MASK-N95', 'PO-1-1', 0, 0)",
            "a posting names an entry that does not exist",
        ),
        (
            "insert into balances (account, lot, sku, qty, value, guarded)
             values ('consumer:A', 'PO-1-1', 'MASK-N95', 0, 0, false),
                    ('consumer:B', 'PO-404-1', 'MASK-N95', 0, 0, false)",
            "a balance names a lot that does not exist",
        ),
        (
            "insert into lots (lot, sku, origin_kind, origin_doc, origin_seq)
             values ('PO-1-8', 'MASK-N95', 'purchase', 'PO-1', 1),
                    ('PO-1-9', 'GLOVE', 'purchase', 'PO-1', 1)",
            "a lot names an item that does not exist",
        ),
        (
            "insert into lots (lot, sku, origin_kind, origin_doc, origin_seq)
             values ('PO-1-8', 'MASK-N95', 'purchase', 'PO-1', 1),
                    ('PO-1-9', 'MASK-N95', 'purchase', 'PO-1', 404)",
            "a lot names an entry that does not exist",
        ),
        (
            "insert into shipment_lines (shipment_id, pos, destination, sku, lot, dispatched_qty,
                                         acknowledged_qty, damaged_qty, short_qty, dispatched_value)
             values ('B-404', 0, 'S1', 'MASK-N95', 'PO-1-1', 1000, 0, 0, 0, 0)",
            "a shipment line names a shipment that does not exist",
        ),
        (
            "insert into documents (namespace, id, kind, body_hash, body, response, entry_seq)
             values ('purchase', 'PO-8', 'purchase', 'h', '{}', '{}', 1),
                    ('purchase', 'PO-9', 'purchase', 'h', '{}', '{}', 404)",
            "a document names an entry that does not exist",
        ),
        (
            "update documents set entry_seq = 404",
            "a document names an entry that does not exist",
        ),
        (
            "insert into shipments (id, kind, date, from_location, status, dispatch_seq)
             values ('B-1', 'batch', '2020-03-17', 'RAW', 'dispatched', 404)",
            "a shipment names a dispatch entry that does not exist",
        ),
        (
            "insert into shipments (id, kind, date, from_location, status, dispatch_seq)
             values ('B-1', 'batch', '2020-03-17', 'NOWHERE', 'dispatched', 1)",
            "a shipment names a location that does not exist",
        ),
        (
            "insert into production_runs (run_id, entry_seq, date, product_sku, bom_version,
                 output_lot, good_qty, scrap_qty, material_cost, labor_cost, overhead_cost,
                 total_cost, unit_cost)
             values ('RUN-1', 2, '2020-03-17', 'MASK-N95', 'v404', 'PO-1-1', 1000, 0, 0, 0, 0,
                     0, 0)",
            "a production run names a BOM version that does not exist",
        ),
        (
            "insert into production_run_materials (run_id, idx, material_sku, standard_qty,
                 actual_qty, actual_cost)
             values ('RUN-404', 0, 'MASK-N95', 0, 0, 0)",
            "a production run material names a run that does not exist",
        ),
    ];
    for (sql, says) in refusals {
        let refused = sqlx::query(sql)
            .execute(store.pool())
            .await
            .expect_err(says);
        let code = refused.as_database_error().and_then(|e| e.code());
        assert_eq!(code.as_deref(), Some("23503"), "{sql}: {refused}");
        assert!(refused.to_string().contains(says), "{sql}: {refused}");
    }
    // A shipment that names what exists is written; closing it on an entry that does not
    // exist is refused (the upsert's update is checked as its insert is). What it names, and
    // a BOM version, can then be neither deleted nor truncated away.
    for sql in [
        "insert into locations (code, name) values ('RAW', 'Raw materials')",
        "insert into boms (product_sku, version, output_qty) values ('MASK-N95', 'v1', 1000)",
        "insert into shipments (id, kind, date, from_location, status, dispatch_seq)
         values ('B-1', 'batch', '2020-03-17', 'RAW', 'dispatched', 1)",
    ] {
        sqlx::query(sql)
            .execute(store.pool())
            .await
            .expect("a row naming what exists");
    }
    let refused = sqlx::query(
        "insert into shipments (id, kind, date, from_location, status, dispatch_seq)
         values ('B-1', 'batch', '2020-03-17', 'RAW', 'dispatched', 1)
         on conflict (id) do update set status = 'closed', closed_on = '2020-03-18',
             close_reason = 'lost', close_seq = 404",
    )
    .execute(store.pool())
    .await
    .expect_err("a closing entry that does not exist");
    assert!(
        refused
            .to_string()
            .contains("a shipment names a closing entry that does not exist"),
        "{refused}"
    );
    for sql in [
        "delete from locations",
        "truncate locations",
        "truncate shipments",
        "delete from boms",
    ] {
        let refused = sqlx::query(sql).execute(store.pool()).await.expect_err(sql);
        assert!(
            refused.to_string().contains("never deleted"),
            "{sql}: {refused}"
        );
    }
    // Nothing of a refused statement was written.
    let counts: (i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from postings), (select count(*) from lots),
                (select count(*) from documents where entry_seq = 1),
                (select count(*) from shipments where status = 'dispatched')",
    )
    .fetch_one(store.pool())
    .await
    .expect("counts");
    assert_eq!(counts, (4, 1, 1, 1));

    drop_scratch(admin, &name, &store).await;
}

#[test]
fn database_name_replaced_in_url() {
    assert_eq!(
        with_database("postgres://u@h:5432/test", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://u@h:5432", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://u@h/test?sslmode=disable", "x"),
        "postgres://u@h/x?sslmode=disable"
    );
}

/// The writer keeps one connection from batch to batch, out of the pool. One that broke while
/// it waited (here its session is ended by the server, as a restart would) is replaced when
/// the next batch begins, which then goes through; and a batch dropped without committing
/// frees the head's lock at once, not when the next batch comes: another process's writer
/// (a second store) gets it before its lock timeout, which would fail its begin as busy.
#[tokio::test]
async fn the_writers_connection_is_replaced_when_broken_and_freed_when_a_batch_is_dropped() {
    let Some((mut admin, name, db_url)) = scratch_database().await else {
        return;
    };
    let store = PgStore::open(&db_url).await.expect("open");
    let head = |seq| Head {
        seq,
        hash: Hash::GENESIS,
        closed_through: None,
    };
    let first = store.begin().await.expect("a first batch begins");
    assert_eq!(first.head(), &head(0));
    first.commit().await.expect("and commits");

    let ended: Vec<bool> = sqlx::query_scalar(
        "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1",
    )
    .bind(&name)
    .fetch_all(&mut admin)
    .await
    .expect("end the database's sessions");
    assert!(!ended.is_empty() && ended.iter().all(|x| *x), "{ended:?}");
    let again = store
        .begin()
        .await
        .expect("a batch begins on a new connection");
    assert_eq!(again.head(), &head(0));
    again.commit().await.expect("and commits");

    let dropped = store.begin().await.expect("a batch begins");
    drop(dropped);
    let other = PgStore::open(&db_url).await.expect("a second store");
    let theirs = other
        .begin()
        .await
        .expect("the head's lock was freed by the drop");
    theirs.commit().await.expect("their batch commits");

    other.pool().close().await;
    drop_scratch(admin, &name, &store).await;
}

/// Runs `sql` (one `text[]` parameter) for `keys` and returns how many rows it found, once
/// its plan for them (the plan made for the batch's own keys, as the first executions of a
/// statement get) is seen to read `table` only by its primary key: every scan of the table
/// must be `Index Scan using {table}_pkey`.
async fn looked_up_by_key(
    conn: &mut sqlx::PgConnection,
    sql: &str,
    keys: &[String],
    table: &str,
) -> usize {
    sqlx::query(&format!("prepare {table}_by_key (text[]) as {sql}"))
        .execute(&mut *conn)
        .await
        .expect("prepare");
    let plan: Vec<String> = sqlx::query_scalar(&format!(
        "explain execute {table}_by_key ('{{{}}}')",
        keys.join(",")
    ))
    .fetch_all(&mut *conn)
    .await
    .expect("explain");
    let scans: Vec<&String> = plan
        .iter()
        .filter(|line| line.contains(&format!(" on {table} ")))
        .collect();
    assert!(!scans.is_empty(), "{table} is read:\n{}", plan.join("\n"));
    assert!(
        scans
            .iter()
            .all(|line| line.contains(&format!("Index Scan using {table}_pkey on {table} "))),
        "{table} only by its key:\n{}",
        plan.join("\n")
    );
    sqlx::query(sql)
        .bind(keys)
        .fetch_all(&mut *conn)
        .await
        .expect("lookup")
        .len()
}

/// The writer looks a batch's shipments and lots up by primary key, and a shipment's
/// acknowledgements and a page's run materials are found by key, even
/// where the planner has no statistics (this server may never analyse its tables): with
/// `where s.id = any($1)` it read every shipment for each batch instead (a sequential scan at
/// 390 000 shipments, a full scan of the dispatch index at 50 000), about 1 s a batch at 10M
/// postings; with `where lot = any($1)`, every lot once a batch named a few thousand; a page
/// of a shipment's acknowledgements hashed every acknowledgement in the ledger; and a page of
/// runs read every run's materials.
#[tokio::test]
async fn a_batch_of_shipments_and_lots_is_looked_up_by_key_without_statistics() {
    let Some((admin, name, store, mut conn)) = store_with_shipments_and_runs().await else {
        return;
    };
    sqlx::query("set plan_cache_mode = force_custom_plan")
        .execute(&mut *conn)
        .await
        .expect("custom plans");
    // A batch's worth of ids, the most recent shipments (as acknowledgements name them),
    // found with their lines.
    let ids: Vec<String> = (48_977..=50_000).map(|i| format!("B-{i:08}")).collect();
    let sql = store_postgres::SHIPMENTS_BY_IDS_SQL;
    assert_eq!(
        looked_up_by_key(&mut conn, sql, &ids, "shipments").await,
        ids.len()
    );
    // The lots a large batch names: 8 000 of 50 000.
    let lots: Vec<String> = (42_001..=50_000).map(|i| format!("L-{i}")).collect();
    let sql = store_postgres::LOTS_BY_NUMBER_SQL;
    assert_eq!(
        looked_up_by_key(&mut conn, sql, &lots, "lots").await,
        lots.len()
    );
    // The materials of a page of 1 000 production runs (the production report's pages), run
    // by run through the primary key. Expecting 150 materials a run, the planner reads each
    // run's as a bitmap of the key's entries, which is still a lookup by key.
    let runs: Vec<String> = (20_001..=21_000).map(|i| format!("R-{i}")).collect();
    let plan: Vec<String> = sqlx::query_scalar(&format!(
        "explain {}",
        store_postgres::RUN_MATERIALS_SQL.replace("$1", &format!("'{{{}}}'", runs.join(",")))
    ))
    .fetch_all(&mut *conn)
    .await
    .expect("explain");
    let reads = |what: &str| plan.iter().any(|l| l.contains(what));
    assert!(
        reads("on production_run_materials_pkey")
            && !reads("Seq Scan on production_run_materials")
            && !reads("Hash"),
        "{}",
        plan.join("\n")
    );
    let materials = sqlx::query(store_postgres::RUN_MATERIALS_SQL)
        .bind(&runs)
        .fetch_all(&mut *conn)
        .await
        .expect("a page's materials");
    assert_eq!(materials.len(), runs.len());
    // A shipment's acknowledgements, among 50 000 documents of their kind: from the
    // shipment's entries to their documents by key, not through every document of the kind.
    sqlx::query(
        "insert into documents (namespace, id, kind, body_hash, body, response, entry_seq)
         select 'acknowledgement', 'A-' || i, 'acknowledgement', '', '{}', '{}', i
         from generate_series(1, 50000) i",
    )
    .execute(&mut *conn)
    .await
    .expect("documents");
    let plan: Vec<String> = sqlx::query_scalar(&format!(
        "explain {}",
        store_postgres::DOCUMENTS_FOR_SQL
            .replace("$1", "'acknowledgement'")
            .replace("$2", "'B-49999'")
            .replace("$3", "0")
            .replace("$4", "50")
    ))
    .fetch_all(&mut *conn)
    .await
    .expect("explain");
    let reads = |what: &str| plan.iter().any(|l| l.contains(what));
    assert!(
        reads("entries_shipment")
            && reads("Index Scan on documents_entry")
            && !reads("documents_kind")
            && !reads("Seq Scan on documents"),
        "{}",
        plan.join("\n")
    );
    let found = sqlx::query(store_postgres::DOCUMENTS_FOR_SQL)
        .bind("acknowledgement")
        .bind("B-49999")
        .bind(0_i64)
        .bind(50_i64)
        .fetch_all(&mut *conn)
        .await
        .expect("the shipment's acknowledgements");
    assert_eq!(found.len(), 1);
    drop(conn);
    drop_scratch(admin, &name, &store).await;
}

/// A batch's first read, every kind of key in one statement that stays prepared, probes each
/// large table by key in the generic plan the server settles on after a statement's fifth
/// execution, where the planner has no statistics: a scan of the documents, the balances or
/// the postings would cost each batch a read of the whole table.
#[tokio::test]
async fn a_batchs_first_read_probes_every_table_by_key_in_its_generic_plan() {
    let Some((admin, name, store, mut conn)) = store_with_shipments_and_runs().await else {
        return;
    };
    for statement in [
        "insert into postings (seq, idx, account, sku, lot, qty, value)
         select i, 0, 'stock:DEPOT', 'MASK', 'L-' || i, 10, 100 from generate_series(1, 50000) i",
        BALANCES_OF_LOTS,
        "insert into documents (namespace, id, kind, body_hash, body, response, entry_seq)
         select 'batch', 'B-' || i, 'batch', '', '{}', '{}', i from generate_series(1, 50000) i",
        "insert into idempotency (actor, key, request_hash, status, response)
         select 't', 'K-' || i, '', 201, '{}' from generate_series(1, 50000) i",
        "set plan_cache_mode = force_generic_plan",
    ] {
        sqlx::query(statement)
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    // One key of each kind, each the one element of its array parameter (`$1` to `$13`).
    let keys = [
        "batch",
        "B-7",
        "t",
        "K-7",
        "MASK",
        "COM-1",
        "DEPOT",
        "L-7",
        "stock:DEPOT",
        "L-8",
        "stock:DEPOT",
        "MASK",
        "L-9",
    ];
    let args: Vec<String> = keys.iter().map(|k| format!("'{{{k}}}'")).collect();
    let plan = prepared_plan(
        &mut conn,
        "prefetch",
        store_postgres::prefetch_sql(),
        &args.join(", "),
    )
    .await;
    for table in ["documents", "idempotency", "lots", "balances", "postings"] {
        let scans: Vec<&String> = plan
            .iter()
            .filter(|l| l.contains(&format!(" on {table} ")))
            .collect();
        assert!(
            !scans.is_empty() && scans.iter().all(|l| !l.contains("Seq Scan")),
            "{table} only by key:\n{}",
            plan.join("\n")
        );
    }
    // Each part finds its own rows: the one document, record, item, party, location and lot
    // asked for, the one balance, the group's 50 000 open lots, and the lot's one holder.
    let sql = format!(
        "select _read, lot, account from ({}) r",
        store_postgres::prefetch_sql()
    );
    let rows: Vec<(i32, Option<String>, Option<String>)> = keys
        .iter()
        .fold(sqlx::query_as(&sql), |q, k| q.bind(vec![*k]))
        .fetch_all(&mut *conn)
        .await
        .expect("the first read");
    let count = |read: i32| rows.iter().filter(|r| r.0 == read).count();
    assert_eq!(
        (0..9).map(count).collect::<Vec<_>>(),
        [1, 1, 1, 1, 1, 1, 1, 50_000, 1]
    );
    assert!(rows.iter().any(|r| r.0 == 6
        && r.1.as_deref() == Some("L-8")
        && r.2.as_deref() == Some("stock:DEPOT")));
    assert!(rows.iter().any(|r| r.0 == 8
        && r.1.as_deref() == Some("L-9")
        && r.2.as_deref() == Some("stock:DEPOT")));
    drop(conn);
    drop_scratch(admin, &name, &store).await;
}

/// The plan of `sql` prepared as `statement` and executed with `args`, as the connection's
/// settings plan it.
async fn prepared_plan(
    conn: &mut sqlx::PgConnection,
    statement: &str,
    sql: &str,
    args: &str,
) -> Vec<String> {
    sqlx::query(&format!("prepare {statement} as {sql}"))
        .execute(&mut *conn)
        .await
        .expect("prepare");
    sqlx::query_scalar(&format!("explain execute {statement} ({args})"))
        .fetch_all(&mut *conn)
        .await
        .expect("explain")
}

/// A scratch database opened as a store, with `write_shipments_and_runs`'s rows: the server's
/// connection and the database's name (for `drop_scratch`), the store, and one of its
/// connections. None when `PPE_TEST_POSTGRES_URL` is unset.
async fn store_with_shipments_and_runs() -> Option<(
    sqlx::PgConnection,
    String,
    PgStore,
    sqlx::pool::PoolConnection<sqlx::Postgres>,
)> {
    let (admin, name, db_url) = scratch_database().await?;
    let store = PgStore::open(&db_url).await.expect("open");
    let mut conn = store.pool().acquire().await.expect("connection");
    write_shipments_and_runs(&mut conn).await;
    Some((admin, name, store, conn))
}

/// A balance in stock at the depot for each of the 50 000 lots of
/// [`write_shipments_and_runs`].
const BALANCES_OF_LOTS: &str = "insert into balances (account, lot, sku, qty, value, guarded)
     select 'stock:DEPOT', 'L-' || i, 'MASK', 10, 100, true from generate_series(1, 50000) i";

/// 50 000 shipments of one line each and 50 000 production runs of one material each, with
/// what they refer to, written directly: tables of a size at which a plan that reads a whole
/// table for each lookup or page shows.
async fn write_shipments_and_runs(conn: &mut sqlx::PgConnection) {
    for statement in [
        "insert into items (sku, name, kind, unit, decimals) values ('MASK', 'Mask', 'supply', 'pc', 0)",
        "insert into locations (code, name) values ('DEPOT', 'Depot')",
        "insert into parties (code, name, kind) values ('COM-1', 'Community', 'community')",
        "insert into entries (seq, date, kind, document, actor, memo, hash, recorded_at)
         select i, '2020-01-01', 'dispatch', 'B-' || i, 't', '', '', '' from generate_series(1, 50000) i",
        "insert into lots (lot, sku, origin_kind, origin_doc, origin_seq)
         select 'L-' || i, 'MASK', 'purchase', 'PO-' || i, i from generate_series(1, 50000) i",
        "insert into shipments (id, kind, date, from_location, status, dispatch_seq)
         select 'B-' || lpad(i::text, 8, '0'), 'batch', '2020-01-01', 'DEPOT', 'dispatched', i
         from generate_series(1, 50000) i",
        "insert into shipment_lines (shipment_id, pos, destination, sku, lot, dispatched_qty,
                                     acknowledged_qty, damaged_qty, short_qty, dispatched_value)
         select 'B-' || lpad(i::text, 8, '0'), 0, 'COM-1', 'MASK', 'L-' || i, 10, 0, 0, 0, 100
         from generate_series(1, 50000) i",
        // 50 000 production runs of one material each, one per lot.
        "insert into boms (product_sku, version, output_qty) values ('MASK', 'v1', 1)",
        "insert into production_runs (run_id, entry_seq, date, product_sku, bom_version, output_lot,
                                      good_qty, scrap_qty, material_cost, labor_cost,
                                      overhead_cost, total_cost, unit_cost)
         select 'R-' || i, i, '2020-01-01', 'MASK', 'v1', 'L-' || i, 1, 0, 0, 0, 0, 0, 0
         from generate_series(1, 50000) i",
        "insert into production_run_materials (run_id, idx, material_sku, standard_qty, actual_qty, actual_cost)
         select 'R-' || i, 0, 'MASK', 1, 1, 0 from generate_series(1, 50000) i",
    ] {
        sqlx::query(statement)
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

/// The pages of the lists of production runs and of shipments are read in order from an index
/// from the cursor on, not by reading every row after it (or every row) and sorting them for
/// each page, where the planner has no statistics and plans a statement sqlx keeps prepared
/// generically, as it does after the statement's fifth execution: paging through a list was
/// quadratic in its length (the production report 10 s at 10M postings, the in-transit
/// report 45 s, most of it a hash of every shipment line for each page).
#[tokio::test]
async fn pages_of_lists_are_read_in_order_without_statistics() {
    let Some((admin, name, store, mut conn)) = store_with_shipments_and_runs().await else {
        return;
    };
    // A page of production runs, planned generically: by the index in entry order. The
    // premise: one statement for every filter, each written `$n::text is null or ...`, is
    // planned as a bitmap of every run after the cursor and a sort.
    sqlx::query("set plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await
        .expect("generic plans");
    let one_for_all = "select r.* from production_runs r
         where r.entry_seq > $1 and ($2::text is null or r.run_id = $2) and ($3::text is null or r.product_sku = $3)
         order by r.entry_seq limit $4";
    for (statement, sql, args, in_order) in [
        (
            "one_for_all",
            one_for_all.to_owned(),
            "25000, null, null, 500",
            false,
        ),
        (
            "runs_page",
            store_postgres::runs_page_sql(false, false),
            "25000, 500",
            true,
        ),
    ] {
        let plan = prepared_plan(&mut conn, statement, &sql, args).await;
        let reads = |what: &str| plan.iter().any(|l| l.contains(what));
        let by_index = reads("Index Scan using production_runs_entry_seq_key")
            && !reads("Sort")
            && !reads("Bitmap");
        assert_eq!(by_index, in_order, "{statement}:\n{}", plan.join("\n"));
    }
    // Every combination of filters is a statement that runs.
    for (by_id, by_product) in [(false, false), (true, false), (false, true), (true, true)] {
        let sql = store_postgres::runs_page_sql(by_id, by_product);
        let mut q = sqlx::query(&sql).bind(0_i64);
        if by_id {
            q = q.bind("R-7");
        }
        if by_product {
            q = q.bind("MASK");
        }
        let found = q.bind(500_i64).fetch_all(&mut *conn).await.expect(&sql);
        assert_eq!(found.len(), if by_id { 1 } else { 500 }, "{sql}");
    }
    // Pages of shipments, planned generically too, by index as the store plans them: a
    // kind's (a list by kind, the donations report) from the index of kind and dispatch order
    // (migration 0010), and a kind's of one status (the in-transit report) from the index of
    // kind, status and dispatch order; neither sorts the shipments. Their lines by key, not a
    // hash of every line.
    let mut tx = sqlx::Connection::begin(&mut *conn).await.expect("begin");
    store_postgres::plan_reads_by_index(&mut tx)
        .await
        .expect("plan by index");
    for (statement, by_status, args, index) in [
        (
            "kind_page",
            false,
            "0, 'batch', 1000",
            "shipments_kind_dispatch",
        ),
        (
            "open_page",
            true,
            "0, 'batch', 'dispatched', 1000",
            "shipments_kind_status",
        ),
    ] {
        let sql = store_postgres::shipments_page_sql(false, true, by_status, false);
        let plan = prepared_plan(&mut tx, statement, &sql, args).await;
        let reads = |what: &str| plan.iter().any(|l| l.contains(what));
        let sorted = plan
            .iter()
            .any(|l| l.contains("Sort Key: s.dispatch_seq") && !l.contains("x.pos"));
        assert!(
            reads(&format!("Index Scan using {index} on shipments"))
                && !sorted
                && reads("shipment_lines_shipment_id_pos_key")
                && !reads("Seq Scan on shipment_lines")
                && !reads("Hash"),
            "{statement}:\n{}",
            plan.join("\n")
        );
        let page = sqlx::query(&format!("execute {statement} ({args})"))
            .fetch_all(&mut *tx)
            .await
            .expect("a page of shipments");
        assert_eq!(page.len(), 1000);
    }
    tx.rollback().await.expect("rollback");
    // Through the store, a page after a cursor starts where it says.
    let filter = store::ShipmentFilter {
        kind: Some("batch".into()),
        ..Default::default()
    };
    let page = store::Store::shipments(&store, &filter, Some(20_000), 10)
        .await
        .expect("a page of shipments");
    let seqs: Vec<u64> = page.iter().map(|s| s.dispatch_seq).collect();
    assert_eq!(seqs, (20_001..=20_010).collect::<Vec<u64>>());

    drop(conn);
    drop_scratch(admin, &name, &store).await;
}

/// Updates of shipment lines and balances, the two tables the writer updates, are heap-only
/// (HOT): the new version of a row goes on the row's own page, and no index gets an entry
/// for it, because the pages keep room for it (migration 0011). Written full, as by default,
/// a page has no room, and every update moved its row and added an entry to every index.
#[tokio::test]
async fn updates_of_lines_and_balances_stay_on_their_pages() {
    let Some((admin, name, store, mut conn)) = store_with_shipments_and_runs().await else {
        return;
    };
    sqlx::query(BALANCES_OF_LOTS)
        .execute(&mut *conn)
        .await
        .expect("balances");
    // One transaction: its own counts of updates, and of heap-only ones, per table.
    let mut tx = sqlx::Connection::begin(&mut *conn).await.expect("begin");
    // Every line acknowledged once, as the writer writes it: an upsert of the whole line.
    sqlx::query(
        "insert into shipment_lines (shipment_id, pos, destination, sku, lot, dispatched_qty,
                                     acknowledged_qty, damaged_qty, short_qty, dispatched_value)
         select shipment_id, pos, destination, sku, lot, dispatched_qty, dispatched_qty,
                damaged_qty, short_qty, dispatched_value
         from shipment_lines
         on conflict (shipment_id, destination, lot) do update
         set acknowledged_qty = excluded.acknowledged_qty",
    )
    .execute(&mut *tx)
    .await
    .expect("acknowledge every line");
    // A tenth of the balances moved, as a batch moves some of the many.
    sqlx::query(
        "update balances set qty = qty + 1, value = value + 10 where substr(lot, 3)::int % 10 = 0",
    )
    .execute(&mut *tx)
    .await
    .expect("move a tenth of the balances");
    let counts: Vec<(String, i64, i64)> = sqlx::query_as(
        "select relname::text, n_tup_upd, n_tup_hot_upd from pg_stat_xact_user_tables
         where relname in ('balances', 'shipment_lines') order by relname",
    )
    .fetch_all(&mut *tx)
    .await
    .expect("this transaction's counts");
    assert_eq!(
        counts,
        vec![
            ("balances".to_owned(), 5_000, 5_000),
            ("shipment_lines".to_owned(), 50_000, 50_000),
        ],
        "(table, updates, heap-only updates)"
    );
    tx.rollback().await.expect("rollback");

    drop(conn);
    drop_scratch(admin, &name, &store).await;
}

/// Whether `sql` reads `table` on `conn` through its primary key, in its order (no bitmap
/// scan, no sort), with the plan.
async fn read_by_key(conn: &mut sqlx::PgConnection, sql: &str, table: &str) -> (bool, String) {
    let plan: Vec<String> = sqlx::query_scalar(&format!("explain {sql}"))
        .fetch_all(conn)
        .await
        .expect("explain");
    let plan = plan.join("\n");
    let by_key = plan.contains(&format!("Index Scan using {table}_pkey on {table}"))
        && !plan.contains("Bitmap")
        && !plan.contains("Sort");
    (by_key, plan)
}

/// A snapshot's journal pages are read by index scans on both of its connections where the
/// tables have no statistics (after a bulk import; always where autovacuum is off). Without
/// the snapshot's planner settings the planner picks a bitmap scan of every entry up to the
/// head and a sort, for each page: the second connection had none in session 13, and a
/// reconciliation of 10M postings took four times as long.
#[tokio::test]
async fn a_snapshots_second_connection_reads_pages_by_key_without_statistics() {
    let Some((admin, name, db_url)) = scratch_database().await else {
        return;
    };
    let store = PgStore::open(&db_url).await.expect("open");
    let pages = [
        (
            store_postgres::entries_page_sql(4_096, 1_300_000, 4_096),
            "entries",
        ),
        (store_postgres::postings_page_sql(4_096, 8_192), "postings"),
    ];
    // The premise: a connection planned as the server pleases scans and sorts.
    let mut bare = store.pool().acquire().await.expect("a connection");
    for (sql, table) in &pages {
        let (by_key, plan) = read_by_key(&mut bare, sql, table).await;
        assert!(
            !by_key,
            "the planner now reads {table} by key unaided; this test no longer tests:\n{plan}"
        );
    }
    drop(bare);
    let mut lane = store_postgres::open_lane(store.pool())
        .await
        .expect("a lane");
    for (sql, table) in &pages {
        let (by_key, plan) = read_by_key(&mut lane, sql, table).await;
        assert!(by_key, "{table} on the lane:\n{plan}");
    }
    drop(lane);
    drop_scratch(admin, &name, &store).await;
}

/// The planner's settings a snapshot's reads change: (`enable_seqscan`, `enable_bitmapscan`).
async fn scan_settings(conn: &mut sqlx::PgConnection) -> (String, String) {
    sqlx::query_as("select current_setting('enable_seqscan'), current_setting('enable_bitmapscan')")
        .fetch_one(conn)
        .await
        .expect("the scan settings")
}

/// A snapshot reads the lots table a page at a time through its primary key where the table
/// has no statistics. Planned as the snapshot's other reads are, each page read and sorted
/// every lot (spilling the sort to disk at 140 000 lots); the setting that prevents it is
/// undone after the page, so the snapshot's other reads are planned as before.
#[tokio::test]
async fn a_snapshots_pages_of_lots_are_read_by_key_without_statistics() {
    let Some((admin, name, store, conn)) = store_with_shipments_and_runs().await else {
        return;
    };
    drop(conn);
    // Planned as a snapshot's reads are, on a transaction of its own.
    let mut lane = store_postgres::open_lane(store.pool())
        .await
        .expect("a lane");
    sqlx::query(&format!(
        "prepare lot_items_page as {}",
        store_postgres::LOT_ITEMS_PAGE_SQL
    ))
    .execute(&mut *lane)
    .await
    .expect("prepare");
    let page = "execute lot_items_page ('L-1', 65536)";
    // The premise: without the setting the page is a scan and a sort of every lot.
    let (by_key, plan) = read_by_key(&mut lane, page, "lots").await;
    assert!(
        !by_key,
        "the planner now reads lots by key unaided; this test no longer tests:\n{plan}"
    );
    let before = scan_settings(&mut lane).await;
    for statement in store_postgres::LOT_ITEMS_BY_KEY {
        sqlx::query(statement)
            .execute(&mut *lane)
            .await
            .expect(statement);
    }
    let (by_key, plan) = read_by_key(&mut lane, page, "lots").await;
    assert!(by_key, "a page of lots on a snapshot:\n{plan}");
    for statement in store_postgres::LOT_ITEMS_PLANNED_AS_BEFORE {
        sqlx::query(statement)
            .execute(&mut *lane)
            .await
            .expect(statement);
    }
    assert_eq!(
        scan_settings(&mut lane).await,
        before,
        "the scan settings after a page of lots"
    );
    // The savepoint ended with the page, so pages do not pile savepoints up: a second release
    // fails (and aborts the transaction, which is not used again).
    let again = sqlx::query("release savepoint lot_items")
        .execute(&mut *lane)
        .await;
    assert!(again.is_err(), "the page's savepoint outlived it");
    drop(lane);
    // The store's own pages: every lot once, in byte order.
    let snapshot = store.snapshot().await.expect("snapshot");
    let mut lots = Vec::new();
    let mut after = String::new();
    loop {
        let page = snapshot.lot_items(&after, 20_000).await.expect("a page");
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        lots.extend(page);
    }
    drop(snapshot);
    assert_eq!(lots.len(), 50_000);
    assert!(
        lots.windows(2).all(|w| w[0].0 < w[1].0),
        "pages in lot order"
    );
    assert!(lots.iter().all(|(_, sku)| sku == "MASK"));
    drop_scratch(admin, &name, &store).await;
}

/// The capacity hint a reconciliation sizes its tables by: the number of balances, about,
/// before the planner has ever counted them (no statistics: autovacuum off, or a bulk import
/// just done), when its estimate is -1 and the pass's tables doubled their way to every key.
#[tokio::test]
async fn the_balances_hint_counts_balances_the_planner_never_counted() {
    let Some((admin, name, store, mut conn)) = store_with_shipments_and_runs().await else {
        return;
    };
    let balances = 50_000u64;
    sqlx::query(BALANCES_OF_LOTS)
        .execute(&mut *conn)
        .await
        .expect("balances");
    let estimate: f32 =
        sqlx::query_scalar("select reltuples from pg_class where oid = 'balances'::regclass")
            .fetch_one(&mut *conn)
            .await
            .expect("the planner's estimate");
    assert!(
        estimate < 0.0,
        "the premise: the planner has no estimate of the balances yet, it has {estimate}"
    );
    // Before the planner has counted them, then after (`analyze`), when its estimate is the
    // hint: room for all either way.
    for (counted, then) in [
        ("never counted", Some("analyze balances")),
        ("counted", None),
    ] {
        let snapshot = store.snapshot().await.expect("snapshot");
        let hint = snapshot.balances_hint().await.expect("the hint");
        assert!(
            (balances..=4 * balances).contains(&hint),
            "{hint} for {balances} balances the planner {counted}"
        );
        drop(snapshot);
        if let Some(then) = then {
            sqlx::query(then).execute(&mut *conn).await.expect(then);
        }
    }
    drop(conn);
    drop_scratch(admin, &name, &store).await;
}
