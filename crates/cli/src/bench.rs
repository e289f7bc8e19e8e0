//! `ppe bench`: measures, in one run and on each backend, what the ledger does against the
//! fastest thing the same database can do and against the tools people would otherwise use:
//! import postings/s against a raw insert of as many rows into a bare table; HTTP documents/s
//! with p50/p99 under 64 concurrent clients; reconciliation (trial balance, conservation,
//! chain verify) against `hledger balance` and `ledger balance` on the same journal; lot
//! trace; and the import's peak memory. Absolute numbers drift on a shared machine, so the
//! table leads with ratios measured in the same run.
//!
//! Rates and ratios are display values computed from durations, hence floats here only.
#![allow(clippy::float_arithmetic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use service::import::ImportKind;
use service::{Service, WriterConfig};

use crate::gen;

/// What `ppe bench` is asked to do.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Documents in the generated data set (about 7 postings each).
    #[arg(long, default_value_t = 40_000)]
    pub documents: u64,
    /// A small, fast run (400 documents, 1 000 HTTP requests): a smoke test, not a measurement.
    #[arg(long)]
    pub quick: bool,
    /// Backends to measure, comma-separated: sqlite, postgres.
    #[arg(long, default_value = "sqlite,postgres", value_delimiter = ',')]
    pub backends: Vec<String>,
    /// A PostgreSQL server URL the benchmark may create and drop a scratch database on.
    #[arg(
        long,
        env = "PPE_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub postgres_url: String,
    /// HTTP requests in total across the concurrent clients.
    #[arg(long, default_value_t = 20_000)]
    pub http_requests: u64,
    /// Concurrent HTTP clients, each posting one document at a time.
    #[arg(long, default_value_t = 64)]
    pub clients: u64,
    /// Steps to leave out, comma-separated: `peers` (hledger and ledger: hours at 10M
    /// postings), `http`, `separate` (the three separate reports). Their rows say "skipped".
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<String>,
    /// Where the data set, the SQLite file and the journal go (a temporary folder if absent);
    /// everything written there is deleted at the end.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// One backend's measurements; a peer or step that could not run says why.
#[derive(Debug, Clone)]
pub struct Measured {
    pub backend: String,
    pub documents: u64,
    pub postings: u64,
    pub import: Duration,
    pub baseline: Duration,
    pub import_peak_bytes: Option<u64>,
    /// Whether the import ran in a child process of its own (its peak is then the import's
    /// alone); in process, the peak includes the generator's and anything before it.
    pub import_in_child: bool,
    pub rejected: usize,
    pub http_docs: u64,
    pub http: Duration,
    pub http_errors: u64,
    /// HTTP batches the writer decided while the batch before them committed.
    pub http_ahead: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub reconcile: Duration,
    /// The three separate reports the one pass replaces: trial balance, conservation, verify.
    pub reconcile_parts: Option<[Duration; 3]>,
    pub reconcile_ok: bool,
    pub hledger: Result<Duration, String>,
    pub ledger: Result<Duration, String>,
    pub trace: Result<Duration, String>,
    pub http_skipped: bool,
}

/// The steps `--skip` leaves out.
#[derive(Debug, Clone, Copy, Default)]
struct Skip {
    peers: bool,
    http: bool,
    separate: bool,
}

impl Skip {
    fn parse(names: &[String]) -> anyhow::Result<Skip> {
        let mut skip = Skip::default();
        for n in names {
            match n.as_str() {
                "peers" => skip.peers = true,
                "http" => skip.http = true,
                "separate" => skip.separate = true,
                other => anyhow::bail!("--skip: unknown step {other:?} (peers, http, separate)"),
            }
        }
        Ok(skip)
    }
}

