//! `ppe gen`: writes a valid, deterministic data set of any size as the CSV files `ppe import`
//! reads. The same number of documents always gives the same bytes: the only randomness is a
//! seeded generator (splitmix64) defined here, and every quantity is an integer of tenths,
//! so no float and no hash order reaches the output.
//!
//! The files are meant to be imported in [`IMPORT_ORDER`]. The generator simulates that import
//! (every lot's remaining quantity, every shipment's outstanding lines), so no document it
//! writes is refused: dispatches and production runs name lots that hold enough, and
//! acknowledgements never claim more than is outstanding. Lots and accounts are reused as in
//! real data: a purchased lot feeds many shipments until it is empty, and recipients,
//! suppliers and stock accounts recur across the whole journal.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// The files, in the order they must be imported (master data first, then documents in the
/// order the simulation assumed), with the import kind each holds.
pub const IMPORT_ORDER: &[(&str, &str)] = &[
    ("items.csv", "items"),
    ("parties.csv", "parties"),
    ("locations.csv", "locations"),
    ("boms.csv", "boms"),
    ("purchases.csv", "purchases"),
    ("receipts.csv", "receipts"),
    ("production.csv", "production"),
    ("batches.csv", "batches"),
    ("donations.csv", "donations"),
    ("acknowledgements.csv", "acknowledgements"),
];

/// The kinds of documents, one slot per document in a cycle of 20: 4 purchases, 2 in-kind
/// receipts, 2 production runs, 5 frontline batches, 1 donation and 6 acknowledgements. Every
/// consumer comes after its sources within the first cycle, so any prefix is valid too.
const CYCLE: [Kind; 20] = {
    use Kind::*;
    [
        Purchase, Purchase, Purchase, Purchase, Receipt, Receipt, Run, Run, Batch, Batch, Batch,
        Batch, Batch, Donation, Ack, Ack, Ack, Ack, Ack, Ack,
    ]
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Purchase,
    Receipt,
    Run,
    Batch,
    Donation,
    Ack,
}

/// What a generated data set holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub documents: u64,
    /// Data rows per file, in [`IMPORT_ORDER`].
    pub rows: Vec<(String, u64)>,
    /// Postings the documents will make once imported.
    pub postings: u64,
}

/// A seeded pseudo-random generator (splitmix64): small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = u64::try_from(hi - lo + 1).expect("a non-empty range");
        lo + i64::try_from(self.next() % span).expect("fits")
    }
    /// True with a chance of `pct` in 100.
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        let i = usize::try_from(self.next() % u64::try_from(v.len()).expect("fits")).expect("fits");
        &v[i]
    }
}

/// An item: sku, name, kind, unit, decimals, shelf life, and a nominal unit price in cents.
struct ItemDef {
    sku: &'static str,
    name: &'static str,
    kind: &'static str,
    unit: &'static str,
    decimals: u32,
    shelf_life_days: Option<u32>,
    price_cents: i64,
}

const MATERIALS: &[ItemDef] = &[
    ItemDef {
        sku: "PC-SHEET",
        name: "Polycarbonate sheet 聚碳酸酯板",
        kind: "material",
        unit: "kg",
        decimals: 3,
        shelf_life_days: None,
        price_cents: 4_000,
    },
    ItemDef {
        sku: "ELASTIC",
        name: "Elastic band 松紧带",
        kind: "material",
        unit: "m",
        decimals: 1,
        shelf_life_days: None,
        price_cents: 150,
    },
    ItemDef {
        sku: "FILTER-MEDIA",
        name: "Filter media 过滤材料",
        kind: "material",
        unit: "m",
        decimals: 1,
        shelf_life_days: None,
        price_cents: 900,
    },
    ItemDef {
        sku: "FAN",
        name: "Small fan 小风扇",
        kind: "material",
        unit: "pcs",
        decimals: 0,
        shelf_life_days: None,
        price_cents: 1_200,
    },
    ItemDef {
        sku: "UV-LED",
        name: "UV LED 紫外灯珠",
        kind: "material",
        unit: "pcs",
        decimals: 0,
        shelf_life_days: None,
        price_cents: 350,
    },
];

