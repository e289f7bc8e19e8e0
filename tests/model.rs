//! Model-based test (issue 9, item 3), on every backend: random sequences of operations
//! (purchases in two currencies, in-kind receipts, production runs against a bill of
//! materials, frontline batches, overseas donations, acknowledgements, shipment closes, stock
//! counts, replays, conflicting reuses of an id, lots that exist, bad input, reversals of any
//! entry, reversals of entries that do not exist) run against the real server and against an
//! in-memory model that predicts each answer and each balance on its own (its own half-even
//! rounding, its own value relief, its own lot picking). After every step:
//! - the answer is the one the model predicted (status, problem type, field, values);
//! - `GET /verify` is ok: the chain holds and every maintained balance equals the one
//!   recomputed from the postings;
//! - every new entry balances per (item, lot) in quantity and in value;
//! - no stock or transit balance is negative;
//! - each lot's value ever posted into stock equals its cost, and sums to zero over accounts;
//! - the ledger's balances equal the model's.
//!
//! One app per backend serves all cases: each case makes its own items (`C<n>-...`), bill of
//! materials, lots and shipments, so cases cannot see each other's balances. To add a
//! document, see TESTING.md ("Adding a document").

use std::collections::{BTreeMap, BTreeSet};

use ppe_tests::{backends, spawn_app, Answer, Backend, TestApp};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Cases per backend (`PROPTEST_CASES` overrides) and most operations per case: enough for a
/// sequence to buy, make, ship, acknowledge and count the same goods.
const CASES: u32 = 32;
const MAX_OPS: usize = 48;

const QTY_SCALE: u32 = 3;
const MONEY_SCALE: u32 = 4;
const RATE_SCALE: u32 = 8;

/// The items every case makes under its own prefix: (suffix, unit, decimals, kind). The first
/// two are the materials of the case's bill of materials, the last its product.
const ITEMS: &[(&str, &str, u32, &str)] = &[
    ("BAND", "pcs", 0, "material"),
    ("PC", "kg", 3, "material"),
    ("GOG", "pcs", 0, "product"),
];
const MATERIALS: usize = 2;
const PRODUCT: usize = 2;
/// The bill of materials: `BOM_OUTPUT` products take these materials (scaled quantities), so
/// that standard quantities need rounding at the materials' decimals.
const BOM_VERSION: &str = "V1";
const BOM_OUTPUT: i128 = 3_000;
const BOM_LINES: &[(usize, i128)] = &[(1, 1_001), (0, 5_000)];
const SUPPLIERS: &[&str] = &["SUP-A", "SUP-B"];
/// Parties that may give goods in kind.
const DONORS: &[&str] = &["DONOR", "MAKER"];
const FRONTLINE: &[&str] = &["NANWAN", "XIACUN", "NANXIN"];
const HOSPITALS: &[&str] = &["KR-DSMC", "FR-APHP"];
const LOCATIONS: &[&str] = &["RAW", "FG"];
/// Exchange rates a USD purchase or donation may carry.
const RATES: &[&str] = &["7.1", "6.98765432", "1", "0.00012345"];
/// Document dates: purchases and receipts are dated `EARLY`; runs, dispatches and counts
/// either date; acknowledgements and closes `LATE`, so never before their dispatch.
const EARLY: &str = "2020-02-12";
const LATE: &str = "2020-02-20";
/// Expiry dates a receipt's lot may carry: the first is past on `LATE`, so a document of that
/// date must not pick the lot and may not name it.
const EXPIRIES: &[Option<&str>] = &[
    None,
    Some("2020-02-12"),
    Some("2020-06-30"),
    Some("2021-01-31"),
];

// ----- operations -----

#[derive(Debug, Clone)]
struct LineSpec {
    item: usize,
    /// Whole units and thousandths (the latter dropped for items of 0 decimals).
    units: u32,
    thousandths: u32,
    /// Unit price (or unit value) at 4 decimals.
    price: u32,
    named_lot: bool,
}

/// How much a line asks for, relative to what the model says is available when the line is
/// built: all of it, a part, one unit more than there is, or a fixed number of units.
#[derive(Debug, Clone, Copy)]
enum Amount {
    All,
    Eighths(u8),
    Over,
    Units(u16),
}

impl Amount {
    /// A positive quantity that fits `unit` (the item's smallest step, scaled).
    fn resolve(self, available: i128, unit: i128) -> i128 {
        match self {
            Amount::All if available > 0 => available,
            Amount::All => unit,
            Amount::Eighths(k) => (available * i128::from(k) / 8 / unit * unit).max(unit),
            Amount::Over => available.max(0) + unit,
            Amount::Units(n) => i128::from(n) * unit,
        }
    }
}

fn amount() -> impl Strategy<Value = Amount> {
    prop_oneof![
        3 => Just(Amount::All),
        6 => (1u8..8).prop_map(Amount::Eighths),
        1 => Just(Amount::Over),
        1 => (1u16..10).prop_map(Amount::Units),
    ]
}

/// A line that takes stock: an item, a lot named (chosen among the item's lots) or picked by
/// the ledger, and an amount.
#[derive(Debug, Clone)]
struct TakeSpec {
    item: usize,
    lot: Option<Index>,
    amount: Amount,
    /// For a batch: the first or the second of its destinations.
    second: bool,
}

fn take_spec(items: usize) -> impl Strategy<Value = TakeSpec> {
    (
        0..items,
        proptest::option::weighted(0.3, any::<Index>()),
        amount(),
        any::<bool>(),
    )
        .prop_map(|(item, lot, amount, second)| TakeSpec {
            item,
            lot,
            amount,
            second,
        })
}

/// The output lot of a run: made from the run id, named anew, or one that exists (refused).
#[derive(Debug, Clone)]
enum OutputLot {
    Made,
    Named,
    Existing(Index),
}

/// What a stock count finds of a lot, relative to the book.
#[derive(Debug, Clone, Copy)]
enum Counted {
    Zero,
    Same,
    /// The quantity the lot's creating document put into stock, which may bring a lot counted
    /// short back to it at another average.
    Original,
    Less(u8),
    More(u16),
}

#[derive(Debug, Clone)]
struct AckSpec {
    /// The shipment line whose destination and sku the acknowledgement line names.
    line: Index,
    by_lot: bool,
    amount: Amount,
    /// Quarters of the acknowledged quantity that arrived damaged.
    damaged_quarters: u8,
}

#[derive(Debug, Clone)]
enum Op {
    Purchase {
        supplier: usize,
        location: usize,
        /// A USD rate, or the base currency.
        rate: Option<usize>,
        lines: Vec<LineSpec>,
    },
    /// The same purchase again: the first answer, nothing written.
    RepeatPurchase(Index),
    /// The id of a purchase with another body: 422, nothing written.
    ConflictingPurchase(Index),
    /// A new purchase naming a lot that exists: 409, nothing written.
    ExistingLot(Index),
    /// Input the ledger refuses: 422, nothing written.
    BadPurchase(u8),
    /// An in-kind receipt; each line has an expiry choice from `EXPIRIES`.
    Receipt {
        donor: usize,
        location: usize,
        lines: Vec<(LineSpec, usize)>,
    },
    /// A production run of the case's product: the BOM's standard quantities picked by the
    /// ledger (no lines), or lines naming lots or not.
    Run {
        from: usize,
        to: usize,
        late: bool,
        good: u32,
        scrap: u32,
        labor: u32,
        overhead: u32,
        lines: Option<Vec<TakeSpec>>,
        output: OutputLot,
        expires: bool,
    },
    /// A frontline batch to one or two of the frontline parties.
    Batch {
        from: usize,
        late: bool,
        destinations: (usize, usize),
        lines: Vec<TakeSpec>,
    },
    /// An overseas donation to a hospital, declared in the base currency or in USD.
    Donation {
        from: usize,
        late: bool,
        recipient: usize,
        declared: u32,
        rate: Option<usize>,
        lines: Vec<TakeSpec>,
    },
    /// An acknowledgement of one of the case's shipments.
    Acknowledge {
        shipment: Index,
        lines: Vec<AckSpec>,
    },
    /// An acknowledgement naming a destination the shipment does not go to: 422.
    AcknowledgeStranger(Index),
    /// Closing a shipment: what is outstanding is written off; a second close replays.
    Close(Index),
    /// A stock count of some of the case's lots at one location.
    Count {
        location: usize,
        late: bool,
        lines: Vec<(Index, Counted)>,
    },
    /// A receipt, run, dispatch or count the ledger refuses before looking at stock: 422.
    BadDocument(u8),
    /// A reversal of any entry this case made.
    Reverse(Index),
    /// A reversal of the entry that created one of the case's lots.
    ReverseCreator(Index),
    /// A lot counted short by some eighths, then back to the quantity it was created with (at
    /// another average, so its value may change by rounding), then the reversal of the entry
    /// that created it: three steps that purely random sequences seldom line up, and the one
    /// way to reach a reversal that would leave value without goods.
    Recount { lot: Index, eighths: u8 },
    /// A reversal of an entry that does not exist: 404.
    ReverseMissing,
}

fn line_spec() -> impl Strategy<Value = LineSpec> {
    (
        0..ITEMS.len(),
        0u32..2_000,
        0u32..1_000,
        prop_oneof![Just(0u32), 1u32..10_000, 10_000u32..5_000_000],
        proptest::bool::weighted(0.2),
    )
        .prop_map(|(item, units, thousandths, price, named_lot)| LineSpec {
            item,
            units,
            thousandths,
            price,
            named_lot,
        })
}

fn money_amount() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), 1u32..10_000, 10_000u32..5_000_000]
}

