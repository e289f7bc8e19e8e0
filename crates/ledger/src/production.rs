//! Production: bills of materials, production runs with exact lot costing and their report
//! (standard against actual consumption), and stock counts (DESIGN section 2).
//!
//! A run is one entry: materials `stock:<from> -> production:<run>` (named lots, or picked
//! earliest expiry first then oldest, never expired), labour and overhead as value-only
//! postings `conversion -> production:<run>` on the output lot, the good output
//! `production:<run> -> stock:<to>` into a new lot carrying the run's whole cost, and scrap
//! `production:<run> -> loss` at value 0. The run's account is left holding zero value.

use std::collections::{BTreeMap, HashMap};

use time::Date;

use crate::docs::{check_lines, check_qty, item, location, new_lot_expiry, Decision};
use crate::entry::{Entry, EntryKind};
use crate::error::Rejection;
use crate::ident::{BomVersion, DocId, LocationCode, LotNo, Sku};
use crate::master::{Item, ItemKind};
use crate::num::{Money, Qty};
use crate::state::{Draft, Lot, Needs, State};
use crate::Account;

/// A bill of materials: the material quantities that make `output_qty` of a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bom {
    pub product: Sku,
    pub version: BomVersion,
    pub output_qty: Qty,
    pub lines: Vec<BomLine>,
}

/// One material of a bill of materials, per the BOM's `output_qty`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BomLine {
    pub sku: Sku,
    pub qty: Qty,
}

/// The kinds an input of production may be.
const INPUT_KINDS: &[ItemKind] = &[ItemKind::Material, ItemKind::Supply];

fn kind_names(kinds: &[ItemKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Looks up an item and checks that it is of one of `kinds`.
fn item_of_kind<'s>(
    lookup: &impl Fn(&Sku) -> Option<&'s Item>,
    field: &str,
    sku: &Sku,
    kinds: &[ItemKind],
) -> Result<&'s Item, Rejection> {
    let found = lookup(sku).ok_or_else(|| Rejection::UnknownReference {
        field: field.into(),
        what: "item",
        value: sku.to_string(),
    })?;
    if !kinds.contains(&found.kind()) {
        return Err(Rejection::WrongKind {
            field: field.into(),
            what: "item",
            value: sku.to_string(),
            found: found.kind().to_string(),
            expected: kind_names(kinds),
        });
    }
    Ok(found)
}

impl Bom {
    /// Checks a bill of materials against its items: the product is a product, every line a
    /// material or supply named once, every quantity positive, and the output quantity a
    /// quantity the product's unit allows.
    pub fn check<'s>(&self, lookup: impl Fn(&Sku) -> Option<&'s Item>) -> Result<(), Rejection> {
        let product = item_of_kind(&lookup, "product_sku", &self.product, &[ItemKind::Product])?;
        check_qty("output_qty", self.output_qty, product)?;
        check_lines(&self.lines)?;
        let mut seen: HashMap<&Sku, usize> = HashMap::new();
        for (i, line) in self.lines.iter().enumerate() {
            let f = |name: &str| format!("lines[{i}].{name}");
            item_of_kind(&lookup, &f("sku"), &line.sku, INPUT_KINDS)?;
            if let Some(first) = seen.insert(&line.sku, i) {
                return Err(Rejection::invalid(
                    f("sku"),
                    format!(
                        "names {} again (it is lines[{first}]); give each material once",
                        line.sku
                    ),
                ));
            }
            if !line.qty.is_positive() {
                return Err(Rejection::invalid(f("qty"), "must be greater than zero"));
            }
        }
        Ok(())
    }

    /// The standard quantity of each line for `output` units of the product: the line's
    /// quantity scaled by `output / output_qty`, rounded once, half-even, to the decimals the
    /// material's unit allows (`decimals`).
    pub fn standard(
        &self,
        output: Qty,
        decimals: impl Fn(&Sku) -> u32,
    ) -> Result<Vec<(Sku, Qty)>, Rejection> {
        self.lines
            .iter()
            .map(|l| {
                l.qty
                    .scale(output, self.output_qty, decimals(&l.sku))
                    .map(|q| (l.sku.clone(), q))
                    .ok_or_else(|| {
                        Rejection::Overflow(format!(
                            "the standard quantity of {} for {output} {} is out of range",
                            l.sku, self.product
                        ))
                    })
            })
            .collect()
    }
}

