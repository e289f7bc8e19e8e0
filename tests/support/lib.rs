//! Test support: `spawn_app()` starts the real server on a random port against a fresh
//! database (a new SQLite file, or a new PostgreSQL database when `PPE_TEST_POSTGRES_URL` is
//! set), and a small client for driving it over HTTP.

pub mod fuzzing;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use service::{Service, WriterConfig};

/// A backend under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The master data of the races and the group-commit test: one supply (MASK), its supplier,
/// a subdistrict and a store, as (path, body) to post in order.
pub fn mask_master_data() -> [(&'static str, Value); 4] {
    use serde_json::json;
    [
        (
            "/api/v1/items",
            json!({"sku":"MASK","name":"Mask","kind":"supply","unit":"pcs","decimals":0}),
        ),
        (
            "/api/v1/parties",
            json!({"code":"SUP","name":"Supplier","kind":"supplier"}),
        ),
        (
            "/api/v1/parties",
            json!({"code":"NANWAN","name":"Nanwan","kind":"subdistrict"}),
        ),
        ("/api/v1/locations", json!({"code":"FG","name":"Store"})),
    ]
}

/// The entries of a snapshot's journal, read as a full pass reads it but a page of one entry
/// at a time: every page full, so every read starts the next ones ahead, on SQLite the page
/// after the next on a second connection (every other page from the third on).
pub async fn pages_of_one(s: &dyn store::Snapshot) -> Vec<i64> {
    let (mut seqs, mut after) = (Vec::new(), 0);
    loop {
        let page = s.journal_page(after, 1).await.expect("a page");
        let Some(last) = page.last_seq() else { break };
        seqs.push(last);
        after = u64::try_from(last).expect("a positive seq");
    }
    seqs
}

/// The backends to run a story on: SQLite always, PostgreSQL when `PPE_TEST_POSTGRES_URL` is
/// set. With `PPE_TEST_REQUIRE_POSTGRES=1` (set by `.ci/run`), a missing URL fails the test
/// instead of quietly running SQLite alone.
pub fn backends() -> Vec<Backend> {
    let mut v = vec![Backend::Sqlite];
    match std::env::var("PPE_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => v.push(Backend::Postgres),
        _ => {
            assert!(std::env::var("PPE_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"), "PPE_TEST_REQUIRE_POSTGRES=1 but PPE_TEST_POSTGRES_URL is not set: the PostgreSQL suite would not run");
            eprintln!("PPE_TEST_POSTGRES_URL is not set: running on SQLite only");
        }
    }
    v
}

/// The tables a write can add rows to.
pub const WRITTEN_TABLES: &[&str] = &[
    "entries",
    "postings",
    "lots",
    "documents",
    "balances",
    "idempotency",
    "items",
    "parties",
    "locations",
    "tokens",
];

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique_name() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("ppe_t_{}_{n}_{nanos}", std::process::id())
}

