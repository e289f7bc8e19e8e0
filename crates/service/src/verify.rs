//! `verify`: recompute every hash of the chain, check that sequence numbers have no gap, that
//! the head row agrees with the last entry, that maintained balances equal their postings,
//! and that what shipments say is outstanding is what their transit accounts hold.

use ledger::Hash;
use store::{Store, StoreError};

use crate::dto::VerifyReport;
use crate::error::Result;
use crate::views::mismatch_view;

/// Entries read per page while verifying.
const VERIFY_PAGE: u32 = 1_000;

pub(crate) async fn run(
    store: &dyn Store,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<VerifyReport> {
    let head = store.head().await?;
    let mut prev = Hash::GENESIS;
    let mut expected_seq = 1u64;
    let mut first_bad: Option<u64> = None;
    let mut problems = Vec::new();
    let mut after = 0u64;
    'pages: loop {
        let page = match store.entries(after, VERIFY_PAGE).await {
            Ok(p) => p,
            Err(StoreError::CorruptEntry { seq, message }) => {
                first_bad.get_or_insert(seq);
                problems.push(format!("entry {seq} cannot be read: {message}"));
                break 'pages;
            }
            Err(e) => return Err(e.into()),
        };
        let Some(last) = page.last() else { break };
        after = last.entry.seq();
        for e in &page {
            let seq = e.entry.seq();
            if seq != expected_seq {
                first_bad.get_or_insert(expected_seq);
                problems.push(format!(
                    "entry {expected_seq} is missing (next stored entry is {seq})"
                ));
                break 'pages;
            }
            let computed = e.entry.chain_hash(&prev);
            if computed != e.hash {
                first_bad.get_or_insert(seq);
                problems.push(format!("entry {seq}: stored hash {} but its content and the previous hash give {computed}", e.hash));
                break 'pages;
            }
            prev = e.hash;
            expected_seq += 1;
        }
        progress(after, head.seq);
    }
    let entries = expected_seq - 1;
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
    let mismatches = match store.balance_mismatches().await {
        Ok(m) => m,
        // Data written outside the service can make the recomputation itself impossible;
        // that is a finding of verify, not a failure of it.
        Err(StoreError::Corrupt(message)) => {
            balances_readable = false;
            problems.push(message);
            Vec::new()
        }
        Err(e) => return Err(e.into()),
    };
    for m in &mismatches {
        problems.push(format!(
            "balance {} {} is {} / {} but its postings sum to {} / {}",
            m.account, m.lot, m.maintained_qty, m.maintained_value, m.posted_qty, m.posted_value
        ));
    }
    // A shipment's lines say what is still in transit; the transit balance must agree.
    let shipments = store.shipment_mismatches().await?;
    for m in &shipments {
        problems.push(format!(
            "shipment {} lot {}: its lines have {} outstanding but transit:{} holds {}",
            m.shipment,
            m.lot,
            ledger::Qty::from_scaled(m.outstanding_qty),
            m.shipment,
            ledger::Qty::from_scaled(m.transit_qty)
        ));
    }
    Ok(VerifyReport {
        ok: first_bad.is_none()
            && mismatches.is_empty()
            && shipments.is_empty()
            && balances_readable,
        entries,
        head_hash: head.hash.to_hex(),
        first_bad_seq: first_bad,
        problems,
        balance_mismatches: mismatches.iter().map(mismatch_view).collect(),
    })
}
