//! The `ppe` command: serve, migrate, seed, import, verify, report, token. Each command writes
//! its answer to the writer it is given, so tests run the same code the binary runs.

pub mod seeds;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use service::auth::Role;
use service::import::ImportKind;
use service::{Service, WriterConfig};

pub mod bench;
pub mod gen;

/// The PPE ledger: an exact, tamper-evident record of protective equipment.
#[derive(Debug, Parser)]
#[command(name = "ppe", version, about)]
pub struct Cli {
    /// Database URL: sqlite://FILE (created if missing) or postgres://...
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://ppe.db",
        global = true
    )]
    pub database_url: String,
    /// Log format on stderr: text or json.
    #[arg(long, env = "PPE_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API and the web pages.
    Serve(ServeArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Import a CSV file: items, parties, locations, purchases, receipts, batches, donations,
    /// acknowledgements, boms or production.
    Import {
        /// What the file holds.
        kind: ImportKind,
        /// The CSV file (UTF-8, header row).
        file: PathBuf,
        /// The name recorded as the actor of the entries the import makes.
        #[arg(long, env = "PPE_ACTOR", default_value = "cli")]
        actor: String,
        /// Most documents the writer commits together during the import.
        #[arg(long, env = "PPE_IMPORT_BATCH_MAX", default_value_t = WriterConfig::default().import_batch_max)]
        batch_max: usize,
    },
    /// Load a data set (`ppe seed longgang-2020`) through the same path as `ppe import`; loading
    /// it again changes nothing. `ppe seed --list` lists the data sets.
    Seed {
        /// The data set to load.
        #[arg(required_unless_present = "list")]
        name: Option<String>,
        /// List the data sets instead of loading one.
        #[arg(long, conflicts_with = "name")]
        list: bool,
        /// The name recorded as the actor of the entries the seed makes.
        #[arg(long, env = "PPE_ACTOR", default_value = "seed")]
        actor: String,
    },
    /// Recompute the hash chain and compare maintained balances with the postings.
    Verify {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a report: trial-balance, conservation, stock, ...
    Report(ReportArgs),
    /// Trace a lot: backward to its runs, material lots and suppliers; forward to runs,
    /// shipments and recipients, with a recall list.
    Trace {
        lot: String,
        /// Where it went (with the recall list) rather than where it came from.
        #[arg(long)]
        forward: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Write a valid, deterministic data set of N documents as CSV files (items, parties,
    /// locations, boms, purchases, receipts, production, batches, donations,
    /// acknowledgements); the same N always gives the same files.
    Gen {
        /// Documents to generate, in realistic proportions.
        #[arg(long)]
        documents: u64,
        /// The folder to write the files into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Import the files into the database, in order, once written.
        #[arg(long)]
        import: bool,
    },
    /// Benchmark import, HTTP, reconciliation and trace on SQLite and PostgreSQL, against a
    /// raw insert into a bare table and against hledger and ledger (see BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// One step of `ppe bench`, run as a child process so that its peak memory is its own:
    /// imports a generated data set and prints one JSON line of what it measured.
    #[command(hide = true)]
    BenchImport {
        /// The generated data set (`ppe gen --out`).
        #[arg(long)]
        data: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The report.
    pub name: service::reports::ReportName,
    /// table (aligned text, the default), json, csv or xlsx.
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Write to this file instead of standard output (required for xlsx).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// trial-balance: entries up to and including this date (YYYY-MM-DD).
    #[arg(long)]
    pub as_of: Option<String>,
    /// stock: only lots expiring within this many days.
    #[arg(long)]
    pub expiring_within_days: Option<u32>,
    /// donations: the percentage a declared value may differ from the ledger cost.
    #[arg(long)]
    pub tolerance_pct: Option<String>,
    /// in-transit: only shipments older than this many days.
    #[arg(long)]
    pub older_than_days: Option<u32>,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PPE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "PPE_BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit_bytes: usize,
    /// Requests per second each token may make on average (0: no limit).
    #[arg(long, env = "PPE_RATE_LIMIT_PER_SECOND", default_value_t = 200)]
    pub rate_limit_per_second: u32,
    /// Requests a token may make at once before the rate applies.
    #[arg(long, env = "PPE_RATE_LIMIT_BURST", default_value_t = 400)]
    pub rate_limit_burst: u32,
    /// Most documents the writer commits together.
    #[arg(long, env = "PPE_BATCH_MAX", default_value_t = 256)]
    pub batch_max: usize,
    /// Microseconds the writer waits for more documents once it has one.
    #[arg(long, env = "PPE_BATCH_WAIT_US", default_value_t = 0)]
    pub batch_wait_us: u64,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; its secret is printed once.
    Create {
        #[arg(long)]
        role: Role,
        #[arg(long)]
        name: String,
        /// Days until it expires; never when absent.
        #[arg(long)]
        expires_in: Option<u32>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by name.
    Revoke { name: String },
}

/// Runs a parsed command line and returns the process's exit code.
pub fn main_with(cli: Cli) -> ExitCode {
    init_logging(&cli.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout();
    match rt.block_on(run(cli, &mut out)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs one command, writing its answer to `out`. `Ok(false)` means it ran and found a
/// problem (rejected rows, a failed verify): the exit code is then non-zero.
pub async fn run(cli: Cli, out: &mut (dyn Write + Send)) -> anyhow::Result<bool> {
    let url = cli.database_url.clone();
    match cli.command {
        Command::Serve(args) => serve(&url, args, out).await,
        Command::Migrate => {
            let store = service::open_store(&url)
                .await
                .with_context(|| format!("opening {url}"))?;
            writeln!(
                out,
                "database {} ({}) is at the latest schema; head at entry {}",
                url,
                store.backend(),
                store.head().await?.seq
            )?;
            Ok(true)
        }
        Command::Import {
            kind,
            file,
            actor,
            batch_max,
        } => {
            let config = WriterConfig {
                import_batch_max: batch_max.max(1),
                ..WriterConfig::default()
            };
            let service = open(&url, config).await?;
            import(&service, kind, &file, &actor, out).await
        }
        Command::Seed { list: true, .. } => {
            list_seeds(out)?;
            Ok(true)
        }
        Command::Seed {
            name: Some(name),
            actor,
            ..
        } => {
            let Some(seed) = seeds::find(&name) else {
                anyhow::bail!(
                    "no data set {name:?}; `ppe seed --list` lists them: {}",
                    seeds::SEEDS
                        .iter()
                        .map(|s| s.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            };
            let service = open(&url, WriterConfig::default()).await?;
            seed_data(&service, seed, &actor, out).await
        }
        Command::Seed { name: None, .. } => anyhow::bail!("name a data set, or use --list"),
        Command::Verify { json } => {
            let service = open(&url, WriterConfig::default()).await?;
            verify(&service, json, out).await
        }
        Command::Report(args) => {
            let service = open(&url, WriterConfig::default()).await?;
            report(&service, args, out).await
        }
        Command::Trace { lot, forward, json } => {
            let service = open(&url, WriterConfig::default()).await?;
            trace(&service, &lot, forward, json, out).await
        }
        Command::Token(cmd) => {
            let service = open(&url, WriterConfig::default()).await?;
            token(&service, cmd, out).await
        }
        Command::Gen {
            documents,
            out: dir,
            import: and_import,
        } => {
            let summary = gen::generate(documents, &dir)
                .with_context(|| format!("writing the data set into {}", dir.display()))?;
            writeln!(
                out,
                "wrote {} documents (about {} postings) into {}:",
                summary.documents,
                summary.postings,
                dir.display()
            )?;
            for (file, rows) in &summary.rows {
                writeln!(out, "  {file}: {rows} rows")?;
            }
            if !and_import {
                return Ok(true);
            }
            let service = open(&url, WriterConfig::default()).await?;
            let mut ok = true;
            for (file, kind) in gen::IMPORT_ORDER {
                let kind: ImportKind = kind.parse().map_err(anyhow::Error::msg)?;
                ok &= import(&service, kind, &dir.join(file), "gen", out).await?;
            }
            Ok(ok)
        }
        Command::Bench(args) => bench::run(args, out).await,
        Command::BenchImport { data } => {
            let service = open(&url, WriterConfig::default()).await?;
            let m = bench::import(&service, "import", &data).await?;
            writeln!(out, "{}", serde_json::to_string(&m)?)?;
            Ok(m.rejected == 0)
        }
    }
}

async fn open(url: &str, config: WriterConfig) -> anyhow::Result<Service> {
    Service::open(url, config)
        .await
        .with_context(|| format!("opening {url}"))
}

pub(crate) fn bar(total: Option<u64>, what: &str) -> indicatif::ProgressBar {
    // Progress only on a terminal; piped output stays quiet.
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let b = match total {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    b.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} {pos}/{len} [{elapsed}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    b.set_message(what.to_owned());
    b
}

/// A reader that counts the bytes it has read, for a progress bar over a file's length.
struct Counting<R> {
    inner: R,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// The import reads the file twice (the ids first, then the documents): a rewind starts the
/// bar over.
impl<R: std::io::Seek> std::io::Seek for Counting<R> {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let at = self.inner.seek(to)?;
        self.read.store(at, std::sync::atomic::Ordering::Relaxed);
        Ok(at)
    }
}

/// A progress bar over bytes, shown on a terminal only.
fn byte_bar(total: Option<u64>, what: &str) -> indicatif::ProgressBar {
    let Some(total) = total.filter(|_| std::io::stderr().is_terminal()) else {
        return bar(None, what);
    };
    let b = indicatif::ProgressBar::new(total);
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    b.set_message(what.to_owned());
    b
}

/// Imports one CSV file and reports every rejected row with its line number.
pub async fn import(
    service: &Service,
    kind: ImportKind,
    file: &std::path::Path,
    actor: &str,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<bool> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let len = f.metadata().map(|m| m.len()).ok();
    let progress = byte_bar(len, &format!("importing {}", kind.as_str()));
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counting = Counting {
        inner: f,
        read: read.clone(),
    };
    let report = service
        .import_csv(kind, counting, actor, &|rows| {
            // The bar follows the bytes read (the file's length is known, the rows are not);
            // the row count rides along in the message now and then.
            progress.set_position(read.load(std::sync::atomic::Ordering::Relaxed));
            if rows % 4_096 == 0 {
                progress.set_message(format!("importing {}: {rows} rows", kind.as_str()));
            }
        })
        .await?;
    progress.finish_and_clear();
    write_import_report(out, &file.display().to_string(), &report)?;
    Ok(report.rejected.is_empty())
}

/// What one import did, and every rejected row with its line number.
fn write_import_report(
    out: &mut (dyn Write + Send),
    file: &str,
    report: &service::import::ImportReport,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{file}: {} rows, {} created, {} unchanged, {} rejected",
        report.rows,
        report.created,
        report.unchanged,
        report.rejected.len()
    )?;
    for e in &report.rejected {
        writeln!(out, "{file}: {e}")?;
    }
    Ok(())
}

/// Lists the data sets `ppe seed` can load.
pub fn list_seeds(out: &mut (dyn Write + Send)) -> std::io::Result<()> {
    for s in seeds::SEEDS {
        writeln!(out, "{:<16} {}", s.name, s.description)?;
        let files: Vec<&str> = s.files.iter().map(|f| f.file).collect();
        writeln!(out, "{:<16} files: {}", "", files.join(", "))?;
    }
    Ok(())
}

/// Loads a data set file by file, each with `Service::import_csv` as `ppe import` does, in the
/// order the seed gives. Stops at the first file with a rejected row: the later files refer to
/// what it holds. Every document has an id, so loading twice changes nothing.
pub async fn seed_data(
    service: &Service,
    seed: &seeds::Seed,
    actor: &str,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<bool> {
    for f in seed.files {
        let label = format!("{}/{}", seed.name, f.file);
        let progress = bar(None, &format!("seeding {label}"));
        let report = service
            .import_csv(f.kind, std::io::Cursor::new(f.csv), actor, &|n| {
                progress.set_position(n)
            })
            .await?;
        progress.finish_and_clear();
        write_import_report(out, &label, &report)?;
        if !report.rejected.is_empty() {
            writeln!(
                out,
                "stopped at {label}: the files after it depend on what it holds"
            )?;
            return Ok(false);
        }
    }
    let head = service.store().head().await?;
    writeln!(
        out,
        "seeded {}: head at entry {}, {}",
        seed.name, head.seq, head.hash
    )?;
    Ok(true)
}

/// Verifies the chain and balances.
pub async fn verify(
    service: &Service,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<bool> {
    let progress = bar(Some(0), "verifying");
    let report = service
        .verify(&|done, total| {
            progress.set_length(total);
            progress.set_position(done);
        })
        .await?;
    progress.finish_and_clear();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else if report.ok {
        writeln!(
            out,
            "ok: {} entries, head {}",
            report.entries, report.head_hash
        )?;
    } else {
        writeln!(
            out,
            "FAILED: first bad entry {}; {} entries read, head {}",
            report.first_bad_seq.map_or("-".into(), |s| s.to_string()),
            report.entries,
            report.head_hash
        )?;
        for p in &report.problems {
            writeln!(out, "  {p}")?;
        }
    }
    Ok(report.ok)
}

async fn token(
    service: &Service,
    cmd: TokenCommand,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<bool> {
    match cmd {
        TokenCommand::Create {
            role,
            name,
            expires_in,
        } => {
            let t = service.create_token(&name, role, expires_in).await?;
            writeln!(out, "{}", t.token)?;
            eprintln!(
                "created {} token {:?}{}; the secret above is shown only once",
                t.record.role,
                t.record.name,
                t.record
                    .expires_at
                    .map(|e| format!(", expires {e}"))
                    .unwrap_or_default()
            );
        }
        TokenCommand::List => {
            writeln!(
                out,
                "{:<24} {:<13} {:<26} {:<26} revoked",
                "name", "role", "created", "expires"
            )?;
            for t in service.tokens().await? {
                writeln!(
                    out,
                    "{:<24} {:<13} {:<26} {:<26} {}",
                    t.name,
                    t.role,
                    t.created_at,
                    t.expires_at.as_deref().unwrap_or("never"),
                    t.revoked_at.as_deref().unwrap_or("-")
                )?;
            }
        }
        TokenCommand::Revoke { name } => {
            service.revoke_token(&name).await?;
            writeln!(out, "revoked {name}")?;
        }
    }
    Ok(true)
}

async fn serve(url: &str, args: ServeArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<bool> {
    let config = WriterConfig {
        max_batch: args.batch_max.max(1),
        max_wait: std::time::Duration::from_micros(args.batch_wait_us),
        ..WriterConfig::default()
    };
    let service = open(url, config).await?;
    if let Some(t) = service.first_admin_token().await? {
        writeln!(out, "No token existed, so an admin token was created. It is shown only this once; keep it:\n\n    {}\n", t.token)?;
        writeln!(out, "Paste it on the sign-in page of the address below, or use it as `Authorization: Bearer <token>`.\nMake tokens for others with:\n    ppe token create --role manufacturer|coordinator|auditor --name NAME\n")?;
    }
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let addr = listener.local_addr()?;
    // The API under /api/v1 and the web pages under /, from one listener.
    let (router, _) = web::app(
        service.clone(),
        api::ApiConfig {
            body_limit_bytes: args.body_limit_bytes,
            rate_limit_per_second: args.rate_limit_per_second,
            rate_limit_burst: args.rate_limit_burst,
            ..api::ApiConfig::default()
        },
    );
    writeln!(
        out,
        "ppe serving {} ({}) on http://{addr}\n    web pages: http://{addr}/ (sign in with a token)\n    API:       http://{addr}/api/v1",
        url,
        service.backend()
    )?;
    out.flush()?;
    tracing::info!(%addr, backend = service.backend(), "listening");
    api::serve(listener, router, shutdown_signal()).await?;
    Ok(true)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

/// Runs a report and writes it in the format asked for.
pub async fn report(
    service: &Service,
    args: ReportArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<bool> {
    let as_of = args
        .as_of
        .as_deref()
        .map(ledger::parse_date)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--as-of {e}"))?;
    let tolerance_pct = args
        .tolerance_pct
        .as_deref()
        .map(ledger::num::parse_decimal)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--tolerance-pct {e}"))?;
    let params = service::reports::ReportParams {
        as_of,
        expiring_within_days: args.expiring_within_days,
        tolerance_pct,
        older_than_days: args.older_than_days,
    };
    match (args.format.as_str(), &args.out) {
        ("xlsx", None) => anyhow::bail!("xlsx needs --out FILE"),
        ("table" | "json" | "csv" | "xlsx", _) => {}
        (other, _) => anyhow::bail!("--format {other}: one of table, json, csv, xlsx"),
    }
    let report = service.report(args.name, &params).await?;
    // Written as it is made: the JSON of a large ledger is hundreds of megabytes.
    let write = |w: &mut dyn Write| -> anyhow::Result<()> {
        match args.format.as_str() {
            "table" => w.write_all(render_table(&report).as_bytes())?,
            "json" => {
                let started = std::time::Instant::now();
                report.write_json(&mut *w, true)?;
                tracing::debug!(write_ms = started.elapsed().as_millis(), "report written");
                // A line of its own on a terminal, like every other answer.
                w.write_all(b"\n")?;
            }
            "csv" => w.write_all(report.to_csv().as_bytes())?,
            _ => w.write_all(&report.to_xlsx()?)?,
        }
        Ok(())
    };
    match &args.out {
        Some(path) => {
            let context = || format!("writing {}", path.display());
            let mut file =
                std::io::BufWriter::new(std::fs::File::create(path).with_context(context)?);
            write(&mut file).with_context(context)?;
            file.flush().with_context(context)?;
            writeln!(
                out,
                "wrote {} ({} bytes; head {}, {} entries)",
                path.display(),
                std::fs::metadata(path).with_context(context)?.len(),
                report.head_hash,
                report.entries
            )?;
        }
        None => {
            let mut w = std::io::BufWriter::new(&mut *out);
            write(&mut w)?;
            w.flush()?;
        }
    }
    // A conservation report that finds a violation fails the command, as verify does.
    Ok(report
        .json
        .get("ok")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(true))
}

/// Every table of a report as aligned text, with the head it was computed at.
fn render_table(report: &service::reports::Report) -> String {
    use service::reports::Cell;
    let mut s = String::new();
    for t in &report.tables {
        let cells: Vec<Vec<String>> = t
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|c| match c {
                        Cell::Text(x) | Cell::Number(x) => x.clone(),
                        Cell::Empty => String::new(),
                    })
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = t
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                cells
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([c.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        // Numbers align right, text left.
        let numeric: Vec<bool> = (0..t.columns.len())
            .map(|i| !t.rows.is_empty() && t.rows.iter().all(|r| !matches!(r[i], Cell::Text(_))))
            .collect();
        let line = |row: &[String]| {
            row.iter()
                .enumerate()
                .map(|(i, c)| {
                    if numeric[i] {
                        format!("{c:>w$}", w = widths[i])
                    } else {
                        format!("{c:<w$}", w = widths[i])
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        s.push_str(&format!("{} ({} rows)\n", t.title, t.rows.len()));
        s.push_str(&line(
            &t.columns
                .iter()
                .map(|c| (*c).to_owned())
                .collect::<Vec<_>>(),
        ));
        s.push('\n');
        for r in &cells {
            s.push_str(&line(r));
            s.push('\n');
        }
        s.push('\n');
    }
    if let Some(ok) = report.json.get("ok").and_then(serde_json::Value::as_bool) {
        s.push_str(if ok {
            "ok: no violation\n"
        } else {
            "VIOLATIONS FOUND\n"
        });
    }
    s.push_str(&format!(
        "ledger head {} at entry {}, generated {}\n",
        report.head_hash, report.entries, report.generated_at
    ));
    s
}

/// Prints a lot's trace as an indented tree, and forward, the recall list.
pub async fn trace(
    service: &Service,
    lot: &str,
    forward: bool,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<bool> {
    use service::trace::{Direction, TraceNode};
    let direction = if forward {
        Direction::Forward
    } else {
        Direction::Backward
    };
    let view = service.trace(lot, direction).await?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&view)?)?;
        return Ok(true);
    }
    fn walk(n: &TraceNode, depth: usize, out: &mut (dyn Write + Send)) -> std::io::Result<()> {
        let mut line = format!("{}{} {}", "  ".repeat(depth), n.kind, n.id);
        if let Some(s) = &n.sku {
            line.push_str(&format!(" [{s}]"));
        }
        if let Some(q) = &n.quantity {
            line.push_str(&format!(" qty {q}"));
        }
        if let Some(d) = &n.date {
            line.push_str(&format!(" on {d}"));
        }
        if let Some(d) = &n.detail {
            line.push_str(&format!(" - {d}"));
        }
        writeln!(out, "{line}")?;
        for c in &n.children {
            walk(c, depth + 1, out)?;
        }
        Ok(())
    }
    writeln!(
        out,
        "{} trace of lot {} ({})",
        view.direction, view.lot, view.sku
    )?;
    walk(&view.tree, 1, out)?;
    if forward {
        writeln!(out, "\nrecall: {} deliveries", view.recall.len())?;
        for r in &view.recall {
            let place = [r.city.as_deref(), r.country.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", ");
            writeln!(
                out,
                "  {} {} ({}{}) {} {} of {} lot {} via {}",
                r.date,
                r.recipient,
                r.name,
                if place.is_empty() {
                    String::new()
                } else {
                    format!(", {place}")
                },
                r.party_kind,
                r.quantity,
                r.sku,
                r.lot,
                r.shipment_id
            )?;
        }
    }
    Ok(true)
}
