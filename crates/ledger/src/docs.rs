//! Documents and the postings they decide: purchases and reversals here; each later kind of
//! document adds its own function of the same shape: `(state, document) -> Decision`.

use time::Date;

use crate::entry::{EntryHeader, EntryKind, Posting};
use crate::error::Rejection;
use crate::ident::{DocId, LocationCode, LotNo, PartyCode, Sku};
use crate::master::PartyKind;
use crate::num::{Money, Qty, Rate};
use crate::state::{Draft, Lot, Needs, State};
use crate::Account;

/// Most lines one document may carry.
pub const LINES_PER_DOCUMENT_MAX: usize = 1_000;

/// What a decision produced: an entry's postings and the lots it creates, ready for
/// [`State::commit`].
#[derive(Debug, Clone)]
pub struct Decision {
    pub kind: EntryKind,
    pub date: Date,
    pub document: DocId,
    pub reverses: Option<u64>,
    pub memo: String,
    pub postings: Vec<Posting>,
    pub new_lots: Vec<Lot>,
}

impl Decision {
    pub fn header(&self, seq: u64, actor: &str) -> EntryHeader {
        EntryHeader {
            seq,
            date: self.date,
            kind: self.kind,
            document: self.document.clone(),
            actor: actor.to_owned(),
            reverses: self.reverses,
            memo: self.memo.clone(),
        }
    }
}

/// A three-letter ISO 4217 currency code.
pub fn check_currency(field: &str, code: &str) -> Result<(), Rejection> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(Rejection::invalid(
            field,
            "must be a three-letter ISO 4217 code such as CNY",
        ))
    }
}

/// The rate a document converts with: 1 for the base currency (where a rate other than 1 is
/// refused), the given rate otherwise (where one is required).
pub fn conversion_rate(
    currency: &str,
    fx_rate: Option<Rate>,
    base_currency: &str,
) -> Result<Rate, Rejection> {
    check_currency("currency", currency)?;
    match fx_rate {
        None if currency == base_currency => Ok(Rate::ONE),
        Some(r) if currency == base_currency && r != Rate::ONE => Err(Rejection::invalid(
            "fx_rate",
            format!("must be 1 (or empty) for the base currency {base_currency}"),
        )),
        Some(r) => Ok(r),
        None => Err(Rejection::invalid(
            "fx_rate",
            format!("is required for {currency}, which is not the base currency {base_currency}"),
        )),
    }
}

/// Checks that a document's lines are not empty and not too many.
pub fn check_lines<T>(lines: &[T]) -> Result<(), Rejection> {
    if lines.is_empty() {
        return Err(Rejection::invalid(
            "lines",
            "a document needs at least one line",
        ));
    }
    if lines.len() > LINES_PER_DOCUMENT_MAX {
        return Err(Rejection::invalid(
            "lines",
            format!("a document may carry at most {LINES_PER_DOCUMENT_MAX} lines"),
        ));
    }
    Ok(())
}

/// Checks that a quantity is positive and has no more decimals than the item's unit allows.
pub fn check_qty(field: &str, qty: Qty, item: &crate::Item) -> Result<(), Rejection> {
    if !qty.is_positive() {
        return Err(Rejection::invalid(field, "must be greater than zero"));
    }
    if !qty.fits_decimals(item.decimals()) {
        return Err(Rejection::invalid(
            field,
            format!(
                "has more decimals than {} ({}) allows: at most {}",
                item.sku(),
                item.unit(),
                item.decimals()
            ),
        ));
    }
    Ok(())
}

/// Looks up a party and checks its kind.
pub fn party_of_kind<'s>(
    state: &'s State,
    field: &str,
    code: &PartyCode,
    kinds: &[PartyKind],
) -> Result<&'s crate::Party, Rejection> {
    let party = state
        .party(code)
        .ok_or_else(|| Rejection::UnknownReference {
            field: field.into(),
            what: "party",
            value: code.to_string(),
        })?;
    if !kinds.contains(&party.kind()) {
        let expected = kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(" or ");
        return Err(Rejection::WrongKind {
            field: field.into(),
            what: "party",
            value: code.to_string(),
            found: party.kind().to_string(),
            expected,
        });
    }
    Ok(party)
}

