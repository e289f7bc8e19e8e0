//! The slice of ledger state a decision needs: master data, lots, balances and past entries,
//! loaded by the store before the domain decides and carried forward within a write batch.
//!
//! The domain never reads storage: the writer asks the store to fill a [`State`] with what a
//! document [`Needs`], then the domain decides against it, and [`State::commit`] checks
//! invariants 1 and 2 and applies the entry so that the next document of the same batch sees it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use time::Date;

use crate::entry::{Entry, EntryHeader, EntryKind, Posting};
use crate::error::Rejection;
use crate::ident::{BomVersion, DocId, LocationCode, LotNo, PartyCode, Sku};
use crate::master::{Item, Location, Party};
use crate::num::{Money, Qty};
use crate::production::Bom;
use crate::shipment::{Closure, Shipment, ShipmentChange};
use crate::Account;

/// The balance of one (account, item, lot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Balance {
    pub qty: Qty,
    pub value: Money,
}

/// A lot: every unit of stock belongs to exactly one lot of one item.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Lot {
    pub lot: LotNo,
    pub sku: Sku,
    /// The kind of document that created the lot.
    pub origin_kind: EntryKind,
    pub origin_doc: DocId,
    /// The entry that created the lot; orders lots oldest first.
    pub origin_seq: u64,
    pub expires_on: Option<Date>,
    /// The supplier, donor or manufacturer the lot came from.
    pub source: Option<PartyCode>,
}

impl Lot {
    /// A lot is expired on any date after its expiry date.
    pub fn expired_on(&self, date: Date) -> bool {
        self.expires_on.is_some_and(|e| date > e)
    }
}

/// A past entry as a reversal needs it.
#[derive(Debug, Clone)]
pub struct PastEntry {
    pub entry: Entry,
    pub reversed_by: Option<u64>,
}

/// What a decision needs loaded. The writer computes it from a document, asks the store for
/// what the state does not hold yet, and only then lets the domain decide.
#[derive(Debug, Clone, Default)]
pub struct Needs {
    pub items: BTreeSet<Sku>,
    pub parties: BTreeSet<PartyCode>,
    pub locations: BTreeSet<LocationCode>,
    pub lots: BTreeSet<LotNo>,
    /// Single balances, by (account, lot).
    pub balances: BTreeSet<(Account, LotNo)>,
    /// Every non-zero balance of one item in one account (for lot picking), with its lots.
    pub groups: BTreeSet<(Account, Sku)>,
    pub entries: BTreeSet<u64>,
    /// Every account holding a non-zero balance of a lot, to say where goods went.
    pub holders: BTreeSet<LotNo>,
    /// Shipments with their lines (an acknowledgement is decided against what is outstanding).
    pub shipments: BTreeSet<DocId>,
    /// Bills of materials, by (product, version).
    pub boms: BTreeSet<(Sku, BomVersion)>,
}

impl Needs {
    /// Adds what `other` needs, so that the writer can load what a whole batch needs at once.
    pub fn extend(&mut self, other: Needs) {
        self.items.extend(other.items);
        self.parties.extend(other.parties);
        self.locations.extend(other.locations);
        self.lots.extend(other.lots);
        self.balances.extend(other.balances);
        self.groups.extend(other.groups);
        self.entries.extend(other.entries);
        self.holders.extend(other.holders);
        self.shipments.extend(other.shipments);
        self.boms.extend(other.boms);
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
            && self.parties.is_empty()
            && self.locations.is_empty()
            && self.lots.is_empty()
            && self.balances.is_empty()
            && self.groups.is_empty()
            && self.entries.is_empty()
            && self.holders.is_empty()
            && self.shipments.is_empty()
            && self.boms.is_empty()
    }
}

