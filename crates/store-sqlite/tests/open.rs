//! Opening `SqliteStore`: a file is opened and readable by every connection of the store,
//! and a database that would live only in memory is refused by name; and the SQLite built in
//! is the one configured for the workspace.

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
