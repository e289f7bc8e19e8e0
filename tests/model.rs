//! Model-based test (issue 9, item 3), on every backend: random sequences of operations
//! (purchases in two currencies, replays, conflicting reuses of an id, lots that exist, bad
//! input, reversals of any entry, reversals of entries that do not exist) run against the
//! real server and against an in-memory model that predicts each answer and each balance on
//! its own (its own half-even rounding, its own value relief). After every step:
//! - the answer is the one the model predicted (status, problem type, values);
//! - `GET /verify` is ok: the chain holds and every maintained balance equals the one
//!   recomputed from the postings;
//! - every new entry balances per (item, lot) in quantity and in value;
//! - no stock balance is negative;
//! - each lot's value ever posted into stock equals its cost, and sums to zero over accounts;
//! - the ledger's balances equal the model's.
//!
//! One app per backend serves all cases: each case makes its own items (`C<n>-...`) and lots,
//! so cases cannot see each other's balances. To add a document, see TESTING.md ("Adding a
//! document to the model test").

use std::collections::{BTreeMap, BTreeSet};

use ppe_tests::{backends, spawn_app, Answer, Backend, TestApp};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Cases per backend (`PROPTEST_CASES` overrides) and most operations per case.
const CASES: u32 = 16;
const MAX_OPS: usize = 24;

const QTY_SCALE: u32 = 3;
const MONEY_SCALE: u32 = 4;
const RATE_SCALE: u32 = 8;

/// The items every case makes under its own prefix: (suffix, unit, decimals).
const ITEMS: &[(&str, &str, u32)] = &[("BAND", "pcs", 0), ("PC", "kg", 3)];
const SUPPLIERS: &[&str] = &["SUP-A", "SUP-B"];
const LOCATIONS: &[&str] = &["RAW", "FG"];
/// Exchange rates a USD purchase may carry.
const RATES: &[&str] = &["7.1", "6.98765432", "1", "0.00012345"];

// ----- operations -----

#[derive(Debug, Clone)]
struct LineSpec {
    item: usize,
    /// Whole units and thousandths (the latter dropped for items of 0 decimals).
    units: u32,
    thousandths: u32,
    /// Unit price at 4 decimals.
    price: u32,
    named_lot: bool,
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
    /// A reversal of any entry this case made (a purchase or a reversal).
    Reverse(Index),
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

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..SUPPLIERS.len(), 0..LOCATIONS.len(), proptest::option::of(0..RATES.len()),
              prop::collection::vec(line_spec(), 1..4))
            .prop_map(|(supplier, location, rate, lines)| Op::Purchase { supplier, location, rate, lines }),
        1 => any::<Index>().prop_map(Op::RepeatPurchase),
        1 => any::<Index>().prop_map(Op::ConflictingPurchase),
        1 => any::<Index>().prop_map(Op::ExistingLot),
        1 => any::<u8>().prop_map(Op::BadPurchase),
        5 => any::<Index>().prop_map(Op::Reverse),
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