/// Ledger state as far as it has been loaded, plus what this batch has committed on top.
#[derive(Debug, Clone, Default)]
pub struct State {
    closed_through: Option<Date>,
    items: HashMap<Sku, Option<Item>>,
    parties: HashMap<PartyCode, Option<Party>>,
    locations: HashMap<LocationCode, Option<Location>>,
    lots: HashMap<LotNo, Option<Lot>>,
    balances: HashMap<(Account, LotNo), Balance>,
    groups: HashSet<(Account, Sku)>,
    /// Lots that have a balance in each loaded group, so picking need not scan every balance.
    group_lots: HashMap<(Account, Sku), BTreeSet<LotNo>>,
    entries: HashMap<u64, Option<PastEntry>>,
    /// Where each lot is, as stored before this batch (for messages, not for decisions).
    holders: HashMap<LotNo, Vec<(Account, Balance)>>,
    boms: HashMap<(Sku, BomVersion), Option<Bom>>,
    /// Lots created in this batch: every balance of theirs starts at zero.
    created: HashSet<LotNo>,
    /// What this batch changed, per (account, lot): what the store adds to its balances.
    deltas: HashMap<(Account, LotNo), Balance>,
    /// Shipments with their lines as loaded, then as this batch left them (None: no such
    /// shipment).
    shipments: HashMap<DocId, Option<Shipment>>,
    /// Shipments this batch created: their transit balances cannot exist before it.
    created_shipments: HashSet<DocId>,
    /// Shipments changed since the writer last took the changes for the store: whether each
    /// was created, and the lines touched.
    shipment_changes: BTreeMap<DocId, (bool, BTreeSet<usize>)>,
}

impl State {
    pub fn new(closed_through: Option<Date>) -> State {
        State {
            closed_through,
            ..State::default()
        }
    }

    /// What of `needs` is not loaded yet.
    pub fn missing(&self, needs: &Needs) -> Needs {
        Needs {
            items: needs
                .items
                .iter()
                .filter(|k| !self.items.contains_key(*k))
                .cloned()
                .collect(),
            parties: needs
                .parties
                .iter()
                .filter(|k| !self.parties.contains_key(*k))
                .cloned()
                .collect(),
            locations: needs
                .locations
                .iter()
                .filter(|k| !self.locations.contains_key(*k))
                .cloned()
                .collect(),
            lots: needs
                .lots
                .iter()
                .filter(|k| !self.lots.contains_key(*k))
                .cloned()
                .collect(),
            balances: needs
                .balances
                .iter()
                .filter(|(a, l)| {
                    // A balance is known when it was loaded alone or its whole group was.
                    let in_group = self
                        .lots
                        .get(l)
                        .and_then(|x| x.as_ref())
                        .is_some_and(|lot| self.groups.contains(&(a.clone(), lot.sku.clone())));
                    !in_group && !self.balances.contains_key(&(a.clone(), l.clone()))
                })
                .cloned()
                .collect(),
            groups: needs
                .groups
                .iter()
                .filter(|k| !self.groups.contains(*k))
                .cloned()
                .collect(),
            entries: needs
                .entries
                .iter()
                .filter(|k| !self.entries.contains_key(*k))
                .copied()
                .collect(),
            holders: needs
                .holders
                .iter()
                .filter(|k| !self.holders.contains_key(*k))
                .cloned()
                .collect(),
            shipments: needs
                .shipments
                .iter()
                .filter(|k| !self.shipments.contains_key(*k))
                .cloned()
                .collect(),
            boms: needs
                .boms
                .iter()
                .filter(|k| !self.boms.contains_key(*k))
                .cloned()
                .collect(),
        }
    }

    // Loading: the store calls these with what it found (None: known not to exist).

    pub fn put_item(&mut self, sku: Sku, item: Option<Item>) {
        self.items.insert(sku, item);
    }
    pub fn put_party(&mut self, code: PartyCode, party: Option<Party>) {
        self.parties.insert(code, party);
    }
    pub fn put_location(&mut self, code: LocationCode, location: Option<Location>) {
        self.locations.insert(code, location);
    }
    /// A loaded lot. A lot this state already holds is kept: a balance's load looks its lot
    /// up too, and a lot created by an earlier document (or by an earlier batch of a chain,
    /// not yet committed where the load reads) is not found there, which must not make it
    /// unknown.
    pub fn put_lot(&mut self, lot_no: LotNo, lot: Option<Lot>) {
        self.lots.entry(lot_no).or_insert(lot);
    }
    /// A loaded balance; a balance never loaded reads as zero only if its group was loaded.
    ///
    /// A balance this batch already holds is kept: it may have been changed by an earlier
    /// document of the batch, and the stored one (read when a whole group is loaded later)
    /// is then out of date.
    pub fn put_balance(&mut self, account: Account, lot: LotNo, balance: Balance) {
        if self.balances.contains_key(&(account.clone(), lot.clone())) {
            return;
        }
        self.set_balance(account, lot, balance);
    }

