//! Shipments: in-kind receipts into stock, frontline batches and overseas donations dispatched
//! into transit, and the acknowledgements and closing that empty transit again.
//!
//! Goods in transit are still ours until the recipient acknowledges them, so a shipment keeps,
//! per destination and lot, what was dispatched, acknowledged, damaged and written off as
//! short. An acknowledgement is decided against that record (as earlier documents of the same
//! write batch left it) and against the `transit:<shipment>` balances, which it relieves by
//! the value-relief rule. The two always agree: per lot, the transit balance is the sum of the
//! lines' outstanding quantities.

use std::collections::BTreeSet;
use std::fmt;

use time::Date;

use crate::docs::{
    check_lines, check_qty, conversion_rate, item, location, new_lot, party_of_kind, Decision,
};
use crate::entry::EntryKind;
use crate::error::Rejection;
use crate::ident::{DocId, LocationCode, LotNo, PartyCode, Sku};
use crate::master::{PartyKind, NAME_MAX_LEN};
use crate::num::{Money, Qty, Rate};
use crate::state::{Draft, Needs, State};
use crate::Account;

/// The parties an in-kind receipt may come from: whoever gives goods rather than selling
/// them. Suppliers sell (a purchase, at price 0 if the goods were free) and hospitals,
/// subdistricts and communities receive.
pub const GIVING_KINDS: &[PartyKind] = &[
    PartyKind::Donor,
    PartyKind::Channel,
    PartyKind::Manufacturer,
];

/// The parties a frontline batch line may go to.
pub const FRONTLINE_KINDS: &[PartyKind] = &[PartyKind::Subdistrict, PartyKind::Community];

/// A frontline batch or an overseas donation; their ids share one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShipmentKind {
    Batch,
    Donation,
}

impl ShipmentKind {
    pub const ALL: &'static [ShipmentKind] = &[ShipmentKind::Batch, ShipmentKind::Donation];
    pub fn as_str(self) -> &'static str {
        match self {
            ShipmentKind::Batch => "batch",
            ShipmentKind::Donation => "donation",
        }
    }
    pub fn parse(s: &str) -> Option<ShipmentKind> {
        ShipmentKind::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ShipmentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a shipment stands, derived from its lines and whether it was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShipmentStatus {
    /// Nothing acknowledged yet.
    Dispatched,
    /// Some acknowledged (received or damaged), some still outstanding.
    PartlyAcknowledged,
    /// Everything acknowledged; nothing outstanding.
    Acknowledged,
    /// Closed: what was outstanding was written off as short; no further acknowledgements.
    Closed,
}

impl ShipmentStatus {
    pub const ALL: &'static [ShipmentStatus] = &[
        ShipmentStatus::Dispatched,
        ShipmentStatus::PartlyAcknowledged,
        ShipmentStatus::Acknowledged,
        ShipmentStatus::Closed,
    ];
    /// The statuses in which something is outstanding: acknowledged means every line is,
    /// and a closing writes off what was left as short.
    pub const OPEN: &'static [ShipmentStatus] = &[
        ShipmentStatus::Dispatched,
        ShipmentStatus::PartlyAcknowledged,
    ];
    /// Whether anything may still be outstanding (see [`ShipmentStatus::OPEN`]).
    pub fn is_open(self) -> bool {
        ShipmentStatus::OPEN.contains(&self)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ShipmentStatus::Dispatched => "dispatched",
            ShipmentStatus::PartlyAcknowledged => "partly-acknowledged",
            ShipmentStatus::Acknowledged => "acknowledged",
            ShipmentStatus::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<ShipmentStatus> {
        ShipmentStatus::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ShipmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one destination was sent of one lot, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentLine {
    pub destination: PartyCode,
    pub sku: Sku,
    pub lot: LotNo,
    pub dispatched: Qty,
    /// Received by the destination: moved to `recipient:<destination>`.
    pub acknowledged: Qty,
    /// Reported damaged on arrival: moved to `loss`.
    pub damaged: Qty,
    /// Never arrived, written off when the shipment was closed: moved to `loss`.
    pub short: Qty,
    /// The ledger cost of what was dispatched (the value that left stock).
    pub dispatched_value: Money,
}

impl ShipmentLine {
    /// What is still in transit for this destination and lot.
    pub fn outstanding(&self) -> Qty {
        self.dispatched - self.acknowledged - self.damaged - self.short
    }
}

/// A donation's declared value: as declared, and in the base currency (rounded once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    /// In the document's currency.
    pub value: Money,
    pub currency: String,
    pub fx_rate: Rate,
    /// `round(value x fx_rate)`, half-even, at ledger precision.
    pub base_value: Money,
}

/// How a shipment was closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closure {
    pub date: Date,
    pub reason: String,
    /// The entry that wrote off what was outstanding.
    pub seq: u64,
}

