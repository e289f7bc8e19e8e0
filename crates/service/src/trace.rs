//! Trace and recall: from a lot backward to the runs, material lots and suppliers or donors it
//! came from, or forward to the runs that used it, their output lots, the shipments that
//! carried them and the recipients, with quantities attributed through each step.
//!
//! Attribution: when a run consumed `q` of a material lot and `Q` of that material in all, each
//! output lot of the run is attributed `q / Q` of its quantity, and so is everything that
//! output lot went on to. Quantities are shown rounded half-even to 3 decimals.

use std::collections::HashMap;

use futures_util::{StreamExt, TryStreamExt};
use ledger::{Account, Qty};
use rust_decimal::Decimal;
use serde::Serialize;
use store::{LotPosting, StoredEntry};
use utoipa::ToSchema;

use crate::error::{Result, ServiceError};
use crate::Service;

/// How far a trace follows runs into runs, so that a cycle in bad data cannot run away.
const TRACE_DEPTH_MAX: usize = 8;
/// Reads of the postings of the lots one step of a forward trace goes on into, in flight at
/// once. One after another, with the runs' entries and the lots, they were a round trip
/// each: a trace of a lot that fed 36 runs made 146 of them.
const TRACE_READS_AT_ONCE: usize = 4;

/// Which way to walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Backward,
    Forward,
}

/// One step of a trace.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TraceNode {
    /// lot, run, purchase, receipt, supplier, donor, shipment, recipient, loss, in-transit
    pub kind: String,
    /// The lot number, document id or party code.
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// The quantity along this step (attributed, forward).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<String>,
    /// A party's name and place, where the step names a party.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub children: Vec<TraceNode>,
}

/// A recipient that received goods made from (or being) the traced lot.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RecallRow {
    pub recipient: String,
    pub name: String,
    pub party_kind: String,
    pub country: Option<String>,
    pub city: Option<String>,
    pub shipment_id: String,
    pub date: String,
    pub sku: String,
    pub lot: String,
    /// Attributed to the traced lot, 3 decimals.
    pub quantity: String,
}

/// The answer of `GET /trace/{lot}`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TraceView {
    pub lot: String,
    pub sku: String,
    pub direction: String,
    pub tree: TraceNode,
    /// Forward only: every recipient reached, with quantity and date.
    pub recall: Vec<RecallRow>,
}

fn shown(q: Decimal) -> String {
    ledger::num::round_half_even(q, 3).normalize().to_string()
}

fn node(kind: &str, id: &str) -> TraceNode {
    TraceNode {
        kind: kind.into(),
        id: id.into(),
        sku: None,
        date: None,
        quantity: None,
        detail: None,
        children: Vec::new(),
    }
}

struct Walk<'a> {
    service: &'a Service,
    lots: HashMap<String, Option<ledger::Lot>>,
    parties: HashMap<String, Option<ledger::Party>>,
    /// Lots' postings read ahead of the walk (`postings_ahead`), each taken when the walk
    /// reaches its lot.
    postings: HashMap<String, Vec<LotPosting>>,
    recall: Vec<RecallRow>,
}

/// A lot's postings with one posting per (entry, account): a dispatch to several destinations
/// posts the lot into its transit account once per line.
fn merged(read: Vec<LotPosting>) -> Vec<LotPosting> {
    let mut postings: Vec<LotPosting> = Vec::with_capacity(read.len());
    for p in read {
        match postings.last_mut() {
            Some(last) if last.seq == p.seq && last.account == p.account => {
                last.qty += p.qty;
                last.value += p.value;
            }
            _ => postings.push(p),
        }
    }
    postings
}