/// Looks up an item.
pub fn item<'s>(state: &'s State, field: &str, sku: &Sku) -> Result<&'s crate::Item, Rejection> {
    state.item(sku).ok_or_else(|| Rejection::UnknownReference {
        field: field.into(),
        what: "item",
        value: sku.to_string(),
    })
}

/// Checks a location exists.
pub fn location(state: &State, field: &str, code: &LocationCode) -> Result<(), Rejection> {
    state
        .location(code)
        .map(|_| ())
        .ok_or_else(|| Rejection::UnknownReference {
            field: field.into(),
            what: "location",
            value: code.to_string(),
        })
}

/// The expiry of a new lot: as given, or the document date plus the item's shelf life.
pub fn new_lot_expiry(
    field: &str,
    date: Date,
    given: Option<Date>,
    item: &crate::Item,
) -> Result<Option<Date>, Rejection> {
    match given {
        Some(e) if e < date => Err(Rejection::invalid(
            field,
            format!("({e}) is before the document date {date}"),
        )),
        Some(e) => Ok(Some(e)),
        None => Ok(item
            .shelf_life_days()
            .and_then(|d| date.checked_add(time::Duration::days(i64::from(d))))),
    }
}

/// A lot number for a new lot: as given, or made from the document id and line number.
pub fn new_lot_number(doc: &DocId, line: usize, given: Option<&LotNo>) -> Result<LotNo, Rejection> {
    match given {
        Some(l) => Ok(l.clone()),
        None => LotNo::parse(&format!("{doc}-{}", line + 1)).map_err(|e| {
            Rejection::invalid(
                format!("lines[{line}].lot"),
                format!("cannot be made from the document id: {e}; give one"),
            )
        }),
    }
}

/// A purchase: goods bought from a supplier into a stock location, a new lot per line.
#[derive(Debug, Clone, PartialEq)]
pub struct Purchase {
    pub id: DocId,
    pub date: Date,
    pub supplier: PartyCode,
    pub location: LocationCode,
    pub currency: String,
    pub fx_rate: Option<Rate>,
    pub lines: Vec<PurchaseLine>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PurchaseLine {
    pub sku: Sku,
    pub qty: Qty,
    /// Price of one unit in the document's currency, at most 4 decimals.
    pub unit_price: Money,
    pub lot: Option<LotNo>,
    pub expires_on: Option<Date>,
}

impl Purchase {
    pub fn needs(&self) -> Needs {
        let mut n = Needs::default();
        n.parties.insert(self.supplier.clone());
        n.locations.insert(self.location.clone());
        for (i, l) in self.lines.iter().enumerate() {
            n.items.insert(l.sku.clone());
            if let Ok(lot) = new_lot_number(&self.id, i, l.lot.as_ref()) {
                n.lots.insert(lot);
            }
        }
        n
    }

