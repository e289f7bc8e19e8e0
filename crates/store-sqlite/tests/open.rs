//! Opening `SqliteStore`: a file is opened and readable by every connection of the store,
//! and a database that would live only in memory is refused by name; and the SQLite built in
//! is the one configured for the workspace; and the writer's lookups read the indexes meant
//! for them.

use store::{Store, StoreError};
use store_sqlite::SqliteStore;

#[tokio::test]
async fn an_in_memory_database_is_refused() {
    for url in [
        "sqlite::memory:",
        "sqlite://:memory:",
        "sqlite://?mode=memory",
    ] {
        match SqliteStore::open(url).await {
            Err(StoreError::BadUrl(message)) => {
                assert!(message.contains("in-memory"), "{url}: {message}");
                assert!(message.contains(url), "{url}: {message}");
            }
            Err(e) => panic!("{url}: another error: {e}"),
            Ok(_) => panic!("{url}: opened"),
        }
    }
}

#[tokio::test]
async fn a_new_file_reads_an_empty_journal() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let store = SqliteStore::open(&url).await.expect("a file opens");
    // A snapshot opens the same file on a connection of its own.
    let snapshot = store.snapshot().await.expect("a snapshot opens");
    assert_eq!(snapshot.head().seq, 0);
    let page = snapshot
        .journal_page(0, 10)
        .await
        .expect("the journal reads");
    assert!(page.is_empty());
    assert_eq!(store.head().await.unwrap().seq, 0);
}

/// The SQLite built into the binary counts no memory statistics (`.cargo/config.toml`): with
/// them, every allocation SQLite makes takes a global mutex. sqlx and rusqlite share this one
/// build, so asking either is asking both.
#[test]
fn sqlite_is_built_without_memory_statistics() {
    let conn = rusqlite::Connection::open_in_memory().expect("an in-memory connection");
    let mut st = conn.prepare("pragma compile_options").expect("prepared");
    let options: Vec<String> = st
        .query_map([], |r| r.get(0))
        .expect("the options")
        .collect::<Result<_, _>>()
        .expect("each option");
    assert!(
        options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
        "{options:?}"
    );
}

/// First-expiry-first picking finds a location's open lots of an item through the index of
/// guarded balances (migration 0007), the only balances it picks from, and not by the primary
/// key, which reads every balance the account ever had, of every item: the answer would be
/// the same, only slower as the ledger grows, so the plan is what is checked.
#[tokio::test]
async fn lots_to_pick_are_found_through_the_index_of_guarded_balances() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("a file opens and migrates");
    let conn = rusqlite::Connection::open(&path).expect("the migrated file");
    let sql = format!(
        "explain query plan with k (account, sku) as (values ('stock:DEPOT', 'MASK')) {}",
        store_sqlite::LOT_GROUPS_SQL
    );
    let mut st = conn.prepare(&sql).expect("the lookup prepares");
    let plan: Vec<String> = st
        .query_map([], |r| r.get("detail"))
        .expect("the plan")
        .collect::<Result<_, _>>()
        .expect("each step");
    let balances: Vec<&String> = plan.iter().filter(|d| d.contains(" b ")).collect();
    assert!(
        !balances.is_empty()
            && balances
                .iter()
                .all(|d| d.contains("USING INDEX balances_guarded_account_sku")),
        "{plan:?}"
    );
}