impl Walk<'_> {
    async fn lot(&mut self, lot: &str) -> Result<Option<ledger::Lot>> {
        self.lots_ahead(&[lot.to_owned()]).await?;
        Ok(self.lots[lot].clone())
    }

    /// Reads the lots of `lots` not read yet, in one query.
    async fn lots_ahead(&mut self, lots: &[String]) -> Result<()> {
        let mut missing: Vec<String> = lots
            .iter()
            .filter(|l| !self.lots.contains_key(*l))
            .cloned()
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        for lot in self.service.store().lots(&missing).await? {
            self.lots.insert(lot.lot.to_string(), Some(lot));
        }
        for lot in missing {
            self.lots.entry(lot).or_insert(None);
        }
        Ok(())
    }

    /// A lot's postings, merged: read ahead, or read now.
    async fn lot_postings(&mut self, lot: &str) -> Result<Vec<LotPosting>> {
        match self.postings.remove(lot) {
            Some(p) => Ok(p),
            None => Ok(merged(self.service.store().lot_postings(lot).await?)),
        }
    }

    /// Reads the postings of `lots`, a few lots at once.
    async fn postings_ahead(&mut self, lots: &[&str]) -> Result<()> {
        let store = self.service.store();
        // The reads gathered first: a stream that maps the lots' borrowed texts to reads as it
        // goes is not `Send` for every lifetime, which the HTTP handler needs.
        let reads: Vec<_> = lots.iter().map(|lot| store.lot_postings(lot)).collect();
        let read: Vec<Vec<LotPosting>> = futures_util::stream::iter(reads)
            .buffered(TRACE_READS_AT_ONCE)
            .try_collect()
            .await?;
        for (lot, postings) in lots.iter().zip(read) {
            self.postings.insert((*lot).to_owned(), merged(postings));
        }
        Ok(())
    }

    async fn party(&mut self, code: &str) -> Result<Option<ledger::Party>> {
        if !self.parties.contains_key(code) {
            let found = self.service.store().party(code).await?;
            self.parties.insert(code.to_owned(), found);
        }
        Ok(self.parties[code].clone())
    }

    async fn party_node(&mut self, kind: &str, code: &str) -> Result<TraceNode> {
        let mut n = node(kind, code);
        if let Some(p) = self.party(code).await? {
            let place = [p.city(), p.country()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", ");
            n.detail = Some(if place.is_empty() {
                p.name().to_owned()
            } else {
                format!("{} ({place})", p.name())
            });
        }
        Ok(n)
    }

    /// Where a lot came from.
    async fn backward(&mut self, lot_no: &str, depth: usize) -> Result<TraceNode> {
        let mut n = node("lot", lot_no);
        let Some(lot) = self.lot(lot_no).await? else {
            return Ok(n);
        };
        n.sku = Some(lot.sku.to_string());
        let Some(origin) = self.service.store().entry(lot.origin_seq).await? else {
            return Ok(n);
        };
        let entry = &origin.entry;
        n.date = Some(entry.date().to_string());
        let made: Qty = entry
            .postings()
            .iter()
            .filter(|p| p.lot == lot.lot && p.account.guarded() && p.qty.is_positive())
            .map(|p| p.qty)
            .sum();
        n.quantity = Some(made.to_string());
        let doc = lot.origin_doc.to_string();
        let mut step = node(lot.origin_kind.as_str(), &doc);
        step.date = Some(entry.date().to_string());
        match lot.origin_kind {
            ledger::EntryKind::Production => {
                step.kind = "run".into();
                let run = Account::Production(lot.origin_doc.clone());
                for p in entry
                    .postings()
                    .iter()
                    .filter(|p| p.account == run && p.qty.is_positive() && p.lot != lot.lot)
                {
                    let mut material = if depth < TRACE_DEPTH_MAX {
                        Box::pin(self.backward(p.lot.as_str(), depth + 1)).await?
                    } else {
                        node("lot", p.lot.as_str())
                    };
                    material.quantity = Some(p.qty.to_string());
                    material.sku = Some(p.sku.to_string());
                    step.children.push(material);
                }
            }
            _ => {
                if let Some(source) = &lot.source {
                    let kind = if lot.origin_kind == ledger::EntryKind::Purchase {
                        "supplier"
                    } else {
                        "donor"
                    };
                    step.children
                        .push(self.party_node(kind, source.as_str()).await?);
                }
            }
        }
        n.children.push(step);
        Ok(n)
    }

    /// Where a lot went, each quantity scaled by `share` (the part attributed to the traced lot).
    async fn forward(&mut self, lot_no: &str, share: Decimal, depth: usize) -> Result<TraceNode> {
        let mut n = node("lot", lot_no);
        let Some(lot) = self.lot(lot_no).await? else {
            return Ok(n);
        };
        n.sku = Some(lot.sku.to_string());
        let postings = self.lot_postings(lot_no).await?;
        let made: Decimal = postings
            .iter()
            .filter(|p| {
                p.seq == lot.origin_seq && p.account.starts_with("stock:") && p.qty.is_positive()
            })
            .map(|p| p.qty.decimal())
            .sum();
        n.quantity = Some(shown(made * share));
        n.date = postings
            .iter()
            .find(|p| p.seq == lot.origin_seq)
            .map(|p| p.date.to_string());
        // Consumption by runs: their entries in one read, then the lots they made in one
        // query, then the postings of those the walk goes on into, a few at once.
        let consumed: Vec<&LotPosting> = postings
            .iter()
            .filter(|p| {
                p.account.starts_with("production:")
                    && p.qty.is_positive()
                    && p.seq != lot.origin_seq
            })
            .collect();
        let seqs: Vec<u64> = consumed.iter().map(|p| p.seq).collect();
        let entries: HashMap<u64, StoredEntry> = self
            .service
            .store()
            .entries_of(&seqs)
            .await?
            .into_iter()
            .map(|e| (e.entry.seq(), e))
            .collect();
        // Per run: the part of its output attributed to the traced lot, and the lots its
        // entry put in stock other than this one.
        let runs: Vec<Option<(Decimal, Vec<String>)>> = consumed
            .iter()
            .map(|p| {
                let entry = entries.get(&p.seq)?;
                let consumed_of_sku: Decimal = entry
                    .entry
                    .postings()
                    .iter()
                    .filter(|x| {
                        x.account.to_string() == p.account
                            && x.qty.is_positive()
                            && x.sku == lot.sku
                    })
                    .map(|x| x.qty.decimal())
                    .sum();
                let part = if consumed_of_sku.is_zero() {
                    Decimal::ZERO
                } else {
                    share * p.qty.decimal() / consumed_of_sku
                };
                let outputs = entry
                    .entry
                    .postings()
                    .iter()
                    .filter(|x| x.account.guarded() && x.qty.is_positive() && x.lot != lot.lot)
                    .map(|x| x.lot.to_string())
                    .collect();
                Some((part, outputs))
            })
            .collect();
        let outputs: Vec<String> = runs.iter().flatten().flat_map(|(_, o)| o.clone()).collect();
        self.lots_ahead(&outputs).await?;
        // An output is followed where the run created it (not a lot that passed through).
        let created_here = |walk: &Walk<'_>, out: &str, seq: u64| {
            walk.lots[out].as_ref().is_some_and(|l| l.origin_seq == seq)
        };
        if depth < TRACE_DEPTH_MAX {
            let followed: Vec<&str> = consumed
                .iter()
                .zip(&runs)
                .filter_map(|(p, run)| Some((p, run.as_ref()?)))
                .flat_map(|(p, (_, outs))| outs.iter().map(move |o| (o.as_str(), p.seq)))
                .filter(|&(out, seq)| {
                    created_here(self, out, seq) && !self.postings.contains_key(out)
                })
                .map(|(out, _)| out)
                .collect();
            self.postings_ahead(&followed).await?;
        }
        for (p, run_read) in consumed.iter().zip(runs) {
            let run_id = p.account.trim_start_matches("production:").to_owned();
            let mut run = node("run", &run_id);
            run.date = Some(p.date.to_string());
            run.quantity = Some(shown(p.qty.decimal() * share));
            if let Some((part, outputs)) = run_read {
                for out in outputs {
                    if created_here(self, &out, p.seq) {
                        let child = if depth < TRACE_DEPTH_MAX {
                            Box::pin(self.forward(&out, part, depth + 1)).await?
                        } else {
                            node("lot", &out)
                        };
                        run.children.push(child);
                    }
                }
            }
            n.children.push(run);
        }
        // Shipments, and what became of each.
        for p in postings
            .iter()
            .filter(|p| p.account.starts_with("transit:") && p.qty.is_positive())
        {
            let shipment_id = p.account.trim_start_matches("transit:").to_owned();
            let mut s = node("shipment", &shipment_id);
            s.date = Some(p.date.to_string());
            s.quantity = Some(shown(p.qty.decimal() * share));
            let mut arrived = Decimal::ZERO;
            for r in postings
                .iter()
                .filter(|r| r.document == shipment_id && r.seq != p.seq && r.qty.is_positive())
            {
                arrived += r.qty.decimal();
                if let Some(code) = r.account.strip_prefix("recipient:") {
                    let mut rec = self.party_node("recipient", code).await?;
                    rec.date = Some(r.date.to_string());
                    rec.quantity = Some(shown(r.qty.decimal() * share));
                    let party = self.party(code).await?;
                    self.recall.push(RecallRow {
                        recipient: code.to_owned(),
                        name: party
                            .as_ref()
                            .map(|x| x.name().to_owned())
                            .unwrap_or_default(),
                        party_kind: party
                            .as_ref()
                            .map(|x| x.kind().to_string())
                            .unwrap_or_default(),
                        country: party.as_ref().and_then(|x| x.country().map(str::to_owned)),
                        city: party.as_ref().and_then(|x| x.city().map(str::to_owned)),
                        shipment_id: shipment_id.clone(),
                        date: r.date.to_string(),
                        sku: lot.sku.to_string(),
                        lot: lot_no.to_owned(),
                        quantity: shown(r.qty.decimal() * share),
                    });
                    s.children.push(rec);
                } else if r.account == "loss" {
                    let mut loss = node("loss", &r.kind);
                    loss.date = Some(r.date.to_string());
                    loss.quantity = Some(shown(r.qty.decimal() * share));
                    s.children.push(loss);
                }
            }
            let outstanding = p.qty.decimal() - arrived;
            if outstanding > Decimal::ZERO {
                let mut t = node("in-transit", &shipment_id);
                t.quantity = Some(shown(outstanding * share));
                s.children.push(t);
            }
            n.children.push(s);
        }
        // Losses outside shipments (scrap, counts).
        for p in postings.iter().filter(|p| {
            p.account == "loss"
                && p.qty.is_positive()
                && !p.document.is_empty()
                && !postings
                    .iter()
                    .any(|t| t.account == format!("transit:{}", p.document))
        }) {
            let mut loss = node("loss", &format!("{} {}", p.kind, p.document));
            loss.date = Some(p.date.to_string());
            loss.quantity = Some(shown(p.qty.decimal() * share));
            n.children.push(loss);
        }
        Ok(n)
    }
}