/// A shipment as the ledger keeps it between its dispatch and its last acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    pub id: DocId,
    pub kind: ShipmentKind,
    pub date: Date,
    pub from_location: LocationCode,
    /// A donation's hospital.
    pub recipient: Option<PartyCode>,
    /// The hospital's country at dispatch, so that donations group per country.
    pub country: Option<String>,
    pub declared: Option<Declared>,
    /// The dispatch entry.
    pub dispatch_seq: u64,
    pub closure: Option<Closure>,
    /// In the order they were first dispatched; one per (destination, lot).
    pub lines: Vec<ShipmentLine>,
}

impl Shipment {
    pub fn status(&self) -> ShipmentStatus {
        if self.closure.is_some() {
            ShipmentStatus::Closed
        } else if self.lines.iter().all(|l| l.outstanding().is_zero()) {
            ShipmentStatus::Acknowledged
        } else if self
            .lines
            .iter()
            .all(|l| l.acknowledged.is_zero() && l.damaged.is_zero() && l.short.is_zero())
        {
            ShipmentStatus::Dispatched
        } else {
            ShipmentStatus::PartlyAcknowledged
        }
    }

    /// The ledger cost of everything dispatched.
    pub fn dispatched_value(&self) -> Money {
        self.lines.iter().map(|l| l.dispatched_value).sum()
    }

    /// The distinct destinations, in the order the lines name them.
    pub fn destinations(&self) -> Vec<&PartyCode> {
        let mut seen = BTreeSet::new();
        self.lines
            .iter()
            .map(|l| &l.destination)
            .filter(|d| seen.insert(*d))
            .collect()
    }

    /// What deciding on some of a shipment's lines needs once the shipment is known: their
    /// lots and transit balances.
    fn needs_lines(&self, wanted: impl Fn(&ShipmentLine) -> bool) -> Needs {
        let mut n = Needs::default();
        let transit = Account::Transit(self.id.clone());
        for l in self.lines.iter().filter(|l| wanted(l)) {
            n.lots.insert(l.lot.clone());
            n.balances.insert((transit.clone(), l.lot.clone()));
        }
        n
    }
}

/// A shipment as a document leaves it, for [`State::apply_shipment`] and the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentChange {
    pub shipment: Shipment,
    /// Indices into `shipment.lines` of the lines that changed (or were created).
    pub touched: BTreeSet<usize>,
    /// Whether the shipment was created (dispatched) by this change.
    pub created: bool,
    /// What the document moved, line by line of the document; for its answer, not stored.
    pub moves: Vec<ShipmentMove>,
}

/// What one line of a document moved for one (destination, lot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentMove {
    /// The document line (`lines[i]`); a close has none.
    pub line: Option<usize>,
    pub destination: PartyCode,
    pub sku: Sku,
    pub lot: LotNo,
    /// Dispatched, received, damaged or short, as the document's kind says.
    pub received: Qty,
    pub received_value: Money,
    pub damaged: Qty,
    pub damaged_value: Money,
    pub dispatched: Qty,
    pub dispatched_value: Money,
    pub short: Qty,
    pub short_value: Money,
    /// Outstanding for this destination and lot after the document.
    pub outstanding: Qty,
}

impl ShipmentMove {
    fn new(line: Option<usize>, l: &ShipmentLine) -> ShipmentMove {
        ShipmentMove {
            line,
            destination: l.destination.clone(),
            sku: l.sku.clone(),
            lot: l.lot.clone(),
            received: Qty::ZERO,
            received_value: Money::ZERO,
            damaged: Qty::ZERO,
            damaged_value: Money::ZERO,
            dispatched: Qty::ZERO,
            dispatched_value: Money::ZERO,
            short: Qty::ZERO,
            short_value: Money::ZERO,
            outstanding: Qty::ZERO,
        }
    }
}

/// An in-kind receipt: goods given by a donor, channel or manufacturer into a stock location,
/// at a declared unit value in the base currency (0 when nothing was declared), a new lot per
/// line that records the giver as its source.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub id: DocId,
    pub date: Date,
    pub donor: PartyCode,
    pub location: LocationCode,
    pub lines: Vec<ReceiptLine>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReceiptLine {
    pub sku: Sku,
    pub qty: Qty,
    /// Declared value of one unit in the base currency, at most 4 decimals; may be 0.
    pub unit_value: Money,
    pub lot: Option<LotNo>,
    pub expires_on: Option<Date>,
}

impl Receipt {
    pub fn needs(&self) -> Needs {
        let mut n = Needs::default();
        n.parties.insert(self.donor.clone());
        n.locations.insert(self.location.clone());
        for (i, l) in self.lines.iter().enumerate() {
            n.items.insert(l.sku.clone());
            if let Ok(lot) = crate::docs::new_lot_number(&self.id, i, l.lot.as_ref()) {
                n.lots.insert(lot);
            }
        }
        n
    }