const PRODUCTS: &[ItemDef] = &[
    ItemDef {
        sku: "GOGGLES",
        name: "Goggles 护目镜",
        kind: "product",
        unit: "pcs",
        decimals: 0,
        shelf_life_days: None,
        price_cents: 4_500,
    },
    ItemDef {
        sku: "FILTER-BOX",
        name: "Air-filter box 空气过滤盒",
        kind: "product",
        unit: "pcs",
        decimals: 0,
        shelf_life_days: None,
        price_cents: 12_000,
    },
    ItemDef {
        sku: "UV-LAMP",
        name: "UV disinfection lamp 紫外消毒灯",
        kind: "product",
        unit: "pcs",
        decimals: 0,
        shelf_life_days: None,
        price_cents: 26_000,
    },
];

const SUPPLIES: &[ItemDef] = &[
    ItemDef {
        sku: "MASK",
        name: "Surgical mask 口罩",
        kind: "supply",
        unit: "pcs",
        decimals: 0,
        shelf_life_days: Some(1_095),
        price_cents: 250,
    },
    ItemDef {
        sku: "GLOVES",
        name: "Nitrile gloves 手套",
        kind: "supply",
        unit: "pcs",
        decimals: 0,
        shelf_life_days: Some(1_095),
        price_cents: 80,
    },
    ItemDef {
        sku: "SUIT",
        name: "Protective suit 防护服",
        kind: "supply",
        unit: "pcs",
        decimals: 0,
        shelf_life_days: None,
        price_cents: 9_000,
    },
    ItemDef {
        sku: "DISINFECTANT",
        name: "Disinfectant 消毒液",
        kind: "supply",
        unit: "l",
        decimals: 1,
        shelf_life_days: Some(730),
        price_cents: 1_500,
    },
];

/// Bills of materials: per 100 units of the product, each material in tenths of its unit.
const BOMS: &[(&str, &[(&str, i64)])] = &[
    ("GOGGLES", &[("PC-SHEET", 50), ("ELASTIC", 300)]),
    (
        "FILTER-BOX",
        &[("FILTER-MEDIA", 200), ("FAN", 1_000), ("PC-SHEET", 100)],
    ),
    ("UV-LAMP", &[("UV-LED", 4_000), ("PC-SHEET", 20)]),
];
const BOM_VERSION: &str = "2020-02";

const SUBDISTRICTS: &[(&str, &str)] = &[
    ("NANWAN", "Nanwan 南湾"),
    ("PINGDI", "Pingdi 坪地"),
    ("BUJI", "Buji 布吉"),
    ("BANTIAN", "Bantian 坂田"),
    ("HENGGANG", "Henggang 横岗"),
    ("LONGCHENG", "Longcheng 龙城"),
];
const NANWAN_COMMUNITIES: &[(&str, &str)] = &[
    ("XIACUN", "Xiacun 厦村"),
    ("NANXIN", "Nanxin 南新"),
    ("ZHANGSHUBU", "Zhangshubu 樟树布"),
];
const COUNTRIES: &[(&str, &str)] = &[
    ("FR", "Paris"),
    ("ES", "Madrid"),
    ("KR", "Daegu"),
    ("IT", "Milan"),
    ("DE", "Berlin"),
    ("JP", "Osaka"),
];

/// Master data sized to the data set: bigger sets have more suppliers, donors, hospitals and
/// communities, as a bigger deployment would.
struct Parties {
    suppliers: Vec<String>,
    donors: Vec<String>,
    hospitals: Vec<String>,
    destinations: Vec<String>,
}

fn parties(n: u64) -> Parties {
    let count = |base: u64, per: u64, cap: u64| (base + n / per).min(cap);
    Parties {
        suppliers: (1..=count(6, 2_000, 500))
            .map(|i| format!("SUP-{i:03}"))
            .collect(),
        donors: (1..=count(4, 4_000, 300))
            .map(|i| format!("DON-{i:03}"))
            .chain(["CH-RED-CROSS".to_owned(), "CH-CHARITY".to_owned()])
            .collect(),
        hospitals: COUNTRIES
            .iter()
            .flat_map(|(c, _)| (1..=count(2, 10_000, 100)).map(move |i| format!("H-{c}-{i:03}")))
            .collect(),
        destinations: SUBDISTRICTS
            .iter()
            .map(|(c, _)| format!("SD-{c}"))
            .chain(NANWAN_COMMUNITIES.iter().map(|(c, _)| format!("COM-{c}")))
            .chain((1..=count(11, 1_000, 2_000)).map(|i| format!("COM-{i:04}")))
            .collect(),
    }
}