    /// Sets a balance, registering its lot in the (account, sku) group.
    fn set_balance(&mut self, account: Account, lot: LotNo, balance: Balance) {
        if let Some(Some(l)) = self.lots.get(&lot) {
            self.group_lots
                .entry((account.clone(), l.sku.clone()))
                .or_default()
                .insert(lot.clone());
        }
        self.balances.insert((account, lot), balance);
    }
    /// Marks a whole group loaded; its lots and balances must have been put first.
    pub fn put_group(&mut self, account: Account, sku: Sku, lots: impl IntoIterator<Item = LotNo>) {
        let set = self
            .group_lots
            .entry((account.clone(), sku.clone()))
            .or_default();
        set.extend(lots);
        self.groups.insert((account, sku));
    }
    pub fn put_entry(&mut self, seq: u64, entry: Option<PastEntry>) {
        self.entries.insert(seq, entry);
    }
    pub fn put_holders(&mut self, lot: LotNo, holders: Vec<(Account, Balance)>) {
        self.holders.insert(lot, holders);
    }
    pub fn put_shipment(&mut self, id: DocId, shipment: Option<Shipment>) {
        self.shipments.insert(id, shipment);
    }
    pub fn put_bom(&mut self, product: Sku, version: BomVersion, bom: Option<Bom>) {
        self.boms.insert((product, version), bom);
    }

    /// The accounts holding a lot, as stored before this batch; it names where goods went in
    /// a refusal, and is never the basis of a decision.
    pub fn holders(&self, lot: &LotNo) -> &[(Account, Balance)] {
        self.holders.get(lot).map_or(&[], Vec::as_slice)
    }

    // Reading.

    pub fn closed_through(&self) -> Option<Date> {
        self.closed_through
    }
    pub fn item(&self, sku: &Sku) -> Option<&Item> {
        self.items
            .get(sku)
            .expect("item was not loaded before deciding")
            .as_ref()
    }
    pub fn party(&self, code: &PartyCode) -> Option<&Party> {
        self.parties
            .get(code)
            .expect("party was not loaded before deciding")
            .as_ref()
    }
    pub fn location(&self, code: &LocationCode) -> Option<&Location> {
        self.locations
            .get(code)
            .expect("location was not loaded before deciding")
            .as_ref()
    }
    pub fn lot(&self, lot: &LotNo) -> Option<&Lot> {
        self.lots
            .get(lot)
            .expect("lot was not loaded before deciding")
            .as_ref()
    }
    pub fn shipment(&self, id: &DocId) -> Option<&Shipment> {
        self.shipments
            .get(id)
            .expect("shipment was not loaded before deciding")
            .as_ref()
    }
    pub fn bom(&self, product: &Sku, version: &BomVersion) -> Option<&Bom> {
        self.boms
            .get(&(product.clone(), version.clone()))
            .expect("bill of materials was not loaded before deciding")
            .as_ref()
    }
    pub fn past_entry(&self, seq: u64) -> Option<&PastEntry> {
        self.entries
            .get(&seq)
            .expect("entry was not loaded before deciding")
            .as_ref()
    }
    pub fn balance(&self, account: &Account, lot: &LotNo) -> Balance {
        let key = (account.clone(), lot.clone());
        if let Some(b) = self.balances.get(&key) {
            return *b;
        }
        if self.created.contains(lot) {
            return Balance::default();
        }
        let group_loaded = self
            .lot(lot)
            .is_some_and(|l| self.groups.contains(&(account.clone(), l.sku.clone())));
        assert!(
            group_loaded,
            "balance {account} {lot} was not loaded before deciding"
        );
        Balance::default()
    }
    /// The lots of `sku` with a non-zero balance in `account`; the group must be loaded.
    pub fn lots_in(&self, account: &Account, sku: &Sku) -> Vec<(&Lot, Balance)> {
        let key = (account.clone(), sku.clone());
        assert!(
            self.groups.contains(&key),
            "group {account} {sku} was not loaded before deciding"
        );
        let Some(lots) = self.group_lots.get(&key) else {
            return Vec::new();
        };
        lots.iter()
            .filter_map(|l| {
                let b = self
                    .balances
                    .get(&(account.clone(), l.clone()))
                    .copied()
                    .unwrap_or_default();
                let lot = self.lot(l)?;
                (!b.qty.is_zero() || !b.value.is_zero()).then_some((lot, b))
            })
            .collect()
    }

