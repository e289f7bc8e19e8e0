//! `verify`: recompute every hash of the chain, check that sequence numbers have no gap, that
//! the head row agrees with the last entry, that maintained balances equal their postings,
//! and that what shipments say is outstanding is what their transit accounts hold. The
//! journal is read once, by [`crate::scan`].

use store::{Snapshot, Store, StoreError};

use crate::dto::VerifyReport;
use crate::error::Result;
use crate::scan::Scan;
use crate::views::mismatch_view;

pub(crate) async fn run(
    store: &dyn Store,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<VerifyReport> {
    // The head, the journal and the balances as they were at one moment: writes that land
    // during the pass are the next verify's.
    let snapshot = store.snapshot().await?;
    let scan = crate::scan::run(&*snapshot, progress).await?;
    Ok(report(store, &*snapshot, &scan).await?.0)
}

/// The verify report of a pass over the snapshot's journal, with the balance mismatches it
/// found (the reconciliation report reuses them rather than comparing again). A journal the
/// pass could not read to its end falls back to SQL over the store, outside the snapshot.
pub(crate) async fn report(
    store: &dyn Store,
    snapshot: &dyn Snapshot,
    scan: &Scan,
) -> Result<(VerifyReport, Vec<store::BalanceMismatch>)> {
    let head = snapshot.head();
    let mut first_bad = scan.chain.first_bad;
    let mut problems = scan.chain.problems.clone();
    let entries = scan.chain.entries;
    let prev = scan.chain.last_hash;
    if first_bad.is_none() && (head.seq != entries || head.hash != prev) {
        // The first entry the head and the journal disagree on: the one after the shorter of
        // the two, or the last one when they agree on the count but not on its hash.
        first_bad = Some(if head.seq == entries {
            entries.max(1)
        } else {
            head.seq.min(entries) + 1
        });
        problems.push(format!("the ledger head says entry {} with hash {}, the journal ends at entry {entries} with hash {prev}", head.seq, head.hash));
    }
    let mut balances_readable = true;
    // The pass's sums when it read the whole journal; else the database's own recomputation,
    // which reads past a row the domain cannot decode.
    let mismatches = if scan.complete {
        scan.balance_mismatches(snapshot).await
    } else {
        store.balance_mismatches().await.map_err(Into::into)
    };
    let mismatches = match mismatches {
        Ok(m) => m,
        // Data written outside the service can make the recomputation itself impossible;
        // that is a finding of verify, not a failure of it.
        Err(crate::error::ServiceError::Store(StoreError::Corrupt(message))) => {
            balances_readable = false;
            problems.push(message);
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    for m in &mismatches {
        problems.push(format!(
            "balance {} {} is {} / {} but its postings sum to {} / {}",
            m.account, m.lot, m.maintained_qty, m.maintained_value, m.posted_qty, m.posted_value
        ));
    }
    // A shipment's lines say what is still in transit; the transit balance must agree (read
    // by the pass, in its snapshot).
    let shipments = &scan.shipments;
    for m in shipments {
        problems.push(format!(
            "shipment {} lot {}: its lines have {} outstanding but transit:{} holds {}",
            m.shipment,
            m.lot,
            ledger::Qty::from_scaled(m.outstanding_qty),
            m.shipment,
            ledger::Qty::from_scaled(m.transit_qty)
        ));
    }
    let report = VerifyReport {
        ok: first_bad.is_none()
            && mismatches.is_empty()
            && shipments.is_empty()
            && balances_readable,
        entries,
        head_hash: head.hash.to_hex(),
        first_bad_seq: first_bad,
        problems,
        balance_mismatches: mismatches.iter().map(mismatch_view).collect(),
    };
    Ok((report, mismatches))
}