/// Runs the benchmark and prints its table to `out`; false when a check failed on the way
/// (a rejected row, a reconciliation that found a violation).
pub async fn run(args: BenchArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<bool> {
    let documents = if args.quick { 400 } else { args.documents };
    let skip = Skip::parse(&args.skip)?;
    let http_requests = if args.quick {
        1_000
    } else {
        args.http_requests
    };
    let dir_holder;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            dir_holder = tempfile::tempdir()?;
            dir_holder.path().to_owned()
        }
    };
    let data = dir.join("data");
    say(&format!(
        "generating {documents} documents in {}",
        data.display()
    ));
    let summary = gen::generate(documents, &data)?;
    let plan = Plan {
        data: &data,
        dir: &dir,
        http_requests,
        clients: args.clients,
        skip,
    };
    let mut results = Vec::new();
    let mut ok = true;
    for backend in &args.backends {
        let m = match backend.as_str() {
            "sqlite" => {
                let file = dir.join("bench.db");
                remove_sqlite(&file);
                let url = format!("sqlite://{}", file.display());
                let r = measure("sqlite", &url, &plan).await;
                remove_sqlite(&file);
                r
            }
            "postgres" => {
                let name = format!("ppe_bench_{}", std::process::id());
                match store_postgres::create_scratch_database(&args.postgres_url, &name).await {
                    Ok(url) => {
                        let r = measure("postgres", &url, &plan).await;
                        let _ =
                            store_postgres::drop_scratch_database(&args.postgres_url, &name).await;
                        r
                    }
                    Err(e) => {
                        writeln!(out, "postgres: skipped, no server at --postgres-url ({e})")?;
                        continue;
                    }
                }
            }
            other => anyhow::bail!("--backends: unknown backend {other:?} (sqlite, postgres)"),
        };
        let m = m?;
        ok &= m.rejected == 0 && m.reconcile_ok && m.http_errors == 0;
        results.push(m);
    }
    let _ = std::fs::remove_dir_all(&data);
    print_table(out, &summary, args.clients, &results)?;
    Ok(ok)
}

fn say(msg: &str) {
    // Progress goes to stderr so that the table on stdout stays clean when redirected.
    eprintln!("ppe bench: {msg}");
}

fn remove_sqlite(file: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
}

/// The process's peak resident memory since the last reset, from /proc (Linux only).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resets the peak so that the next reading is the import's alone (Linux 4.0 and later).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// What every backend's run shares: the data set, the scratch folder, the HTTP load and the
/// steps left out.
struct Plan<'a> {
    data: &'a Path,
    dir: &'a Path,
    http_requests: u64,
    clients: u64,
    skip: Skip,
}