    /// The guarded balances an entry's postings touch that are not known yet: the writer loads
    /// them before [`State::commit`].
    pub fn commit_needs(&self, postings: &[Posting], new_lots: &[Lot]) -> Needs {
        let mut n = Needs::default();
        for p in postings.iter().filter(|p| p.account.guarded()) {
            if new_lots.iter().any(|l| l.lot == p.lot) || self.created.contains(&p.lot) {
                continue;
            }
            n.lots.insert(p.lot.clone());
            n.balances.insert((p.account.clone(), p.lot.clone()));
        }
        self.missing(&n)
    }

    /// The net change per (account, lot) since the last call, for the store to add. Taken
    /// once per batch; a batch decided on the state the one before it left (while that one
    /// commits) takes only its own changes.
    pub fn take_deltas(&mut self) -> Vec<(Account, LotNo, Balance)> {
        std::mem::take(&mut self.deltas)
            .into_iter()
            .filter(|(_, b)| !b.qty.is_zero() || !b.value.is_zero())
            .map(|((a, l), b)| (a, l, b))
            .collect()
    }

    /// Applies a shipment change once its entry `seq` is committed, so that the next document
    /// of the batch is decided against it; returns the shipment as it now is.
    pub fn apply_shipment(&mut self, change: ShipmentChange, seq: u64) -> &Shipment {
        let ShipmentChange {
            mut shipment,
            touched,
            created,
            ..
        } = change;
        if created {
            shipment.dispatch_seq = seq;
        }
        if let Some(c @ Closure { seq: 0, .. }) = &mut shipment.closure {
            c.seq = seq;
        }
        let id = shipment.id.clone();
        if created {
            self.created_shipments.insert(id.clone());
        }
        let mark = self.shipment_changes.entry(id.clone()).or_default();
        mark.0 |= created;
        mark.1.extend(touched);
        self.shipments.insert(id.clone(), Some(shipment));
        self.shipments[&id].as_ref().expect("just put")
    }

    /// The shipments changed since the last call, as they now are, with the lines touched:
    /// what the store writes (each row whole, so a shipment changed again later in the batch
    /// is simply written again). Taken part by part, a large batch's new shipments are written
    /// while the writer decides what follows instead of all at its end.
    pub fn take_shipment_changes(&mut self) -> Vec<ShipmentChange> {
        std::mem::take(&mut self.shipment_changes)
            .into_iter()
            .map(|(id, (created, touched))| ShipmentChange {
                shipment: self.shipments[&id]
                    .clone()
                    .expect("changed shipments exist"),
                touched,
                created,
                moves: Vec::new(),
            })
            .collect()
    }

    /// Whether (account, lot) can have had no stored balance before this state was begun: its
    /// lot was created by this batch (a balance references its lot, so none can exist before
    /// the lot does), or its account is the transit account of a shipment this batch created.
    pub fn is_new_balance(&self, account: &Account, lot: &LotNo) -> bool {
        self.created.contains(lot)
            || matches!(account, Account::Transit(id) if self.created_shipments.contains(id))
    }

    /// Refuses a date inside a closed period.
    pub fn check_open(&self, date: Date) -> Result<(), Rejection> {
        match self.closed_through {
            Some(c) if date <= c => Err(Rejection::PeriodClosed {
                date,
                closed_through: c,
            }),
            _ => Ok(()),
        }
    }