/// A production run: materials in, a new lot of product out at the whole cost.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductionRun {
    pub id: DocId,
    pub date: Date,
    pub product: Sku,
    pub bom_version: BomVersion,
    pub from: LocationCode,
    pub to: LocationCode,
    pub good_qty: Qty,
    pub scrap_qty: Qty,
    /// The output lot's number; `<run id>-1` when not given.
    pub output_lot: Option<LotNo>,
    /// The output lot's expiry; the run date plus the product's shelf life when not given.
    pub expires_on: Option<Date>,
    pub labor_cost: Money,
    pub overhead_cost: Money,
    /// Materials consumed; none means the BOM's standard quantities for good + scrap.
    pub lines: Vec<RunLine>,
}

/// One material consumed by a run: a named lot, or picked FEFO when `lot` is `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLine {
    pub sku: Sku,
    pub lot: Option<LotNo>,
    pub qty: Qty,
}

/// A run's report: its output, costs, and per material the standard (BOM scaled to good +
/// scrap), the actual consumption and their difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub run_id: DocId,
    pub date: Date,
    pub product: Sku,
    pub bom_version: BomVersion,
    pub output_lot: LotNo,
    pub good_qty: Qty,
    pub scrap_qty: Qty,
    pub material_cost: Money,
    pub labor_cost: Money,
    pub overhead_cost: Money,
    /// What the output lot received: materials + labour + overhead.
    pub total_cost: Money,
    /// `total_cost / good_qty`, rounded once, half-even, to 4 decimals.
    pub unit_cost: Money,
    pub materials: Vec<MaterialUse>,
}

/// One material of a run's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterialUse {
    pub sku: Sku,
    /// The BOM's quantity scaled to good + scrap output; 0 for a material the BOM does not name.
    pub standard_qty: Qty,
    pub actual_qty: Qty,
    /// The value the consumed lots gave up.
    pub actual_cost: Money,
}

impl MaterialUse {
    /// Actual minus standard: positive when the run used more than the BOM says.
    pub fn variance_qty(&self) -> Qty {
        self.actual_qty - self.standard_qty
    }
}

impl ProductionRun {
    /// The output lot's number: as given, or made from the run id.
    pub fn output_lot_number(&self) -> Result<LotNo, Rejection> {
        match &self.output_lot {
            Some(l) => Ok(l.clone()),
            None => LotNo::parse(&format!("{}-1", self.id)).map_err(|e| {
                Rejection::invalid(
                    "output_lot",
                    format!("cannot be made from the run id: {e}; give one"),
                )
            }),
        }
    }

    pub fn needs(&self) -> Needs {
        let mut n = Needs::default();
        n.items.insert(self.product.clone());
        n.locations.insert(self.from.clone());
        n.locations.insert(self.to.clone());
        n.boms
            .insert((self.product.clone(), self.bom_version.clone()));
        if let Ok(lot) = self.output_lot_number() {
            n.lots.insert(lot);
        }
        let from = Account::Stock(self.from.clone());
        for l in &self.lines {
            n.items.insert(l.sku.clone());
            match &l.lot {
                Some(lot) => {
                    n.lots.insert(lot.clone());
                    n.balances.insert((from.clone(), lot.clone()));
                }
                None => {
                    n.groups.insert((from.clone(), l.sku.clone()));
                }
            }
        }
        n
    }

    /// Once the BOM is loaded: its materials (for their decimals), and their stock when the
    /// run consumes the BOM's standard quantities.
    pub fn needs_then(&self, state: &State) -> Needs {
        let mut n = Needs::default();
        if let Some(bom) = state.bom(&self.product, &self.bom_version) {
            let from = Account::Stock(self.from.clone());
            for l in &bom.lines {
                n.items.insert(l.sku.clone());
                if self.lines.is_empty() {
                    n.groups.insert((from.clone(), l.sku.clone()));
                }
            }
        }
        n
    }