fn op() -> impl Strategy<Value = Op> {
    let run = (
        (0..LOCATIONS.len(), 0..LOCATIONS.len(), any::<bool>()),
        prop_oneof![8 => 1u32..40, 1 => 500u32..3_000],
        prop_oneof![Just(0u32), 1u32..6],
        money_amount(),
        money_amount(),
        proptest::option::of(prop::collection::vec(take_spec(MATERIALS), 1..3)),
        prop_oneof![
            6 => Just(OutputLot::Made),
            2 => Just(OutputLot::Named),
            1 => any::<Index>().prop_map(OutputLot::Existing)
        ],
        proptest::bool::weighted(0.2),
    )
        .prop_map(
            |((from, to, late), good, scrap, labor, overhead, lines, output, expires)| Op::Run {
                from,
                to,
                late,
                good,
                scrap,
                labor,
                overhead,
                lines,
                output,
                expires,
            },
        );
    let counted = prop_oneof![
        2 => Just(Counted::Zero),
        1 => Just(Counted::Same),
        2 => Just(Counted::Original),
        3 => (1u8..8).prop_map(Counted::Less),
        3 => (1u16..20).prop_map(Counted::More),
    ];
    let ack = (
        any::<Index>(),
        any::<bool>(),
        amount(),
        prop_oneof![3 => Just(0u8), 1 => 1u8..5],
    )
        .prop_map(|(line, by_lot, amount, damaged_quarters)| AckSpec {
            line,
            by_lot,
            amount,
            damaged_quarters,
        });
    prop_oneof![
        6 => (0..SUPPLIERS.len(), 0..LOCATIONS.len(), proptest::option::of(0..RATES.len()),
              prop::collection::vec(line_spec(), 1..4))
            .prop_map(|(supplier, location, rate, lines)| Op::Purchase { supplier, location, rate, lines }),
        1 => any::<Index>().prop_map(Op::RepeatPurchase),
        1 => any::<Index>().prop_map(Op::ConflictingPurchase),
        1 => any::<Index>().prop_map(Op::ExistingLot),
        1 => any::<u8>().prop_map(Op::BadPurchase),
        3 => (0..DONORS.len(), 0..LOCATIONS.len(),
              prop::collection::vec((line_spec(), 0..EXPIRIES.len()), 1..3))
            .prop_map(|(donor, location, lines)| Op::Receipt { donor, location, lines }),
        4 => run,
        4 => ((0..LOCATIONS.len(), any::<bool>()), (0..FRONTLINE.len(), 0..FRONTLINE.len()),
              prop::collection::vec(take_spec(ITEMS.len()), 1..4))
            .prop_map(|((from, late), destinations, lines)| Op::Batch { from, late, destinations, lines }),
        2 => ((0..LOCATIONS.len(), any::<bool>()), 0..HOSPITALS.len(), money_amount(),
              proptest::option::of(0..RATES.len()), prop::collection::vec(take_spec(ITEMS.len()), 1..3))
            .prop_map(|((from, late), recipient, declared, rate, lines)| Op::Donation {
                from, late, recipient, declared, rate, lines
            }),
        5 => (any::<Index>(), prop::collection::vec(ack, 1..3))
            .prop_map(|(shipment, lines)| Op::Acknowledge { shipment, lines }),
        1 => any::<Index>().prop_map(Op::AcknowledgeStranger),
        1 => any::<Index>().prop_map(Op::Close),
        3 => (0..LOCATIONS.len(), any::<bool>(), prop::collection::vec((any::<Index>(), counted), 1..3))
            .prop_map(|(location, late, lines)| Op::Count { location, late, lines }),
        1 => any::<u8>().prop_map(Op::BadDocument),
        6 => any::<Index>().prop_map(Op::Reverse),
        1 => any::<Index>().prop_map(Op::ReverseCreator),
        3 => (any::<Index>(), 1u8..8).prop_map(|(lot, eighths)| Op::Recount { lot, eighths }),
        1 => Just(Op::ReverseMissing),
    ]
}

// ----- exact numbers, on their own -----

/// Parses a plain decimal into an integer at `scale` (the test's own parser).
fn scaled(text: &str, scale: u32) -> i128 {
    let (neg, t) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    assert!(
        frac.len() <= scale as usize,
        "{text} has more than {scale} decimals"
    );
    let mut v: i128 = int
        .parse()
        .unwrap_or_else(|_| panic!("{text} is not a decimal"));
    let mut f = frac.to_owned();
    while f.len() < scale as usize {
        f.push('0');
    }
    v = v * 10i128.pow(scale)
        + if f.is_empty() {
            0
        } else {
            f.parse::<i128>().unwrap()
        };
    if neg {
        -v
    } else {
        v
    }
}

/// Writes an integer at `scale` as the API does: quantities without trailing zeros, money
/// with exactly 4 decimals.
fn text(v: i128, scale: u32, trim: bool) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    let p = 10u128.pow(scale);
    let mut frac = format!("{:0width$}", a % p, width = scale as usize);
    if trim {
        while frac.ends_with('0') {
            frac.pop();
        }
    }
    if frac.is_empty() {
        format!("{sign}{}", a / p)
    } else {
        format!("{sign}{}.{frac}", a / p)
    }
}

/// `n / d` rounded half to even.
fn div_half_even(n: i128, d: i128) -> i128 {
    let (q, r) = (n.div_euclid(d), n.rem_euclid(d));
    match (2 * r).cmp(&d) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    }
}

// ----- the model -----

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bal {
    qty: i128,
    value: i128,
}

#[derive(Debug, Clone)]
struct Posting {
    account: String,
    sku: String,
    lot: String,
    qty: i128,
    value: i128,
}

/// The kind of document an entry of the model records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Made {
    Purchase,
    Receipt,
    Production,
    Dispatch,
    Acknowledgement,
    Close,
    Count,
    Reversal,
}

#[derive(Debug, Clone)]
struct ModelEntry {
    seq: u64,
    made: Made,
    postings: Vec<Posting>,
    reversed: bool,
}

#[derive(Debug, Clone)]
struct ModelPurchase {
    body: Value,
    answer: Value,
}

/// A lot as the model knows it: what FEFO orders by, and its cost.
#[derive(Debug, Clone)]
struct ModelLot {
    sku: String,
    /// The value its creating entry put into stock.
    cost: i128,
    expires: Option<&'static str>,
    /// The creating entry: oldest lots are picked first among equal expiries.
    seq: u64,
    /// The quantity it put into stock.
    qty: i128,
}

/// What one destination was sent of one lot, and what became of it.
#[derive(Debug, Clone)]
struct ShipLine {
    destination: String,
    sku: String,
    lot: String,
    dispatched: i128,
    acknowledged: i128,
    damaged: i128,
    short: i128,
}

impl ShipLine {
    fn outstanding(&self) -> i128 {
        self.dispatched - self.acknowledged - self.damaged - self.short
    }
}

#[derive(Debug, Clone)]
struct ModelShipment {
    id: String,
    /// One per (destination, lot), in the order first dispatched.
    lines: Vec<ShipLine>,
    /// The close's request and answer, once closed.
    closed: Option<(Value, Value)>,
}

impl ModelShipment {
    fn status(&self) -> &'static str {
        if self.closed.is_some() {
            "closed"
        } else if self.lines.iter().all(|l| l.outstanding() == 0) {
            "acknowledged"
        } else if self
            .lines
            .iter()
            .all(|l| l.acknowledged == 0 && l.damaged == 0 && l.short == 0)
        {
            "dispatched"
        } else {
            "partly-acknowledged"
        }
    }
}

/// What should be in the ledger, predicted without asking it.
#[derive(Debug, Default)]
struct Model {
    balances: BTreeMap<(String, String), Bal>,
    lots: BTreeMap<String, ModelLot>,
    entries: Vec<ModelEntry>,
    purchases: Vec<ModelPurchase>,
    shipments: Vec<ModelShipment>,
}

/// What an acknowledgement moved of one (destination, lot), as the model predicts it.
#[derive(Debug)]
struct Moved {
    /// The acknowledgement line.
    line: usize,
    destination: String,
    lot: String,
    /// Quantity and value to `recipient:<destination>`.
    received: (i128, i128),
    /// Quantity and value to `loss`.
    damaged: (i128, i128),
    /// Still outstanding for the destination and lot afterwards.
    outstanding: i128,
}