    /// Builds the entry (invariant 1), checks that no guarded balance goes negative
    /// (invariant 2), then applies it: balances move, new lots exist, a reversed entry is marked.
    /// On a rejection nothing changes.
    pub fn commit(
        &mut self,
        header: EntryHeader,
        postings: Vec<Posting>,
        new_lots: Vec<Lot>,
    ) -> Result<Entry, Rejection> {
        for lot in &new_lots {
            if self.lots.get(&lot.lot).is_some_and(Option::is_some) {
                return Err(Rejection::LotExists {
                    field: "lot".into(),
                    lot: lot.lot.clone(),
                });
            }
        }
        let reverses = header.reverses;
        let entry = Entry::new(header, postings)?;
        for mut lot in new_lots {
            lot.origin_seq = entry.seq();
            self.created.insert(lot.lot.clone());
            self.lots.insert(lot.lot.clone(), Some(lot));
        }
        // Only guarded balances need their current value (to check invariant 2); the others
        // are carried as deltas, which is all the store needs to add.
        let mut next: HashMap<(Account, LotNo), Balance> = HashMap::new();
        for p in entry.postings().iter().filter(|p| {
            p.account.guarded()
                || self
                    .balances
                    .contains_key(&(p.account.clone(), p.lot.clone()))
        }) {
            let key = (p.account.clone(), p.lot.clone());
            let current = match next.get(&key) {
                Some(b) => *b,
                None => self.balance(&p.account, &p.lot),
            };
            next.insert(
                key,
                Balance {
                    qty: current.qty + p.qty,
                    value: current.value + p.value,
                },
            );
        }
        if let Some(((account, lot), b)) = next
            .iter()
            .find(|((a, _), b)| a.guarded() && (b.qty.is_negative() || b.value.is_negative()))
        {
            let sku = self
                .lot(lot)
                .map(|l| l.sku.clone())
                .expect("posted lots exist");
            return Err(Rejection::NegativeBalance {
                account: account.clone(),
                sku,
                lot: lot.clone(),
                balance: b.qty,
            });
        }
        for ((account, lot), b) in next {
            // A guarded balance emptied of quantity must be emptied of value too (value relief).
            debug_assert!(
                !account.guarded() || !b.qty.is_zero() || b.value.is_zero(),
                "{account} {lot}: value left behind"
            );
            self.set_balance(account, lot, b);
        }
        for p in entry.postings() {
            let d = self
                .deltas
                .entry((p.account.clone(), p.lot.clone()))
                .or_default();
            d.qty += p.qty;
            d.value += p.value;
        }
        if entry.kind() == EntryKind::PeriodClose {
            self.closed_through = Some(entry.date());
        }
        if let Some(r) = reverses {
            if let Some(Some(past)) = self.entries.get_mut(&r) {
                past.reversed_by = Some(entry.seq());
            }
        }
        Ok(entry)
    }
}

/// A document's working view while it is decided: the state plus the quantities its earlier
/// lines have already taken, so that two lines cannot take the same stock twice.
#[derive(Debug)]
pub struct Draft<'s> {
    state: &'s State,
    taken: HashMap<(Account, LotNo), Balance>,
    pub postings: Vec<Posting>,
    pub new_lots: Vec<Lot>,
}

impl<'s> Draft<'s> {
    pub fn new(state: &'s State) -> Draft<'s> {
        Draft {
            state,
            taken: HashMap::new(),
            postings: Vec::new(),
            new_lots: Vec::new(),
        }
    }

    pub fn state(&self) -> &'s State {
        self.state
    }

    /// The balance as earlier lines of this document left it.
    pub fn balance(&self, account: &Account, lot: &LotNo) -> Balance {
        let b = self.state.balance(account, lot);
        match self.taken.get(&(account.clone(), lot.clone())) {
            Some(t) => Balance {
                qty: b.qty - t.qty,
                value: b.value - t.value,
            },
            None => b,
        }
    }