    fn bom<'s>(&self, state: &'s State) -> Result<&'s Bom, Rejection> {
        state
            .bom(&self.product, &self.bom_version)
            .ok_or_else(|| Rejection::UnknownReference {
                field: "bom_version".into(),
                what: "bill of materials",
                value: format!("{}/{}", self.product, self.bom_version),
            })
    }

    /// The standard quantities of the run's BOM for good + scrap output.
    fn standard(&self, state: &State, bom: &Bom) -> Result<Vec<(Sku, Qty)>, Rejection> {
        bom.standard(self.good_qty + self.scrap_qty, |sku| {
            state.item(sku).map_or(0, Item::decimals)
        })
    }

    pub fn decide(&self, state: &State) -> Result<Decision, Rejection> {
        state.check_open(self.date)?;
        let product = item_of_kind(
            &|s| state.item(s),
            "product_sku",
            &self.product,
            &[ItemKind::Product],
        )?;
        let bom = self.bom(state)?;
        location(state, "from_location", &self.from)?;
        location(state, "to_location", &self.to)?;
        if !self.good_qty.is_positive() {
            return Err(Rejection::invalid(
                "good_qty",
                "must be greater than zero: the good output is the lot that carries the run's whole cost",
            ));
        }
        check_qty("good_qty", self.good_qty, product)?;
        if self.scrap_qty.is_negative() {
            return Err(Rejection::invalid("scrap_qty", "must not be negative"));
        }
        if self.scrap_qty.is_positive() {
            check_qty("scrap_qty", self.scrap_qty, product)?;
        }
        for (field, cost) in [
            ("labor_cost", self.labor_cost),
            ("overhead_cost", self.overhead_cost),
        ] {
            if cost.is_negative() {
                return Err(Rejection::invalid(field, "must not be negative"));
            }
        }
        if !self.lines.is_empty() {
            check_lines(&self.lines)?;
        }
        // Computed here so that a standard out of range refuses the run rather than its report.
        let standard = self.standard(state, bom)?;

        let mut d = Draft::new(state);
        let from = Account::Stock(self.from.clone());
        let run = Account::Production(self.id.clone());
        let mut picked: Vec<(Lot, Qty, Money)> = Vec::new();
        if self.lines.is_empty() {
            for (i, (sku, qty)) in standard.iter().enumerate() {
                // A standard that rounds to nothing at the material's decimals consumes nothing.
                if qty.is_positive() {
                    let field = format!("bom.lines[{i}]");
                    picked.extend(d.pick(&field, &from, sku, *qty, None, self.date)?);
                }
            }
        } else {
            for (i, line) in self.lines.iter().enumerate() {
                let field = format!("lines[{i}]");
                let material = item_of_kind(
                    &|s| state.item(s),
                    &format!("{field}.sku"),
                    &line.sku,
                    INPUT_KINDS,
                )?;
                check_qty(&format!("{field}.qty"), line.qty, material)?;
                picked.extend(d.pick(
                    &field,
                    &from,
                    &line.sku,
                    line.qty,
                    line.lot.as_ref(),
                    self.date,
                )?);
            }
        }
        let mut material_cost = Money::ZERO;
        for (lot, qty, value) in &picked {
            d.post(from.clone(), lot, -*qty, -*value);
            d.post(run.clone(), lot, *qty, *value);
            material_cost += *value;
        }

        let lot_no = self.output_lot_number()?;
        if state.lot(&lot_no).is_some() {
            return Err(Rejection::LotExists {
                field: "output_lot".into(),
                lot: lot_no,
            });
        }
        let output = Lot {
            lot: lot_no,
            sku: self.product.clone(),
            origin_kind: EntryKind::Production,
            origin_doc: self.id.clone(),
            origin_seq: 0,
            expires_on: new_lot_expiry("expires_on", self.date, self.expires_on, product)?,
            source: None,
        };
        d.new_lots.push(output.clone());
        let total =
            Money::from_decimal((material_cost + self.labor_cost + self.overhead_cost).decimal())
                .map_err(|e| Rejection::Overflow(format!("the run's total cost {e}")))?;
        // Labour and overhead are value-only postings on the output lot (quantity 0), so that
        // every posting names an (item, lot).
        for cost in [self.labor_cost, self.overhead_cost] {
            if cost.is_positive() {
                d.post(Account::Conversion, &output, Qty::ZERO, -cost);
                d.post(run.clone(), &output, Qty::ZERO, cost);
            }
        }
        d.post(run.clone(), &output, -self.good_qty, -total);
        d.post(
            Account::Stock(self.to.clone()),
            &output,
            self.good_qty,
            total,
        );
        if self.scrap_qty.is_positive() {
            d.post(run.clone(), &output, -self.scrap_qty, Money::ZERO);
            d.post(Account::Loss, &output, self.scrap_qty, Money::ZERO);
        }
        Ok(Decision {
            kind: EntryKind::Production,
            date: self.date,
            document: self.id.clone(),
            reverses: None,
            memo: String::new(),
            postings: d.postings,
            new_lots: d.new_lots,
        })
    }

    /// The report of this run once `entry` (its decision) is committed: the standard from
    /// the BOM in `state`, the actual consumption and costs from the entry's postings.
    pub fn report(&self, state: &State, entry: &Entry) -> RunReport {
        let bom = self
            .bom(state)
            .expect("the run was decided against its BOM");
        let standard = self
            .standard(state, bom)
            .expect("the standard was computed when the run was decided");
        let run = Account::Production(self.id.clone());
        let mut materials: Vec<MaterialUse> = standard
            .into_iter()
            .map(|(sku, standard_qty)| MaterialUse {
                sku,
                standard_qty,
                actual_qty: Qty::ZERO,
                actual_cost: Money::ZERO,
            })
            .collect();
        let mut index: BTreeMap<Sku, usize> = materials
            .iter()
            .enumerate()
            .map(|(i, m)| (m.sku.clone(), i))
            .collect();
        let mut output_lot = None;
        for p in entry.postings() {
            if p.sku == self.product {
                if p.account == Account::Stock(self.to.clone()) {
                    output_lot = Some(p.lot.clone());
                }
                continue;
            }
            if p.account != run {
                continue;
            }
            let i = *index.entry(p.sku.clone()).or_insert_with(|| {
                materials.push(MaterialUse {
                    sku: p.sku.clone(),
                    standard_qty: Qty::ZERO,
                    actual_qty: Qty::ZERO,
                    actual_cost: Money::ZERO,
                });
                materials.len() - 1
            });
            materials[i].actual_qty += p.qty;
            materials[i].actual_cost += p.value;
        }
        let material_cost: Money = materials.iter().map(|m| m.actual_cost).sum();
        let total_cost = material_cost + self.labor_cost + self.overhead_cost;
        RunReport {
            run_id: self.id.clone(),
            date: self.date,
            product: self.product.clone(),
            bom_version: self.bom_version.clone(),
            output_lot: output_lot.expect("a run posts its good output to stock"),
            good_qty: self.good_qty,
            scrap_qty: self.scrap_qty,
            material_cost,
            labor_cost: self.labor_cost,
            overhead_cost: self.overhead_cost,
            total_cost,
            unit_cost: total_cost
                .per_unit(self.good_qty)
                .expect("good output is positive and the unit cost is within the total"),
            materials,
        }
    }
}