#[derive(Debug, Clone)]
enum Made {
    Purchase,
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

/// What the ledger should hold, predicted without asking it.
#[derive(Debug, Default)]
struct Model {
    balances: BTreeMap<(String, String), Bal>,
    /// lot -> (sku, cost): the value its creating entry put into stock.
    lots: BTreeMap<String, (String, i128)>,
    entries: Vec<ModelEntry>,
    purchases: Vec<ModelPurchase>,
}

/// Entries whose value posted into stock is the cost of the lots they create. A receipt and a
/// production run (its output) belong here when they exist; moves, counts and reversals do not.
fn creates_lots(entry: &Value) -> bool {
    matches!(entry["kind"].as_str(), Some("purchase"))
}

fn guarded(account: &str) -> bool {
    account.starts_with("stock:") || account.starts_with("transit:")
}

impl Model {
    fn balance(&self, account: &str, lot: &str) -> Bal {
        self.balances
            .get(&(account.to_owned(), lot.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    /// Whether postings would leave a guarded balance negative: the refusal every document
    /// that takes stock shares (a reversal here; a dispatch or a stock count later).
    fn overdraws(&self, postings: &[Posting]) -> bool {
        let mut after: BTreeMap<(&str, &str), Bal> = BTreeMap::new();
        for p in postings {
            let b = after
                .entry((&p.account, &p.lot))
                .or_insert_with(|| self.balance(&p.account, &p.lot));
            b.qty += p.qty;
            b.value += p.value;
        }
        after
            .iter()
            .any(|((a, _), b)| guarded(a) && (b.qty < 0 || b.value < 0))
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

impl Case<'_> {
    fn sku(&self, item: usize) -> String {
        format!("{}-{}", self.prefix, ITEMS[item].0)
    }

    async fn start(&mut self) {
        for (i, (_, unit, decimals)) in ITEMS.iter().enumerate() {
            let sku = self.sku(i);
            self.h
                .app
                .post_ok(
                    "/api/v1/items",
                    &json!({"sku":sku,"name":sku,"kind":"material","unit":unit,"decimals":decimals}),
                )
                .await;
        }
    }

    /// A purchase request and the postings the model expects of it.
    fn purchase(
        &mut self,
        supplier: usize,
        location: usize,
        rate: Option<usize>,
        lines: &[LineSpec],
    ) -> (Value, Vec<Posting>, Vec<String>) {
        self.docs_made += 1;
        let id = format!("{}-PO{}", self.prefix, self.docs_made);
        let rate_text = rate.map(|r| RATES[r]);
        let rate_scaled = scaled(rate_text.unwrap_or("1"), RATE_SCALE);
        let mut body_lines = Vec::new();
        let mut postings = Vec::new();
        let mut values = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            let (_, _, decimals) = ITEMS[l.item];
            let thousandths = if decimals == 0 { 0 } else { l.thousandths };
            let units = if l.units == 0 && thousandths == 0 {
                1
            } else {
                l.units
            };
            let qty = i128::from(units) * 1_000 + i128::from(thousandths);
            let price = i128::from(l.price);
            let lot = if l.named_lot {
                self.lots_made += 1;
                format!("{}-L{}", self.prefix, self.lots_made)
            } else {
                format!("{id}-{}", i + 1)
            };
            // qty (3) x price (4) x rate (8) = 15 decimals, rounded once to 4.
            let value = div_half_even(
                qty * price * rate_scaled,
                10i128.pow(QTY_SCALE + RATE_SCALE),
            );
            let mut line = json!({"sku": self.sku(l.item), "qty": text(qty, QTY_SCALE, true),
                                  "unit_price": text(price, MONEY_SCALE, true)});
            if l.named_lot {
                line["lot"] = json!(lot);
            }
            body_lines.push(line);
            let sku = self.sku(l.item);
            postings.push(Posting {
                account: format!("supplier:{}", SUPPLIERS[supplier]),
                sku: sku.clone(),
                lot: lot.clone(),
                qty: -qty,
                value: -value,
            });
            postings.push(Posting {
                account: format!("stock:{}", LOCATIONS[location]),
                sku,
                lot,
                qty,
                value,
            });
            values.push(text(value, MONEY_SCALE, false));
        }
        let mut body = json!({"purchase_id": id, "date": "2020-02-12", "supplier": SUPPLIERS[supplier],
                              "location": LOCATIONS[location], "lines": body_lines});
        if let Some(r) = rate_text {
            body["currency"] = json!("USD");
            body["fx_rate"] = json!(r);
        }
        (body, postings, values)
    }

    async fn step(&mut self, op: &Op) -> Step {
        let seq_before = self.h.seen_seq;
        // How many entries the step should add.
        let mut added = 0;
        match op {
            Op::Purchase {
                supplier,
                location,
                rate,
                lines,
            } => {
                let (body, postings, values) = self.purchase(*supplier, *location, *rate, lines);
                let a = self.h.app.post("/api/v1/purchases", &body).await;
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
                for p in postings.iter().filter(|p| guarded(&p.account)) {
                    self.model
                        .lots
                        .insert(p.lot.clone(), (p.sku.clone(), p.value));
                }
                self.model.post(seq, Made::Purchase, postings);
                self.model.purchases.push(ModelPurchase {
                    body,
                    answer: a.body,
                });
                added = 1;
            }
            Op::RepeatPurchase(i) => {
                if self.model.purchases.is_empty() {
                    return Ok(());
                }
                let p = self.model.purchases[i.index(self.model.purchases.len())].clone();
                let a = self.h.app.post("/api/v1/purchases", &p.body).await;
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
                let a = self.h.app.post("/api/v1/purchases", &body).await;
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
                let a = self.h.app.post("/api/v1/purchases", &body).await;
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
                let a = self.h.app.post("/api/v1/purchases", &body).await;
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
            Op::Reverse(i) => {
                if self.model.entries.is_empty() {
                    return Ok(());
                }
                let at = i.index(self.model.entries.len());
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
                    .h
                    .app
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
                } else if matches!(target.made, Made::Reversal) {
                    same(
                        &a,
                        StatusCode::CONFLICT,
                        Some("/problems/not-reversible"),
                        "reversal of a reversal",
                    )?;
                } else if self.model.overdraws(&negated) {
                    same(
                        &a,
                        StatusCode::CONFLICT,
                        Some("/problems/not-reversible"),
                        "reversal that would overdraw",
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
                    added = 1;
                }
            }
            Op::ReverseMissing => {
                let a = self
                    .h
                    .app
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
        for (lot, (_, cost)) in &self.model.lots {
            let into = self.h.stock_in.get(lot).copied().unwrap_or(0);
            check!(
                into == *cost,
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
    app.post_ok(
        "/api/v1/parties",
        &json!({"code":"DONOR","name":"A donor","kind":"donor"}),
    )
    .await;
    for l in LOCATIONS {
        app.post_ok("/api/v1/locations", &json!({"code":l,"name":l}))
            .await;
    }
    Harness {
        app,
        cases: 0,
        seen_seq: 0,
        stock_in: BTreeMap::new(),
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
        case.step(op).await?;
    }
    // Nothing outside this case's items moved.
    let skus: BTreeSet<String> = case.model.lots.values().map(|(s, _)| s.clone()).collect();
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
        rt.block_on(h.into_inner().app.stop());
    }
}