    /// Takes `qty` of one lot out of `account` by the value-relief rule and returns the value
    /// moved; refuses more than the balance holds.
    pub fn take(
        &mut self,
        field: &str,
        account: &Account,
        lot: &Lot,
        qty: Qty,
    ) -> Result<Money, Rejection> {
        let b = self.balance(account, &lot.lot);
        if qty > b.qty {
            return Err(Rejection::InsufficientStock {
                field: field.into(),
                account: account.clone(),
                sku: lot.sku.clone(),
                lot: Some(lot.lot.clone()),
                available: b.qty.max(Qty::ZERO),
                requested: qty,
            });
        }
        let value = b.value.relieve(b.qty, qty);
        let t = self
            .taken
            .entry((account.clone(), lot.lot.clone()))
            .or_default();
        t.qty += qty;
        t.value += value;
        Ok(value)
    }

    /// Picks stock of `sku` out of `account`: the named lot, or else earliest expiry first, then
    /// oldest, never an expired lot (FEFO). Returns each lot taken with its quantity and value.
    pub fn pick(
        &mut self,
        field: &str,
        account: &Account,
        sku: &Sku,
        qty: Qty,
        lot: Option<&LotNo>,
        date: Date,
    ) -> Result<Vec<(Lot, Qty, Money)>, Rejection> {
        assert!(qty.is_positive(), "picking needs a positive quantity");
        if let Some(lot_no) = lot {
            let Some(lot) = self.state.lot(lot_no) else {
                return Err(Rejection::UnknownReference {
                    field: field_for(field, "lot"),
                    what: "lot",
                    value: lot_no.to_string(),
                });
            };
            if &lot.sku != sku {
                return Err(Rejection::LotOfOtherItem {
                    field: field_for(field, "lot"),
                    lot: lot_no.clone(),
                    found: lot.sku.clone(),
                    expected: sku.clone(),
                });
            }
            if let Some(expires_on) = lot.expires_on.filter(|_| lot.expired_on(date)) {
                return Err(Rejection::LotExpired {
                    field: field_for(field, "lot"),
                    lot: lot_no.clone(),
                    expires_on,
                    date,
                });
            }
            let value = self.take(&field_for(field, "qty"), account, lot, qty)?;
            return Ok(vec![(lot.clone(), qty, value)]);
        }
        let mut candidates: Vec<(&Lot, Qty)> = self
            .state
            .lots_in(account, sku)
            .into_iter()
            .filter(|(l, _)| !l.expired_on(date))
            .map(|(l, _)| (l, self.balance(account, &l.lot).qty))
            .filter(|(_, q)| q.is_positive())
            .collect();
        // Earliest expiry first (lots without expiry last), then the oldest lot.
        candidates.sort_by(|(a, _), (b, _)| {
            (a.expires_on.is_none(), a.expires_on, a.origin_seq, &a.lot).cmp(&(
                b.expires_on.is_none(),
                b.expires_on,
                b.origin_seq,
                &b.lot,
            ))
        });
        let available: Qty = candidates.iter().map(|(_, q)| *q).sum();
        if available < qty {
            return Err(Rejection::InsufficientStock {
                field: field_for(field, "qty"),
                account: account.clone(),
                sku: sku.clone(),
                lot: None,
                available,
                requested: qty,
            });
        }
        let mut left = qty;
        let mut picked = Vec::new();
        for (lot, held) in candidates {
            if left.is_zero() {
                break;
            }
            let q = held.min(left);
            let value = self.take(&field_for(field, "qty"), account, lot, q)?;
            picked.push((lot.clone(), q, value));
            left -= q;
        }
        debug_assert!(left.is_zero());
        Ok(picked)
    }

    pub fn post(&mut self, account: Account, lot: &Lot, qty: Qty, value: Money) {
        self.postings.push(Posting {
            account,
            sku: lot.sku.clone(),
            lot: lot.lot.clone(),
            qty,
            value,
        });
    }
}