    /// `donor:D -> stock:L` per line at qty x unit value, rounded once.
    pub fn decide(&self, state: &State) -> Result<Decision, Rejection> {
        state.check_open(self.date)?;
        party_of_kind(state, "donor", &self.donor, GIVING_KINDS)?;
        location(state, "location", &self.location)?;
        check_lines(&self.lines)?;
        let mut d = Draft::new(state);
        let stock = Account::Stock(self.location.clone());
        let donor = Account::Donor(self.donor.clone());
        for (i, line) in self.lines.iter().enumerate() {
            let f = |name: &str| format!("lines[{i}].{name}");
            let item = item(state, &f("sku"), &line.sku)?;
            check_qty(&f("qty"), line.qty, item)?;
            if line.unit_value.is_negative() {
                return Err(Rejection::invalid(f("unit_value"), "must not be negative"));
            }
            let value =
                Money::product(&[line.qty.decimal(), line.unit_value.decimal()]).map_err(|e| {
                    Rejection::invalid(f("unit_value"), format!("gives a line value that {e}"))
                })?;
            let lot = new_lot(
                &mut d,
                &self.id,
                i,
                line.lot.as_ref(),
                &line.sku,
                EntryKind::Receipt,
                self.date,
                line.expires_on,
                item,
                Some(&self.donor),
            )?;
            d.post(donor.clone(), &lot, -line.qty, -value);
            d.post(stock.clone(), &lot, line.qty, value);
        }
        Ok(Decision {
            kind: EntryKind::Receipt,
            date: self.date,
            document: self.id.clone(),
            reverses: None,
            memo: String::new(),
            postings: d.postings,
            new_lots: d.new_lots,
        })
    }
}

/// A donation's declared value as the document gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredIn {
    pub value: Money,
    pub currency: String,
    pub fx_rate: Option<Rate>,
}

/// A dispatch: a frontline batch (each line to a subdistrict or community) or an overseas
/// donation (every line to one hospital, with a declared value). Goods leave one stock
/// location for `transit:<id>` at once, lots picked earliest expiry first then oldest unless
/// named, expired lots refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatch {
    pub id: DocId,
    pub kind: ShipmentKind,
    pub date: Date,
    pub from_location: LocationCode,
    /// A donation's hospital; every line goes there.
    pub recipient: Option<PartyCode>,
    pub declared: Option<DeclaredIn>,
    pub lines: Vec<DispatchLine>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DispatchLine {
    /// A batch line's subdistrict or community; a donation's hospital.
    pub destination: PartyCode,
    pub sku: Sku,
    pub qty: Qty,
    pub lot: Option<LotNo>,
}

impl Dispatch {
    pub fn needs(&self) -> Needs {
        let mut n = Needs::default();
        n.shipments.insert(self.id.clone());
        n.locations.insert(self.from_location.clone());
        n.parties.extend(self.recipient.iter().cloned());
        let stock = Account::Stock(self.from_location.clone());
        let transit = Account::Transit(self.id.clone());
        for l in &self.lines {
            n.parties.insert(l.destination.clone());
            n.items.insert(l.sku.clone());
            match &l.lot {
                Some(lot) => {
                    n.lots.insert(lot.clone());
                    n.balances.insert((stock.clone(), lot.clone()));
                    // Committing the entry reads the transit balance it fills; asking for it
                    // here lets the writer load it with the rest of the batch.
                    n.balances.insert((transit.clone(), lot.clone()));
                }
                None => {
                    n.groups.insert((stock.clone(), l.sku.clone()));
                }
            }
        }
        n
    }

