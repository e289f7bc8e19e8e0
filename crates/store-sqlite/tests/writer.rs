//! The writer connection of `SqliteStore`: a batch dropped uncommitted is rolled back and
//! frees the connection, and direct writes wait for a batch in progress instead of failing.

use std::time::Duration;

use ledger::{Hash, Location, LocationCode};
use store::{Head, Inserted, Store, WriteBatch};
use store_sqlite::SqliteStore;

async fn open(dir: &tempfile::TempDir) -> SqliteStore {
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    SqliteStore::open(&url).await.expect("a file opens")
}

/// A batch that moves only the head's hash: enough to see whether it was kept.
fn moved_head(hash: Hash) -> WriteBatch {
    WriteBatch {
        head: Some(Head {
            seq: 0,
            hash,
            closed_through: None,
        }),
        ..WriteBatch::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_dropped_uncommitted_is_rolled_back_and_frees_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let before = store.head().await.unwrap();
    let other = Hash([7; 32]);
    assert_ne!(before.hash, other);

    let mut tx = store.begin().await.unwrap();
    tx.write(&moved_head(other)).await.unwrap();
    assert_eq!(tx.head().hash, other, "the transaction sees its own write");
    drop(tx);

    // The next batch begins (it would wait forever for a connection never given back, or
    // fail to begin inside a transaction left open) and reads the head from before.
    let tx = tokio::time::timeout(Duration::from_secs(10), store.begin())
        .await
        .expect("the writer is free again")
        .unwrap();
    assert_eq!(
        tx.head().hash,
        before.hash,
        "the dropped write was rolled back"
    );
    tx.commit().await.unwrap();
    assert_eq!(store.head().await.unwrap().hash, before.hash);

    // A committed batch is kept.
    let mut tx = store.begin().await.unwrap();
    tx.write(&moved_head(other)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.head().await.unwrap().hash, other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_write_waits_for_the_batch_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let tx = store.begin().await.unwrap();

    let location = Location::new(LocationCode::parse("WAIT").unwrap(), "Waiting room").unwrap();
    let insert = tokio::spawn({
        let store = store.clone();
        let location = location.clone();
        async move { store.insert_location(&location).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !insert.is_finished(),
        "the insert went ahead of the batch that holds the writer"
    );

    tx.commit().await.unwrap();
    let inserted = tokio::time::timeout(Duration::from_secs(10), insert)
        .await
        .expect("the insert goes ahead once the batch commits")
        .unwrap()
        .expect("and succeeds rather than finding the database busy");
    assert!(matches!(inserted, Inserted::Created));
    assert_eq!(
        store.location("WAIT").await.unwrap().as_ref(),
        Some(&location)
    );
}
