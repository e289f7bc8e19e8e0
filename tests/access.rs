//! Access control on every backend: every route the router has, for every role and for no
//! token, answers as DESIGN's role table says; tokens are stored only hashed; revoked and
//! expired tokens are refused; entries name their actor; a token over its rate gets 429.

use std::collections::BTreeMap;

use ppe_tests::{backends, spawn_app, spawn_app_with, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

const ROLES: [&str; 4] = ["admin", "manufacturer", "coordinator", "auditor"];

/// DESIGN section 4, written out independently of the code: who may call each route. `None`
/// means open to anyone without a token.
fn design_table() -> BTreeMap<(&'static str, &'static str), Option<Vec<&'static str>>> {
    let all = Some(ROLES.to_vec());
    let only = |r: &[&'static str]| Some(r.to_vec());
    let mut t = BTreeMap::new();
    t.insert(("GET", "/healthz"), None);
    t.insert(("GET", "/api/v1/openapi.json"), None);
    for path in [
        "/api/v1/items",
        "/api/v1/items/{sku}",
        "/api/v1/parties",
        "/api/v1/parties/{code}",
        "/api/v1/locations",
        "/api/v1/locations/{code}",
        "/api/v1/purchases",
        "/api/v1/purchases/{id}",
        "/api/v1/entries",
        "/api/v1/entries/{seq}",
        "/api/v1/balances",
        "/api/v1/verify",
        "/api/v1/reports/{name}",
        "/api/v1/receipts",
        "/api/v1/receipts/{id}",
        "/api/v1/batches",
        "/api/v1/batches/{id}",
        "/api/v1/donations",
        "/api/v1/donations/{id}",
        "/api/v1/shipments",
        "/api/v1/shipments/{id}",
        "/api/v1/shipments/{id}/acknowledgements",
        "/api/v1/shipments/{id}/acknowledgements/{ack_id}",
        "/api/v1/boms",
        "/api/v1/boms/{product_sku}/{version}",
        "/api/v1/production-runs",
        "/api/v1/production-runs/{id}",
        "/api/v1/stock-counts",
        "/api/v1/stock-counts/{id}",
        "/api/v1/reports/production",
        "/api/v1/trace/{lot}",
    ] {
        t.insert(("GET", path), all.clone());
    }
    t.insert(("POST", "/api/v1/items"), only(&["admin", "manufacturer"]));
    t.insert(("POST", "/api/v1/parties"), only(&["admin", "coordinator"]));
    t.insert(
        ("POST", "/api/v1/locations"),
        only(&["admin", "manufacturer", "coordinator"]),
    );
    t.insert(
        ("POST", "/api/v1/purchases"),
        only(&["admin", "manufacturer"]),
    );
    t.insert(("POST", "/api/v1/entries/{seq}/reversal"), only(&["admin"]));
    t.insert(("POST", "/api/v1/periods/close"), only(&["admin"]));
    t.insert(
        ("POST", "/api/v1/receipts"),
        only(&["admin", "coordinator"]),
    );
    t.insert(("POST", "/api/v1/batches"), only(&["admin", "coordinator"]));
    t.insert(
        ("POST", "/api/v1/donations"),
        only(&["admin", "manufacturer", "coordinator"]),
    );
    t.insert(
        ("POST", "/api/v1/shipments/{id}/acknowledgements"),
        only(&["admin", "coordinator"]),
    );
    t.insert(
        ("POST", "/api/v1/shipments/{id}/close"),
        only(&["admin", "manufacturer", "coordinator"]),
    );
    t.insert(("POST", "/api/v1/boms"), only(&["admin", "manufacturer"]));
    t.insert(
        ("POST", "/api/v1/production-runs"),
        only(&["admin", "manufacturer"]),
    );
    t.insert(
        ("POST", "/api/v1/stock-counts"),
        only(&["admin", "manufacturer", "coordinator"]),
    );
    t.insert(("POST", "/api/v1/tokens"), only(&["admin"]));
    t.insert(("GET", "/api/v1/tokens"), only(&["admin"]));
    t.insert(("POST", "/api/v1/tokens/{name}/revoke"), only(&["admin"]));
    t
}

fn concrete(path: &str) -> String {
    path.replace("{seq}", "1")
        .split('/')
        .map(|seg| if seg.starts_with('{') { "NO-SUCH" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

async fn tokens(app: &TestApp) -> BTreeMap<&'static str, String> {
    let mut t = BTreeMap::new();
    t.insert("admin", app.admin_token.clone());
    for role in &ROLES[1..] {
        t.insert(*role, app.token(role, &format!("{role}-1")).await);
    }
    t
}

#[tokio::test]
async fn every_route_answers_every_role_as_design_says() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let tokens = tokens(&app).await;
        let table = design_table();
        let (_, routes) = api::router(app.service.clone(), api::ApiConfig::default());
        let served: Vec<(String, &'static str)> = routes
            .routes()
            .into_iter()
            .map(|(m, p, _)| (m.to_string(), p))
            .collect();
        for (method, path) in &served {
            assert!(
                table.contains_key(&(method.as_str(), *path)),
                "{method} {path} is served but missing from the DESIGN table of this test"
            );
        }
        for (method, path) in table.keys() {
            assert!(
                served.iter().any(|(m, p)| m == method && p == path),
                "{method} {path} is in the DESIGN table but not served"
            );
        }
        for ((method, path), allowed) in &table {
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let url = concrete(path);
            let body = (m == Method::POST).then(|| json!({}));
            let anon = app.request(m.clone(), &url, None, body.as_ref(), &[]).await;
            match allowed {
                None => assert_eq!(anon.status, StatusCode::OK, "{method} {path} is open"),
                Some(roles) => {
                    assert_eq!(
                        anon.status,
                        StatusCode::UNAUTHORIZED,
                        "{method} {path} without a token"
                    );
                    assert_eq!(anon.body["status"], 401);
                    for role in ROLES {
                        let a = app
                            .request(m.clone(), &url, Some(&tokens[role]), body.as_ref(), &[])
                            .await;
                        if roles.contains(&role) {
                            assert!(
                                a.status != StatusCode::UNAUTHORIZED
                                    && a.status != StatusCode::FORBIDDEN,
                                "{role} may {method} {path}, got {}",
                                a.status
                            );
                            assert!(
                                !a.status.is_server_error(),
                                "{role} {method} {path}: {}",
                                a.text
                            );
                        } else {
                            assert_eq!(
                                a.status,
                                StatusCode::FORBIDDEN,
                                "{role} may not {method} {path}: {}",
                                a.text
                            );
                        }
                    }
                }
            }
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn auditors_read_everything_and_write_nothing() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let auditor = app.token("auditor", "audit-1").await;
        let before = app.entry_count().await;
        for (method, path) in design_table().keys().filter(|(m, _)| *m == "POST") {
            let a = app
                .request(
                    Method::POST,
                    &concrete(path),
                    Some(&auditor),
                    Some(&json!({})),
                    &[],
                )
                .await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{method} {path}");
        }
        for path in [
            "/api/v1/items",
            "/api/v1/parties",
            "/api/v1/locations",
            "/api/v1/purchases",
            "/api/v1/entries",
            "/api/v1/balances",
            "/api/v1/verify",
            "/api/v1/reports/trial-balance",
            "/api/v1/reports/conservation",
            "/api/v1/reports/stock",
            "/api/v1/reports/trial-balance?format=csv",
            "/api/v1/reports/stock?format=xlsx",
            "/api/v1/reports/production",
            "/api/v1/shipments",
            "/api/v1/receipts",
            "/api/v1/batches",
            "/api/v1/donations",
            "/api/v1/boms",
            "/api/v1/production-runs",
            "/api/v1/stock-counts",
        ] {
            let a = app
                .request(Method::GET, path, Some(&auditor), None, &[])
                .await;
            assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text);
        }
        assert_eq!(app.entry_count().await, before);
        app.stop().await;
    }
}

/// A token revoked by another process on the same database (a second `ppe serve`, or
/// `ppe token revoke` while the server runs) stops working within the token cache's second,
/// not never; revoked through the server itself it stops at once (the test below).
#[tokio::test]
async fn a_token_revoked_elsewhere_stops_within_a_second() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let t = app.token("auditor", "remote").await;
        let get = || app.request(Method::GET, "/api/v1/items", Some(&t), None, &[]);
        assert_eq!(get().await.status, StatusCode::OK, "{backend:?}");
        let other = app.twin().await;
        let r = other
            .request(
                Method::POST,
                "/api/v1/tokens/remote/revoke",
                Some(&app.admin_token),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{backend:?}");
        // Refused by the server that revoked it at once, and by the first within the second.
        assert_eq!(
            other
                .request(Method::GET, "/api/v1/items", Some(&t), None, &[])
                .await
                .status,
            StatusCode::UNAUTHORIZED,
            "{backend:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        assert_eq!(get().await.status, StatusCode::UNAUTHORIZED, "{backend:?}");
        other.stop().await;
        app.stop().await;
    }
}

#[tokio::test]
async fn revoked_and_expired_tokens_are_refused() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let t = app.token("manufacturer", "line-2").await;
        assert_eq!(
            app.request(Method::GET, "/api/v1/items", Some(&t), None, &[])
                .await
                .status,
            StatusCode::OK
        );
        let r = app
            .request(
                Method::POST,
                "/api/v1/tokens/line-2/revoke",
                Some(&app.admin_token),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let refused = app
            .request(Method::GET, "/api/v1/items", Some(&t), None, &[])
            .await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert_eq!(refused.headers.get("www-authenticate").unwrap(), "Bearer");

        let a = app
            .post(
                "/api/v1/tokens",
                &json!({"name":"visitor","role":"auditor","expires_in_days":1}),
            )
            .await;
        let short = a.body["token"].as_str().unwrap().to_owned();
        assert_eq!(
            app.request(Method::GET, "/api/v1/items", Some(&short), None, &[])
                .await
                .status,
            StatusCode::OK
        );
        app.advance(time::Duration::hours(25));
        assert_eq!(
            app.request(Method::GET, "/api/v1/items", Some(&short), None, &[])
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );

        // The admin token with its last hex digit changed (never to itself).
        let last = if app.admin_token.ends_with('0') {
            "1"
        } else {
            "0"
        };
        let forged = format!("{}{last}", &app.admin_token[..app.admin_token.len() - 1]);
        assert_eq!(
            app.request(Method::GET, "/api/v1/items", Some(&forged), None, &[])
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        // A token name is taken once.
        let dup = app
            .post(
                "/api/v1/tokens",
                &json!({"name":"visitor","role":"auditor"}),
            )
            .await;
        assert_eq!(dup.status, StatusCode::CONFLICT);
        app.stop().await;
    }
}

#[tokio::test]
async fn entries_name_their_actor_and_the_database_holds_no_token() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let maker = app.token("manufacturer", "arctic-light-line-1").await;
        app.post_ok(
            "/api/v1/items",
            &json!({"sku":"PC","name":"Polycarbonate","kind":"material","unit":"kg","decimals":3}),
        )
        .await;
        app.post_ok(
            "/api/v1/parties",
            &json!({"code":"SUP","name":"Supplier","kind":"supplier"}),
        )
        .await;
        app.post_ok("/api/v1/locations", &json!({"code":"RAW","name":"Raw"}))
            .await;
        let p = json!({"purchase_id":"PO-1","date":"2020-02-12","supplier":"SUP","location":"RAW","lines":[{"sku":"PC","qty":"1","unit_price":"1"}]});
        let a = app
            .request(
                Method::POST,
                "/api/v1/purchases",
                Some(&maker),
                Some(&p),
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        let e = app.get("/api/v1/entries/1").await;
        assert_eq!(e.body["actor"], "arctic-light-line-1");
        let listed = app.get("/api/v1/entries").await;
        assert_eq!(listed.body["items"][0]["actor"], "arctic-light-line-1");

        // A coordinator's receipt names the coordinator's token.
        let desk = app.token("coordinator", "nanwan-desk").await;
        app.post_ok(
            "/api/v1/parties",
            &json!({"code":"RC","name":"Red Cross","kind":"donor"}),
        )
        .await;
        let receipt = json!({"receipt_id":"RC-1","date":"2020-02-08","donor":"RC","location":"RAW","lines":[{"sku":"PC","qty":"1","unit_value":"0"}]});
        let a = app
            .request(
                Method::POST,
                "/api/v1/receipts",
                Some(&desk),
                Some(&receipt),
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        assert_eq!(
            app.get("/api/v1/entries/2").await.body["actor"],
            "nanwan-desk"
        );
        let dump = dump(&app).await;
        assert!(
            dump.contains("arctic-light-line-1"),
            "the dump holds the tokens table"
        );
        for secret in [&app.admin_token, &maker, &desk] {
            assert!(
                !dump.contains(secret.as_str()),
                "a token is in the database in plain text"
            );
            assert!(
                !dump.contains(&secret["ppe_".len()..]),
                "a token's secret part is in the database"
            );
        }
        let list = app.get("/api/v1/tokens").await;
        assert!(
            !list.text.contains(&maker),
            "listing tokens shows no secret"
        );
        app.stop().await;
    }
}

/// Everything the database holds, as text.
async fn dump(app: &TestApp) -> String {
    match app.db.backend {
        Backend::Sqlite => {
            let path = app.db.url.trim_start_matches("sqlite://").to_owned();
            let mut bytes = std::fs::read(&path).unwrap();
            // WAL mode: recent pages may still be in the log.
            if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
                bytes.extend(wal);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Backend::Postgres => {
            let out = std::process::Command::new("pg_dump")
                .arg(&app.db.url)
                .output()
                .expect("pg_dump runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        }
    }
}

#[tokio::test]
async fn a_token_over_its_rate_gets_429() {
    let config = api::ApiConfig {
        rate_limit_per_second: 1,
        rate_limit_burst: 5,
        ..api::ApiConfig::default()
    };
    let app = spawn_app_with(Backend::Sqlite, config, service::WriterConfig::default()).await;
    let other = app.token("auditor", "other").await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(app.get("/api/v1/items").await.status);
    }
    assert!(
        statuses[..4].iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let limited = app.get("/api/v1/items").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers.contains_key("retry-after"));
    // Another token has its own allowance.
    assert_eq!(
        app.request(Method::GET, "/api/v1/items", Some(&other), None, &[])
            .await
            .status,
        StatusCode::OK
    );
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_declares_the_bearer_scheme() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc = app
        .request(Method::GET, "/api/v1/openapi.json", None, None, &[])
        .await;
    assert_eq!(
        doc.body["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc.body["security"]
        .as_array()
        .is_some_and(|s| !s.is_empty()));
    app.stop().await;
}