async fn measure(backend: &str, url: &str, plan: &Plan<'_>) -> anyhow::Result<Measured> {
    let Plan {
        data,
        dir,
        http_requests,
        clients,
        skip,
    } = *plan;
    // Import first, in a child process of its own when this is the `ppe` binary (its peak
    // memory is then the import's alone, not the generator's or an earlier backend's); in
    // process otherwise (a test calling `run`).
    say(&format!("{backend}: importing"));
    let exe = ppe_exe();
    let in_child = exe.is_some();
    let imported = match exe {
        Some(exe) => import_in_child(&exe, url, data)?,
        None => {
            let service = Service::open(url, WriterConfig::default())
                .await
                .with_context(|| format!("opening {url}"))?;
            let imported = import(&service, backend, data).await?;
            drop(service);
            imported
        }
    };
    let service = Service::open(url, WriterConfig::default())
        .await
        .with_context(|| format!("opening {url}"))?;
    let mut m = Measured {
        backend: backend.to_owned(),
        documents: imported.documents,
        postings: 0,
        import: imported.import,
        baseline: Duration::ZERO,
        import_peak_bytes: imported.peak_bytes,
        import_in_child: in_child,
        rejected: imported.rejected,
        http_docs: 0,
        http: Duration::ZERO,
        http_errors: 0,
        http_ahead: 0,
        p50: Duration::ZERO,
        p99: Duration::ZERO,
        reconcile: Duration::ZERO,
        reconcile_parts: None,
        reconcile_ok: false,
        hledger: Err("not run".into()),
        ledger: Err("not run".into()),
        trace: Err("not run".into()),
        http_skipped: skip.http,
    };

    // The journal as a plain-text ledger file for the peers, counting postings on the way.
    let journal = dir.join(format!("{backend}.journal"));
    m.postings = if skip.peers {
        count_postings(&service).await?
    } else {
        say(&format!(
            "{backend}: writing the journal for hledger and ledger"
        ));
        write_journal(&service, &journal).await?
    };

    // The raw-insert baseline: as many rows, same database, same batching and durability.
    say(&format!("{backend}: raw-insert baseline"));
    let per_commit = WriterConfig::default().max_batch_lines;
    let t = Instant::now();
    service
        .store()
        .insert_baseline(m.postings, per_commit)
        .await?;
    m.baseline = t.elapsed();

    // Reconciliation: trial balance, conservation and the chain from one read of the journal
    // (the `reconciliation` report), and then the three separate reports for comparison.
    say(&format!("{backend}: reconciliation"));
    // Computed and serialized as JSON, as `GET /reports/reconciliation` answers (written to
    // nowhere: the time is the report's, not a disk's).
    let params = service::reports::ReportParams::default();
    let t = Instant::now();
    let one = service
        .report(service::reports::ReportName::Reconciliation, &params)
        .await?;
    one.write_json(&mut std::io::sink(), false)?;
    m.reconcile = t.elapsed();
    let one_ok = one
        .json
        .get("ok")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    m.reconcile_ok = one_ok;
    if !skip.separate {
        let t = Instant::now();
        let tb = service
            .report(service::reports::ReportName::TrialBalance, &params)
            .await?;
        tb.write_json(&mut std::io::sink(), false)?;
        let tb_done = t.elapsed();
        let cons = service
            .report(service::reports::ReportName::Conservation, &params)
            .await?;
        let cons_done = t.elapsed();
        let verify = service.verify(&|_, _| {}).await?;
        let all_done = t.elapsed();
        m.reconcile_parts = Some([tb_done, cons_done - tb_done, all_done - cons_done]);
        let cons_ok = cons
            .json
            .get("ok")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        m.reconcile_ok &= cons_ok && verify.ok && tb.entries == verify.entries;
    }
    if skip.peers {
        m.hledger = Err("skipped".into());
        m.ledger = Err("skipped".into());
    } else {
        m.hledger = peer("hledger", &journal);
        m.ledger = peer("ledger", &journal);
        let _ = std::fs::remove_file(&journal);
    }

    m.trace = trace(&service).await;

    // HTTP last: it adds documents to the journal measured above.
    if !skip.http {
        say(&format!(
            "{backend}: HTTP, {clients} clients, {http_requests} documents"
        ));
        http(&service, &mut m, http_requests, clients).await?;
    }
    Ok(m)
}

/// What the import step measured; `ppe bench-import` prints it as one JSON line for its parent.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Imported {
    pub documents: u64,
    pub rejected: usize,
    pub import: Duration,
    pub peak_bytes: Option<u64>,
}

/// The running `ppe` binary, when this process is one (not a test harness calling `run`).
fn ppe_exe() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    (exe.file_stem()? == "ppe").then_some(exe)
}

/// Runs `ppe bench-import` on `url` and reads the line it prints.
fn import_in_child(exe: &Path, url: &str, data: &Path) -> anyhow::Result<Imported> {
    let output = std::process::Command::new(exe)
        .arg("--database-url")
        .arg(url)
        .arg("bench-import")
        .arg("--data")
        .arg(data)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str::<Imported>(line).with_context(|| {
        format!(
            "ppe bench-import exited with {} and printed {stdout:?}",
            output.status
        )
    })
}