/// A refusal the model predicts: status, problem type, the field named, and quantities the
/// problem must carry (`available`, `requested`, `outstanding`).
#[derive(Debug, Clone)]
struct Refusal {
    status: StatusCode,
    problem: &'static str,
    field: Option<String>,
    facts: Vec<(&'static str, i128)>,
}

impl Refusal {
    fn conflict(problem: &'static str, field: Option<String>) -> Refusal {
        Refusal {
            status: StatusCode::CONFLICT,
            problem,
            field,
            facts: Vec::new(),
        }
    }
}

/// Entries whose value posted into stock is the cost of the lots they create; moves, counts
/// and reversals do not create lots.
fn creates_lots(entry: &Value) -> bool {
    matches!(
        entry["kind"].as_str(),
        Some("purchase" | "receipt" | "production")
    )
}

fn guarded(account: &str) -> bool {
    account.starts_with("stock:") || account.starts_with("transit:")
}

/// A lot is expired on any date after its expiry date (ISO dates order as text).
fn expired(lot: &ModelLot, date: &str) -> bool {
    lot.expires.is_some_and(|e| date > e)
}

/// The smallest quantity step of an item, scaled.
fn unit_of(item: usize) -> i128 {
    10i128.pow(QTY_SCALE - ITEMS[item].2)
}

/// Value relief: taking `q` of a balance moves all of its value when it empties it, else
/// `value x q / held` rounded half-even.
fn relieve(b: Bal, q: i128) -> i128 {
    if q == b.qty {
        b.value
    } else {
        div_half_even(b.value * q, b.qty)
    }
}

impl Model {
    fn balance(&self, account: &str, lot: &str) -> Bal {
        self.balances
            .get(&(account.to_owned(), lot.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    /// Why postings may not be made: they would leave a guarded balance negative, or empty of
    /// goods but holding value (value relief never leaves that; a reversal after counts have
    /// revalued a lot could). What refuses a reversal.
    fn refusal_of(&self, postings: &[Posting]) -> Option<&'static str> {
        let mut after: BTreeMap<(&str, &str), Bal> = BTreeMap::new();
        for p in postings {
            let b = after
                .entry((&p.account, &p.lot))
                .or_insert_with(|| self.balance(&p.account, &p.lot));
            b.qty += p.qty;
            b.value += p.value;
        }
        let guarded = || {
            after
                .iter()
                .filter(|((a, _), _)| guarded(a))
                .map(|(_, b)| b)
        };
        if guarded().any(|b| b.qty < 0 || b.value < 0) {
            Some("overdraw")
        } else if guarded().any(|b| b.qty == 0 && b.value != 0) {
            Some("leave value without goods")
        } else {
            None
        }
    }

    fn post(&mut self, seq: u64, made: Made, postings: Vec<Posting>) {
        for p in &postings {
            let b = self
                .balances
                .entry((p.account.clone(), p.lot.clone()))
                .or_default();
            b.qty += p.qty;
            b.value += p.value;
        }
        self.entries.push(ModelEntry {
            seq,
            made,
            postings,
            reversed: false,
        });
    }

    /// The case's lots of `sku`, in lot-number order.
    fn lots_of(&self, sku: &str) -> Vec<&str> {
        self.lots
            .iter()
            .filter(|(_, l)| l.sku == sku)
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

/// A document's working view while the model decides it: the balances as its earlier lines
/// left them (only what they took: what they put elsewhere is never taken again by the same
/// document, as in the ledger's own draft).
struct Draft<'m> {
    model: &'m Model,
    taken: BTreeMap<(String, String), Bal>,
}

impl<'m> Draft<'m> {
    fn new(model: &'m Model) -> Draft<'m> {
        Draft {
            model,
            taken: BTreeMap::new(),
        }
    }

    fn balance(&self, account: &str, lot: &str) -> Bal {
        let b = self.model.balance(account, lot);
        match self.taken.get(&(account.to_owned(), lot.to_owned())) {
            Some(t) => Bal {
                qty: b.qty - t.qty,
                value: b.value - t.value,
            },
            None => b,
        }
    }

    /// Takes `q` of one lot by value relief; `None` when the balance holds less.
    fn take(&mut self, account: &str, lot: &str, q: i128) -> Option<i128> {
        let b = self.balance(account, lot);
        if q > b.qty {
            return None;
        }
        let v = relieve(b, q);
        let t = self
            .taken
            .entry((account.to_owned(), lot.to_owned()))
            .or_default();
        t.qty += q;
        t.value += v;
        Some(v)
    }

    /// The lots of `sku` the ledger may pick from `account` on `date`, earliest expiry first
    /// (lots without expiry last), then oldest, then by number; expired and empty lots never.
    fn fefo(&self, account: &str, sku: &str, date: &str) -> Vec<(String, i128)> {
        let mut c: Vec<(&String, &ModelLot, i128)> = self
            .model
            .lots
            .iter()
            .filter(|(_, l)| l.sku == sku && !expired(l, date))
            .map(|(n, l)| (n, l, self.balance(account, n).qty))
            .filter(|(_, _, q)| *q > 0)
            .collect();
        c.sort_by(|(an, a, _), (bn, b, _)| {
            (a.expires.is_none(), a.expires, a.seq, an).cmp(&(
                b.expires.is_none(),
                b.expires,
                b.seq,
                bn,
            ))
        });
        c.into_iter().map(|(n, _, q)| (n.clone(), q)).collect()
    }

    /// What a line could take: of the named lot, or of every lot FEFO may pick.
    fn available(&self, account: &str, sku: &str, lot: Option<&str>, date: &str) -> i128 {
        match lot {
            Some(l) => self.balance(account, l).qty,
            None => self.fefo(account, sku, date).iter().map(|(_, q)| q).sum(),
        }
    }

    /// Picks `qty` of `sku` out of `account` as the ledger does (`Draft::pick`), returning
    /// each lot taken with its quantity and value, or the refusal naming `line`'s fields.
    fn pick(
        &mut self,
        line: &str,
        account: &str,
        sku: &str,
        qty: i128,
        lot: Option<&str>,
        date: &str,
    ) -> Result<Vec<(String, i128, i128)>, Refusal> {
        let insufficient = |available: i128| Refusal {
            status: StatusCode::CONFLICT,
            problem: "/problems/insufficient-stock",
            field: Some(format!("{line}.qty")),
            facts: vec![("available", available.max(0)), ("requested", qty)],
        };
        if let Some(l) = lot {
            if expired(&self.model.lots[l], date) {
                return Err(Refusal::conflict(
                    "/problems/lot-expired",
                    Some(format!("{line}.lot")),
                ));
            }
            let held = self.balance(account, l).qty;
            let v = self
                .take(account, l, qty)
                .ok_or_else(|| insufficient(held))?;
            return Ok(vec![(l.to_owned(), qty, v)]);
        }
        let candidates = self.fefo(account, sku, date);
        let available: i128 = candidates.iter().map(|(_, q)| q).sum();
        if available < qty {
            return Err(insufficient(available));
        }
        let mut left = qty;
        let mut picked = Vec::new();
        for (l, held) in candidates {
            if left == 0 {
                break;
            }
            let q = held.min(left);
            let v = self.take(account, &l, q).expect("FEFO offers what is held");
            picked.push((l, q, v));
            left -= q;
        }
        Ok(picked)
    }
}

fn posting(account: &str, sku: &str, lot: &str, qty: i128, value: i128) -> Posting {
    Posting {
        account: account.to_owned(),
        sku: sku.to_owned(),
        lot: lot.to_owned(),
        qty,
        value,
    }
}

/// The item a line takes: `preferred` when `account` holds some on `date`, else the next of
/// the first `items` items that it holds, so that most lines can be met (`Amount::Over` and
/// `Amount::Units` still ask for more than there is).
fn stocked_item(
    draft: &Draft<'_>,
    account: &str,
    prefix: &str,
    preferred: usize,
    items: usize,
    date: &str,
) -> usize {
    (0..items)
        .map(|k| (preferred + k) % items)
        .find(|i| draft.available(account, &format!("{prefix}-{}", ITEMS[*i].0), None, date) > 0)
        .unwrap_or(preferred)
}

/// A lot to name: one of `sku`'s lots, preferring those `account` holds; `None` (let the
/// ledger pick) when not asked to name one or when the case has no lot of `sku`.
fn choose_lot(draft: &Draft<'_>, account: &str, sku: &str, pick: Option<Index>) -> Option<String> {
    let pick = pick?;
    let all = draft.model.lots_of(sku);
    let held: Vec<&str> = all
        .iter()
        .copied()
        .filter(|l| draft.balance(account, l).qty > 0)
        .collect();
    let c = if held.is_empty() { all } else { held };
    (!c.is_empty()).then(|| c[pick.index(c.len())].to_owned())
}

// ----- one case against the real ledger -----

/// What the harness keeps across the cases of one backend.
struct Harness {
    app: TestApp,
    cases: u32,
    /// The last entry whose postings have been checked.
    seen_seq: u64,
    /// Value ever posted into stock per lot by entries that are not reversals.
    stock_in: BTreeMap<String, i128>,
    /// How often each kind of answer was seen, to show what the sequences reached.
    seen: BTreeMap<String, u32>,
}

struct Case<'h> {
    h: &'h mut Harness,
    prefix: String,
    model: Model,
    lots_made: u32,
    docs_made: u32,
}

type Step = Result<(), TestCaseError>;

macro_rules! check {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(TestCaseError::fail(format!($($arg)+)));
        }
    };
}

fn same(a: &Answer, status: StatusCode, problem: Option<&str>, what: &str) -> Step {
    check!(
        a.status == status,
        "{what}: expected {status}, got {}: {}",
        a.status,
        a.text
    );
    if let Some(p) = problem {
        check!(
            a.body["type"] == p,
            "{what}: expected problem {p}: {}",
            a.text
        );
    }
    Ok(())
}

/// The answer is the predicted refusal: status, problem type, the one field it names, and
/// the quantities it reports.
fn refused(a: &Answer, r: &Refusal, what: &str) -> Step {
    same(a, r.status, Some(r.problem), what)?;
    if let Some(f) = &r.field {
        check!(
            a.fields() == [f.clone()],
            "{what}: the refusal names {f}: {}",
            a.text
        );
    }
    for (name, q) in &r.facts {
        let found = a.body[*name].as_str().map(|s| scaled(s, QTY_SCALE));
        check!(
            found == Some(*q),
            "{what}: {name} should be {}: {}",
            text(*q, QTY_SCALE, true),
            a.text
        );
    }
    Ok(())
}

/// A quantity of an answer, scaled.
fn qty_of(v: &Value) -> Option<i128> {
    v.as_str().map(|s| scaled(s, QTY_SCALE))
}

/// A money amount of an answer, which the API writes with exactly 4 decimals.
fn money_is(v: &Value, expected: i128) -> bool {
    v.as_str() == Some(text(expected, MONEY_SCALE, false).as_str())
}

fn qty_text(q: i128) -> String {
    text(q, QTY_SCALE, true)
}

impl LineSpec {
    /// The line's quantity, scaled: positive and within the item's decimals.
    fn qty(&self) -> i128 {
        let thousandths = if ITEMS[self.item].2 == 0 {
            0
        } else {
            self.thousandths
        };
        let units = if self.units == 0 && thousandths == 0 {
            1
        } else {
            self.units
        };
        i128::from(units) * 1_000 + i128::from(thousandths)
    }
}

impl Case<'_> {
    fn sku(&self, item: usize) -> String {
        format!("{}-{}", self.prefix, ITEMS[item].0)
    }

    fn item_of(&self, sku: &str) -> usize {
        (0..ITEMS.len())
            .find(|i| self.sku(*i) == sku)
            .expect("a case's own sku")
    }

    /// POSTs with the admin token, counting the kind of answer.
    async fn post(&mut self, path: &str, body: &Value) -> Answer {
        let a = self.h.app.post(path, body).await;
        let doc = path
            .rsplit('/')
            .find(|s| s.parse::<u64>().is_err() && !s.starts_with(&self.prefix))
            .unwrap_or(path);
        let label = format!(
            "{doc} {} {}",
            a.status.as_u16(),
            a.body["type"].as_str().unwrap_or("")
        );
        *self.h.seen.entry(label).or_default() += 1;
        a
    }

    /// Where a document takes `item` from: `preferred` when it holds some that is good on the
    /// later date, else another location that does, so that sequences move goods more often
    /// than they are refused.
    fn stocked(&self, preferred: usize, item: usize) -> usize {
        let sku = self.sku(item);
        let draft = Draft::new(&self.model);
        let holds =
            |l: usize| draft.available(&format!("stock:{}", LOCATIONS[l]), &sku, None, LATE) > 0;
        if holds(preferred) {
            preferred
        } else {
            (0..LOCATIONS.len())
                .find(|l| holds(*l))
                .unwrap_or(preferred)
        }
    }

    fn next_id(&mut self, kind: &str) -> String {
        self.docs_made += 1;
        format!("{}-{kind}{}", self.prefix, self.docs_made)
    }

    fn new_lot(&mut self) -> String {
        self.lots_made += 1;
        format!("{}-L{}", self.prefix, self.lots_made)
    }