/// A stock count: what was found of each (item, lot) at a location. Each difference from the
/// book moves to or from `loss`.
#[derive(Debug, Clone, PartialEq)]
pub struct StockCount {
    pub id: DocId,
    pub date: Date,
    pub location: LocationCode,
    pub lines: Vec<CountLine>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CountLine {
    pub sku: Sku,
    pub lot: LotNo,
    /// What was counted; 0 is a count too.
    pub counted: Qty,
}

impl StockCount {
    pub fn needs(&self) -> Needs {
        let mut n = Needs::default();
        n.locations.insert(self.location.clone());
        let stock = Account::Stock(self.location.clone());
        for l in &self.lines {
            n.items.insert(l.sku.clone());
            n.lots.insert(l.lot.clone());
            n.balances.insert((stock.clone(), l.lot.clone()));
        }
        n
    }

    /// Per line, in line order, two postings: `stock:<location>` first and `loss` second.
    /// A shortfall leaves stock at the lot's average value (value relief, so a lot counted to
    /// zero is left with exactly zero value); a surplus comes back from `loss` at the same
    /// average, or at 0 when the location held none of the lot (its value there is unknown).
    /// A line that agrees with the book posts zero to both, so that the journal shows every
    /// lot that was counted.
    pub fn decide(&self, state: &State) -> Result<Decision, Rejection> {
        state.check_open(self.date)?;
        location(state, "location", &self.location)?;
        check_lines(&self.lines)?;
        let stock = Account::Stock(self.location.clone());
        let mut d = Draft::new(state);
        let mut seen: HashMap<&LotNo, usize> = HashMap::new();
        for (i, line) in self.lines.iter().enumerate() {
            let f = |name: &str| format!("lines[{i}].{name}");
            let it = item(state, &f("sku"), &line.sku)?;
            if line.counted.is_negative() {
                return Err(Rejection::invalid(f("counted_qty"), "must not be negative"));
            }
            if !line.counted.is_zero() {
                check_qty(&f("counted_qty"), line.counted, it)?;
            }
            let lot = state
                .lot(&line.lot)
                .ok_or_else(|| Rejection::UnknownReference {
                    field: f("lot"),
                    what: "lot",
                    value: line.lot.to_string(),
                })?;
            if lot.sku != line.sku {
                return Err(Rejection::LotOfOtherItem {
                    field: f("lot"),
                    lot: line.lot.clone(),
                    found: lot.sku.clone(),
                    expected: line.sku.clone(),
                });
            }
            if let Some(first) = seen.insert(&line.lot, i) {
                return Err(Rejection::invalid(
                    f("lot"),
                    format!("is counted again (it is lines[{first}]); count each lot once"),
                ));
            }
            let book = d.balance(&stock, &lot.lot);
            let (qty, value) = if line.counted < book.qty {
                let short = book.qty - line.counted;
                let v = d.take(&f("counted_qty"), &stock, lot, short)?;
                (-short, -v)
            } else if line.counted > book.qty {
                let extra = line.counted - book.qty;
                let v = if book.qty.is_positive() {
                    book.value.pro_rata(extra, book.qty).ok_or_else(|| {
                        Rejection::Overflow(format!("the value of {extra} more of lot {}", lot.lot))
                    })?
                } else {
                    Money::ZERO
                };
                (extra, v)
            } else {
                (Qty::ZERO, Money::ZERO)
            };
            d.post(stock.clone(), lot, qty, value);
            d.post(Account::Loss, lot, -qty, -value);
        }
        Ok(Decision {
            kind: EntryKind::StockCount,
            date: self.date,
            document: self.id.clone(),
            reverses: None,
            memo: String::new(),
            postings: d.postings,
            new_lots: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::Item;
    use crate::state::Balance;
    use time::macros::date;

    fn q(s: &str) -> Qty {
        Qty::parse(s).unwrap()
    }
    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }
    fn sku(s: &str) -> Sku {
        Sku::parse(s).unwrap()
    }
    fn lot_no(s: &str) -> LotNo {
        LotNo::parse(s).unwrap()
    }
    fn loc(s: &str) -> LocationCode {
        LocationCode::parse(s).unwrap()
    }
    fn raw() -> Account {
        Account::Stock(loc("RAW"))
    }

    fn items() -> Vec<Item> {
        vec![
            Item::new(sku("PC"), "PC", ItemKind::Material, "kg", 3, None).unwrap(),
            Item::new(sku("BAND"), "Band", ItemKind::Material, "pcs", 0, None).unwrap(),
            Item::new(
                sku("GOG"),
                "Goggles",
                ItemKind::Product,
                "pcs",
                0,
                Some(730),
            )
            .unwrap(),
        ]
    }

    fn bom() -> Bom {
        Bom {
            product: sku("GOG"),
            version: BomVersion::parse("2020-02").unwrap(),
            output_qty: q("1"),
            lines: vec![
                BomLine {
                    sku: sku("PC"),
                    qty: q("0.04"),
                },
                BomLine {
                    sku: sku("BAND"),
                    qty: q("1"),
                },
            ],
        }
    }

    fn material_lot(no: &str, s: &str, seq: u64, expires_on: Option<Date>) -> Lot {
        Lot {
            lot: lot_no(no),
            sku: sku(s),
            origin_kind: EntryKind::Purchase,
            origin_doc: DocId::parse("PO-1").unwrap(),
            origin_seq: seq,
            expires_on,
            source: None,
        }
    }

    /// 100 kg of polycarbonate at 4,000.00 and 10,000 bands at 2,000.00 in RAW.
    fn state() -> State {
        let mut s = State::new(None);
        for i in items() {
            s.put_item(i.sku().clone(), Some(i));
        }
        s.put_item(sku("NOPE"), None);
        s.put_location(
            loc("RAW"),
            Some(crate::Location::new(loc("RAW"), "Raw").unwrap()),
        );
        s.put_location(
            loc("FG"),
            Some(crate::Location::new(loc("FG"), "FG").unwrap()),
        );
        let b = bom();
        s.put_bom(b.product.clone(), b.version.clone(), Some(b));
        for (l, qty, value) in [
            (material_lot("PC-1", "PC", 1, None), "100", "4000"),
            (material_lot("BAND-1", "BAND", 1, None), "10000", "2000"),
        ] {
            let sku = l.sku.clone();
            s.put_lot(l.lot.clone(), Some(l.clone()));
            s.put_balance(
                raw(),
                l.lot.clone(),
                Balance {
                    qty: q(qty),
                    value: m(value),
                },
            );
            s.put_group(raw(), sku, [l.lot.clone()]);
        }
        s.put_lot(lot_no("R1-1"), None);
        s
    }

    fn run(lines: Vec<RunLine>) -> ProductionRun {
        ProductionRun {
            id: DocId::parse("R1").unwrap(),
            date: date!(2020 - 02 - 15),
            product: sku("GOG"),
            bom_version: BomVersion::parse("2020-02").unwrap(),
            from: loc("RAW"),
            to: loc("FG"),
            good_qty: q("1950"),
            scrap_qty: q("50"),
            output_lot: None,
            expires_on: None,
            labor_cost: m("3000"),
            overhead_cost: m("600"),
            lines,
        }
    }

    fn commit(s: &mut State, d: Decision) -> Entry {
        let header = d.header(1, "t");
        s.commit(header, d.postings, d.new_lots).unwrap()
    }

    #[test]
    fn the_worked_example_costs_the_output_lot_exactly() {
        let mut s = state();
        let r = run(vec![
            RunLine {
                sku: sku("PC"),
                lot: None,
                qty: q("82"),
            },
            RunLine {
                sku: sku("BAND"),
                lot: Some(lot_no("BAND-1")),
                qty: q("2000"),
            },
        ]);
        let d = r.decide(&s).unwrap();
        let out = &d.new_lots[0];
        assert_eq!(out.lot, lot_no("R1-1"));
        assert_eq!(
            out.expires_on,
            Some(date!(2022 - 02 - 14)),
            "730 days of shelf life"
        );
        let entry = commit(&mut s, d);
        let fg = Account::Stock(loc("FG"));
        assert_eq!(
            s.balance(&fg, &lot_no("R1-1")),
            Balance {
                qty: q("1950"),
                value: m("7280")
            }
        );
        assert_eq!(s.balance(&raw(), &lot_no("PC-1")).qty, q("18"));
        assert_eq!(s.balance(&raw(), &lot_no("PC-1")).value, m("720"));
        let report = r.report(&s, &entry);
        assert_eq!(report.total_cost, m("7280"));
        assert_eq!(report.material_cost, m("3680"));
        assert_eq!(report.unit_cost, m("3.7333"));
        let v: Vec<_> = report
            .materials
            .iter()
            .map(|u| {
                (
                    u.sku.to_string(),
                    u.standard_qty,
                    u.actual_qty,
                    u.variance_qty(),
                )
            })
            .collect();
        assert_eq!(
            v,
            vec![
                ("PC".into(), q("80"), q("82"), q("2")),
                ("BAND".into(), q("2000"), q("2000"), Qty::ZERO)
            ]
        );
        // The run's account holds zero value: everything went into the output lot.
        let run_value: Money = entry
            .postings()
            .iter()
            .filter(|p| p.account == Account::Production(r.id.clone()))
            .map(|p| p.value)
            .sum();
        assert_eq!(run_value, Money::ZERO);
    }

    #[test]
    fn without_materials_a_run_consumes_the_standard() {
        let mut s = state();
        let r = run(vec![]);
        let d = r.decide(&s).unwrap();
        let entry = commit(&mut s, d);
        assert_eq!(s.balance(&raw(), &lot_no("PC-1")).qty, q("20"));
        assert_eq!(s.balance(&raw(), &lot_no("BAND-1")).qty, q("8000"));
        let report = r.report(&s, &entry);
        assert!(report.materials.iter().all(|u| u.variance_qty().is_zero()));
        assert_eq!(report.total_cost, m("3200") + m("400") + m("3600"));
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let s = state();
        let mut r = run(vec![RunLine {
            sku: sku("PC"),
            lot: None,
            qty: q("101"),
        }]);
        let e = r.decide(&s).unwrap_err();
        assert!(
            matches!(&e, Rejection::InsufficientStock { field, available, requested, .. }
                if field == "lines[0].qty" && *available == q("100") && *requested == q("101")),
            "{e}"
        );
        r.lines = vec![RunLine {
            sku: sku("BAND"),
            lot: None,
            qty: q("1.5"),
        }];
        assert_eq!(r.decide(&s).unwrap_err().field(), Some("lines[0].qty"));
        r.lines = vec![RunLine {
            sku: sku("GOG"),
            lot: None,
            qty: q("1"),
        }];
        assert!(matches!(r.decide(&s), Err(Rejection::WrongKind { .. })));
        let mut r = run(vec![]);
        r.good_qty = Qty::ZERO;
        assert_eq!(r.decide(&s).unwrap_err().field(), Some("good_qty"));
        let mut r = run(vec![]);
        r.good_qty = q("5000");
        let e = r.decide(&s).unwrap_err();
        assert_eq!(e.field(), Some("bom.lines[0].qty"), "{e}");
        let mut r = run(vec![]);
        r.output_lot = Some(lot_no("PC-1"));
        assert!(matches!(r.decide(&s), Err(Rejection::LotExists { .. })));
    }

    #[test]
    fn boms_check_their_items() {
        let its = items();
        let lookup = |s: &Sku| its.iter().find(|i| i.sku() == s);
        assert!(bom().check(lookup).is_ok());
        let mut b = bom();
        b.product = sku("PC");
        assert_eq!(b.check(lookup).unwrap_err().field(), Some("product_sku"));
        let mut b = bom();
        b.lines[1].sku = sku("GOG");
        assert!(matches!(b.check(lookup), Err(Rejection::WrongKind { .. })));
        let mut b = bom();
        b.lines[1].sku = sku("PC");
        assert_eq!(b.check(lookup).unwrap_err().field(), Some("lines[1].sku"));
        let mut b = bom();
        b.output_qty = q("0.5");
        assert_eq!(b.check(lookup).unwrap_err().field(), Some("output_qty"));
    }

    #[test]
    fn a_count_moves_the_difference_to_and_from_loss_at_average_value() {
        let mut s = state();
        let count = |lines: Vec<(&str, &str, &str)>| StockCount {
            id: DocId::parse("C1").unwrap(),
            date: date!(2020 - 03 - 01),
            location: loc("RAW"),
            lines: lines
                .into_iter()
                .map(|(k, l, c)| CountLine {
                    sku: sku(k),
                    lot: lot_no(l),
                    counted: q(c),
                })
                .collect(),
        };
        // 3 kg short of 100 kg worth 4000: 120 to loss; 2 bands over: 0.4 back from loss.
        let c = count(vec![("PC", "PC-1", "97"), ("BAND", "BAND-1", "10002")]);
        let d = c.decide(&s).unwrap();
        let values: Vec<_> = d.postings.iter().map(|p| (p.qty, p.value)).collect();
        assert_eq!(
            values,
            vec![
                (-q("3"), -m("120")),
                (q("3"), m("120")),
                (q("2"), m("0.4")),
                (-q("2"), -m("0.4"))
            ]
        );
        commit(&mut s, d);
        // Counting a lot down to zero leaves exactly zero value.
        let d = count(vec![("PC", "PC-1", "0")]).decide(&s).unwrap();
        commit(&mut s, d);
        assert_eq!(s.balance(&raw(), &lot_no("PC-1")), Balance::default());
        let e = count(vec![("BAND", "PC-1", "1")]).decide(&s).unwrap_err();
        assert!(matches!(e, Rejection::LotOfOtherItem { .. }));
        let e = count(vec![("BAND", "BAND-1", "1"), ("BAND", "BAND-1", "2")])
            .decide(&s)
            .unwrap_err();
        assert_eq!(e.field(), Some("lines[1].lot"));
    }
}