    /// `supplier:S -> stock:L` per line at qty x unit price x fx rate, rounded once.
    pub fn decide(&self, state: &State, base_currency: &str) -> Result<Decision, Rejection> {
        state.check_open(self.date)?;
        party_of_kind(state, "supplier", &self.supplier, &[PartyKind::Supplier])?;
        location(state, "location", &self.location)?;
        let rate = conversion_rate(&self.currency, self.fx_rate, base_currency)?;
        check_lines(&self.lines)?;
        let mut d = Draft::new(state);
        let stock = Account::Stock(self.location.clone());
        let supplier = Account::Supplier(self.supplier.clone());
        for (i, line) in self.lines.iter().enumerate() {
            let f = |name: &str| format!("lines[{i}].{name}");
            let item = item(state, &f("sku"), &line.sku)?;
            check_qty(&f("qty"), line.qty, item)?;
            if line.unit_price.is_negative() {
                return Err(Rejection::invalid(f("unit_price"), "must not be negative"));
            }
            let value = Money::product(&[
                line.qty.decimal(),
                line.unit_price.decimal(),
                rate.decimal(),
            ])
            .map_err(|e| {
                Rejection::invalid(f("unit_price"), format!("gives a line value that {e}"))
            })?;
            let lot = new_lot(
                &mut d,
                &self.id,
                i,
                line.lot.as_ref(),
                &line.sku,
                EntryKind::Purchase,
                self.date,
                line.expires_on,
                item,
                Some(&self.supplier),
            )?;
            d.post(supplier.clone(), &lot, -line.qty, -value);
            d.post(stock.clone(), &lot, line.qty, value);
        }
        Ok(Decision {
            kind: EntryKind::Purchase,
            date: self.date,
            document: self.id.clone(),
            reverses: None,
            memo: String::new(),
            postings: d.postings,
            new_lots: d.new_lots,
        })
    }
}

/// Registers a new lot in a draft, refusing a number that exists or repeats in the document.
#[allow(clippy::too_many_arguments)]
pub fn new_lot(
    d: &mut Draft<'_>,
    doc: &DocId,
    line: usize,
    given: Option<&LotNo>,
    sku: &Sku,
    origin_kind: EntryKind,
    date: Date,
    expires_on: Option<Date>,
    item: &crate::Item,
    source: Option<&PartyCode>,
) -> Result<Lot, Rejection> {
    let field = format!("lines[{line}].lot");
    let lot_no = new_lot_number(doc, line, given)?;
    if d.state().lot(&lot_no).is_some() || d.new_lots.iter().any(|l| l.lot == lot_no) {
        return Err(Rejection::LotExists { field, lot: lot_no });
    }
    let expires_on = new_lot_expiry(&format!("lines[{line}].expires_on"), date, expires_on, item)?;
    let lot = Lot {
        lot: lot_no,
        sku: sku.clone(),
        origin_kind,
        origin_doc: doc.clone(),
        origin_seq: 0,
        expires_on,
        source: source.cloned(),
    };
    d.new_lots.push(lot.clone());
    Ok(lot)
}

/// A reversal: the negated postings of one entry, dated `date` (the reversed entry's own date
/// when not given).
#[derive(Debug, Clone, PartialEq)]
pub struct Reversal {
    pub seq: u64,
    pub date: Option<Date>,
    pub memo: String,
}

impl Reversal {
    pub fn needs_first(&self) -> Needs {
        let mut n = Needs::default();
        n.entries.insert(self.seq);
        n
    }

    /// What the reversal needs once the entry is known: the balances its postings touch, and
    /// where its lots are now (to say where goods went if it must be refused).
    pub fn needs_then(&self, state: &State) -> Needs {
        let mut n = Needs::default();
        if let Some(past) = state.past_entry(self.seq) {
            for p in past.entry.postings() {
                n.lots.insert(p.lot.clone());
                n.balances.insert((p.account.clone(), p.lot.clone()));
                if p.account.guarded() && p.qty.is_positive() {
                    n.holders.insert(p.lot.clone());
                }
            }
        }
        n
    }