    async fn start(&mut self) {
        for (i, (_, unit, decimals, kind)) in ITEMS.iter().enumerate() {
            let sku = self.sku(i);
            self.h
                .app
                .post_ok(
                    "/api/v1/items",
                    &json!({"sku":sku,"name":sku,"kind":kind,"unit":unit,"decimals":decimals}),
                )
                .await;
        }
        let lines: Vec<Value> = BOM_LINES
            .iter()
            .map(|(item, q)| json!({"sku": self.sku(*item), "qty": qty_text(*q)}))
            .collect();
        self.h
            .app
            .post_ok(
                "/api/v1/boms",
                &json!({"product_sku": self.sku(PRODUCT), "version": BOM_VERSION,
                        "output_qty": qty_text(BOM_OUTPUT), "lines": lines}),
            )
            .await;
    }

    /// The entry a successful document made: 201, and the next sequence number.
    fn created(
        &self,
        a: &Answer,
        seq_field: &Value,
        seq_before: u64,
        what: &str,
    ) -> Result<u64, TestCaseError> {
        same(a, StatusCode::CREATED, None, what)?;
        let seq = seq_field.as_u64().unwrap_or(0);
        check!(
            seq == seq_before + 1,
            "{what} made entry {seq} after {seq_before}: {}",
            a.text
        );
        Ok(seq)
    }

    /// A purchase request and the postings the model expects of it.
    fn purchase(
        &mut self,
        supplier: usize,
        location: usize,
        rate: Option<usize>,
        lines: &[LineSpec],
    ) -> (Value, Vec<Posting>, Vec<String>) {
        let id = self.next_id("PO");
        let rate_text = rate.map(|r| RATES[r]);
        let rate_scaled = scaled(rate_text.unwrap_or("1"), RATE_SCALE);
        let mut body_lines = Vec::new();
        let mut postings = Vec::new();
        let mut values = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            let qty = l.qty();
            let price = i128::from(l.price);
            let lot = if l.named_lot {
                self.new_lot()
            } else {
                format!("{id}-{}", i + 1)
            };
            // qty (3) x price (4) x rate (8) = 15 decimals, rounded once to 4.
            let value = div_half_even(
                qty * price * rate_scaled,
                10i128.pow(QTY_SCALE + RATE_SCALE),
            );
            let sku = self.sku(l.item);
            let mut line = json!({"sku": sku, "qty": qty_text(qty),
                                  "unit_price": text(price, MONEY_SCALE, true)});
            if l.named_lot {
                line["lot"] = json!(lot);
            }
            body_lines.push(line);
            postings.push(posting(
                &format!("supplier:{}", SUPPLIERS[supplier]),
                &sku,
                &lot,
                -qty,
                -value,
            ));
            postings.push(posting(
                &format!("stock:{}", LOCATIONS[location]),
                &sku,
                &lot,
                qty,
                value,
            ));
            values.push(text(value, MONEY_SCALE, false));
        }
        let mut body = json!({"purchase_id": id, "date": EARLY, "supplier": SUPPLIERS[supplier],
                              "location": LOCATIONS[location], "lines": body_lines});
        if let Some(r) = rate_text {
            body["currency"] = json!("USD");
            body["fx_rate"] = json!(r);
        }
        (body, postings, values)
    }

    /// Registers the lots an entry created: each guarded posting into stock is one lot's cost.
    fn add_lots(
        &mut self,
        postings: &[Posting],
        seq: u64,
        expires: &BTreeMap<String, &'static str>,
    ) {
        for p in postings.iter().filter(|p| guarded(&p.account) && p.qty > 0) {
            self.model.lots.insert(
                p.lot.clone(),
                ModelLot {
                    sku: p.sku.clone(),
                    cost: p.value,
                    expires: expires.get(&p.lot).copied(),
                    seq,
                    qty: p.qty,
                },
            );
        }
    }