/// A fresh, empty database of one backend.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_admin: Option<(String, String)>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("ppe.db").display());
                TestDb {
                    backend,
                    url,
                    _dir: Some(dir),
                    pg_admin: None,
                }
            }
            Backend::Postgres => {
                let admin = std::env::var("PPE_TEST_POSTGRES_URL").expect("PPE_TEST_POSTGRES_URL");
                let name = unique_name();
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .expect("connecting to PPE_TEST_POSTGRES_URL");
                sqlx::query(&format!("create database {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("creating a test database");
                let base = admin
                    .rsplit_once('/')
                    .map_or(admin.as_str(), |(b, _)| b)
                    .to_owned();
                let url = format!("{base}/{name}");
                TestDb {
                    backend,
                    url,
                    _dir: None,
                    pg_admin: Some((admin, name)),
                }
            }
        }
    }

    /// Runs SQL directly on the database, under the service: for tests that tamper.
    pub async fn exec(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => {
                let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::raw_sql(sql)
                    .execute(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
            Backend::Postgres => {
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::raw_sql(sql)
                    .execute(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        }
    }

    /// Runs SQL that the database must refuse; returns the error text.
    pub async fn exec_refused(&self, sql: &str) -> String {
        let r = match self.backend {
            Backend::Sqlite => {
                let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::raw_sql(sql).execute(&mut c).await.map(|_| ())
            }
            Backend::Postgres => {
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::raw_sql(sql).execute(&mut c).await.map(|_| ())
            }
        };
        match r {
            Ok(()) => panic!("the database accepted {sql}"),
            Err(e) => e.to_string(),
        }
    }

    /// Rows in every table a write can touch, and the head's sequence number: a refusal
    /// that "writes nothing" leaves all of these as they were.
    pub async fn counts(&self) -> BTreeMap<String, i64> {
        let sql = WRITTEN_TABLES
            .iter()
            .map(|t| format!("select '{t}', count(*) from {t}"))
            .chain(std::iter::once(
                "select 'ledger.seq', seq from ledger".to_owned(),
            ))
            .collect::<Vec<_>>()
            .join(" union all ");
        let rows: Vec<(String, i64)> = match self.backend {
            Backend::Sqlite => {
                let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query_as(&sql).fetch_all(&mut c).await
            }
            Backend::Postgres => {
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query_as(&sql).fetch_all(&mut c).await
            }
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter().collect()
    }

    /// One integer from a query run directly on the database.
    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        match self.backend {
            Backend::Sqlite => {
                let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
            Backend::Postgres => {
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
        }
    }

    /// SQL that turns off what keeps entries and postings append-only (the triggers) and
    /// consistent (foreign keys): the deliberate act outside the service that tamper tests
    /// play. Prefix a tampering statement with it in one `exec`. On SQLite the triggers are
    /// dropped for good; on PostgreSQL replica mode lasts for that one session.
    pub fn unguarded(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => {
                "pragma foreign_keys = off;
                 drop trigger if exists entries_append_only_update;
                 drop trigger if exists entries_append_only_delete;
                 drop trigger if exists postings_append_only_update;
                 drop trigger if exists postings_append_only_delete;"
            }
            // A superuser session in replica mode fires no triggers, foreign keys included.
            Backend::Postgres => "set session_replication_role = replica;",
        }
    }

    /// Drops a PostgreSQL test database (SQLite files go with their temporary folder).
    pub async fn drop_db(&self) {
        if let Some((admin, name)) = &self.pg_admin {
            if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(admin).await {
                let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
                    .execute(&mut conn)
                    .await;
            }
        }
    }
}

/// The running application.
pub struct TestApp {
    pub base: String,
    pub db: TestDb,
    pub service: Service,
    pub admin_token: String,
    pub http: reqwest::Client,
    /// Seconds the service's clock runs ahead of the wall clock (see [`TestApp::advance`]).
    clock_offset_s: Arc<AtomicI64>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Starts the server on 127.0.0.1:0 over a fresh database of `backend`, with an admin token.
pub async fn spawn_app(backend: Backend) -> TestApp {
    // Stories send hundreds of requests with one token in a blink: the per-token rate limit
    // is off here and tested on its own (tests/access.rs).
    let config = api::ApiConfig {
        rate_limit_per_second: 0,
        ..api::ApiConfig::default()
    };
    spawn_app_with(backend, config, WriterConfig::default()).await
}

pub async fn spawn_app_with(
    backend: Backend,
    config: api::ApiConfig,
    writer: WriterConfig,
) -> TestApp {
    let db = TestDb::new(backend).await;
    let store = service::open_store(&db.url)
        .await
        .expect("opening the test database");
    let clock_offset_s = Arc::new(AtomicI64::new(0));
    let offset = clock_offset_s.clone();
    let clock: service::Clock = Arc::new(move || {
        time::OffsetDateTime::now_utc() + time::Duration::seconds(offset.load(Ordering::Relaxed))
    });
    let service = Service::start(store, writer, clock)
        .await
        .expect("starting the service");
    let admin_token = service
        .first_admin_token()
        .await
        .expect("first token")
        .expect("an empty database has no token")
        .token;
    let (base, shutdown) = serve(&service, config).await;
    TestApp {
        base,
        db,
        service,
        admin_token,
        http: reqwest::Client::new(),
        clock_offset_s,
        shutdown: Some(shutdown),
    }
}

/// Serves the whole application, as `ppe serve` runs it (the API and the web pages), on a
/// random port: its base URL, and the sender that stops it.
async fn serve(
    service: &Service,
    config: api::ApiConfig,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a random port");
    let addr = listener.local_addr().expect("local address");
    let (router, _) = web::app(service.clone(), config);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(api::serve(listener, router, async move {
        let _ = rx.await;
    }));
    (format!("http://{addr}"), tx)
}

/// An answer: status, headers and JSON body (Null when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// The fields a problem answer names.
    pub fn fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl TestApp {
    /// Moves the service's clock forward (for expiry).
    pub fn advance(&self, d: time::Duration) {
        self.clock_offset_s
            .fetch_add(d.whole_seconds(), Ordering::Relaxed);
    }

    /// Creates a token of a role and returns its secret.
    pub async fn token(&self, role: &str, name: &str) -> String {
        let a = self
            .post(
                "/api/v1/tokens",
                &serde_json::json!({"name": name, "role": role}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        a.body["token"].as_str().expect("the secret").to_owned()
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("the server answers");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            body,
            text,
            headers,
        }
    }

    /// GET with the admin token.
    pub async fn get(&self, path: &str) -> Answer {
        self.request(Method::GET, path, Some(&self.admin_token), None, &[])
            .await
    }

    /// POST with the admin token.
    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.request(Method::POST, path, Some(&self.admin_token), Some(body), &[])
            .await
    }

    /// POST with the admin token and an `Idempotency-Key`.
    pub async fn post_keyed(&self, path: &str, body: &Value, key: &str) -> Answer {
        self.request(
            Method::POST,
            path,
            Some(&self.admin_token),
            Some(body),
            &[("idempotency-key", key)],
        )
        .await
    }

    /// POST that must succeed with 200 or 201.
    pub async fn post_ok(&self, path: &str, body: &Value) -> Value {
        let a = self.post(path, body).await;
        assert!(
            a.status.is_success(),
            "POST {path} {body} answered {}: {}",
            a.status,
            a.text
        );
        a.body
    }

    /// The number of entries in the journal.
    pub async fn entry_count(&self) -> u64 {
        let v = self.get("/api/v1/verify").await;
        v.body["entries"].as_u64().expect("verify reports entries")
    }

    /// Balance of one account, sku and lot as (quantity, value) strings; zero when absent.
    pub async fn balance(&self, account: &str, lot: &str) -> (String, String) {
        let a = self
            .get(&format!("/api/v1/balances?account={account}&lot={lot}"))
            .await;
        match a.body["items"].as_array().and_then(|i| i.first()) {
            Some(row) => (
                row["quantity"].as_str().unwrap().to_owned(),
                row["value"].as_str().unwrap().to_owned(),
            ),
            None => ("0".into(), "0.0000".into()),
        }
    }

    /// Runs a `ppe` command line against this app's database, in process; returns its
    /// success and what it printed.
    pub async fn ppe(&self, args: &[&str]) -> (bool, String) {
        use clap::Parser;
        let mut argv = vec!["ppe", "--database-url", self.db.url.as_str()];
        argv.extend_from_slice(args);
        let cli = ppe_cli::Cli::try_parse_from(argv).expect("a valid command line");
        let mut out = Vec::new();
        let ok = ppe_cli::run(cli, &mut out).await.expect("the command runs");
        (ok, String::from_utf8(out).expect("UTF-8 output"))
    }

    /// A second service and server over the same database, as a second `ppe serve` process
    /// would run: its own connections and its own writer, so the two writers meet only in the
    /// database's write lock. Stopping the twin leaves the database to this app.
    pub async fn twin(&self) -> TestApp {
        let store = service::open_store(&self.db.url)
            .await
            .expect("opening the test database again");
        let service = Service::start(store, WriterConfig::default(), service::system_clock())
            .await
            .expect("starting a second service");
        let config = api::ApiConfig {
            rate_limit_per_second: 0,
            ..api::ApiConfig::default()
        };
        let (base, shutdown) = serve(&service, config).await;
        TestApp {
            base,
            db: TestDb {
                backend: self.db.backend,
                url: self.db.url.clone(),
                _dir: None,
                pg_admin: None,
            },
            service,
            admin_token: self.admin_token.clone(),
            http: reqwest::Client::new(),
            clock_offset_s: Arc::new(AtomicI64::new(0)),
            shutdown: Some(shutdown),
        }
    }

    /// Stops the server and drops a PostgreSQL database.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.db.drop_db().await;
    }
}

/// A shared handle for tests that spawn tasks.
pub type Shared = Arc<TestApp>;