/// A quantity in tenths of the unit, written with the item's decimals.
fn qty(tenths: i64, decimals: u32) -> String {
    if decimals == 0 {
        debug_assert!(tenths % 10 == 0, "whole units only");
        format!("{}", tenths / 10)
    } else {
        format!("{}.{}", tenths / 10, tenths % 10)
    }
}

/// Money in cents, written with 2 decimals.
fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn item(sku: &str) -> &'static ItemDef {
    MATERIALS
        .iter()
        .chain(PRODUCTS)
        .chain(SUPPLIES)
        .find(|i| i.sku == sku)
        .expect("a known sku")
}

/// Rounds tenths up to what the item's decimals can carry (whole units for `pcs`).
fn fit(tenths: i64, decimals: u32) -> i64 {
    if decimals == 0 {
        (tenths + 9) / 10 * 10
    } else {
        tenths
    }
}

/// The day of a document: documents are spread over 2020 in the order they are imported, so
/// a lot is always made before it is used and an acknowledgement follows its dispatch.
fn date(index: u64, total: u64) -> time::Date {
    let start = time::macros::date!(2020 - 02 - 01);
    let day = index * 320 / total.max(1);
    start + time::Duration::days(i64::try_from(day).expect("fits"))
}

/// A lot with what is left of it, in tenths.
struct LotLeft {
    lot: String,
    left: i64,
}

/// Stock per (location, sku): lots oldest first, as the simulation of the import leaves them.
#[derive(Default)]
struct Stock {
    lots: std::collections::BTreeMap<(&'static str, &'static str), VecDeque<LotLeft>>,
}

impl Stock {
    fn add(&mut self, location: &'static str, sku: &'static str, lot: String, tenths: i64) {
        self.lots
            .entry((location, sku))
            .or_default()
            .push_back(LotLeft { lot, left: tenths });
    }
    fn available(&self, location: &'static str, sku: &'static str) -> i64 {
        self.lots
            .get(&(location, sku))
            .map_or(0, |q| q.iter().map(|l| l.left).sum())
    }
    /// Takes up to `want` from the oldest lot: (lot, taken). The lot is dropped when empty.
    fn take_one(
        &mut self,
        location: &'static str,
        sku: &'static str,
        want: i64,
    ) -> Option<(String, i64)> {
        let q = self.lots.get_mut(&(location, sku))?;
        let front = q.front_mut()?;
        let taken = want.min(front.left);
        front.left -= taken;
        let lot = front.lot.clone();
        if front.left == 0 {
            q.pop_front();
        }
        Some((lot, taken))
    }
    /// Takes exactly `want` from the oldest lots, a line per lot.
    fn take(
        &mut self,
        location: &'static str,
        sku: &'static str,
        mut want: i64,
    ) -> Vec<(String, i64)> {
        let mut out = Vec::new();
        while want > 0 {
            match self.take_one(location, sku, want) {
                Some((lot, taken)) if taken > 0 => {
                    want -= taken;
                    out.push((lot, taken));
                }
                _ => break,
            }
        }
        out
    }
}

