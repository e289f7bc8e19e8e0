//! The bodies of the fuzz targets, shared by the cargo-fuzz crate (`fuzz/`, which includes
//! this file) and by the fixed-case harness of the normal suite (`tests/no_panic.rs`), so that
//! what the fuzzer runs is also run on every `cargo test`. Each takes arbitrary bytes and
//! panics only on a real failure: a panic inside the code under test, a 5xx, a store error,
//! or a broken property of the numbers.

use std::io::Cursor;
use std::sync::OnceLock;

use ledger::num::{parse_decimal, product_rounded};
use ledger::{Money, Qty, Rate};
use service::import::ImportKind;
use service::{Service, WriterConfig};

/// Decimal, quantity, money and rate parsers, and the arithmetic on what they accept.
pub fn decimal(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = ledger::parse_date(text);
    let _ = ledger::Sku::parse(text);
    let d = parse_decimal(text);
    if let Ok(d) = d {
        // What the strict parser accepts is plain digits: it prints back to the same number.
        assert_eq!(parse_decimal(&d.to_string()), Ok(d), "{text}");
    }
    let q = Qty::parse(text);
    let m = Money::parse(text);
    let r = Rate::parse(text);
    if let Ok(q) = q {
        assert_eq!(Qty::from_scaled(q.scaled()), q, "{text}: qty round trip");
        assert_eq!(Qty::parse(&q.to_string()), Ok(q), "{text}: qty prints back");
        assert!(d.is_ok(), "{text}: a qty the decimal parser refused");
    }
    if let Ok(m) = m {
        assert_eq!(
            Money::from_scaled(m.scaled()),
            m,
            "{text}: money round trip"
        );
        assert_eq!(
            Money::parse(&m.to_string()),
            Ok(m),
            "{text}: money prints back"
        );
    }
    if let (Ok(q), Ok(m)) = (q, m) {
        // A line value: exact and rounded once, or out of range; never a panic.
        let rate = r.unwrap_or(Rate::ONE);
        if let Ok(v) = Money::product(&[q.decimal(), m.decimal(), rate.decimal()]) {
            assert!(v.abs() <= Money::parse("100000000000").unwrap(), "{text}");
        }
        let _ = product_rounded(&[q.decimal(), m.decimal()], 4);
        // Value relief of part of a held quantity never moves more than is held.
        if q.is_positive() && !m.is_negative() {
            let half = Qty::from_scaled(q.scaled() / 2);
            let moved = m.relieve(q, half);
            assert!(
                moved <= m && !moved.is_negative(),
                "{text}: relief {moved} of {m}"
            );
            assert_eq!(m.relieve(q, q), m, "{text}: relief of everything");
        }
    }
}

/// A service over a scratch SQLite file with a little master data, made once per process.
struct Ctx {
    rt: tokio::runtime::Runtime,
    service: Service,
    router: axum::Router,
    token: String,
}

/// The scratch folder of this process. A static is never dropped (and libFuzzer ends with
/// exit()), so nothing removes it at the end: each process removes those of processes that
/// are gone instead.
fn scratch_dir() -> std::path::PathBuf {
    let base = std::env::temp_dir();
    if std::path::Path::new("/proc/self").exists() {
        for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("ppe-fuzz-") {
                if !std::path::Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    let dir = base.join(format!("ppe-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

fn ctx() -> &'static Ctx {
    static CTX: OnceLock<Ctx> = OnceLock::new();
    CTX.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let url = format!("sqlite://{}", scratch_dir().join("fuzz.db").display());
        let (service, token) = rt.block_on(async {
            let service = Service::open(&url, WriterConfig::default())
                .await
                .expect("the scratch database opens");
            let token = service
                .first_admin_token()
                .await
                .expect("a token")
                .expect("a new database has none")
                .token;
            let items = "sku,name,kind,unit,decimals,shelf_life_days\nBAND,Band,material,pcs,0,\nPC,Polycarbonate,material,kg,3,\nMASK,Mask,supply,pcs,0,730\n";
            let parties = "code,name,kind,country,city,parent\nSUP,Supplier,supplier,,,\nDONOR,Donor,donor,,,\nNANWAN,Nanwan,subdistrict,CN,Shenzhen,\n";
            for (kind, csv) in [
                (ImportKind::Items, items),
                (ImportKind::Parties, parties),
                (ImportKind::Locations, "code,name\nRAW,Raw\n"),
            ] {
                service
                    .import_csv(kind, Cursor::new(csv.as_bytes()), "fuzz", &|_| {})
                    .await
                    .expect("master data");
            }
            (service, token)
        });
        let (router, _) = api::router(service.clone(), api::ApiConfig::default());
        Ctx {
            rt,
            service,
            router,
            token,
        }
    })
}

/// The CSV importer: the first byte picks the kind, the rest is the file. The import must
/// answer with a report (never a store error), whose every line is in the file.
pub fn csv_import(data: &[u8]) {
    let Some((&k, file)) = data.split_first() else {
        return;
    };
    let kind = ImportKind::ALL[usize::from(k) % ImportKind::ALL.len()];
    let c = ctx();
    let report =
        c.rt.block_on(
            c.service
                .import_csv(kind, Cursor::new(file), "fuzz", &|_| {}),
        )
        .unwrap_or_else(|e| panic!("the import failed instead of reporting: {e}"));
    let lines = file.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    for e in &report.rejected {
        assert!(
            (1..=lines).contains(&e.line),
            "{e} is outside a file of {lines} lines"
        );
    }
    assert!(report.created + report.unchanged <= report.rows.max(1));
}

/// The routes a JSON document can be posted to.
const ROUTES: &[&str] = &[
    "/api/v1/purchases",
    "/api/v1/items",
    "/api/v1/parties",
    "/api/v1/locations",
    "/api/v1/entries/1/reversal",
    "/api/v1/tokens",
];

/// The JSON documents, through the real router in process: the first byte picks the route,
/// the rest is the body. The answer is never a 5xx.
pub fn json_document(data: &[u8]) {
    use tower::ServiceExt;
    let Some((&r, body)) = data.split_first() else {
        return;
    };
    let path = ROUTES[usize::from(r) % ROUTES.len()];
    let c = ctx();
    let req = axum::http::Request::post(path)
        .header("authorization", format!("Bearer {}", c.token))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_vec()))
        .expect("a request");
    let res =
        c.rt.block_on(c.router.clone().oneshot(req))
            .expect("the router answers");
    assert!(
        !res.status().is_server_error(),
        "{path} answered {} to {:?}",
        res.status(),
        String::from_utf8_lossy(body)
    );
}