/// Imports every file of a generated data set (master data first, untimed; then the
/// documents, timed together), as `ppe import` does, and reads the peak memory.
pub async fn import(service: &Service, backend: &str, data: &Path) -> anyhow::Result<Imported> {
    reset_peak_rss();
    let mut m = Imported {
        documents: 0,
        rejected: 0,
        import: Duration::ZERO,
        peak_bytes: None,
    };
    for (file, kind) in gen::IMPORT_ORDER {
        let kind: ImportKind = kind.parse().map_err(anyhow::Error::msg)?;
        let f = std::fs::File::open(data.join(file))?;
        let bar = crate::bar(None, &format!("{backend}: importing {file}"));
        let t = Instant::now();
        let report = service
            .import_csv(kind, f, "bench", &|n| bar.set_position(n))
            .await?;
        let took = t.elapsed();
        bar.finish_and_clear();
        if !matches!(
            kind,
            ImportKind::Items | ImportKind::Parties | ImportKind::Locations | ImportKind::Boms
        ) {
            m.import += took;
            m.documents += report.created;
        }
        for e in report.rejected.iter().take(5) {
            say(&format!("{backend}: {file}: rejected {e}"));
        }
        m.rejected += report.rejected.len();
    }
    m.peak_bytes = peak_rss();
    Ok(m)
}

/// Lot trace time on the imported journal: the recall query forward from the first
/// purchased lot of polycarbonate (it feeds production runs whose output is donated), and
/// backward from the first run's output lot to its materials and suppliers; the slower of
/// the two.
async fn trace(service: &Service) -> Result<Duration, String> {
    use service::trace::Direction;
    let mut slowest = Duration::ZERO;
    for (lot, direction) in [
        ("PO-00000001-1", Direction::Forward),
        ("RUN-00000001-OUT", Direction::Backward),
    ] {
        let t = Instant::now();
        service
            .trace(lot, direction)
            .await
            .map_err(|e| format!("trace {lot}: {e}"))?;
        slowest = slowest.max(t.elapsed());
    }
    Ok(slowest)
}

/// Runs a peer's `balance` on the journal and times it; the error says why it could not.
fn peer(tool: &str, journal: &Path) -> Result<Duration, String> {
    let t = Instant::now();
    let out = std::process::Command::new(tool)
        .arg("-f")
        .arg(journal)
        .arg("balance")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(t.elapsed()),
        Ok(o) => Err(format!(
            "{tool} failed: {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .next()
                .unwrap_or("")
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "{tool} is not installed (apt-get install -y hledger ledger)"
        )),
        Err(e) => Err(format!("{tool}: {e}")),
    }
}

/// The journal's postings, counted from the pages a full pass reads.
async fn count_postings(service: &Service) -> anyhow::Result<u64> {
    let snapshot = service.store().snapshot().await?;
    let mut after = 0u64;
    let mut postings = 0u64;
    loop {
        let page = snapshot
            .journal_page(after, store::JOURNAL_PAGE_MAX)
            .await?;
        let Some(last) = page.last_seq() else { break };
        after = u64::try_from(last)?;
        postings += page.entries().map(|(_, p)| p.len() as u64).sum::<u64>();
    }
    Ok(postings)
}

/// Writes every entry as a ledger/hledger transaction: each posting becomes its quantity in a
/// commodity named after its lot (lot numbers are unique across the ledger, and a lot holds
/// one item) and its value in the base currency, so both tools balance exactly what the trial
/// balance balances. Returns the number of postings.
async fn write_journal(service: &Service, path: &Path) -> anyhow::Result<u64> {
    let mut f = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(path)?);
    let currency = service.base_currency().to_owned();
    let mut after = 0u64;
    let mut postings = 0u64;
    loop {
        let page = service.store().entries(after, store::PAGE_MAX).await?;
        let Some(last) = page.last() else { break };
        after = last.entry.seq();
        for e in &page {
            let x = &e.entry;
            writeln!(f, "{} {} {}", x.date(), x.kind().as_str(), x.document())?;
            for p in x.postings() {
                postings += 1;
                if !p.qty.is_zero() {
                    writeln!(f, "    {}  {} \"{}\"", p.account, p.qty, p.lot)?;
                }
                writeln!(f, "    {}  {} {currency}", p.account, p.value)?;
            }
            writeln!(f)?;
        }
    }
    f.flush()?;
    Ok(postings)
}