/// A shipment line still outstanding: destination, sku, lot, outstanding tenths.
struct Outstanding {
    id: String,
    date: time::Date,
    lines: Vec<(String, &'static str, String, i64)>,
    acks: u32,
}

/// Writes the data set into `dir` (created if missing) and says what it holds.
pub fn generate(documents: u64, dir: &Path) -> std::io::Result<Summary> {
    std::fs::create_dir_all(dir)?;
    let mut summary = Summary {
        documents,
        ..Summary::default()
    };
    let p = parties(documents);
    let open = |name: &str| -> std::io::Result<BufWriter<File>> {
        Ok(BufWriter::with_capacity(
            1 << 16,
            File::create(dir.join(name))?,
        ))
    };

    // Master data.
    let mut f = open("items.csv")?;
    writeln!(f, "sku,name,kind,unit,decimals,shelf_life_days")?;
    let mut rows = 0;
    for i in MATERIALS.iter().chain(PRODUCTS).chain(SUPPLIES) {
        writeln!(
            f,
            "{},{},{},{},{},{}",
            i.sku,
            i.name,
            i.kind,
            i.unit,
            i.decimals,
            i.shelf_life_days.map(|d| d.to_string()).unwrap_or_default()
        )?;
        rows += 1;
    }
    f.flush()?;
    summary.rows.push(("items.csv".into(), rows));

    let mut f = open("parties.csv")?;
    writeln!(f, "code,name,kind,country,city,parent")?;
    let mut rows = 0;
    let mut line = |f: &mut BufWriter<File>, s: String| -> std::io::Result<()> {
        rows += 1;
        writeln!(f, "{s}")
    };
    line(
        &mut f,
        "MFG-ARCTIC,Arctic Light 北极之光,manufacturer,CN,Shenzhen,".into(),
    )?;
    for s in &p.suppliers {
        line(&mut f, format!("{s},Supplier {s},supplier,CN,Dongguan,"))?;
    }
    for d in &p.donors {
        let kind = if d.starts_with("CH-") {
            "channel"
        } else {
            "donor"
        };
        line(&mut f, format!("{d},Donor {d},{kind},CN,Shenzhen,"))?;
    }
    for h in &p.hospitals {
        let country = &h[2..4];
        let city = COUNTRIES
            .iter()
            .find(|(c, _)| *c == country)
            .map_or("", |(_, city)| city);
        line(
            &mut f,
            format!("{h},Hospital {h},hospital,{country},{city},"),
        )?;
    }
    for (code, name) in SUBDISTRICTS {
        line(&mut f, format!("SD-{code},{name},subdistrict,CN,Shenzhen,"))?;
    }
    for (code, name) in NANWAN_COMMUNITIES {
        line(
            &mut f,
            format!("COM-{code},{name},community,CN,Shenzhen,SD-NANWAN"),
        )?;
    }
    for c in p
        .destinations
        .iter()
        .filter(|d| d.starts_with("COM-") && d[4..].bytes().all(|b| b.is_ascii_digit()))
    {
        let n: usize = c[4..].parse().expect("digits");
        let (parent, _) = SUBDISTRICTS[n % SUBDISTRICTS.len()];
        line(
            &mut f,
            format!("{c},Community {c},community,CN,Shenzhen,SD-{parent}"),
        )?;
    }
    f.flush()?;
    summary.rows.push(("parties.csv".into(), rows));

    let mut f = open("locations.csv")?;
    writeln!(f, "code,name")?;
    writeln!(f, "RAW,Raw-material store 原料仓")?;
    writeln!(f, "FG,Finished-goods store 成品仓")?;
    writeln!(f, "DEPOT,Coordinators' depot 物资仓库")?;
    f.flush()?;
    summary.rows.push(("locations.csv".into(), 3));

    let mut f = open("boms.csv")?;
    writeln!(f, "product_sku,version,output_qty,material_sku,qty")?;
    let mut rows = 0;
    for (product, lines) in BOMS {
        for (material, tenths) in *lines {
            writeln!(
                f,
                "{product},{BOM_VERSION},100,{material},{}",
                qty(*tenths, item(material).decimals.max(1))
            )?;
            rows += 1;
        }
    }
    f.flush()?;
    summary.rows.push(("boms.csv".into(), rows));

    // Documents, kind by kind in import order; `index` runs over all of them for their dates.
    let count = |k: Kind| -> u64 {
        let per_cycle = CYCLE.iter().filter(|c| **c == k).count() as u64;
        let full = documents / 20 * per_cycle;
        let rest = CYCLE[..usize::try_from(documents % 20).expect("fits")]
            .iter()
            .filter(|c| **c == k)
            .count() as u64;
        full + rest
    };
    let mut rng = Rng(0x5EED_0000_0000_0000 ^ documents);
    let mut stock = Stock::default();
    let mut index = 0u64;
    let mut postings = 0u64;

    let mut f = open("purchases.csv")?;
    writeln!(
        f,
        "purchase_id,date,supplier,location,currency,fx_rate,sku,qty,unit_price,lot,expires_on"
    )?;
    let mut rows = 0;
    for n in 1..=count(Kind::Purchase) {
        let d = date(index, documents);
        index += 1;
        let id = format!("PO-{n:08}");
        let supplier = rng.pick(&p.suppliers).clone();
        // Every other purchase restocks all materials; the others buy a few supplies.
        let (location, lines): (&'static str, Vec<&ItemDef>) = if n % 2 == 1 {
            ("RAW", MATERIALS.iter().collect())
        } else {
            let k = usize::try_from(rng.range(1, 3)).expect("fits");
            let start = usize::try_from(rng.range(0, 3)).expect("fits");
            (
                "DEPOT",
                (0..k)
                    .map(|i| &SUPPLIES[(start + i) % SUPPLIES.len()])
                    .collect(),
            )
        };
        let foreign = rng.chance(10);
        let (currency, fx) = if foreign { ("USD", "7.1") } else { ("CNY", "") };
        for (i, it) in lines.iter().enumerate() {
            let tenths = fit(
                match it.sku {
                    "PC-SHEET" => rng.range(2_000, 8_000),
                    "ELASTIC" => rng.range(5_000, 20_000),
                    "FILTER-MEDIA" => rng.range(2_000, 8_000),
                    "FAN" => rng.range(5_000, 20_000),
                    "UV-LED" => rng.range(20_000, 80_000),
                    _ => rng.range(5_000, 20_000),
                },
                it.decimals,
            );
            let base = it.price_cents * rng.range(90, 110) / 100;
            let price = if foreign { base * 10 / 71 } else { base };
            let lot = format!("{id}-{}", i + 1);
            let expires = it
                .shelf_life_days
                .map(|days| (d + time::Duration::days(i64::from(days))).to_string())
                .unwrap_or_default();
            writeln!(
                f,
                "{id},{d},{supplier},{location},{currency},{fx},{},{},{},{lot},{expires}",
                it.sku,
                qty(tenths, it.decimals),
                money(price.max(1))
            )?;
            rows += 1;
            postings += 2;
            stock.add(location, it.sku, lot, tenths);
        }
    }
    f.flush()?;
    summary.rows.push(("purchases.csv".into(), rows));

    let mut f = open("receipts.csv")?;
    writeln!(
        f,
        "receipt_id,date,donor,location,sku,qty,unit_value,lot,expires_on"
    )?;
    let mut rows = 0;
    for n in 1..=count(Kind::Receipt) {
        let d = date(index, documents);
        index += 1;
        let id = format!("RC-{n:08}");
        let donor = rng.pick(&p.donors).clone();
        let k = usize::try_from(rng.range(1, 3)).expect("fits");
        let start = usize::try_from(rng.range(0, 3)).expect("fits");
        for i in 0..k {
            let it = &SUPPLIES[(start + i) % SUPPLIES.len()];
            let tenths = fit(rng.range(2_000, 10_000), it.decimals);
            // Some donors declare no value (0): a gift in kind of unknown cost.
            let value = if rng.chance(20) { 0 } else { it.price_cents };
            let lot = format!("{id}-{}", i + 1);
            writeln!(
                f,
                "{id},{d},{donor},DEPOT,{},{},{},{lot},",
                it.sku,
                qty(tenths, it.decimals),
                money(value)
            )?;
            rows += 1;
            postings += 2;
            stock.add("DEPOT", it.sku, lot, tenths);
        }
    }
    f.flush()?;
    summary.rows.push(("receipts.csv".into(), rows));

    let mut f = open("production.csv")?;
    writeln!(f, "run_id,date,product_sku,bom_version,from_location,to_location,good_qty,scrap_qty,output_lot,labor_cost,overhead_cost,material_sku,material_lot,material_qty,expires_on")?;
    let mut rows = 0;
    for n in 1..=count(Kind::Run) {
        let d = date(index, documents);
        index += 1;
        let id = format!("RUN-{n:08}");
        let start = usize::try_from(rng.range(0, 2)).expect("fits");
        // The first product whose materials are all on hand; output shrinks to what they allow.
        let mut chosen = None;
        for k in 0..BOMS.len() {
            let (product, materials) = BOMS[(start + k) % BOMS.len()];
            let mut good = rng.range(10, 50) * 10;
            loop {
                let scrap = good / 50;
                let enough = materials.iter().all(|(m, per100)| {
                    let need = fit(per100 * (good + scrap) / 100 * 103 / 100, item(m).decimals);
                    stock.available("RAW", item(m).sku) >= need
                });
                if enough {
                    chosen = Some((product, materials, good, scrap));
                    break;
                }
                if good <= 10 {
                    break;
                }
                good /= 2;
            }
            if chosen.is_some() {
                break;
            }
        }
        let Some((product, materials, good, scrap)) = chosen else {
            // Not reachable with the cycle above (two material purchases precede the first
            // run); kept so that a change of proportions fails loudly rather than silently.
            return Err(std::io::Error::other(format!(
                "{id}: no product has its materials on hand"
            )));
        };
        let lot = format!("{id}-OUT");
        let labor = rng.range(50_000, 200_000);
        let overhead = rng.range(20_000, 80_000);
        let mut material_rows = Vec::new();
        for (m, per100) in materials {
            let it = item(m);
            // Actual use differs from the standard by -2% to +3%: the run's material variance.
            let need = fit(
                per100 * (good + scrap) / 100 * rng.range(98, 103) / 100,
                it.decimals,
            )
            .max(if it.decimals == 0 { 10 } else { 1 });
            for (lot, taken) in stock.take("RAW", it.sku, need) {
                material_rows.push((it, lot, taken));
            }
        }
        for (it, mlot, taken) in &material_rows {
            writeln!(
                f,
                "{id},{d},{product},{BOM_VERSION},RAW,FG,{},{},{lot},{},{},{},{mlot},{},",
                qty(good * 10, 0),
                qty(scrap * 10, 0),
                money(labor),
                money(overhead),
                it.sku,
                qty(*taken, it.decimals)
            )?;
            rows += 1;
            postings += 2;
        }
        // Output to stock, scrap to loss, labour and overhead absorbed.
        postings += 2 + if scrap > 0 { 2 } else { 0 } + 4;
        stock.add("FG", item(product).sku, lot, good * 10);
    }
    f.flush()?;
    summary.rows.push(("production.csv".into(), rows));

    let mut shipments: VecDeque<Outstanding> = VecDeque::new();
    let mut f = open("batches.csv")?;
    writeln!(f, "batch_id,date,from_location,destination,sku,qty,lot")?;
    let mut rows = 0;
    for n in 1..=count(Kind::Batch) {
        let d = date(index, documents);
        index += 1;
        let id = format!("B-{n:08}");
        let destinations = usize::try_from(rng.range(1, 3)).expect("fits");
        let mut lines = Vec::new();
        for _ in 0..destinations {
            let dest = rng.pick(&p.destinations).clone();
            if lines
                .iter()
                .any(|(d, _, _, _): &(String, _, _, _)| *d == dest)
            {
                continue;
            }
            let k = usize::try_from(rng.range(1, 3)).expect("fits");
            let start = usize::try_from(rng.range(0, 3)).expect("fits");
            for i in 0..k {
                let it = &SUPPLIES[(start + i) % SUPPLIES.len()];
                let want = fit(rng.range(200, 3_000), it.decimals);
                if let Some((lot, taken)) = stock.take_one("DEPOT", it.sku, want) {
                    if taken > 0 {
                        lines.push((dest.clone(), it.sku, lot, taken));
                    }
                }
            }
        }
        if lines.is_empty() {
            return Err(std::io::Error::other(format!("{id}: the depot is empty")));
        }
        for (dest, sku, lot, taken) in &lines {
            writeln!(
                f,
                "{id},{d},DEPOT,{dest},{sku},{},{lot}",
                qty(*taken, item(sku).decimals)
            )?;
            rows += 1;
            postings += 2;
        }
        shipments.push_back(Outstanding {
            id,
            date: d,
            lines,
            acks: 0,
        });
    }
    f.flush()?;
    summary.rows.push(("batches.csv".into(), rows));

    let mut f = open("donations.csv")?;
    writeln!(
        f,
        "donation_id,date,from_location,recipient,declared_value,currency,fx_rate,sku,qty,lot"
    )?;
    let mut rows = 0;
    let mut donations = Vec::new();
    for n in 1..=count(Kind::Donation) {
        let d = date(index, documents);
        index += 1;
        let id = format!("DN-{n:08}");
        let hospital = rng.pick(&p.hospitals).clone();
        let mut lines = Vec::new();
        let start = usize::try_from(rng.range(0, 2)).expect("fits");
        for k in 0..usize::try_from(rng.range(1, 2)).expect("fits") {
            let it = &PRODUCTS[(start + k) % PRODUCTS.len()];
            let want = rng.range(5, 30) * 100;
            if let Some((lot, taken)) = stock.take_one("FG", it.sku, want) {
                if taken > 0 {
                    lines.push((hospital.clone(), it.sku, lot, taken));
                }
            }
        }
        if lines.is_empty() {
            // The finished-goods store is empty this early: give masks from the depot instead.
            let it = &SUPPLIES[0];
            if let Some((lot, taken)) = stock.take_one("DEPOT", it.sku, 1_000) {
                lines.push((hospital.clone(), it.sku, lot, taken));
            }
        }
        if lines.is_empty() {
            return Err(std::io::Error::other(format!("{id}: nothing to donate")));
        }
        let cents: i64 = lines
            .iter()
            .map(|(_, sku, _, t)| item(sku).price_cents * t / 10)
            .sum();
        // Declared values are rounded and off by a few percent, as declarations are.
        let declared = cents * rng.range(95, 108) / 100 / 100 * 100;
        let (currency, fx, value) = if rng.chance(25) {
            ("EUR", "7.7", declared * 10 / 77)
        } else {
            ("CNY", "", declared)
        };
        let from = if lines[0].1 == SUPPLIES[0].sku {
            "DEPOT"
        } else {
            "FG"
        };
        for (_, sku, lot, taken) in &lines {
            writeln!(
                f,
                "{id},{d},{from},{hospital},{},{currency},{fx},{sku},{},{lot}",
                money(value.max(0)),
                qty(*taken, item(sku).decimals)
            )?;
            rows += 1;
            postings += 2;
        }
        donations.push(Outstanding {
            id,
            date: d,
            lines,
            acks: 0,
        });
    }
    f.flush()?;
    summary.rows.push(("donations.csv".into(), rows));

    // Acknowledgements: shipments in dispatch order (batches, then donations); a third are
    // first acknowledged in part, a few lines arrive damaged, and what is left over when the
    // acknowledgements run out stays in transit.
    shipments.extend(donations);
    let mut f = open("acknowledgements.csv")?;
    writeln!(
        f,
        "shipment_id,date,destination,sku,lot,received_qty,damaged_qty,note,acknowledgement_id"
    )?;
    let mut rows = 0;
    let acks = count(Kind::Ack);
    for _ in 0..acks {
        let d = date(index, documents);
        index += 1;
        let Some(s) = shipments.front_mut() else {
            return Err(std::io::Error::other(
                "more acknowledgements than shipments",
            ));
        };
        s.acks += 1;
        let partial = s.acks == 1 && rng.chance(33);
        let d = d.max(s.date);
        for (dest, sku, lot, left) in s.lines.iter_mut() {
            let it = item(sku);
            let part = if partial {
                fit((*left / 2).max(1), it.decimals).min(*left)
            } else {
                *left
            };
            if part == 0 {
                continue;
            }
            let damaged = if !partial && rng.chance(8) {
                fit(rng.range(1, 5) * 10, it.decimals).min(part)
            } else {
                0
            };
            let received = part - damaged;
            let note = if damaged > 0 { "crushed cartons" } else { "" };
            writeln!(
                f,
                "{},{d},{dest},{sku},{lot},{},{},{note},A{}",
                s.id,
                qty(received, it.decimals),
                qty(damaged, it.decimals),
                s.acks
            )?;
            rows += 1;
            postings += if received > 0 { 2 } else { 0 } + if damaged > 0 { 2 } else { 0 };
            *left -= part;
        }
        if !partial || s.lines.iter().all(|(_, _, _, left)| *left == 0) {
            shipments.pop_front();
        }
    }
    f.flush()?;
    summary.rows.push(("acknowledgements.csv".into(), rows));
    summary.postings = postings;
    Ok(summary)
}