impl Service {
    /// Traces a lot backward (where it came from) or forward (where it went, with a recall
    /// list of every recipient reached).
    pub async fn trace(&self, lot: &str, direction: Direction) -> Result<TraceView> {
        let mut walk = Walk {
            service: self,
            lots: HashMap::new(),
            parties: HashMap::new(),
            postings: HashMap::new(),
            recall: Vec::new(),
        };
        let Some(found) = walk.lot(lot).await? else {
            return Err(ledger::Rejection::NotFound {
                what: "lot",
                id: lot.to_owned(),
            }
            .into());
        };
        let tree = match direction {
            Direction::Backward => walk.backward(lot, 0).await?,
            Direction::Forward => walk.forward(lot, Decimal::ONE, 0).await?,
        };
        Ok(TraceView {
            lot: lot.to_owned(),
            sku: found.sku.to_string(),
            direction: if direction == Direction::Forward {
                "forward"
            } else {
                "backward"
            }
            .into(),
            tree,
            recall: walk.recall,
        })
    }
}

impl std::str::FromStr for Direction {
    type Err = ServiceError;
    fn from_str(s: &str) -> Result<Direction> {
        match s {
            "backward" => Ok(Direction::Backward),
            "forward" => Ok(Direction::Forward),
            _ => Err(ServiceError::field(
                "direction",
                "must be backward or forward",
            )),
        }
    }
}