    /// `stock:L -> transit:<id>` per picked lot, at the value relieved from stock.
    pub fn decide(
        &self,
        state: &State,
        base_currency: &str,
    ) -> Result<(Decision, ShipmentChange), Rejection> {
        state.check_open(self.date)?;
        if state.shipment(&self.id).is_some() {
            return Err(Rejection::ExistsWithDifferentBody {
                what: "shipment",
                id: self.id.to_string(),
            });
        }
        location(state, "from_location", &self.from_location)?;
        let (country, declared) = match (self.kind, &self.recipient, &self.declared) {
            (ShipmentKind::Donation, Some(r), Some(dec)) => {
                let party = party_of_kind(state, "recipient", r, &[PartyKind::Hospital])?;
                if dec.value.is_negative() {
                    return Err(Rejection::invalid("declared_value", "must not be negative"));
                }
                let rate = conversion_rate(&dec.currency, dec.fx_rate, base_currency)?;
                let base_value =
                    Money::product(&[dec.value.decimal(), rate.decimal()]).map_err(|e| {
                        Rejection::invalid(
                            "declared_value",
                            format!("in the base currency is a value that {e}"),
                        )
                    })?;
                (
                    party.country().map(str::to_owned),
                    Some(Declared {
                        value: dec.value,
                        currency: dec.currency.clone(),
                        fx_rate: rate,
                        base_value,
                    }),
                )
            }
            (ShipmentKind::Donation, _, _) => {
                return Err(Rejection::invalid(
                    "recipient",
                    "a donation needs a recipient hospital and a declared value",
                ))
            }
            (ShipmentKind::Batch, None, None) => (None, None),
            (ShipmentKind::Batch, _, _) => {
                return Err(Rejection::invalid(
                    "recipient",
                    "a batch names a destination per line, not a recipient or declared value",
                ))
            }
        };
        check_lines(&self.lines)?;
        let stock = Account::Stock(self.from_location.clone());
        let transit = Account::Transit(self.id.clone());
        let mut d = Draft::new(state);
        let mut shipment = Shipment {
            id: self.id.clone(),
            kind: self.kind,
            date: self.date,
            from_location: self.from_location.clone(),
            recipient: self.recipient.clone(),
            country,
            declared,
            dispatch_seq: 0,
            closure: None,
            lines: Vec::new(),
        };
        let mut moves: Vec<ShipmentMove> = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            let f = |name: &str| format!("lines[{i}].{name}");
            match self.kind {
                ShipmentKind::Batch => {
                    party_of_kind(state, &f("destination"), &line.destination, FRONTLINE_KINDS)?;
                }
                ShipmentKind::Donation => {
                    // The service fills every line's destination from the recipient.
                    if Some(&line.destination) != self.recipient.as_ref() {
                        return Err(Rejection::invalid(
                            f("destination"),
                            "a donation's lines all go to its recipient",
                        ));
                    }
                }
            }
            let item = item(state, &f("sku"), &line.sku)?;
            check_qty(&f("qty"), line.qty, item)?;
            let picked = d.pick(
                &format!("lines[{i}]"),
                &stock,
                &line.sku,
                line.qty,
                line.lot.as_ref(),
                self.date,
            )?;
            for (lot, qty, value) in picked {
                d.post(stock.clone(), &lot, -qty, -value);
                d.post(transit.clone(), &lot, qty, value);
                let idx = match shipment
                    .lines
                    .iter()
                    .position(|l| l.destination == line.destination && l.lot == lot.lot)
                {
                    Some(idx) => idx,
                    None => {
                        shipment.lines.push(ShipmentLine {
                            destination: line.destination.clone(),
                            sku: lot.sku.clone(),
                            lot: lot.lot.clone(),
                            dispatched: Qty::ZERO,
                            acknowledged: Qty::ZERO,
                            damaged: Qty::ZERO,
                            short: Qty::ZERO,
                            dispatched_value: Money::ZERO,
                        });
                        shipment.lines.len() - 1
                    }
                };
                let sl = &mut shipment.lines[idx];
                sl.dispatched += qty;
                sl.dispatched_value += value;
                let mut m = ShipmentMove::new(Some(i), sl);
                m.dispatched = qty;
                m.dispatched_value = value;
                moves.push(m);
            }
        }
        for m in &mut moves {
            m.outstanding = outstanding_of(&shipment, &m.destination, &m.lot);
        }
        let touched = (0..shipment.lines.len()).collect();
        Ok((
            Decision {
                kind: EntryKind::Dispatch,
                date: self.date,
                document: self.id.clone(),
                reverses: None,
                memo: String::new(),
                postings: d.postings,
                new_lots: Vec::new(),
            },
            ShipmentChange {
                shipment,
                touched,
                created: true,
                moves,
            },
        ))
    }
}

fn outstanding_of(s: &Shipment, destination: &PartyCode, lot: &LotNo) -> Qty {
    s.lines
        .iter()
        .find(|l| &l.destination == destination && &l.lot == lot)
        .map_or(Qty::ZERO, ShipmentLine::outstanding)
}

/// Looks up a shipment that must exist and be open.
fn open_shipment<'s>(state: &'s State, id: &DocId) -> Result<&'s Shipment, Rejection> {
    let s = state.shipment(id).ok_or_else(|| Rejection::NotFound {
        what: "shipment",
        id: id.to_string(),
    })?;
    if let Some(c) = &s.closure {
        return Err(Rejection::StateForbids {
            what: "shipment",
            id: id.to_string(),
            message: format!(
                "was closed on {} ({}); it takes no further acknowledgements",
                c.date, c.reason
            ),
        });
    }
    Ok(s)
}

/// Refuses a date before the shipment left.
fn check_after_dispatch(s: &Shipment, date: Date) -> Result<(), Rejection> {
    if date < s.date {
        return Err(Rejection::invalid(
            "date",
            format!(
                "({date}) is before shipment {} was dispatched ({})",
                s.id, s.date
            ),
        ));
    }
    Ok(())
}

/// An acknowledgement: per destination and sku (and lot, when the recipient names it), what
/// arrived in good order and what arrived damaged.
#[derive(Debug, Clone, PartialEq)]
pub struct Acknowledgement {
    pub shipment: DocId,
    /// The acknowledgement's own id, recorded in the entry's memo.
    pub id: DocId,
    pub date: Date,
    pub lines: Vec<AckLine>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AckLine {
    pub destination: PartyCode,
    pub sku: Sku,
    /// When absent, the quantities are taken from the destination's lots of the sku in the
    /// order they were dispatched (which is FEFO order for picked lots).
    pub lot: Option<LotNo>,
    pub received: Qty,
    pub damaged: Qty,
    pub note: String,
}

impl Acknowledgement {
    pub fn needs(&self) -> Needs {
        let mut n = Needs::default();
        n.shipments.insert(self.shipment.clone());
        n.items.extend(self.lines.iter().map(|l| l.sku.clone()));
        n
    }