    pub fn decide(&self, state: &State) -> Result<Decision, Rejection> {
        let past = state
            .past_entry(self.seq)
            .ok_or_else(|| Rejection::NotFound {
                what: "entry",
                id: self.seq.to_string(),
            })?;
        if let Some(by) = past.reversed_by {
            return Err(Rejection::AlreadyReversed { seq: self.seq, by });
        }
        match past.entry.kind() {
            EntryKind::Reversal => {
                return Err(Rejection::NotReversible {
                    seq: self.seq,
                    reason: "it is itself a reversal; record the document again instead".into(),
                })
            }
            EntryKind::PeriodClose => {
                return Err(Rejection::NotReversible {
                    seq: self.seq,
                    reason: "a period close cannot be reversed".into(),
                })
            }
            // A shipment keeps what it dispatched and what was acknowledged beside the
            // journal; negating one of its entries alone would leave the two disagreeing.
            EntryKind::Dispatch | EntryKind::Acknowledgement | EntryKind::Close => {
                return Err(Rejection::NotReversible {
                    seq: self.seq,
                    reason: format!(
                        "it belongs to shipment {}; acknowledge what arrived or close the shipment instead",
                        past.entry.document()
                    ),
                })
            }
            _ => {}
        }
        let date = self.date.unwrap_or(past.entry.date());
        state.check_open(date)?;
        state.check_open(past.entry.date())?;
        let postings: Vec<Posting> = past
            .entry
            .postings()
            .iter()
            .map(|p| Posting {
                qty: -p.qty,
                value: -p.value,
                ..p.clone()
            })
            .collect();
        // Invariant 2 before anything is written: a reversal may not take back goods that
        // have already moved on.
        for p in postings
            .iter()
            .filter(|p| p.account.guarded() && p.qty.is_negative())
        {
            let b = state.balance(&p.account, &p.lot);
            if b.qty < -p.qty || b.value < -p.value {
                // Where the lot is now, beyond what the entry itself put there (a run's scrap in
                // `loss` is not goods that went anywhere): a shipment, a recipient, another
                // run, a count's loss.
                let put_by_entry = |a: &Account| -> Qty {
                    past.entry
                        .postings()
                        .iter()
                        .filter(|x| &x.account == a && x.lot == p.lot)
                        .map(|x| x.qty)
                        .sum()
                };
                let elsewhere: Vec<String> = state
                    .holders(&p.lot)
                    .iter()
                    .filter(|(a, _)| a != &p.account)
                    .map(|(a, h)| (a, h.qty - put_by_entry(a)))
                    .filter(|(_, moved)| moved.is_positive())
                    .map(|(a, moved)| format!("{a} holds {moved}"))
                    .collect();
                let gone = if elsewhere.is_empty() {
                    "it has been used, delivered or lost".to_owned()
                } else {
                    elsewhere.join(", ")
                };
                return Err(Rejection::NotReversible {
                    seq: self.seq,
                    reason: format!(
                        "{} of lot {} ({}) have left {}, which holds {} of the {} the entry put there; {gone}",
                        -p.qty - b.qty,
                        p.lot,
                        p.sku,
                        p.account,
                        b.qty,
                        -p.qty
                    ),
                });
            }
            // Every unit is still there, but counts since have revalued the lot (a shortfall
            // relieved at one average, a surplus added back at another): taking back the
            // entry's quantity at its own value would leave an emptied balance holding value,
            // which value relief never allows.
            if b.qty == -p.qty && b.value != -p.value {
                return Err(Rejection::NotReversible {
                    seq: self.seq,
                    reason: format!(
                        "{} holds the {} of lot {} ({}) the entry put there, but at {} rather than {}; taking it back would leave value without goods; record a stock count or a new document instead",
                        p.account, b.qty, p.lot, p.sku, b.value, -p.value
                    ),
                });
            }
        }
        Ok(Decision {
            kind: EntryKind::Reversal,
            date,
            document: past.entry.document().clone(),
            reverses: Some(self.seq),
            memo: self.memo.clone(),
            postings,
            new_lots: Vec::new(),
        })
    }
}

/// A period close: entries dated on or before `through` are refused from now on. It is an
/// entry of its own, without postings, so that the close is in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodClose {
    pub through: Date,
}

impl PeriodClose {
    /// The document id of a close: one per date.
    pub fn document(&self) -> DocId {
        DocId::parse(&format!("period-{}", self.through)).expect("a date makes a valid id")
    }