    async fn receipt(
        &mut self,
        donor: usize,
        location: usize,
        lines: &[(LineSpec, usize)],
        seq_before: u64,
    ) -> Step {
        let id = self.next_id("RC");
        let stock = format!("stock:{}", LOCATIONS[location]);
        let giver = format!("donor:{}", DONORS[donor]);
        let mut body_lines = Vec::new();
        let mut postings = Vec::new();
        let mut expect = Vec::new();
        let mut expires = BTreeMap::new();
        for (i, (l, e)) in lines.iter().enumerate() {
            let qty = l.qty();
            let value = div_half_even(qty * i128::from(l.price), 10i128.pow(QTY_SCALE));
            let lot = if l.named_lot {
                self.new_lot()
            } else {
                format!("{id}-{}", i + 1)
            };
            let sku = self.sku(l.item);
            let mut line = json!({"sku": sku, "qty": qty_text(qty),
                                  "unit_value": text(i128::from(l.price), MONEY_SCALE, true)});
            if l.named_lot {
                line["lot"] = json!(lot);
            }
            if let Some(date) = EXPIRIES[*e] {
                line["expires_on"] = json!(date);
                expires.insert(lot.clone(), date);
            }
            body_lines.push(line);
            postings.push(posting(&giver, &sku, &lot, -qty, -value));
            postings.push(posting(&stock, &sku, &lot, qty, value));
            expect.push((lot, value));
        }
        let body = json!({"receipt_id": id, "date": EARLY, "donor": DONORS[donor],
                          "location": LOCATIONS[location], "lines": body_lines});
        let a = self.post("/api/v1/receipts", &body).await;
        let what = format!("receipt {body}");
        let seq = self.created(&a, &a.body["entry_seq"], seq_before, &what)?;
        for (i, (lot, value)) in expect.iter().enumerate() {
            check!(
                a.body["lines"][i]["lot"] == lot.as_str()
                    && money_is(&a.body["lines"][i]["value"], *value),
                "{what}: line {i} should be lot {lot} worth {value}: {}",
                a.text
            );
        }
        let total: i128 = expect.iter().map(|(_, v)| v).sum();
        check!(
            money_is(&a.body["total_value"], total),
            "{what}: total {total}: {}",
            a.text
        );
        self.add_lots(&postings, seq, &expires);
        self.model.post(seq, Made::Receipt, postings);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn run(
        &mut self,
        from: usize,
        to: usize,
        late: bool,
        (good, scrap, labor, overhead): (u32, u32, u32, u32),
        specs: Option<&[TakeSpec]>,
        output: &OutputLot,
        expires: bool,
        seq_before: u64,
    ) -> Step {
        let id = self.next_id("RUN");
        let date = if late { LATE } else { EARLY };
        let from = match specs {
            Some(specs) => self.stocked(from, specs[0].item),
            None => self.stocked(self.stocked(from, BOM_LINES[0].0), BOM_LINES[1].0),
        };
        let from_acc = format!("stock:{}", LOCATIONS[from]);
        let to_acc = format!("stock:{}", LOCATIONS[to]);
        let run_acc = format!("production:{id}");
        let product = self.sku(PRODUCT);
        let (good, scrap) = (i128::from(good) * 1_000, i128::from(scrap) * 1_000);
        let (labor, overhead) = (i128::from(labor), i128::from(overhead));
        // The standard: each BOM line scaled to good + scrap, rounded once, half-even, to the
        // material's decimals.
        let standard: Vec<(usize, i128)> = BOM_LINES
            .iter()
            .map(|(item, q)| {
                let dec = ITEMS[*item].2;
                let units = div_half_even(
                    q * (good + scrap) * 10i128.pow(dec),
                    BOM_OUTPUT * 10i128.pow(QTY_SCALE),
                );
                (*item, units * 10i128.pow(QTY_SCALE - dec))
            })
            .collect();
        let out_lot = match output {
            OutputLot::Named => Some(self.new_lot()),
            OutputLot::Existing(i) if !self.model.lots.is_empty() => Some(
                self.model
                    .lots
                    .keys()
                    .nth(i.index(self.model.lots.len()))
                    .unwrap()
                    .clone(),
            ),
            _ => None,
        };
        let mut draft = Draft::new(&self.model);
        let mut picked: Vec<(String, i128, i128)> = Vec::new();
        let mut refusal: Option<Refusal> = None;
        let mut body_lines = Vec::new();
        match specs {
            None => {
                for (i, (item, qty)) in standard.iter().enumerate() {
                    // A standard that rounds to nothing consumes nothing.
                    if *qty > 0 && refusal.is_none() {
                        match draft.pick(
                            &format!("bom.lines[{i}]"),
                            &from_acc,
                            &self.sku(*item),
                            *qty,
                            None,
                            date,
                        ) {
                            Ok(p) => picked.extend(p),
                            Err(r) => refusal = Some(r),
                        }
                    }
                }
            }
            Some(specs) => {
                for (i, s) in specs.iter().enumerate() {
                    let item =
                        stocked_item(&draft, &from_acc, &self.prefix, s.item, MATERIALS, date);
                    let sku = self.sku(item);
                    let lot = choose_lot(&draft, &from_acc, &sku, s.lot);
                    let available = draft.available(&from_acc, &sku, lot.as_deref(), date);
                    let qty = s.amount.resolve(available, unit_of(item));
                    let mut line = json!({"sku": sku, "qty": qty_text(qty)});
                    if let Some(l) = &lot {
                        line["lot"] = json!(l);
                    }
                    body_lines.push(line);
                    if refusal.is_none() {
                        match draft.pick(
                            &format!("lines[{i}]"),
                            &from_acc,
                            &sku,
                            qty,
                            lot.as_deref(),
                            date,
                        ) {
                            Ok(p) => picked.extend(p),
                            Err(r) => refusal = Some(r),
                        }
                    }
                }
            }
        }
        drop(draft);
        // The output lot is checked once the materials are picked.
        if refusal.is_none() && matches!(output, OutputLot::Existing(_)) && out_lot.is_some() {
            refusal = Some(Refusal::conflict(
                "/problems/lot-exists",
                Some("output_lot".into()),
            ));
        }
        let mut body = json!({"run_id": id, "date": date, "product_sku": product,
                              "bom_version": BOM_VERSION, "from_location": LOCATIONS[from],
                              "to_location": LOCATIONS[to], "good_qty": qty_text(good),
                              "labor_cost": text(labor, MONEY_SCALE, true),
                              "overhead_cost": text(overhead, MONEY_SCALE, true),
                              "lines": body_lines});
        if scrap > 0 {
            body["scrap_qty"] = json!(qty_text(scrap));
        }
        if let Some(l) = &out_lot {
            body["output_lot"] = json!(l);
        }
        let expiry = "2021-01-31";
        if expires {
            body["expires_on"] = json!(expiry);
        }
        let a = self.post("/api/v1/production-runs", &body).await;
        let what = format!("run {body}");
        if let Some(r) = refusal {
            return refused(&a, &r, &what);
        }
        let seq = self.created(&a, &a.body["entry_seq"], seq_before, &what)?;
        let out = out_lot.unwrap_or_else(|| format!("{id}-1"));
        let mut postings = Vec::new();
        let mut material_cost = 0;
        for (lot, q, v) in &picked {
            let sku = &self.model.lots[lot].sku;
            postings.push(posting(&from_acc, sku, lot, -q, -v));
            postings.push(posting(&run_acc, sku, lot, *q, *v));
            material_cost += v;
        }
        // The output carries the materials' relieved value, labour and overhead; scrap goes
        // to loss at no value.
        let total = material_cost + labor + overhead;
        for cost in [labor, overhead] {
            if cost > 0 {
                postings.push(posting("conversion", &product, &out, 0, -cost));
                postings.push(posting(&run_acc, &product, &out, 0, cost));
            }
        }
        postings.push(posting(&run_acc, &product, &out, -good, -total));
        postings.push(posting(&to_acc, &product, &out, good, total));
        if scrap > 0 {
            postings.push(posting(&run_acc, &product, &out, -scrap, 0));
            postings.push(posting("loss", &product, &out, scrap, 0));
        }
        check!(
            a.body["output_lot"] == out.as_str(),
            "{what}: output lot {out}: {}",
            a.text
        );
        let consumed = a.body["consumed"].as_array().cloned().unwrap_or_default();
        check!(
            consumed.len() == picked.len(),
            "{what}: picked {picked:?}: {}",
            a.text
        );
        for (c, (lot, q, v)) in consumed.iter().zip(&picked) {
            check!(
                c["lot"] == lot.as_str()
                    && qty_of(&c["qty"]) == Some(*q)
                    && money_is(&c["value"], *v),
                "{what}: picked {picked:?}: {}",
                a.text
            );
        }
        let report = &a.body["report"];
        check!(
            money_is(&report["material_cost"], material_cost)
                && money_is(&report["total_cost"], total)
                && money_is(&report["unit_cost"], div_half_even(total * 1_000, good)),
            "{what}: materials {material_cost}, total {total}: {}",
            a.text
        );
        for (item, qty) in &standard {
            let sku = self.sku(*item);
            let m = report["materials"]
                .as_array()
                .and_then(|ms| ms.iter().find(|m| m["material_sku"] == sku.as_str()));
            let actual: i128 = picked
                .iter()
                .filter(|(l, _, _)| self.model.lots[l].sku == sku)
                .map(|(_, q, _)| q)
                .sum();
            check!(
                m.is_some_and(|m| qty_of(&m["standard_qty"]) == Some(*qty)
                    && qty_of(&m["actual_qty"]) == Some(actual)),
                "{what}: {sku} standard {qty}, actual {actual}: {}",
                a.text
            );
        }
        let mut exp = BTreeMap::new();
        if expires {
            exp.insert(out.clone(), expiry);
        }
        self.add_lots(&postings, seq, &exp);
        self.model.post(seq, Made::Production, postings);
        Ok(())
    }

    /// A batch (`recipient` None) or a donation.
    async fn dispatch(
        &mut self,
        from: usize,
        late: bool,
        destinations: (usize, usize),
        recipient: Option<(usize, u32, Option<usize>)>,
        specs: &[TakeSpec],
        seq_before: u64,
    ) -> Step {
        let id = self.next_id(if recipient.is_some() { "DON" } else { "B" });
        let date = if late { LATE } else { EARLY };
        let from = self.stocked(from, specs[0].item);
        let from_acc = format!("stock:{}", LOCATIONS[from]);
        let transit = format!("transit:{id}");
        let mut draft = Draft::new(&self.model);
        let mut refusal: Option<Refusal> = None;
        let mut body_lines = Vec::new();
        let mut ship = ModelShipment {
            id: id.clone(),
            lines: Vec::new(),
            closed: None,
        };
        // (document line, destination, lot, qty, value) per lot picked.
        let mut picks: Vec<(usize, String, String, i128, i128)> = Vec::new();
        for (i, s) in specs.iter().enumerate() {
            let destination = match recipient {
                Some((r, _, _)) => HOSPITALS[r],
                None if s.second => FRONTLINE[destinations.1],
                None => FRONTLINE[destinations.0],
            };
            let item = stocked_item(&draft, &from_acc, &self.prefix, s.item, ITEMS.len(), date);
            let sku = self.sku(item);
            let lot = choose_lot(&draft, &from_acc, &sku, s.lot);
            let available = draft.available(&from_acc, &sku, lot.as_deref(), date);
            let qty = s.amount.resolve(available, unit_of(item));
            let mut line = json!({"sku": sku, "qty": qty_text(qty)});
            if recipient.is_none() {
                line["destination"] = json!(destination);
            }
            if let Some(l) = &lot {
                line["lot"] = json!(l);
            }
            body_lines.push(line);
            if refusal.is_some() {
                continue;
            }
            match draft.pick(
                &format!("lines[{i}]"),
                &from_acc,
                &sku,
                qty,
                lot.as_deref(),
                date,
            ) {
                Ok(p) => {
                    for (lot, q, v) in p {
                        let at = match ship
                            .lines
                            .iter()
                            .position(|l| l.destination == destination && l.lot == lot)
                        {
                            Some(at) => at,
                            None => {
                                ship.lines.push(ShipLine {
                                    destination: destination.to_owned(),
                                    sku: sku.clone(),
                                    lot: lot.clone(),
                                    dispatched: 0,
                                    acknowledged: 0,
                                    damaged: 0,
                                    short: 0,
                                });
                                ship.lines.len() - 1
                            }
                        };
                        ship.lines[at].dispatched += q;
                        picks.push((i, destination.to_owned(), lot, q, v));
                    }
                }
                Err(r) => refusal = Some(r),
            }
        }
        drop(draft);
        let (path, body, declared_base) = match recipient {
            None => (
                "/api/v1/batches",
                json!({"batch_id": id, "date": date, "from_location": LOCATIONS[from],
                       "lines": body_lines}),
                None,
            ),
            Some((r, declared, rate)) => {
                let declared = i128::from(declared);
                let mut body = json!({"donation_id": id, "date": date,
                                      "from_location": LOCATIONS[from], "recipient": HOSPITALS[r],
                                      "declared_value": text(declared, MONEY_SCALE, true),
                                      "lines": body_lines});
                let rate_text = rate.map_or("1", |r| RATES[r]);
                if rate.is_some() {
                    body["currency"] = json!("USD");
                    body["fx_rate"] = json!(rate_text);
                }
                // value (4) x rate (8) = 12 decimals, rounded once to 4.
                let base = div_half_even(
                    declared * scaled(rate_text, RATE_SCALE),
                    10i128.pow(RATE_SCALE),
                );
                ("/api/v1/donations", body, Some(base))
            }
        };
        let a = self.post(path, &body).await;
        let what = format!("dispatch {body}");
        if let Some(r) = refusal {
            return refused(&a, &r, &what);
        }
        let seq = self.created(&a, &a.body["dispatch_seq"], seq_before, &what)?;
        let answered = a.body["picked"].as_array().cloned().unwrap_or_default();
        check!(
            answered.len() == picks.len(),
            "{what}: picks {picks:?}: {}",
            a.text
        );
        for (p, (line, destination, lot, q, v)) in answered.iter().zip(&picks) {
            check!(
                p["line"] == *line
                    && p["destination"] == destination.as_str()
                    && p["lot"] == lot.as_str()
                    && qty_of(&p["qty"]) == Some(*q)
                    && money_is(&p["value"], *v),
                "{what}: picks {picks:?}: {}",
                a.text
            );
        }
        let total: i128 = picks.iter().map(|p| p.4).sum();
        check!(
            money_is(&a.body["dispatched_value"], total) && a.body["status"] == "dispatched",
            "{what}: dispatched value {total}: {}",
            a.text
        );
        if let Some(base) = declared_base {
            check!(
                money_is(&a.body["declared_value_base"], base),
                "{what}: declared {base} in the base currency: {}",
                a.text
            );
        }
        let mut postings = Vec::new();
        for (_, _, lot, q, v) in &picks {
            let sku = &self.model.lots[lot].sku;
            postings.push(posting(&from_acc, sku, lot, -q, -v));
            postings.push(posting(&transit, sku, lot, *q, *v));
        }
        self.model.shipments.push(ship);
        self.model.post(seq, Made::Dispatch, postings);
        Ok(())
    }

    async fn acknowledge(&mut self, shipment: Index, specs: &[AckSpec], seq_before: u64) -> Step {
        if self.model.shipments.is_empty() {
            return Ok(());
        }
        let at = shipment.index(self.model.shipments.len());
        let ship = self.model.shipments[at].clone();
        let id = self.next_id("ACK");
        let transit = format!("transit:{}", ship.id);
        let mut refusal = ship
            .closed
            .is_some()
            .then(|| Refusal::conflict("/problems/state-forbids", None));
        let mut next = ship.lines.clone();
        let mut draft = Draft::new(&self.model);
        let mut postings = Vec::new();
        let mut moved: Vec<Moved> = Vec::new();
        let mut body_lines = Vec::new();
        for (i, s) in specs.iter().enumerate() {
            let sl = &ship.lines[s.line.index(ship.lines.len())];
            let (destination, sku) = (sl.destination.clone(), sl.sku.clone());
            let lot = s.by_lot.then(|| sl.lot.clone());
            let unit = unit_of(self.item_of(&sku));
            let candidates: Vec<usize> = (0..next.len())
                .filter(|c| {
                    next[*c].destination == destination
                        && next[*c].sku == sku
                        && lot.as_ref().is_none_or(|l| &next[*c].lot == l)
                })
                .collect();
            let outstanding: i128 = candidates.iter().map(|c| next[*c].outstanding()).sum();
            let requested = s.amount.resolve(outstanding, unit);
            let damaged = requested * i128::from(s.damaged_quarters) / 4 / unit * unit;
            let received = requested - damaged;
            let mut line = json!({"destination": destination, "sku": sku,
                                  "received_qty": qty_text(received), "damaged_qty": qty_text(damaged)});
            if let Some(l) = &lot {
                line["lot"] = json!(l);
            }
            body_lines.push(line);
            if refusal.is_some() {
                continue;
            }
            if requested > outstanding {
                let name = if received == 0 {
                    "damaged_qty"
                } else {
                    "received_qty"
                };
                refusal = Some(Refusal {
                    status: StatusCode::CONFLICT,
                    problem: "/problems/more-than-outstanding",
                    field: Some(format!("lines[{i}].{name}")),
                    facts: vec![("outstanding", outstanding), ("requested", requested)],
                });
                continue;
            }
            // Received first, then damaged, each from the lots in the order they were sent.
            let (mut received, mut damaged) = (received, damaged);
            for c in candidates {
                let out = next[c].outstanding();
                let r = received.min(out);
                let d = damaged.min(out - r);
                if r + d == 0 {
                    continue;
                }
                received -= r;
                damaged -= d;
                let l = next[c].lot.clone();
                let (mut rv, mut dv) = (0, 0);
                if r > 0 {
                    rv = draft
                        .take(&transit, &l, r)
                        .expect("transit holds what is outstanding");
                    postings.push(posting(&transit, &sku, &l, -r, -rv));
                    postings.push(posting(
                        &format!("recipient:{destination}"),
                        &sku,
                        &l,
                        r,
                        rv,
                    ));
                }
                if d > 0 {
                    dv = draft
                        .take(&transit, &l, d)
                        .expect("transit holds what is outstanding");
                    postings.push(posting(&transit, &sku, &l, -d, -dv));
                    postings.push(posting("loss", &sku, &l, d, dv));
                }
                next[c].acknowledged += r;
                next[c].damaged += d;
                moved.push(Moved {
                    line: i,
                    destination: destination.clone(),
                    lot: l,
                    received: (r, rv),
                    damaged: (d, dv),
                    outstanding: next[c].outstanding(),
                });
            }
        }
        drop(draft);
        let body = json!({"acknowledgement_id": id, "date": LATE, "lines": body_lines});
        let a = self
            .post(
                &format!("/api/v1/shipments/{}/acknowledgements", ship.id),
                &body,
            )
            .await;
        let what = format!("acknowledgement of {} {body}", ship.id);
        if let Some(r) = refusal {
            return refused(&a, &r, &what);
        }
        let seq = self.created(&a, &a.body["entry_seq"], seq_before, &what)?;
        self.model.shipments[at].lines = next;
        let status = self.model.shipments[at].status();
        check!(
            a.body["status"] == status,
            "{what}: status {status}: {}",
            a.text
        );
        let answered = a.body["moved"].as_array().cloned().unwrap_or_default();
        check!(
            answered.len() == moved.len(),
            "{what}: moved {moved:?}: {}",
            a.text
        );
        for (m, e) in answered.iter().zip(&moved) {
            check!(
                m["line"] == e.line
                    && m["destination"] == e.destination.as_str()
                    && m["lot"] == e.lot.as_str()
                    && qty_of(&m["received"]) == Some(e.received.0)
                    && money_is(&m["received_value"], e.received.1)
                    && qty_of(&m["damaged"]) == Some(e.damaged.0)
                    && money_is(&m["damaged_value"], e.damaged.1)
                    && qty_of(&m["outstanding"]) == Some(e.outstanding),
                "{what}: moved {moved:?}: {}",
                a.text
            );
        }
        self.model.post(seq, Made::Acknowledgement, postings);
        Ok(())
    }

    /// An acknowledgement naming a destination the shipment does not go to.
    async fn acknowledge_stranger(&mut self, shipment: Index) -> Step {
        if self.model.shipments.is_empty() {
            return Ok(());
        }
        let ship = self.model.shipments[shipment.index(self.model.shipments.len())].clone();
        let Some(stranger) = FRONTLINE
            .iter()
            .chain(HOSPITALS)
            .find(|p| ship.lines.iter().all(|l| l.destination != **p))
        else {
            return Ok(());
        };
        let body = json!({"acknowledgement_id": "STRANGER", "date": LATE,
                          "lines": [{"destination": stranger, "sku": ship.lines[0].sku, "received_qty": "1"}]});
        let a = self
            .post(
                &format!("/api/v1/shipments/{}/acknowledgements", ship.id),
                &body,
            )
            .await;
        let r = if ship.closed.is_some() {
            Refusal::conflict("/problems/state-forbids", None)
        } else {
            Refusal {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                problem: "/problems/not-on-shipment",
                field: Some("lines[0].destination".into()),
                facts: Vec::new(),
            }
        };
        refused(&a, &r, &format!("acknowledgement of {} {body}", ship.id))
    }

    async fn close(&mut self, shipment: Index, seq_before: u64) -> Step {
        if self.model.shipments.is_empty() {
            return Ok(());
        }
        let at = shipment.index(self.model.shipments.len());
        let ship = self.model.shipments[at].clone();
        let body = json!({"date": LATE, "reason": "lost in transit"});
        let path = format!("/api/v1/shipments/{}/close", ship.id);
        let a = self.post(&path, &body).await;
        let what = format!("close of {}", ship.id);
        if let Some((_, answer)) = &ship.closed {
            // Closing is recorded under the shipment's id: the same close again replays.
            same(&a, StatusCode::CREATED, None, &what)?;
            check!(
                &a.body == answer && a.headers.get("idempotent-replay").is_some(),
                "{what}: a replay answers the first answer: {} vs {answer}",
                a.text
            );
            return Ok(());
        }
        if ship.lines.iter().all(|l| l.outstanding() == 0) {
            refused(
                &a,
                &Refusal::conflict("/problems/state-forbids", None),
                &what,
            )?;
            return Ok(());
        }
        let transit = format!("transit:{}", ship.id);
        let mut draft = Draft::new(&self.model);
        let mut postings = Vec::new();
        let mut next = ship.lines.clone();
        let mut written = Vec::new();
        for l in next.iter_mut().filter(|l| l.outstanding() > 0) {
            let out = l.outstanding();
            let v = draft
                .take(&transit, &l.lot, out)
                .expect("transit holds what is outstanding");
            postings.push(posting(&transit, &l.sku, &l.lot, -out, -v));
            postings.push(posting("loss", &l.sku, &l.lot, out, v));
            l.short += out;
            written.push((l.destination.clone(), l.lot.clone(), out, v));
        }
        drop(draft);
        let seq = self.created(&a, &a.body["entry_seq"], seq_before, &what)?;
        let answered = a.body["written_off"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        check!(
            answered.len() == written.len(),
            "{what}: {written:?}: {}",
            a.text
        );
        for (w, (destination, lot, q, v)) in answered.iter().zip(&written) {
            check!(
                w["destination"] == destination.as_str()
                    && w["lot"] == lot.as_str()
                    && qty_of(&w["short"]) == Some(*q)
                    && money_is(&w["value"], *v),
                "{what}: {written:?}: {}",
                a.text
            );
        }
        let total: i128 = written.iter().map(|w| w.3).sum();
        check!(
            money_is(&a.body["short_value"], total) && a.body["status"] == "closed",
            "{what}: short value {total}: {}",
            a.text
        );
        let s = &mut self.model.shipments[at];
        s.lines = next;
        s.closed = Some((body, a.body.clone()));
        self.model.post(seq, Made::Close, postings);
        Ok(())
    }

    async fn count(
        &mut self,
        location: usize,
        late: bool,
        specs: &[(Index, Counted)],
        seq_before: u64,
    ) -> Step {
        if self.model.lots.is_empty() {
            return Ok(());
        }
        let id = self.next_id("CNT");
        // Mostly where the first lot counted is held, so that counts find goods short and over.
        let first = self
            .model
            .lots
            .keys()
            .nth(specs[0].0.index(self.model.lots.len()))
            .unwrap();
        let location = (0..LOCATIONS.len())
            .map(|k| (location + k) % LOCATIONS.len())
            .find(|l| {
                self.model
                    .balance(&format!("stock:{}", LOCATIONS[*l]), first)
                    .qty
                    > 0
            })
            .unwrap_or(location);
        let stock = format!("stock:{}", LOCATIONS[location]);
        let mut draft = Draft::new(&self.model);
        let mut seen = BTreeSet::new();
        let mut postings = Vec::new();
        let mut body_lines = Vec::new();
        // (book, counted, difference, its value) per line.
        let mut expect = Vec::new();
        for (ix, counted) in specs {
            let lot = self
                .model
                .lots
                .keys()
                .nth(ix.index(self.model.lots.len()))
                .unwrap()
                .clone();
            // Each lot is counted once (a second line is refused, see `bad_document`).
            if !seen.insert(lot.clone()) {
                continue;
            }
            let sku = self.model.lots[&lot].sku.clone();
            let unit = unit_of(self.item_of(&sku));
            let book = draft.balance(&stock, &lot);
            let found = match counted {
                Counted::Zero => 0,
                Counted::Same => book.qty,
                Counted::Original => self.model.lots[&lot].qty,
                Counted::Less(k) => {
                    (book.qty - (book.qty * i128::from(*k) / 8 / unit * unit).max(unit)).max(0)
                }
                Counted::More(n) => book.qty + i128::from(*n) * unit,
            };
            // A shortfall leaves by value relief; a surplus comes back at the lot's average
            // there, or at 0 when the location held none.
            let (q, v) = if found < book.qty {
                let short = book.qty - found;
                let v = draft.take(&stock, &lot, short).expect("the book holds it");
                (-short, -v)
            } else if found > book.qty {
                let extra = found - book.qty;
                let v = if book.qty > 0 {
                    div_half_even(book.value * extra, book.qty)
                } else {
                    0
                };
                (extra, v)
            } else {
                (0, 0)
            };
            postings.push(posting(&stock, &sku, &lot, q, v));
            postings.push(posting("loss", &sku, &lot, -q, -v));
            body_lines.push(json!({"sku": sku, "lot": lot, "counted_qty": qty_text(found)}));
            expect.push((book.qty, found, q, v));
        }
        drop(draft);
        let date = if late { LATE } else { EARLY };
        let body = json!({"count_id": id, "date": date, "location": LOCATIONS[location],
                          "lines": body_lines});
        let a = self.post("/api/v1/stock-counts", &body).await;
        let what = format!("count {body}");
        let seq = self.created(&a, &a.body["entry_seq"], seq_before, &what)?;
        for (i, (book, found, q, v)) in expect.iter().enumerate() {
            let l = &a.body["lines"][i];
            check!(
                qty_of(&l["book_qty"]) == Some(*book)
                    && qty_of(&l["counted_qty"]) == Some(*found)
                    && qty_of(&l["difference_qty"]) == Some(*q)
                    && money_is(&l["difference_value"], *v),
                "{what}: line {i}: book {book}, difference {q} worth {v}: {}",
                a.text
            );
        }
        let total: i128 = expect.iter().map(|e| e.3).sum();
        check!(
            money_is(&a.body["difference_value"], total),
            "{what}: {total}: {}",
            a.text
        );
        self.model.post(seq, Made::Count, postings);
        Ok(())
    }

    /// A document refused for its input before any stock is looked at: 422 naming the field.
    async fn bad_document(&mut self, k: u8) -> Step {
        let p = self.prefix.clone();
        let (band, pc) = (self.sku(0), self.sku(1));
        let run = |field: &str, value: &str| {
            let mut b = json!({"run_id": format!("{p}-BADRUN"), "date": EARLY, "product_sku": format!("{p}-GOG"),
                               "bom_version": BOM_VERSION, "from_location": "RAW", "to_location": "FG",
                               "good_qty": "1"});
            b[field] = json!(value);
            b
        };
        let lots: Vec<String> = self.model.lots.keys().cloned().collect();
        let count = |lines: Value| json!({"count_id": format!("{p}-BADCNT"), "date": EARLY, "location": "RAW", "lines": lines});
        let receipt = |donor: &str, value: &str| {
            json!({"receipt_id": format!("{p}-BADRC"), "date": EARLY, "donor": donor,
                               "location": "RAW", "lines": [{"sku": band, "qty": "1", "unit_value": value}]})
        };
        let donation = |recipient: &str, currency: &str| {
            json!({"donation_id": format!("{p}-BADDON"), "date": EARLY,
                               "from_location": "RAW", "recipient": recipient, "declared_value": "1",
                               "currency": currency, "lines": [{"sku": band, "qty": "1"}]})
        };
        let batch = |destination: &str, qty: &str| {
            json!({"batch_id": format!("{p}-BADB"), "date": EARLY, "from_location": "RAW",
                               "lines": [{"destination": destination, "sku": band, "qty": qty}]})
        };
        let (path, body, field) = match k % 13 {
            0 => ("receipts", receipt("SUP-A", "1"), "donor"),
            1 => ("receipts", receipt("DONOR", "-1"), "lines[0].unit_value"),
            2 => ("production-runs", run("good_qty", "0"), "good_qty"),
            3 => ("production-runs", run("bom_version", "NOPE"), "bom_version"),
            4 => ("production-runs", run("labor_cost", "-5"), "labor_cost"),
            5 => ("batches", batch(HOSPITALS[0], "1"), "lines[0].destination"),
            6 => ("donations", donation("XIACUN", "CNY"), "recipient"),
            7 => ("donations", donation(HOSPITALS[1], "USD"), "fx_rate"),
            8 => ("batches", batch(FRONTLINE[1], "1.5"), "lines[0].qty"),
            9 => (
                "stock-counts",
                count(json!([{"sku": band, "lot": "NOLOT", "counted_qty": "-1"}])),
                "lines[0].counted_qty",
            ),
            10 => (
                "stock-counts",
                count(json!([{"sku": band, "lot": format!("{p}-NOLOT"), "counted_qty": "1"}])),
                "lines[0].lot",
            ),
            11 if !lots.is_empty() => {
                let sku = &self.model.lots[&lots[0]].sku;
                (
                    "stock-counts",
                    count(json!([{"sku": sku, "lot": lots[0], "counted_qty": "0"},
                                               {"sku": sku, "lot": lots[0], "counted_qty": "0"}])),
                    "lines[1].lot",
                )
            }
            12 if !lots.is_empty() => {
                let other = if self.model.lots[&lots[0]].sku == band {
                    &pc
                } else {
                    &band
                };
                (
                    "stock-counts",
                    count(json!([{"sku": other, "lot": lots[0], "counted_qty": "0"}])),
                    "lines[0].lot",
                )
            }
            _ => return Ok(()),
        };
        let a = self.post(&format!("/api/v1/{path}"), &body).await;
        same(
            &a,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            &format!("bad {path} {body}"),
        )?;
        check!(
            a.fields() == [field],
            "{body}: expected field {field}: {}",
            a.text
        );
        Ok(())
    }

    /// A reversal of the model's entry `at`, refused as the ledger's rules say.
    async fn reverse(&mut self, at: usize, seq_before: u64) -> Step {
        let target = self.model.entries[at].clone();
        let negated: Vec<Posting> = target
            .postings
            .iter()
            .map(|p| Posting {
                qty: -p.qty,
                value: -p.value,
                ..p.clone()
            })
            .collect();
        let a = self
            .post(
                &format!("/api/v1/entries/{}/reversal", target.seq),
                &json!({"memo":"model"}),
            )
            .await;
        if target.reversed {
            same(
                &a,
                StatusCode::CONFLICT,
                Some("/problems/already-reversed"),
                "second reversal",
            )?;
        } else if matches!(
            target.made,
            Made::Reversal | Made::Dispatch | Made::Acknowledgement | Made::Close
        ) {
            // A reversal is recorded again instead; a shipment's entries are
            // corrected by acknowledging or closing it, never by negating one.
            same(
                &a,
                StatusCode::CONFLICT,
                Some("/problems/not-reversible"),
                &format!("reversal of a {:?} entry", target.made),
            )?;
        } else if let Some(why) = self.model.refusal_of(&negated) {
            *self
                .h
                .seen
                .entry(format!("reversal refused to {why}"))
                .or_default() += 1;
            same(
                &a,
                StatusCode::CONFLICT,
                Some("/problems/not-reversible"),
                &format!("reversal that would {why}"),
            )?;
        } else {
            same(&a, StatusCode::CREATED, None, "reversal")?;
            let seq = a.body["seq"].as_u64().unwrap_or(0);
            check!(
                seq == seq_before + 1,
                "reversal made entry {seq} after {seq_before}"
            );
            check!(a.body["reverses"] == target.seq, "{}", a.text);
            self.model.entries[at].reversed = true;
            self.model.post(seq, Made::Reversal, negated);
        }
        Ok(())
    }

    async fn step(&mut self, op: &Op) -> Step {
        let seq_before = self.h.seen_seq;
        // The step should add the entries the model recorded.
        let entries_before = self.model.entries.len();
        match op {
            Op::Purchase {
                supplier,
                location,
                rate,
                lines,
            } => {
                let (body, postings, values) = self.purchase(*supplier, *location, *rate, lines);
                let a = self.post("/api/v1/purchases", &body).await;
                same(&a, StatusCode::CREATED, None, &format!("purchase {body}"))?;
                for (i, v) in values.iter().enumerate() {
                    check!(
                        a.body["lines"][i]["value"] == v.as_str(),
                        "line {i} value: model {v}, ledger {}",
                        a.text
                    );
                }
                let seq = a.body["entry_seq"].as_u64().unwrap_or(0);
                check!(
                    seq == seq_before + 1,
                    "purchase made entry {seq} after {seq_before}"
                );
                self.add_lots(&postings, seq, &BTreeMap::new());
                self.model.post(seq, Made::Purchase, postings);
                self.model.purchases.push(ModelPurchase {
                    body,
                    answer: a.body,
                });
            }
            Op::RepeatPurchase(i) => {
                if self.model.purchases.is_empty() {
                    return Ok(());
                }
                let p = self.model.purchases[i.index(self.model.purchases.len())].clone();
                let a = self.post("/api/v1/purchases", &p.body).await;
                same(&a, StatusCode::CREATED, None, "replayed purchase")?;
                check!(
                    a.body == p.answer,
                    "a replay answers the first answer: {} vs {}",
                    a.text,
                    p.answer
                );
                check!(
                    a.headers.get("idempotent-replay").is_some(),
                    "a replay says so"
                );
            }
            Op::ConflictingPurchase(i) => {
                if self.model.purchases.is_empty() {
                    return Ok(());
                }
                let mut body = self.model.purchases[i.index(self.model.purchases.len())]
                    .body
                    .clone();
                body["date"] = json!("2020-02-13");
                let a = self.post("/api/v1/purchases", &body).await;
                same(
                    &a,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some("/problems/exists-with-different-body"),
                    "conflicting purchase",
                )?;
            }
            Op::ExistingLot(i) => {
                if self.model.lots.is_empty() {
                    return Ok(());
                }
                let lot = self
                    .model
                    .lots
                    .keys()
                    .nth(i.index(self.model.lots.len()))
                    .unwrap()
                    .clone();
                let (body, _, _) = self.purchase(
                    0,
                    0,
                    None,
                    &[LineSpec {
                        item: 0,
                        units: 1,
                        thousandths: 0,
                        price: 1,
                        named_lot: false,
                    }],
                );
                let mut body = body;
                body["lines"][0]["lot"] = json!(lot);
                let a = self.post("/api/v1/purchases", &body).await;
                same(
                    &a,
                    StatusCode::CONFLICT,
                    Some("/problems/lot-exists"),
                    "purchase into an existing lot",
                )?;
                check!(
                    a.fields() == ["lines[0].lot"],
                    "the refusal names the line: {}",
                    a.text
                );
            }
            Op::BadPurchase(k) => {
                let (mut body, _, _) = self.purchase(
                    0,
                    0,
                    None,
                    &[LineSpec {
                        item: 0,
                        units: 2,
                        thousandths: 0,
                        price: 1,
                        named_lot: false,
                    }],
                );
                let field = match k % 5 {
                    0 => {
                        body["lines"][0]["qty"] = json!("1.5");
                        "lines[0].qty"
                    }
                    1 => {
                        body["lines"][0]["sku"] = json!(format!("{}-NONE", self.prefix));
                        "lines[0].sku"
                    }
                    2 => {
                        body["supplier"] = json!("DONOR");
                        "supplier"
                    }
                    3 => {
                        body["lines"][0]["unit_price"] = json!("-1");
                        "lines[0].unit_price"
                    }
                    _ => {
                        body["currency"] = json!("USD");
                        "fx_rate"
                    }
                };
                let a = self.post("/api/v1/purchases", &body).await;
                same(
                    &a,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    None,
                    &format!("bad purchase {body}"),
                )?;
                check!(
                    a.fields().iter().any(|f| f == field),
                    "{body}: expected field {field}: {}",
                    a.text
                );
            }
            Op::Receipt {
                donor,
                location,
                lines,
            } => {
                self.receipt(*donor, *location, lines, seq_before).await?;
            }
            Op::Run {
                from,
                to,
                late,
                good,
                scrap,
                labor,
                overhead,
                lines,
                output,
                expires,
            } => {
                self.run(
                    *from,
                    *to,
                    *late,
                    (*good, *scrap, *labor, *overhead),
                    lines.as_deref(),
                    output,
                    *expires,
                    seq_before,
                )
                .await?;
            }
            Op::Batch {
                from,
                late,
                destinations,
                lines,
            } => {
                self.dispatch(*from, *late, *destinations, None, lines, seq_before)
                    .await?;
            }
            Op::Donation {
                from,
                late,
                recipient,
                declared,
                rate,
                lines,
            } => {
                self.dispatch(
                    *from,
                    *late,
                    (0, 0),
                    Some((*recipient, *declared, *rate)),
                    lines,
                    seq_before,
                )
                .await?;
            }
            Op::Acknowledge { shipment, lines } => {
                self.acknowledge(*shipment, lines, seq_before).await?;
            }
            Op::AcknowledgeStranger(i) => self.acknowledge_stranger(*i).await?,
            Op::Close(i) => {
                self.close(*i, seq_before).await?;
            }
            Op::Count {
                location,
                late,
                lines,
            } => {
                self.count(*location, *late, lines, seq_before).await?;
            }
            Op::BadDocument(k) => self.bad_document(*k).await?,
            Op::Reverse(i) => {
                if !self.model.entries.is_empty() {
                    self.reverse(i.index(self.model.entries.len()), seq_before)
                        .await?;
                }
            }
            Op::ReverseCreator(i) => {
                if !self.model.lots.is_empty() {
                    let seq = self
                        .model
                        .lots
                        .values()
                        .nth(i.index(self.model.lots.len()))
                        .unwrap()
                        .seq;
                    let at = self
                        .model
                        .entries
                        .iter()
                        .position(|e| e.seq == seq)
                        .unwrap();
                    self.reverse(at, seq_before).await?;
                }
            }
            Op::Recount { .. } => unreachable!("run_case expands it"),
            Op::ReverseMissing => {
                let a = self
                    .post("/api/v1/entries/1000000000/reversal", &json!({}))
                    .await;
                same(
                    &a,
                    StatusCode::NOT_FOUND,
                    None,
                    "reversal of a missing entry",
                )?;
            }
        }
        let added = u64::try_from(self.model.entries.len() - entries_before).unwrap();
        self.check_ledger(seq_before + added).await
    }

    /// The checks after every step.
    async fn check_ledger(&mut self, expected_head: u64) -> Step {
        let app = &self.h.app;
        // The chain, and maintained balances against the postings.
        let v = app.get("/api/v1/verify").await;
        check!(v.body["ok"] == true, "verify: {}", v.text);
        check!(
            v.body["entries"] == expected_head,
            "expected {expected_head} entries: {}",
            v.text
        );
        // Every new entry balances per (item, lot) and in value.
        let page = app
            .get(&format!(
                "/api/v1/entries?after={}&limit=1000",
                self.h.seen_seq
            ))
            .await;
        let items = page.body["items"].as_array().cloned().unwrap_or_default();
        for e in &items {
            let mut per_lot: BTreeMap<(String, String), i128> = BTreeMap::new();
            let mut value = 0i128;
            let creates = creates_lots(e);
            for p in e["postings"].as_array().unwrap() {
                let (account, sku, lot) = (
                    p["account"].as_str().unwrap(),
                    p["sku"].as_str().unwrap(),
                    p["lot"].as_str().unwrap(),
                );
                let q = scaled(p["quantity"].as_str().unwrap(), QTY_SCALE);
                let v = scaled(p["value"].as_str().unwrap(), MONEY_SCALE);
                *per_lot.entry((sku.to_owned(), lot.to_owned())).or_default() += q;
                value += v;
                if guarded(account) && creates && v > 0 {
                    *self.h.stock_in.entry(lot.to_owned()).or_default() += v;
                }
            }
            check!(
                per_lot.values().all(|q| *q == 0) && value == 0,
                "entry {} does not balance: {e}",
                e["seq"]
            );
            self.h.seen_seq = e["seq"].as_u64().unwrap();
        }
        check!(
            self.h.seen_seq == expected_head,
            "entries end at {}, expected {expected_head}",
            self.h.seen_seq
        );
        // The ledger's balances for this case's items, against the model's.
        let mut ledger: BTreeMap<(String, String), Bal> = BTreeMap::new();
        for i in 0..ITEMS.len() {
            let sku = self.sku(i);
            let page = app
                .get(&format!("/api/v1/balances?sku={sku}&limit=1000"))
                .await;
            check!(
                page.body["next"].is_null(),
                "more than one page of balances"
            );
            for b in page.body["items"].as_array().unwrap() {
                let account = b["account"].as_str().unwrap().to_owned();
                let bal = Bal {
                    qty: scaled(b["quantity"].as_str().unwrap(), QTY_SCALE),
                    value: scaled(b["value"].as_str().unwrap(), MONEY_SCALE),
                };
                check!(
                    !guarded(&account) || (bal.qty >= 0 && bal.value >= 0),
                    "negative stock: {b}"
                );
                ledger.insert((account, b["lot"].as_str().unwrap().to_owned()), bal);
            }
        }
        let model: BTreeMap<(String, String), Bal> = self
            .model
            .balances
            .iter()
            .filter(|(_, b)| b.qty != 0 || b.value != 0)
            .map(|(k, b)| (k.clone(), *b))
            .collect();
        check!(
            ledger == model,
            "balances differ:\nledger {ledger:?}\nmodel  {model:?}"
        );
        // Each lot: the value ever posted into stock is its cost, and over all accounts its
        // quantity and value sum to zero.
        for (lot, l) in &self.model.lots {
            let into = self.h.stock_in.get(lot).copied().unwrap_or(0);
            let cost = l.cost;
            check!(
                into == cost,
                "lot {lot}: {into} posted into stock, cost {cost}"
            );
            let (q, v) = ledger
                .iter()
                .filter(|((_, l), _)| l == lot)
                .fold((0, 0), |(q, v), (_, b)| (q + b.qty, v + b.value));
            check!(
                q == 0 && v == 0,
                "lot {lot} does not sum to zero: {q} / {v}"
            );
        }
        Ok(())
    }
}

async fn setup(backend: Backend) -> Harness {
    let app = spawn_app(backend).await;
    for s in SUPPLIERS {
        app.post_ok(
            "/api/v1/parties",
            &json!({"code":s,"name":s,"kind":"supplier"}),
        )
        .await;
    }
    let parties = [
        json!({"code":"DONOR","name":"A donor","kind":"donor"}),
        json!({"code":"MAKER","name":"A maker","kind":"manufacturer"}),
        json!({"code":"NANWAN","name":"Nanwan","kind":"subdistrict"}),
        json!({"code":"XIACUN","name":"Xiacun","kind":"community","parent":"NANWAN"}),
        json!({"code":"NANXIN","name":"Nanxin","kind":"community","parent":"NANWAN"}),
        json!({"code":"KR-DSMC","name":"Dongsan","kind":"hospital","country":"KR","city":"Daegu"}),
        json!({"code":"FR-APHP","name":"Pompidou","kind":"hospital","country":"FR","city":"Paris"}),
    ];
    for p in &parties {
        app.post_ok("/api/v1/parties", p).await;
    }
    for l in LOCATIONS {
        app.post_ok("/api/v1/locations", &json!({"code":l,"name":l}))
            .await;
    }
    Harness {
        app,
        cases: 0,
        seen_seq: 0,
        stock_in: BTreeMap::new(),
        seen: BTreeMap::new(),
    }
}

/// Takes in the entries a case left unchecked (a failed case stops half-way, and proptest
/// then runs smaller cases to shrink it), so that each case starts from the real head.
async fn catch_up(h: &mut Harness) {
    loop {
        let page = h
            .app
            .get(&format!("/api/v1/entries?after={}&limit=1000", h.seen_seq))
            .await;
        let items = page.body["items"].as_array().cloned().unwrap_or_default();
        let Some(last) = items.last() else { return };
        h.seen_seq = last["seq"].as_u64().unwrap();
        for e in items.iter().filter(|e| creates_lots(e)) {
            for p in e["postings"].as_array().unwrap() {
                let v = scaled(p["value"].as_str().unwrap(), MONEY_SCALE);
                if guarded(p["account"].as_str().unwrap()) && v > 0 {
                    *h.stock_in
                        .entry(p["lot"].as_str().unwrap().to_owned())
                        .or_default() += v;
                }
            }
        }
    }
}

async fn run_case(h: &mut Harness, ops: &[Op]) -> Step {
    catch_up(h).await;
    h.cases += 1;
    let mut case = Case {
        prefix: format!("C{}", h.cases),
        h,
        model: Model::default(),
        lots_made: 0,
        docs_made: 0,
    };
    case.start().await;
    for op in ops {
        match op {
            Op::Recount { lot, eighths } => {
                let count = |c| Op::Count {
                    location: 0,
                    late: false,
                    lines: vec![(*lot, c)],
                };
                for sub in [
                    count(Counted::Less(*eighths)),
                    count(Counted::Original),
                    Op::ReverseCreator(*lot),
                ] {
                    case.step(&sub).await?;
                }
            }
            _ => case.step(op).await?,
        }
    }
    // Nothing outside this case's items moved.
    let skus: BTreeSet<String> = case.model.lots.values().map(|l| l.sku.clone()).collect();
    check!(
        skus.iter()
            .all(|s| s.starts_with(&format!("{}-", case.prefix))),
        "{skus:?}"
    );
    Ok(())
}

#[test]
fn random_operations_agree_with_the_model_after_every_step() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for backend in backends() {
        let started = std::time::Instant::now();
        let h = std::cell::RefCell::new(rt.block_on(setup(backend)));
        let config = Config {
            cases: std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(CASES),
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        let result = runner.run(&prop::collection::vec(op(), 1..MAX_OPS), |ops| {
            rt.block_on(run_case(&mut h.borrow_mut(), &ops))
        });
        if let Err(e) = result {
            panic!("{backend:?}: {e}");
        }
        // What the sequences reached, and how long they took (shown with --nocapture).
        eprintln!("{backend:?}: {:.1} s", started.elapsed().as_secs_f64());
        for (label, n) in &h.borrow().seen {
            eprintln!("{backend:?} {n:5} {label}");
        }
        rt.block_on(h.into_inner().app.stop());
    }
}