    /// Once the shipment is loaded: the lots and transit balances of the lines it names.
    pub fn needs_then(&self, state: &State) -> Needs {
        state
            .shipment(&self.shipment)
            .map(|s| {
                s.needs_lines(|l| {
                    self.lines
                        .iter()
                        .any(|a| a.destination == l.destination && a.sku == l.sku)
                })
            })
            .unwrap_or_default()
    }

    /// Received `transit -> recipient:<destination>`, damaged `transit -> loss`, each at the
    /// value relieved from the transit balance.
    pub fn decide(&self, state: &State) -> Result<(Decision, ShipmentChange), Rejection> {
        let s = open_shipment(state, &self.shipment)?;
        state.check_open(self.date)?;
        check_after_dispatch(s, self.date)?;
        check_lines(&self.lines)?;
        let transit = Account::Transit(s.id.clone());
        let mut next = s.clone();
        let mut touched = BTreeSet::new();
        let mut moves = Vec::new();
        let mut d = Draft::new(state);
        for (i, line) in self.lines.iter().enumerate() {
            let f = |name: &str| format!("lines[{i}].{name}");
            let item = item(state, &f("sku"), &line.sku)?;
            for (name, q) in [
                ("received_qty", line.received),
                ("damaged_qty", line.damaged),
            ] {
                if q.is_negative() {
                    return Err(Rejection::invalid(f(name), "must not be negative"));
                }
                if !q.is_zero() {
                    check_qty(&f(name), q, item)?;
                }
            }
            let requested = line.received + line.damaged;
            if requested.is_zero() {
                return Err(Rejection::invalid(
                    f("received_qty"),
                    "and damaged_qty are both zero: a line acknowledges something",
                ));
            }
            if line.note.chars().count() > NAME_MAX_LEN {
                return Err(Rejection::invalid(
                    f("note"),
                    format!("is longer than {NAME_MAX_LEN} characters"),
                ));
            }
            let candidates = lines_for(&next, i, line)?;
            let outstanding: Qty = candidates
                .iter()
                .map(|&c| next.lines[c].outstanding())
                .sum();
            if requested > outstanding {
                return Err(Rejection::MoreThanOutstanding {
                    field: f(if line.received.is_zero() {
                        "damaged_qty"
                    } else {
                        "received_qty"
                    }),
                    shipment: s.id.clone(),
                    destination: line.destination.clone(),
                    sku: line.sku.clone(),
                    lot: line.lot.clone(),
                    outstanding,
                    requested,
                });
            }
            // Received first, then damaged, each from the lots in the order they were sent.
            let (mut received, mut damaged) = (line.received, line.damaged);
            for c in candidates {
                let out = next.lines[c].outstanding();
                let r = received.min(out);
                let dmg = damaged.min(out - r);
                if (r + dmg).is_zero() {
                    continue;
                }
                received -= r;
                damaged -= dmg;
                let lot = state
                    .lot(&next.lines[c].lot)
                    .expect("a shipment's lots exist")
                    .clone();
                let mut m = ShipmentMove::new(Some(i), &next.lines[c]);
                if r.is_positive() {
                    let v = d.take(&f("received_qty"), &transit, &lot, r)?;
                    d.post(transit.clone(), &lot, -r, -v);
                    d.post(Account::Recipient(line.destination.clone()), &lot, r, v);
                    m.received = r;
                    m.received_value = v;
                }
                if dmg.is_positive() {
                    let v = d.take(&f("damaged_qty"), &transit, &lot, dmg)?;
                    d.post(transit.clone(), &lot, -dmg, -v);
                    d.post(Account::Loss, &lot, dmg, v);
                    m.damaged = dmg;
                    m.damaged_value = v;
                }
                let sl = &mut next.lines[c];
                sl.acknowledged += r;
                sl.damaged += dmg;
                m.outstanding = sl.outstanding();
                touched.insert(c);
                moves.push(m);
            }
            debug_assert!(received.is_zero() && damaged.is_zero());
        }
        Ok((
            Decision {
                kind: EntryKind::Acknowledgement,
                date: self.date,
                document: s.id.clone(),
                reverses: None,
                memo: format!("acknowledgement {}", self.id),
                postings: d.postings,
                new_lots: Vec::new(),
            },
            ShipmentChange {
                shipment: next,
                touched,
                created: false,
                moves,
            },
        ))
    }
}

/// The shipment lines an acknowledgement line draws on, or a refusal naming what the shipment
/// does hold for that destination.
fn lines_for(s: &Shipment, i: usize, line: &AckLine) -> Result<Vec<usize>, Rejection> {
    let list = |v: Vec<String>| {
        let mut v = v;
        v.dedup();
        v.join(", ")
    };
    if !s.lines.iter().any(|l| l.destination == line.destination) {
        return Err(Rejection::NotOnShipment {
            field: format!("lines[{i}].destination"),
            shipment: s.id.clone(),
            what: "destination",
            value: line.destination.to_string(),
            on_shipment: list(s.destinations().iter().map(|d| d.to_string()).collect()),
        });
    }
    let to_dest = || s.lines.iter().filter(|l| l.destination == line.destination);
    if !to_dest().any(|l| l.sku == line.sku) {
        let mut skus: Vec<String> = to_dest().map(|l| l.sku.to_string()).collect();
        skus.sort();
        return Err(Rejection::NotOnShipment {
            field: format!("lines[{i}].sku"),
            shipment: s.id.clone(),
            what: "sku",
            value: line.sku.to_string(),
            on_shipment: list(skus),
        });
    }
    let found: Vec<usize> = s
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            l.destination == line.destination
                && l.sku == line.sku
                && line.lot.as_ref().is_none_or(|lot| &l.lot == lot)
        })
        .map(|(c, _)| c)
        .collect();
    if found.is_empty() {
        return Err(Rejection::NotOnShipment {
            field: format!("lines[{i}].lot"),
            shipment: s.id.clone(),
            what: "lot",
            value: line.lot.as_ref().map(|l| l.to_string()).unwrap_or_default(),
            on_shipment: list(
                to_dest()
                    .filter(|l| l.sku == line.sku)
                    .map(|l| l.lot.to_string())
                    .collect(),
            ),
        });
    }
    Ok(found)
}