fn field_for(line: &str, name: &str) -> String {
    if line.is_empty() {
        name.to_owned()
    } else {
        format!("{line}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::EntryKind;
    use time::macros::date;

    fn lot(no: &str, seq: u64, expires_on: Option<Date>) -> Lot {
        Lot {
            lot: LotNo::parse(no).unwrap(),
            sku: Sku::parse("MASK").unwrap(),
            origin_kind: EntryKind::Purchase,
            origin_doc: DocId::parse("PO").unwrap(),
            origin_seq: seq,
            expires_on,
            source: None,
        }
    }
    fn q(s: &str) -> Qty {
        Qty::parse(s).unwrap()
    }
    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }
    fn stock() -> Account {
        Account::Stock(LocationCode::parse("FG").unwrap())
    }
    fn header(seq: u64) -> EntryHeader {
        EntryHeader {
            seq,
            date: date!(2020 - 03 - 01),
            kind: EntryKind::Dispatch,
            document: DocId::parse("B").unwrap(),
            actor: "t".into(),
            reverses: None,
            memo: String::new(),
        }
    }

    fn state_with(lots: &[(Lot, &str, &str)]) -> State {
        let mut s = State::new(None);
        for (l, qty, value) in lots {
            s.put_lot(l.lot.clone(), Some(l.clone()));
            s.put_balance(
                stock(),
                l.lot.clone(),
                Balance {
                    qty: q(qty),
                    value: m(value),
                },
            );
            s.put_balance(
                Account::Transit(DocId::parse("B").unwrap()),
                l.lot.clone(),
                Balance::default(),
            );
        }
        s.put_group(
            stock(),
            Sku::parse("MASK").unwrap(),
            lots.iter().map(|(l, _, _)| l.lot.clone()),
        );
        s
    }

    #[test]
    fn three_issues_of_a_third_leave_exactly_zero_value() {
        let l = lot("L1", 1, None);
        let mut s = state_with(&[(l.clone(), "3", "100.0000")]);
        let transit = Account::Transit(DocId::parse("B").unwrap());
        let mut moved = Money::ZERO;
        for seq in 1..=3 {
            let mut d = Draft::new(&s);
            let v = d.take("lines[0]", &stock(), &l, q("1")).unwrap();
            moved += v;
            d.post(stock(), &l, -q("1"), -v);
            d.post(transit.clone(), &l, q("1"), v);
            let postings = std::mem::take(&mut d.postings);
            s.commit(header(seq), postings, vec![]).unwrap();
        }
        assert_eq!(
            s.balance(&stock(), &l.lot),
            Balance::default(),
            "value exactly zero when emptied"
        );
        assert_eq!(moved, m("100"));
        assert_eq!(s.balance(&transit, &l.lot).value, m("100"));
    }

    #[test]
    fn loading_a_group_keeps_what_the_batch_already_changed() {
        let l = lot("L1", 1, None);
        let mut s = State::new(None);
        s.put_lot(l.lot.clone(), Some(l.clone()));
        s.put_balance(
            stock(),
            l.lot.clone(),
            Balance {
                qty: q("10"),
                value: m("100"),
            },
        );
        s.put_balance(Account::Loss, l.lot.clone(), Balance::default());
        let postings = vec![
            Posting {
                account: stock(),
                sku: l.sku.clone(),
                lot: l.lot.clone(),
                qty: -q("4"),
                value: -m("40"),
            },
            Posting {
                account: Account::Loss,
                sku: l.sku.clone(),
                lot: l.lot.clone(),
                qty: q("4"),
                value: m("40"),
            },
        ];
        s.commit(header(1), postings, vec![]).unwrap();
        // A later document of the batch loads the whole group: the store still says 10.
        s.put_balance(
            stock(),
            l.lot.clone(),
            Balance {
                qty: q("10"),
                value: m("100"),
            },
        );
        s.put_group(stock(), Sku::parse("MASK").unwrap(), [l.lot.clone()]);
        assert_eq!(s.balance(&stock(), &l.lot).qty, q("6"));
        assert_eq!(s.lots_in(&stock(), &l.sku)[0].1.qty, q("6"));
    }

    #[test]
    fn a_created_lot_stays_known_when_a_later_load_does_not_find_it() {
        let l = lot("L1", 1, None);
        let mut s = State::new(None);
        s.put_lot(LotNo::parse("L0").unwrap(), None);
        let postings = vec![
            Posting {
                account: stock(),
                sku: l.sku.clone(),
                lot: l.lot.clone(),
                qty: q("10"),
                value: m("5"),
            },
            Posting {
                account: Account::Supplier(PartyCode::parse("SUP").unwrap()),
                sku: l.sku.clone(),
                lot: l.lot.clone(),
                qty: -q("10"),
                value: -m("5"),
            },
        ];
        s.commit(header(1), postings, vec![l.clone()]).unwrap();
        // The supplier's balance is carried as a delta only, so a later document that needs
        // it loads it, and its lot with it, from a database that has neither yet.
        let supplier = Account::Supplier(PartyCode::parse("SUP").unwrap());
        assert!(!s
            .missing(&Needs {
                balances: [(supplier.clone(), l.lot.clone())].into(),
                ..Needs::default()
            })
            .is_empty());
        s.put_lot(l.lot.clone(), None);
        s.put_balance(supplier, l.lot.clone(), Balance::default());
        assert_eq!(s.lot(&l.lot).map(|x| x.origin_seq), Some(1));
        assert_eq!(s.balance(&stock(), &l.lot).qty, q("10"));
        // A lot known to be absent stays so: a later load reads the same database, and only
        // an entry (through `commit`, not a load) creates a lot.
        let other = lot("L0", 0, None);
        s.put_lot(other.lot.clone(), Some(other.clone()));
        assert!(s.lot(&other.lot).is_none(), "the first answer stands");
    }

    #[test]
    fn invariant_2_guarded_balances_never_go_negative() {
        let l = lot("L1", 1, None);
        let mut s = state_with(&[(l.clone(), "5", "50")]);
        let mut d = Draft::new(&s);
        let e = d.take("lines[0]", &stock(), &l, q("6")).unwrap_err();
        assert!(
            matches!(e, Rejection::InsufficientStock { ref available, ref requested, .. } if *available == q("5") && *requested == q("6")),
            "{e}"
        );
        // Postings that skip the per-line check are still refused on commit, and change nothing.
        let bad = vec![
            Posting {
                account: stock(),
                sku: l.sku.clone(),
                lot: l.lot.clone(),
                qty: -q("6"),
                value: -m("60"),
            },
            Posting {
                account: Account::Loss,
                sku: l.sku.clone(),
                lot: l.lot.clone(),
                qty: q("6"),
                value: m("60"),
            },
        ];
        assert!(matches!(
            s.commit(header(1), bad, vec![]),
            Err(Rejection::NegativeBalance { .. })
        ));
        assert_eq!(s.balance(&stock(), &l.lot).qty, q("5"));
    }

    #[test]
    fn picking_is_fefo_then_oldest_and_skips_expired_lots() {
        let expired = lot("OLD", 1, Some(date!(2020 - 02 - 01)));
        let later = lot("LATER", 2, Some(date!(2021 - 01 - 01)));
        let sooner = lot("SOONER", 3, Some(date!(2020 - 06 - 01)));
        let never = lot("NEVER", 0, None);
        let s = state_with(&[
            (expired.clone(), "100", "100"),
            (later, "10", "10"),
            (sooner, "10", "10"),
            (never, "10", "10"),
        ]);
        let mut d = Draft::new(&s);
        let sku = Sku::parse("MASK").unwrap();
        let picked = d
            .pick(
                "lines[0]",
                &stock(),
                &sku,
                q("25"),
                None,
                date!(2020 - 03 - 01),
            )
            .unwrap();
        let names: Vec<_> = picked
            .iter()
            .map(|(l, q, _)| (l.lot.to_string(), q.to_string()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("SOONER".into(), "10".into()),
                ("LATER".into(), "10".into()),
                ("NEVER".into(), "5".into())
            ]
        );
        // The expired lot's 100 do not count as available.
        let e = d
            .pick(
                "lines[1]",
                &stock(),
                &sku,
                q("6"),
                None,
                date!(2020 - 03 - 01),
            )
            .unwrap_err();
        assert!(matches!(e, Rejection::InsufficientStock { available, .. } if available == q("5")));
        let e = d
            .pick(
                "lines[2]",
                &stock(),
                &sku,
                q("1"),
                Some(&expired.lot),
                date!(2020 - 03 - 01),
            )
            .unwrap_err();
        assert!(matches!(e, Rejection::LotExpired { .. }));
    }
}
