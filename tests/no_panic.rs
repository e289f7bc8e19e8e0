//! The fixed-case fuzzing harness of the normal suite (issue 9, item 8): the bodies of the
//! cargo-fuzz targets (`tests/support/fuzzing.rs`) run on every seed kept in `fuzz/seeds/`
//! and on inputs proptest makes from a fixed seed (the same cases on every run): hostile
//! decimals, CSV files of every kind built from nasty cells, and JSON documents with fields
//! replaced, cut short or flipped. Nothing may panic, answer 5xx or fail an import.

use ppe_tests::fuzzing;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};

/// Cases per generator; the seed makes them the same on every run.
const CASES: u32 = 96;
const SEED: u64 = 0x0005_eed0_f99e;

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        rng_seed: RngSeed::Fixed(SEED),
        failure_persistence: None,
        ..Config::default()
    })
}

fn run<S: Strategy>(strategy: S, target: fn(&[u8]), show: fn(&S::Value) -> Vec<u8>) {
    let result = runner().run(&strategy, |v| {
        target(&show(&v));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Text a decimal parser might be handed.
fn decimal_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{0,16}(\\.[0-9]{0,6})?",
        "[-+ ]?[0-9.eE+-]{0,12}",
        "(NaN|inf|Infinity|-0|0x1F|1_000|١٢|１２|0.|.5|--1|1..2)",
        "[0-9]{17,40}(\\.[0-9]{1,30})?",
        any::<String>(),
    ]
}

/// A cell that might break a CSV importer.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(String::new()),
        3 => "(PO-[0-9]|BAND|PC|MASK|SUP|DONOR|NANWAN|RAW|FG|TAKEN|CNY|USD)",
        3 => "(2020-02-1[0-9]|2020-02-30|2020/02/12|0000-00-00)",
        3 => decimal_text(),
        1 => "(material|product|supply|supplier|donor|hospital|community|subdistrict|KR|CN)",
        1 => "\"[a-z,\\n\"]{0,8}\"",
        1 => "[\\u{feff}\\r\\n\\t\\u{0} ,\"]{1,4}",
        1 => "x{1000,1100}",
        1 => any::<String>(),
    ]
}

/// A CSV file of one kind: the kind's byte, a header (sometimes broken), rows of nasty cells.
fn csv_file() -> impl Strategy<Value = Vec<u8>> {
    let headers = [
        "sku,name,kind,unit,decimals,shelf_life_days",
        "code,name,kind,country,city,parent",
        "code,name",
        "purchase_id,date,supplier,location,currency,fx_rate,sku,qty,unit_price,lot,expires_on",
    ];
    (
        0u8..4,
        prop::bool::weighted(0.9),
        prop::collection::vec(prop::collection::vec(cell(), 0..13), 0..12),
        prop_oneof![Just("\n"), Just("\r\n")],
    )
        .prop_map(move |(kind, good_header, rows, end)| {
            let mut out = vec![kind];
            let header = if good_header {
                headers[usize::from(kind)].to_owned()
            } else {
                format!("{},colour", headers[usize::from(kind)])
            };
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(end.as_bytes());
            for row in rows {
                out.extend_from_slice(row.join(",").as_bytes());
                out.extend_from_slice(end.as_bytes());
            }
            out
        })
}

/// A JSON value to put where a field was.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    prop_oneof![
        Just(json!(null)),
        Just(json!(true)),
        Just(json!([])),
        Just(json!({})),
        Just(json!([{"sku":"BAND","qty":"1","unit_price":"1"}])),
        any::<i64>().prop_map(|n| json!(n)),
        decimal_text().prop_map(|s| json!(s)),
        cell().prop_map(|s| json!(s)),
    ]
}

/// A valid document for each route of `fuzzing::json_document`, then mutated.
fn json_body() -> impl Strategy<Value = Vec<u8>> {
    use serde_json::json;
    let docs = [
        json!({"purchase_id":"PO-P","date":"2020-02-12","supplier":"SUP","location":"RAW","currency":"USD","fx_rate":"7.1",
               "lines":[{"sku":"BAND","qty":"10","unit_price":"1.5"},{"sku":"PC","qty":"2.5","unit_price":"40","lot":"L-P"}]}),
        json!({"sku":"GOGGLES","name":"Goggles","kind":"product","unit":"pcs","decimals":0,"shelf_life_days":730}),
        json!({"code":"KR-DSMC","name":"Dongsan","kind":"hospital","country":"KR","city":"Daegu"}),
        json!({"code":"FG","name":"Finished goods"}),
        json!({"date":"2020-02-20","memo":"entered twice"}),
        json!({"name":"auditor-p","role":"auditor","expires_in_days":30}),
    ];
    (
        0u8..6,
        prop::collection::vec((any::<prop::sample::Index>(), json_value()), 0..3),
        prop_oneof![
            3 => Just(None),
            1 => any::<prop::sample::Index>().prop_map(Some),
        ],
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..2),
    )
        .prop_map(move |(route, replace, cut, flips)| {
            let mut doc = docs[usize::from(route)].clone();
            // Replace fields, top-level or in the first line, with other values.
            for (at, value) in replace {
                let target = match doc.get_mut("lines").and_then(|l| l.get_mut(0)) {
                    Some(line) if at.index(2) == 0 => line,
                    _ => &mut doc,
                };
                if let Some(obj) = target.as_object_mut() {
                    let keys: Vec<String> = obj.keys().cloned().collect();
                    let key = keys[at.index(keys.len())].clone();
                    obj.insert(key, value);
                }
            }
            let mut body = doc.to_string().into_bytes();
            if let Some(at) = cut {
                body.truncate(at.index(body.len() + 1));
            }
            for (at, byte) in flips {
                if !body.is_empty() {
                    let i = at.index(body.len());
                    body[i] = byte;
                }
            }
            let mut out = vec![route];
            out.extend(body);
            out
        })
}

/// Every seed kept for a target, by file name.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|f| {
            let f = f.unwrap();
            (
                f.file_name().to_string_lossy().into_owned(),
                std::fs::read(f.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn fuzz_targets_do_not_fail_on_their_seeds_or_on_fixed_random_cases() {
    // The targets share one scratch service: run them one after another.
    type Target = (&'static str, fn(&[u8]));
    let targets: [Target; 3] = [
        ("decimal", fuzzing::decimal),
        ("csv_import", fuzzing::csv_import),
        ("json_document", fuzzing::json_document),
    ];
    for (name, target) in targets {
        let seeds = seeds(name);
        assert!(!seeds.is_empty(), "no seeds for {name}");
        for (file, data) in seeds {
            let r = std::panic::catch_unwind(|| target(&data));
            assert!(r.is_ok(), "{name} failed on fuzz/seeds/{name}/{file}");
        }
    }
    run(decimal_text(), fuzzing::decimal, |s| s.as_bytes().to_vec());
    run(csv_file(), fuzzing::csv_import, Clone::clone);
    run(json_body(), fuzzing::json_document, Clone::clone);
}