/// Closing a shipment: whatever is still outstanding is written off to `loss` as short, and
/// the shipment takes no further acknowledgements.
#[derive(Debug, Clone, PartialEq)]
pub struct Closing {
    pub shipment: DocId,
    pub date: Date,
    pub reason: String,
}

impl Closing {
    pub fn needs(&self) -> Needs {
        let mut n = Needs::default();
        n.shipments.insert(self.shipment.clone());
        n
    }

    /// Once the shipment is loaded: the lots and transit balances of what is outstanding.
    pub fn needs_then(&self, state: &State) -> Needs {
        state
            .shipment(&self.shipment)
            .map(|s| s.needs_lines(|l| l.outstanding().is_positive()))
            .unwrap_or_default()
    }

    pub fn decide(&self, state: &State) -> Result<(Decision, ShipmentChange), Rejection> {
        let s = open_shipment(state, &self.shipment)?;
        state.check_open(self.date)?;
        check_after_dispatch(s, self.date)?;
        let reason = self.reason.trim();
        if reason.is_empty() {
            return Err(Rejection::invalid(
                "reason",
                "must say why the shipment is closed",
            ));
        }
        if reason.chars().count() > NAME_MAX_LEN || reason.chars().any(char::is_control) {
            return Err(Rejection::invalid(
                "reason",
                format!("must be at most {NAME_MAX_LEN} characters, without control characters"),
            ));
        }
        if s.lines.iter().all(|l| l.outstanding().is_zero()) {
            return Err(Rejection::StateForbids {
                what: "shipment",
                id: s.id.to_string(),
                message: "has nothing outstanding: every unit was acknowledged, so there is nothing to write off".into(),
            });
        }
        let transit = Account::Transit(s.id.clone());
        let mut next = s.clone();
        let mut touched = BTreeSet::new();
        let mut moves = Vec::new();
        let mut d = Draft::new(state);
        for (c, sl) in next.lines.iter_mut().enumerate() {
            let out = sl.outstanding();
            if out.is_zero() {
                continue;
            }
            let lot = state.lot(&sl.lot).expect("a shipment's lots exist").clone();
            let v = d.take("reason", &transit, &lot, out)?;
            d.post(transit.clone(), &lot, -out, -v);
            d.post(Account::Loss, &lot, out, v);
            sl.short += out;
            let mut m = ShipmentMove::new(None, sl);
            m.short = out;
            m.short_value = v;
            touched.insert(c);
            moves.push(m);
        }
        next.closure = Some(Closure {
            date: self.date,
            reason: reason.to_owned(),
            seq: 0,
        });
        Ok((
            Decision {
                kind: EntryKind::Close,
                date: self.date,
                document: s.id.clone(),
                reverses: None,
                memo: reason.to_owned(),
                postings: d.postings,
                new_lots: Vec::new(),
            },
            ShipmentChange {
                shipment: next,
                touched,
                created: false,
                moves,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::{Item, ItemKind, Location, Party};
    use crate::state::{Balance, Lot};
    use crate::EntryHeader;
    use time::macros::date;

    fn pc(s: &str) -> PartyCode {
        PartyCode::parse(s).unwrap()
    }
    fn q(s: &str) -> Qty {
        Qty::parse(s).unwrap()
    }
    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }
    fn sku() -> Sku {
        Sku::parse("MASK").unwrap()
    }
    fn fg() -> LocationCode {
        LocationCode::parse("FG").unwrap()
    }
    fn id(s: &str) -> DocId {
        DocId::parse(s).unwrap()
    }

    /// A state with masks in two lots at FG and three communities of one subdistrict.
    fn state() -> State {
        let mut s = State::new(None);
        s.put_item(
            sku(),
            Some(Item::new(sku(), "Mask", ItemKind::Supply, "pcs", 0, None).unwrap()),
        );
        s.put_location(fg(), Some(Location::new(fg(), "Finished goods").unwrap()));
        s.put_party(
            pc("NW"),
            Some(Party::new(pc("NW"), "Nanwan", PartyKind::Subdistrict, None, None, None).unwrap()),
        );
        for c in ["XC", "NX", "ZSB"] {
            s.put_party(
                pc(c),
                Some(
                    Party::new(
                        pc(c),
                        c,
                        PartyKind::Community,
                        None,
                        None,
                        Some((pc("NW"), Some(PartyKind::Subdistrict))),
                    )
                    .unwrap(),
                ),
            );
        }
        let lots = [
            ("LATE", 1, Some(date!(2021 - 01 - 01)), "30", "100.0000"),
            ("SOON", 2, Some(date!(2020 - 06 - 01)), "20", "10.0000"),
        ];
        for (no, seq, exp, qty, value) in lots {
            let lot = Lot {
                lot: LotNo::parse(no).unwrap(),
                sku: sku(),
                origin_kind: EntryKind::Purchase,
                origin_doc: id("PO"),
                origin_seq: seq,
                expires_on: exp,
                source: None,
            };
            s.put_lot(lot.lot.clone(), Some(lot.clone()));
            s.put_balance(
                Account::Stock(fg()),
                lot.lot.clone(),
                Balance {
                    qty: q(qty),
                    value: m(value),
                },
            );
            // What the writer would load for the commit (State::commit_needs).
            for ship in ["B-1", "DON-1"] {
                s.put_balance(
                    Account::Transit(id(ship)),
                    lot.lot.clone(),
                    Balance::default(),
                );
            }
        }
        s.put_group(
            Account::Stock(fg()),
            sku(),
            ["LATE", "SOON"].map(|l| LotNo::parse(l).unwrap()),
        );
        s
    }

    fn header(seq: u64, kind: EntryKind) -> EntryHeader {
        EntryHeader {
            seq,
            date: date!(2020 - 03 - 01),
            kind,
            document: id("B-1"),
            actor: "t".into(),
            reverses: None,
            memo: String::new(),
        }
    }

    fn commit(s: &mut State, seq: u64, (d, c): (Decision, ShipmentChange)) {
        let entry = s
            .commit(header(seq, d.kind), d.postings.clone(), d.new_lots.clone())
            .unwrap();
        s.apply_shipment(c, entry.seq());
    }

    fn batch() -> Dispatch {
        let line = |dest: &str, qty: &str| DispatchLine {
            destination: pc(dest),
            sku: sku(),
            qty: q(qty),
            lot: None,
        };
        Dispatch {
            id: id("B-1"),
            kind: ShipmentKind::Batch,
            date: date!(2020 - 03 - 01),
            from_location: fg(),
            recipient: None,
            declared: None,
            lines: vec![line("XC", "15"), line("NX", "15"), line("ZSB", "10")],
        }
    }

    fn ack(lines: Vec<(&str, Option<&str>, &str, &str)>) -> Acknowledgement {
        Acknowledgement {
            shipment: id("B-1"),
            id: id("A"),
            date: date!(2020 - 03 - 02),
            lines: lines
                .into_iter()
                .map(|(dest, lot, r, dmg)| AckLine {
                    destination: pc(dest),
                    sku: sku(),
                    lot: lot.map(|l| LotNo::parse(l).unwrap()),
                    received: q(r),
                    damaged: q(dmg),
                    note: String::new(),
                })
                .collect(),
        }
    }

    /// An open status (what the in-transit report reads) exactly when a line is outstanding.
    fn assert_open_when_outstanding(sh: &Shipment) {
        let outstanding = sh.lines.iter().any(|l| l.outstanding().is_positive());
        assert_eq!(sh.status().is_open(), outstanding, "{:?}", sh.status());
    }

    fn dispatched() -> State {
        let mut s = state();
        s.put_shipment(id("B-1"), None);
        let decided = batch().decide(&s, "CNY").unwrap();
        commit(&mut s, 1, decided);
        s
    }

    #[test]
    fn a_batch_picks_fefo_and_records_lines_per_destination_and_lot() {
        let s = dispatched();
        let sh = s.shipment(&id("B-1")).unwrap();
        let lines: Vec<_> = sh
            .lines
            .iter()
            .map(|l| {
                (
                    l.destination.to_string(),
                    l.lot.to_string(),
                    l.dispatched.to_string(),
                    l.dispatched_value.to_string(),
                )
            })
            .collect();
        // SOON (20, worth 10) goes first: 15 to XC, 5 to NX; then LATE (30, worth 100).
        assert_eq!(
            lines,
            vec![
                ("XC".into(), "SOON".into(), "15".into(), "7.5".into()),
                ("NX".into(), "SOON".into(), "5".into(), "2.5".into()),
                ("NX".into(), "LATE".into(), "10".into(), "33.3333".into()),
                ("ZSB".into(), "LATE".into(), "10".into(), "33.3334".into()),
            ]
        );
        assert_eq!(sh.status(), ShipmentStatus::Dispatched);
        assert_open_when_outstanding(sh);
        let transit = Account::Transit(id("B-1"));
        assert_eq!(
            s.balance(&transit, &LotNo::parse("LATE").unwrap()).value,
            m("66.6667")
        );
    }

    #[test]
    fn acknowledging_per_destination_relieves_transit_exactly() {
        let mut s = dispatched();
        let a = ack(vec![("NX", None, "14", "1")]).decide(&s).unwrap();
        // NX's 15 are 5 of SOON then 10 of LATE: received 14 (5 + 9), damaged 1 of LATE.
        let moved: Vec<_> =
            a.1.moves
                .iter()
                .map(|m| {
                    (
                        m.lot.to_string(),
                        m.received.to_string(),
                        m.damaged.to_string(),
                    )
                })
                .collect();
        assert_eq!(
            moved,
            vec![
                ("SOON".into(), "5".into(), "0".into()),
                ("LATE".into(), "9".into(), "1".into())
            ]
        );
        commit(&mut s, 2, a);
        assert_eq!(
            s.shipment(&id("B-1")).unwrap().status(),
            ShipmentStatus::PartlyAcknowledged
        );
        assert_open_when_outstanding(s.shipment(&id("B-1")).unwrap());
        // More than XC's outstanding 15 is refused, naming what is outstanding.
        let e = ack(vec![("XC", None, "16", "0")]).decide(&s).unwrap_err();
        assert!(
            matches!(e, Rejection::MoreThanOutstanding { ref outstanding, .. } if *outstanding == q("15")),
            "{e}"
        );
        // A destination that is not on the shipment is refused by name.
        let e = ack(vec![("NW", None, "1", "0")]).decide(&s).unwrap_err();
        assert_eq!(e.field(), Some("lines[0].destination"));
        let e = ack(vec![("XC", Some("LATE"), "1", "0")])
            .decide(&s)
            .unwrap_err();
        assert_eq!(e.field(), Some("lines[0].lot"));
        // The rest, over two acknowledgements: transit is left empty, with value exactly zero.
        let a = ack(vec![
            ("XC", None, "15", "0"),
            ("ZSB", Some("LATE"), "10", "0"),
        ])
        .decide(&s)
        .unwrap();
        commit(&mut s, 3, a);
        let transit = Account::Transit(id("B-1"));
        for lot in ["SOON", "LATE"] {
            assert_eq!(
                s.balance(&transit, &LotNo::parse(lot).unwrap()),
                Balance::default()
            );
        }
        let sh = s.shipment(&id("B-1")).unwrap();
        assert_eq!(sh.status(), ShipmentStatus::Acknowledged);
        assert_open_when_outstanding(sh);
        let closing = Closing {
            shipment: id("B-1"),
            date: date!(2020 - 03 - 05),
            reason: "done".into(),
        };
        assert!(matches!(
            closing.decide(&s),
            Err(Rejection::StateForbids { .. })
        ));
    }

    #[test]
    fn closing_writes_off_what_is_outstanding_and_takes_no_more() {
        let mut s = dispatched();
        let a = ack(vec![("XC", None, "15", "0")]).decide(&s).unwrap();
        commit(&mut s, 2, a);
        let closing = Closing {
            shipment: id("B-1"),
            date: date!(2020 - 03 - 05),
            reason: "lost on the road".into(),
        };
        let c = closing.decide(&s).unwrap();
        let short: Qty = c.1.moves.iter().map(|m| m.short).sum();
        let value: Money = c.1.moves.iter().map(|m| m.short_value).sum();
        assert_eq!(short, q("25"));
        assert_eq!(value, m("69.1667"));
        commit(&mut s, 3, c);
        let sh = s.shipment(&id("B-1")).unwrap();
        assert_eq!(sh.status(), ShipmentStatus::Closed);
        assert_open_when_outstanding(sh);
        assert_eq!(sh.closure.as_ref().unwrap().seq, 3);
        assert!(matches!(
            ack(vec![("NX", None, "1", "0")]).decide(&s),
            Err(Rejection::StateForbids { .. })
        ));
    }

    #[test]
    fn a_donation_converts_its_declared_value_once() {
        let mut s = state();
        let h = pc("KR-DSMC");
        s.put_party(
            h.clone(),
            Some(
                Party::new(
                    h.clone(),
                    "Dongsan",
                    PartyKind::Hospital,
                    Some("KR"),
                    Some("Daegu"),
                    None,
                )
                .unwrap(),
            ),
        );
        s.put_shipment(id("DON-1"), None);
        let don = Dispatch {
            id: id("DON-1"),
            kind: ShipmentKind::Donation,
            date: date!(2020 - 03 - 10),
            from_location: fg(),
            recipient: Some(h.clone()),
            declared: Some(DeclaredIn {
                value: m("8523456.78"),
                currency: "KRW".into(),
                fx_rate: Some(Rate::parse("0.00581234").unwrap()),
            }),
            lines: vec![DispatchLine {
                destination: h,
                sku: sku(),
                qty: q("50"),
                lot: None,
            }],
        };
        let (_, c) = don.decide(&s, "CNY").unwrap();
        let dec = c.shipment.declared.unwrap();
        // 8523456.78 x 0.00581234 = 49541.2287806652 exactly, rounded once.
        assert_eq!(dec.base_value, m("49541.2288"));
        assert_eq!(c.shipment.country.as_deref(), Some("KR"));
        assert_eq!(c.shipment.lines.len(), 2);
    }
}