    pub fn decide(&self, state: &State) -> Result<Decision, Rejection> {
        if let Some(closed) = state.closed_through() {
            if self.through <= closed {
                return Err(Rejection::StateForbids {
                    what: "period",
                    id: self.through.to_string(),
                    message: format!(
                        "the ledger is already closed through {closed}; a close cannot move back"
                    ),
                });
            }
        }
        Ok(Decision {
            kind: EntryKind::PeriodClose,
            date: self.through,
            document: self.document(),
            reverses: None,
            memo: String::new(),
            postings: Vec::new(),
            new_lots: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::{Item, ItemKind, Location, Party};
    use crate::production::{CountLine, StockCount};
    use crate::state::{Balance, PastEntry};
    use time::macros::date;

    fn commit(s: &mut State, seq: u64, d: Decision) {
        let e = s
            .commit(d.header(seq, "t"), d.postings, d.new_lots)
            .unwrap();
        s.put_entry(
            seq,
            Some(PastEntry {
                entry: e,
                reversed_by: None,
            }),
        );
    }

    /// Found by the model-based test (tests/model.rs): 0.002 kg bought for 0.0001, counted
    /// down to 0.001 (the shortfall relieves 0.00005, which rounds half-even to 0) and back up
    /// to 0.002 (the surplus comes back at the average, 0.0001). All the goods are there, but
    /// negating the purchase would leave stock holding 0 kg worth 0.0001.
    #[test]
    fn a_reversal_that_would_leave_value_in_an_emptied_balance_is_refused() {
        let mut s = State::new(None);
        let pc = Sku::parse("PC").unwrap();
        s.put_item(
            pc.clone(),
            Some(Item::new(pc.clone(), "PC", ItemKind::Material, "kg", 3, None).unwrap()),
        );
        let sup = PartyCode::parse("SUP").unwrap();
        s.put_party(
            sup.clone(),
            Some(Party::new(sup.clone(), "Sup", PartyKind::Supplier, None, None, None).unwrap()),
        );
        let raw = LocationCode::parse("RAW").unwrap();
        s.put_location(
            raw.clone(),
            Some(Location::new(raw.clone(), "Raw").unwrap()),
        );
        let lot = LotNo::parse("LX").unwrap();
        s.put_lot(lot.clone(), None);
        let purchase = Purchase {
            id: DocId::parse("P1").unwrap(),
            date: date!(2020 - 02 - 12),
            supplier: sup,
            location: raw.clone(),
            currency: "CNY".into(),
            fx_rate: None,
            lines: vec![PurchaseLine {
                sku: pc.clone(),
                qty: Qty::parse("0.002").unwrap(),
                unit_price: Money::parse("0.05").unwrap(),
                lot: Some(lot.clone()),
                expires_on: None,
            }],
        };
        let d = purchase.decide(&s, "CNY").unwrap();
        commit(&mut s, 1, d);
        for (seq, id, counted) in [(2, "K1", "0.001"), (3, "K2", "0.002")] {
            let count = StockCount {
                id: DocId::parse(id).unwrap(),
                date: date!(2020 - 02 - 12),
                location: raw.clone(),
                lines: vec![CountLine {
                    sku: pc.clone(),
                    lot: lot.clone(),
                    counted: Qty::parse(counted).unwrap(),
                }],
            };
            let d = count.decide(&s).unwrap();
            commit(&mut s, seq, d);
        }
        assert_eq!(
            s.balance(&Account::Stock(raw), &lot),
            Balance {
                qty: Qty::parse("0.002").unwrap(),
                value: Money::parse("0.0002").unwrap()
            }
        );
        let r = Reversal {
            seq: 1,
            date: None,
            memo: String::new(),
        }
        .decide(&s);
        assert!(
            matches!(&r, Err(Rejection::NotReversible { seq: 1, reason }) if reason.contains("value without goods")),
            "{r:?}"
        );
        // Reversing the second count instead takes the surplus back at its own value.
        let r = Reversal {
            seq: 3,
            date: None,
            memo: String::new(),
        }
        .decide(&s);
        assert!(r.is_ok(), "{r:?}");
    }
}