/// The built-in load generator: `clients` tasks on loopback, each posting single purchases
/// one after another until `requests` have been sent in all; latency per request.
async fn http(
    service: &Service,
    m: &mut Measured,
    requests: u64,
    clients: u64,
) -> anyhow::Result<()> {
    let token = service
        .create_token(
            &format!("bench-{}", std::process::id()),
            service::auth::Role::Admin,
            None,
        )
        .await?
        .token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (router, _) = web::app(
        service.clone(),
        api::ApiConfig {
            // The benchmark measures the write path, not the per-token rate limit.
            rate_limit_per_second: 0,
            ..api::ApiConfig::default()
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::serve(listener, router, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::try_from(clients).unwrap_or(64))
        .build()?;
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let ahead = service.batches_decided_ahead();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, next, token) = (client.clone(), next.clone(), token.clone());
        let url = format!("http://{addr}/api/v1/purchases");
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= requests {
                    break;
                }
                let body = serde_json::json!({
                    "purchase_id": format!("HTTP-{c:03}-{n:08}"),
                    "date": "2020-12-20",
                    "supplier": "SUP-001",
                    "location": "DEPOT",
                    "lines": [
                        {"sku": "MASK", "qty": "1000", "unit_price": "2.50"},
                        {"sku": "GLOVES", "qty": "500", "unit_price": "0.80"}
                    ]
                });
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await;
                let ok = match r {
                    Ok(r) => {
                        let status = r.status();
                        let _ = r.bytes().await;
                        status.as_u16() == 201
                    }
                    Err(_) => false,
                };
                latencies.push(t.elapsed());
                if !ok {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        m.http_errors += e;
    }
    m.http = started.elapsed();
    m.http_ahead = service.batches_decided_ahead() - ahead;
    let _ = stop.send(());
    let _ = server.await;
    all.sort();
    m.http_docs = u64::try_from(all.len()).unwrap_or(0) - m.http_errors;
    let at = |q: usize| all.get((all.len() * q / 100).min(all.len().saturating_sub(1)));
    m.p50 = at(50).copied().unwrap_or_default();
    m.p99 = at(99).copied().unwrap_or_default();
    Ok(())
}

fn rate(n: u64, d: Duration) -> f64 {
    if d.is_zero() {
        0.0
    } else {
        n as f64 / d.as_secs_f64()
    }
}

fn thousands(x: f64) -> String {
    // A rate is non-negative and far below 2^53: the cast keeps every digit shown.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let n = x.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn print_table(
    out: &mut (dyn Write + Send),
    summary: &gen::Summary,
    clients: u64,
    results: &[Measured],
) -> std::io::Result<()> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    writeln!(
        out,
        "ppe bench: {} generated documents, {} cores",
        summary.documents, cores
    )?;
    let mut rows: Vec<(String, Vec<String>, &str)> = Vec::new();
    let col = |f: &dyn Fn(&Measured) -> String| results.iter().map(f).collect::<Vec<_>>();
    rows.push((
        "documents / postings imported".into(),
        col(&|m| format!("{} / {}", m.documents, m.postings)),
        "",
    ));
    rows.push((
        "import postings/s".into(),
        col(&|m| thousands(rate(m.postings, m.import))),
        ">= 250k sqlite, >= 200k postgres",
    ));
    rows.push((
        "raw-insert baseline rows/s".into(),
        col(&|m| thousands(rate(m.postings, m.baseline))),
        "",
    ));
    rows.push((
        "import / baseline".into(),
        col(&|m| {
            format!(
                "{:.2}",
                m.baseline.as_secs_f64() / m.import.as_secs_f64().max(1e-9)
            )
        }),
        ">= 0.5",
    ));
    rows.push((
        "import peak memory MB".into(),
        col(&|m| {
            let peak = m
                .import_peak_bytes
                .map_or("n/a".into(), |b| format!("{}", b / (1024 * 1024)));
            // A binary not named `ppe` (a copy, a test) imports in process: say so, since
            // its peak then counts the generator's memory too.
            if m.import_in_child {
                peak
            } else {
                format!("{peak} (in process)")
            }
        }),
        "< 150 at 10M postings",
    ));
    rows.push((
        "rejected rows".into(),
        col(&|m| m.rejected.to_string()),
        "0",
    ));
    rows.push((
        // The load as run: the target is stated for 64 clients, and fewer or more change
        // both the rate and the latency (a closed loop: a client waits for its answer).
        format!("HTTP documents/s ({clients} clients)"),
        col(&|m| {
            if m.http_skipped {
                "skipped".into()
            } else {
                thousands(rate(m.http_docs, m.http))
            }
        }),
        ">= 10k sqlite, >= 5k postgres",
    ));
    rows.push((
        "HTTP p50 / p99 ms".into(),
        col(&|m| {
            if m.http_skipped {
                "skipped".into()
            } else {
                format!(
                    "{:.1} / {:.1}",
                    m.p50.as_secs_f64() * 1e3,
                    m.p99.as_secs_f64() * 1e3
                )
            }
        }),
        "p99 < 20",
    ));
    rows.push((
        "HTTP errors".into(),
        col(&|m| m.http_errors.to_string()),
        "0",
    ));
    rows.push((
        "HTTP batches decided ahead".into(),
        col(&|m| {
            if m.http_skipped {
                "skipped".into()
            } else {
                m.http_ahead.to_string()
            }
        }),
        "",
    ));
    rows.push((
        "reconciliation s (one pass)".into(),
        col(&|m| {
            format!(
                "{:.2}{}",
                m.reconcile.as_secs_f64(),
                if m.reconcile_ok { "" } else { " FAILED" }
            )
        }),
        "< 10 at 10M postings",
    ));
    rows.push((
        "separate tb / cons / verify s".into(),
        col(&|m| match m.reconcile_parts {
            Some(parts) => {
                let [a, b, c] = parts.map(|d| d.as_secs_f64());
                format!("{a:.2} / {b:.2} / {c:.2}")
            }
            None => "skipped".into(),
        }),
        "",
    ));
    for (name, get) in [
        (
            "hledger",
            (|m: &Measured| &m.hledger) as fn(&Measured) -> &Result<Duration, String>,
        ),
        ("ledger", |m: &Measured| &m.ledger),
    ] {
        rows.push((
            format!("{name} balance s"),
            col(&|m| match get(m) {
                Ok(d) => format!("{:.2}", d.as_secs_f64()),
                Err(e) => e.clone(),
            }),
            "",
        ));
        rows.push((
            format!("{name} / reconciliation"),
            col(&|m| match get(m) {
                Ok(d) => format!(
                    "{:.1}x",
                    d.as_secs_f64() / m.reconcile.as_secs_f64().max(1e-9)
                ),
                Err(_) => "n/a".into(),
            }),
            if name == "hledger" {
                ">= 50x at 1M postings"
            } else {
                ""
            },
        ));
    }
    rows.push((
        "lot trace ms".into(),
        col(&|m| match &m.trace {
            Ok(d) => format!("{:.1}", d.as_secs_f64() * 1e3),
            Err(e) => e.clone(),
        }),
        "< 50 at 10M postings",
    ));
    let names: Vec<&str> = results.iter().map(|m| m.backend.as_str()).collect();
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..results.len())
        .map(|i| {
            rows.iter()
                .map(|r| r.1[i].chars().count())
                .chain([names[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut header = format!("{:<w0$}", "metric");
    for (n, w) in names.iter().zip(&widths) {
        header.push_str(&format!(" | {n:>w$}"));
    }
    header.push_str(" | target");
    writeln!(out, "{header}")?;
    writeln!(out, "{}", "-".repeat(header.chars().count() + 20))?;
    for (name, cells, target) in &rows {
        let mut line = format!("{name:<w0$}");
        for (c, w) in cells.iter().zip(&widths) {
            line.push_str(&format!(" | {c:>w$}"));
        }
        line.push_str(&format!(" | {target}"));
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
