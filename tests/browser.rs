//! The web pages, end to end. Over plain HTTP on every backend: sign-in, cookies, CSRF, roles,
//! languages, and that a form refuses what the API refuses with the same words and writes
//! nothing. In headless Chromium (Debian's `chromium` and `chromium-driver`) against the real
//! server: sign in, record a purchase through the form, see it listed and the dashboard
//! change, see a refusal next to its field, switch language, and save screenshots of the
//! dashboard to `target/browser-artifacts/`.
//!
//! Without chromedriver the browser story says why and is skipped, or fails when
//! `PPE_TEST_REQUIRE_BROWSER=1` (as `.ci/run` sets it).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use ppe_tests::{backends, spawn_app, Backend, TestApp};
use reqwest::header::{HeaderMap, ACCEPT_LANGUAGE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn master_data(app: &TestApp) {
    app.post_ok(
        "/api/v1/items",
        &json!({"sku":"MASK","name":"Surgical mask","kind":"supply","unit":"pcs","decimals":0,"shelf_life_days":730}),
    )
    .await;
    app.post_ok(
        "/api/v1/items",
        &json!({"sku":"GLOVE","name":"Nitrile gloves","kind":"supply","unit":"pcs","decimals":0}),
    )
    .await;
    app.post_ok(
        "/api/v1/items",
        &json!({"sku":"PC-SHEET","name":"Polycarbonate sheet","kind":"material","unit":"kg","decimals":3}),
    )
    .await;
    app.post_ok(
        "/api/v1/parties",
        &json!({"code":"SUP-MED","name":"Medical supplier","kind":"supplier"}),
    )
    .await;
    app.post_ok(
        "/api/v1/parties",
        &json!({"code":"KR-DSMC","name":"Keimyung University Dongsan Medical Center","kind":"hospital","country":"KR","city":"Daegu"}),
    )
    .await;
    app.post_ok(
        "/api/v1/locations",
        &json!({"code":"RAW","name":"Raw-material store"}),
    )
    .await;
    app.post_ok(
        "/api/v1/locations",
        &json!({"code":"FG","name":"Finished-goods store"}),
    )
    .await;
}

/// A browser-less client of the pages that keeps the cookies it is given, as a browser would.
struct Visitor<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    cookies: Vec<(String, String)>,
    lang: Option<&'static str>,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Page {
    /// The value of the CSRF field of the page's first form.
    fn csrf(&self) -> String {
        let at = self
            .text
            .find("name=\"_csrf\" value=\"")
            .expect("the page has a form");
        let rest = &self.text[at + "name=\"_csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

impl<'a> Visitor<'a> {
    fn new(app: &'a TestApp) -> Visitor<'a> {
        Visitor {
            app,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
            lang: None,
        }
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        form: Option<&[(&str, &str)]>,
        extra: &[(&str, &str)],
    ) -> Page {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.app.base));
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header(COOKIE, c.join("; "));
        }
        if let Some(l) = self.lang {
            req = req.header(ACCEPT_LANGUAGE, l);
        }
        if let Some(f) = form {
            let body: String = form_body(f);
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("the server answers");
        let status = res.status();
        let headers = res.headers().clone();
        for c in headers.get_all(SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !c.contains("Max-Age=0") {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
        let text = res.text().await.unwrap();
        Page {
            status,
            headers,
            text,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None, &[]).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(Method::POST, path, Some(form), &[]).await
    }

    async fn sign_in(&mut self, token: &str) {
        let page = self.get("/signin").await;
        let csrf = page.csrf();
        let res = self
            .post(
                "/signin",
                &[("_csrf", &csrf), ("token", token), ("next", "/")],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text);
    }
}

fn form_body(pairs: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push('&');
        }
        s.push_str(&urlencode(k));
        s.push('=');
        s.push_str(&urlencode(v));
    }
    s
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The purchase form's fields for one line of `qty` masks.
fn purchase_form<'a>(
    csrf: &'a str,
    id: &'a str,
    date: &'a str,
    qty: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("_csrf", csrf),
        ("purchase_id", id),
        ("date", date),
        ("supplier", "SUP-MED"),
        ("location", "RAW"),
        ("currency", "CNY"),
        ("fx_rate", ""),
        ("lines[0].sku", "MASK"),
        ("lines[0].qty", qty),
        ("lines[0].unit_price", "0.85"),
        ("lines[0].lot", ""),
        ("lines[0].expires_on", ""),
        ("lines[1].sku", ""),
        ("lines[1].qty", ""),
        ("action", "record"),
    ]
}

#[tokio::test]
async fn pages_over_http() {
    for backend in backends() {
        http_story(backend).await;
    }
}

async fn http_story(backend: Backend) {
    let app = spawn_app(backend).await;
    master_data(&app).await;
    let today = app.service.now().date().to_string();
    let mut v = Visitor::new(&app);

    // Signed out, every page leads to the sign-in page, which remembers where to return.
    let res = v.get("/purchases?after=x").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/signin?next=%2Fpurchases%3Fafter%3Dx");
    let form_cookie = res
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("ppe_form="))
        .expect("the CSRF cookie of forms shown before sign-in");
    assert!(form_cookie.contains("HttpOnly") && form_cookie.contains("SameSite=Strict"));

    // The language follows Accept-Language.
    v.lang = Some("zh-CN,zh;q=0.9,en;q=0.5");
    let res = v.get("/signin").await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.text.contains("<html lang=\"zh-CN\">"), "{}", res.text);
    assert!(res.text.contains("粘贴访问令牌"));
    v.lang = Some("en-GB,en;q=0.9");

    // A sign-in without the form's token, or with a wrong token, is refused.
    let res = v
        .post("/signin", &[("token", &app.admin_token), ("next", "/")])
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let csrf = v.get("/signin").await.csrf();
    let res = v
        .post(
            "/signin",
            &[("_csrf", &csrf), ("token", "ppe_nope"), ("next", "/")],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert!(res.text.contains("This token is not valid"));
    // The admin token signs in; the session cookie is HttpOnly and SameSite=Strict.
    let res = v
        .post(
            "/signin",
            &[
                ("_csrf", &csrf),
                ("token", &app.admin_token),
                ("next", "/purchases"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/purchases");
    let session = res
        .headers
        .get(SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(session.starts_with("ppe_session=ppe_"));
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));

    // The session cookie does not open the API: that still needs the bearer token.
    let api = v.get("/api/v1/items").await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);

    let form = v.get("/record/purchase").await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = form.csrf();
    let entries = app.entry_count().await;

    // A form without its CSRF token, or posted from another site, is refused and writes
    // nothing.
    let mut no_token = purchase_form(&csrf, "PO-H-1", &today, "100");
    no_token.remove(0);
    let res = v.post("/record/purchase", &no_token).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = v
        .send(
            Method::POST,
            "/record/purchase",
            Some(&purchase_form(&csrf, "PO-H-1", &today, "100")),
            &[("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(app.entry_count().await, entries);

    // A bad quantity: the form is refused with the API's status, field and words, and
    // nothing is written.
    let bad = purchase_form(&csrf, "PO-H-BAD", &today, "1.5");
    let page = v.post("/record/purchase", &bad).await;
    let api = app
        .post(
            "/api/v1/purchases",
            &json!({"purchase_id":"PO-H-BAD","date":today,"supplier":"SUP-MED","location":"RAW","currency":"CNY",
                    "lines":[{"sku":"MASK","qty":"1.5","unit_price":"0.85"}]}),
        )
        .await;
    assert_eq!(page.status, api.status, "{}", api.text);
    assert_eq!(api.fields(), vec!["lines[0].qty".to_owned()]);
    let words = api.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        page.text.contains(&format!(
            "data-field=\"lines[0].qty\"><span>{}</span>",
            html_escape(words)
        )),
        "the form shows the API's words {words:?} next to lines[0].qty:\n{}",
        page.text
    );
    assert_eq!(app.entry_count().await, entries);

    // A good purchase is recorded by the caller, and shown.
    let good = purchase_form(&csrf, "PO-H-1", &today, "100");
    let res = v.post("/record/purchase", &good).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text);
    assert_eq!(res.location(), "/purchases/PO-H-1?recorded=1");
    assert_eq!(app.entry_count().await, entries + 1);
    let stored = app.get("/api/v1/purchases/PO-H-1").await;
    assert_eq!(stored.body["lines"][0]["value"], "85.0000");
    let entry = app
        .get(&format!("/api/v1/entries/{}", stored.body["entry_seq"]))
        .await;
    assert_eq!(entry.body["actor"], "admin");
    // Sending the same form again (a double click) replays it and writes nothing more.
    let res = v.post("/record/purchase", &good).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(app.entry_count().await, entries + 1);

    let detail = v.get("/purchases/PO-H-1?recorded=1").await;
    assert!(detail.text.contains("The purchase was recorded."));
    assert!(detail.text.contains("PO-H-1-1"), "the lot the line made");
    assert!(detail.text.contains("stock:RAW"));
    let list = v.get("/purchases").await;
    assert!(list.text.contains("data-id=\"PO-H-1\""));
    assert!(list.text.contains("href=\"/record/purchase\""));
    // A lot that expires in 10 days is flagged on the dashboard (its expiry read back from
    // the store of this backend).
    let soon = (app.service.now().date() + time::Duration::days(10)).to_string();
    app.post_ok(
        "/api/v1/purchases",
        &json!({"purchase_id":"PO-EXP","date":today,"supplier":"SUP-MED","location":"FG",
                "lines":[{"sku":"GLOVE","qty":"10","unit_price":"1","expires_on":soon}]}),
    )
    .await;
    let dash = v.get("/").await;
    assert!(dash
        .text
        .contains("data-sku=\"MASK\" data-location=\"RAW\""));
    assert!(dash.text.contains("data-lot=\"PO-EXP-1\""), "{}", dash.text);
    assert!(dash.text.contains("10 days left"));
    let journal = v.get("/journal").await;
    assert!(journal
        .text
        .contains(&format!("data-seq=\"{}\"", entries + 2)));
    let verify = v.get("/verify").await;
    assert!(verify.text.contains("data-ok=\"true\""));
    let head = app.get("/api/v1/verify").await.body["head_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(verify.text.contains(&head));
    for path in ["/items", "/parties", "/locations"] {
        let p = v.get(path).await;
        assert_eq!(p.status, StatusCode::OK, "{path}");
    }
    assert!(v.get("/parties").await.text.contains("KR-DSMC"));

    // ?lang= switches the language and the choice is kept in a cookie.
    let zh = v.get("/purchases?lang=zh-CN").await;
    assert!(zh.text.contains("<html lang=\"zh-CN\">"));
    let again = v.get("/journal").await;
    assert!(again.text.contains("日记账"), "the language cookie is kept");
    assert!(
        again.text.contains("年"),
        "dates are written the Chinese way"
    );
    v.get("/?lang=en").await;

    // Unknown paths: problem+json under /api/, a page elsewhere.
    let res = v.get("/api/v1/nope").await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(
        res.headers.get("content-type").unwrap(),
        "application/problem+json"
    );
    let res = v.get("/no-such-page").await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert!(res.text.contains("Not found"));
    let res = v.get("/purchases/NOPE").await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert!(res.text.contains("purchase NOPE not found"));

    // Sign-out forgets the session.
    let csrf = v.get("/").await.csrf();
    let res = v.post("/signout", &[("_csrf", &csrf)]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(v.get("/").await.status, StatusCode::SEE_OTHER);

    // What a page offers follows the role: an auditor reads, and has no form.
    let auditor = app
        .service
        .create_token("auditor-1", service::auth::Role::Auditor, None)
        .await
        .unwrap()
        .token;
    let mut a = Visitor::new(&app);
    a.sign_in(&auditor).await;
    let list = a.get("/purchases").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(!list.text.contains("/record/purchase"));
    let refused = a.get("/record/purchase").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.text.contains("The role auditor may not do this."));
    let csrf = a.get("/").await.csrf();
    let res = a
        .post(
            "/record/purchase",
            &purchase_form(&csrf, "PO-H-2", &today, "1"),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(app.entry_count().await, entries + 2);

    app.stop().await;
}

/// Products, a bill of materials, a subdistrict and its communities, and stock to ship.
async fn shipment_data(app: &TestApp) {
    // Dated today, so that no lot has passed its shelf life.
    let today = app.service.now().date().to_string();
    for body in [
        json!({"sku":"GOGGLES","name":"Protective goggles","kind":"product","unit":"pcs","decimals":0,"shelf_life_days":1095}),
        json!({"sku":"BAND","name":"Elastic band","kind":"material","unit":"pcs","decimals":0}),
    ] {
        app.post_ok("/api/v1/items", &body).await;
    }
    for body in [
        json!({"code":"NANWAN","name":"Nanwan subdistrict","kind":"subdistrict"}),
        json!({"code":"XIACUN","name":"Xiacun community","kind":"community","parent":"NANWAN"}),
        json!({"code":"NANXIN","name":"Nanxin community","kind":"community","parent":"NANWAN"}),
        json!({"code":"FR-APHP","name":"Hôpital Européen Georges-Pompidou","kind":"hospital","country":"FR","city":"Paris"}),
    ] {
        app.post_ok("/api/v1/parties", &body).await;
    }
    app.post_ok(
        "/api/v1/boms",
        &json!({"product_sku":"GOGGLES","version":"2020-02","output_qty":"1",
                "lines":[{"sku":"PC-SHEET","qty":"0.04"},{"sku":"BAND","qty":"1"}]}),
    )
    .await;
    app.post_ok(
        "/api/v1/purchases",
        &json!({"purchase_id":"PO-S-1","date":today,"supplier":"SUP-MED","location":"RAW",
                "lines":[{"sku":"PC-SHEET","qty":"100","unit_price":"40"},{"sku":"BAND","qty":"10000","unit_price":"0.20"}]}),
    )
    .await;
    app.post_ok(
        "/api/v1/purchases",
        &json!({"purchase_id":"PO-S-2","date":today,"supplier":"SUP-MED","location":"FG",
                "lines":[{"sku":"MASK","qty":"5000","unit_price":"0.85"}]}),
    )
    .await;
}

/// The link a packing list carries for a destination (the first sheet when `None`).
fn recipient_link(page: &Page, destination: Option<&str>) -> String {
    let from = match destination {
        Some(d) => page
            .text
            .find(&format!("data-destination=\"{d}\""))
            .unwrap_or_else(|| panic!("a sheet for {d}:\n{}", page.text)),
        None => 0,
    };
    let marker = "class=\"recipient-link\" href=\"";
    let at = page.text[from..]
        .find(marker)
        .map(|i| from + i + marker.len())
        .unwrap_or_else(|| panic!("a recipient link:\n{}", page.text));
    let rest = &page.text[at..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The path of an absolute link of this app.
fn path_of_link<'a>(app: &TestApp, url: &'a str) -> &'a str {
    url.strip_prefix(&app.base)
        .unwrap_or_else(|| panic!("{url} leads back to {}", app.base))
}

/// The value of a field error shown next to `field`.
fn field_error<'a>(page: &'a Page, field: &str) -> &'a str {
    let marker = format!("data-field=\"{field}\"><span>");
    let at = page
        .text
        .find(&marker)
        .unwrap_or_else(|| panic!("an error next to {field}:\n{}", page.text))
        + marker.len();
    let rest = &page.text[at..];
    &rest[..rest.find("</span>").unwrap()]
}

#[tokio::test]
async fn shipment_pages_over_http() {
    for backend in backends() {
        shipments_story(backend).await;
    }
}

async fn shipments_story(backend: Backend) {
    let app = spawn_app(backend).await;
    master_data(&app).await;
    shipment_data(&app).await;
    let today = app.service.now().date().to_string();
    let mut v = Visitor::new(&app);
    v.sign_in(&app.admin_token).await;
    let csrf = v.get("/record/production-run").await.csrf();

    // A production run through the form: its page shows the report.
    let run = [
        ("_csrf", csrf.as_str()),
        ("run_id", "RUN-W-1"),
        ("date", today.as_str()),
        ("product_sku", "GOGGLES"),
        ("bom_version", "2020-02"),
        ("from_location", "RAW"),
        ("to_location", "FG"),
        ("good_qty", "1950"),
        ("scrap_qty", "50"),
        ("labor_cost", "3000"),
        ("overhead_cost", "600"),
        ("lines[0].sku", "PC-SHEET"),
        ("lines[0].qty", "82"),
        ("lines[1].sku", "BAND"),
        ("lines[1].qty", "2000"),
        ("lines[2].sku", ""),
        ("lines[2].qty", ""),
        ("action", "record"),
    ];
    // More than there is: refused with the API's words next to the line, nothing written.
    let entries = app.entry_count().await;
    let mut too_much = run.to_vec();
    too_much[12] = ("lines[0].qty", "820");
    let page = v.post("/record/production-run", &too_much).await;
    let api = app
        .post(
            "/api/v1/production-runs",
            &json!({"run_id":"RUN-W-1","date":today,"product_sku":"GOGGLES","bom_version":"2020-02",
                    "from_location":"RAW","to_location":"FG","good_qty":"1950","scrap_qty":"50",
                    "labor_cost":"3000","overhead_cost":"600",
                    "lines":[{"sku":"PC-SHEET","qty":"820"},{"sku":"BAND","qty":"2000"}]}),
        )
        .await;
    assert_eq!(page.status, api.status, "{}", api.text);
    assert_eq!(page.status, StatusCode::CONFLICT);
    let words = api.body["detail"].as_str().unwrap();
    assert!(
        page.text.contains(&html_escape(words)),
        "the form shows {words:?}:\n{}",
        page.text
    );
    assert_eq!(app.entry_count().await, entries);
    let res = v.post("/record/production-run", &run).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text);
    assert_eq!(res.location(), "/runs/RUN-W-1?recorded=1");
    let detail = v.get("/runs/RUN-W-1").await;
    assert!(detail.text.contains("7,280.0000"), "total cost");
    assert!(detail.text.contains("3.7333"), "unit cost");
    assert!(detail.text.contains("+2"), "variance of polycarbonate");
    let runs = v.get("/runs").await;
    assert!(runs.text.contains("data-id=\"RUN-W-1\""));

    // A batch whose destination is a hospital: the API's words next to the field.
    let csrf = v.get("/record/batch").await.csrf();
    let batch = |dest: &'static str| {
        vec![
            ("_csrf", csrf.clone()),
            ("batch_id", "B-W-1".to_owned()),
            ("date", today.clone()),
            ("from_location", "FG".to_owned()),
            ("lines[0].destination", dest.to_owned()),
            ("lines[0].sku", "MASK".to_owned()),
            ("lines[0].qty", "300".to_owned()),
            ("lines[1].destination", "NANXIN".to_owned()),
            ("lines[1].sku", "MASK".to_owned()),
            ("lines[1].qty", "200".to_owned()),
            ("action", "record".to_owned()),
        ]
    };
    let as_refs = |f: &[(&'static str, String)]| -> Vec<(&'static str, String)> { f.to_vec() };
    let bad = as_refs(&batch("KR-DSMC"));
    let bad: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = v.post("/record/batch", &bad).await;
    let api = app
        .post(
            "/api/v1/batches",
            &json!({"batch_id":"B-W-1","date":today,"from_location":"FG",
                    "lines":[{"destination":"KR-DSMC","sku":"MASK","qty":"300"},{"destination":"NANXIN","sku":"MASK","qty":"200"}]}),
        )
        .await;
    assert_eq!(page.status, api.status, "{}", api.text);
    assert_eq!(api.fields(), vec!["lines[0].destination".to_owned()]);
    assert_eq!(
        field_error(&page, "lines[0].destination"),
        html_escape(api.body["errors"][0]["message"].as_str().unwrap())
    );
    assert_eq!(app.entry_count().await, entries + 1);
    let good = batch("XIACUN");
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = v.post("/record/batch", &good).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text);
    assert_eq!(res.location(), "/batches/B-W-1?recorded=1");
    let list = v.get("/batches").await;
    assert!(
        list.text.contains("data-subdistrict=\"NANWAN\""),
        "{}",
        list.text
    );
    assert!(list
        .text
        .contains("data-destination=\"XIACUN\" data-sku=\"MASK\""));

    // A donation through the form, declared in KRW.
    let csrf = v.get("/record/donation").await.csrf();
    let donation = |qty: &'static str| {
        vec![
            ("_csrf", csrf.clone()),
            ("donation_id", "DON-W-1".to_owned()),
            ("date", today.clone()),
            ("from_location", "FG".to_owned()),
            ("recipient", "KR-DSMC".to_owned()),
            ("declared_value", "1000000".to_owned()),
            ("currency", "KRW".to_owned()),
            ("fx_rate", "0.00581234".to_owned()),
            ("lines[0].sku", "GOGGLES".to_owned()),
            ("lines[0].qty", "1000".to_owned()),
            ("lines[1].sku", "MASK".to_owned()),
            ("lines[1].qty", qty.to_owned()),
            ("action", "record".to_owned()),
        ]
    };
    let bad = donation("99999");
    let bad: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = v.post("/record/donation", &bad).await;
    let api = app
        .post(
            "/api/v1/donations",
            &json!({"donation_id":"DON-W-1","date":today,"from_location":"FG","recipient":"KR-DSMC",
                    "declared_value":"1000000","currency":"KRW","fx_rate":"0.00581234",
                    "lines":[{"sku":"GOGGLES","qty":"1000"},{"sku":"MASK","qty":"99999"}]}),
        )
        .await;
    assert_eq!(page.status, api.status, "{}", api.text);
    assert_eq!(page.status, StatusCode::CONFLICT);
    let words = api.body["errors"][0]["message"]
        .as_str()
        .or(api.body["detail"].as_str())
        .unwrap();
    assert!(page.text.contains(&html_escape(words)), "{words}");
    assert_eq!(app.entry_count().await, entries + 2);
    let good = donation("1000");
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = v.post("/record/donation", &good).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text);
    assert_eq!(res.location(), "/donations/DON-W-1?recorded=1");
    let detail = v.get("/donations/DON-W-1?recorded=1").await;
    assert!(detail.text.contains("data-status=\"dispatched\""));
    assert!(
        detail.text.contains("5,812.3400"),
        "declared in CNY: {}",
        detail.text
    );
    let list = v.get("/donations").await;
    assert!(list.text.contains("data-country=\"KR\""));
    assert!(list.text.contains("<svg"), "the chart");
    let dash = v.get("/").await;
    assert!(dash
        .text
        .contains("data-shipment=\"DON-W-1\" data-destination=\"KR-DSMC\""));
    assert!(dash.text.contains("data-run=\"RUN-W-1\""));
    assert!(dash.text.contains("data-country=\"KR\""));

    // The packing lists carry one link per destination; an auditor gets none.
    let packing = v.get("/donations/DON-W-1/packing-list").await;
    assert_eq!(packing.status, StatusCode::OK);
    assert!(packing.text.contains("<svg class=\"qr\""));
    let don_link = recipient_link(&packing, None);
    assert!(don_link.starts_with(&format!("{}/r/DON-W-1~KR-DSMC~", app.base)));
    let batch_packing = v.get("/batches/B-W-1/packing-list").await;
    let xiacun_link = recipient_link(&batch_packing, Some("XIACUN"));
    let nanxin_link = recipient_link(&batch_packing, Some("NANXIN"));
    let auditor = app.token("auditor", "auditor-s").await;
    let mut a = Visitor::new(&app);
    a.sign_in(&auditor).await;
    assert_eq!(
        a.get("/donations/DON-W-1/packing-list").await.status,
        StatusCode::FORBIDDEN
    );

    // The recipient, with no account: the link opens its shipment and destination only.
    let mut r = Visitor::new(&app);
    let page = r.get(path_of_link(&app, &don_link)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("DON-W-1") && page.text.contains("KR-DSMC"));
    assert!(!page.text.contains("B-W-1") && !page.text.contains("nav class=\"main\""));
    let page = r.get(path_of_link(&app, &xiacun_link)).await;
    assert!(page.text.contains("XIACUN") && !page.text.contains("NANXIN"));
    // Another shipment, another destination or a flipped signature: refused.
    let don_path = path_of_link(&app, &don_link).to_owned();
    for forged in [
        don_path.replacen("DON-W-1", "B-W-1", 1),
        don_path.replacen("KR-DSMC", "XIACUN", 1),
        // The last character of the signature changed (to `B` when it already is `A`, which
        // one link in 64 is).
        format!(
            "{}{}",
            &don_path[..don_path.len() - 1],
            if don_path.ends_with('A') { 'B' } else { 'A' }
        ),
        "/r/nothing".to_owned(),
    ] {
        let res = r.get(&forged).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{forged}");
        assert!(res.text.contains("This link is not valid"), "{forged}");
    }
    // More than was sent: the API's words, next to the line, nothing written.
    let entries = app.entry_count().await;
    let csrf = r.get(&don_path).await.csrf();
    let ack = |goggles: &'static str, masks: &'static str, damaged: &'static str| {
        vec![
            ("_csrf", csrf.clone()),
            ("date", today.clone()),
            ("lines[0].sku", "GOGGLES".to_owned()),
            ("lines[0].lot", "RUN-W-1-1".to_owned()),
            ("lines[0].received_qty", goggles.to_owned()),
            ("lines[0].damaged_qty", String::new()),
            ("lines[0].note", String::new()),
            ("lines[1].sku", "MASK".to_owned()),
            ("lines[1].lot", "PO-S-2-1".to_owned()),
            ("lines[1].received_qty", masks.to_owned()),
            ("lines[1].damaged_qty", damaged.to_owned()),
            ("lines[1].note", String::new()),
            ("action", "record".to_owned()),
        ]
    };
    let too_many = ack("", "2000", "");
    let too_many: Vec<(&str, &str)> = too_many.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = r.post(&don_path, &too_many).await;
    let api = app
        .post(
            "/api/v1/shipments/DON-W-1/acknowledgements",
            &json!({"date":today,"lines":[{"destination":"KR-DSMC","sku":"MASK","lot":"PO-S-2-1","received_qty":"2000"}]}),
        )
        .await;
    assert_eq!(page.status, api.status, "{}", api.text);
    let words = api.body["detail"].as_str().unwrap();
    assert!(
        page.text.contains(&html_escape(words)),
        "{words}\n{}",
        page.text
    );
    if let Some(f) = api.fields().first() {
        // The ledger names the first line sent; the form shows it on the row it was typed in.
        assert_eq!(f, "lines[0].received_qty");
        assert!(page.text.contains("data-field=\"lines[1].received_qty\""));
    }
    assert_eq!(app.entry_count().await, entries);
    // Part of it arrived: recorded as the recipient; the link still works for the rest.
    let part = ack("", "990", "10");
    let part: Vec<(&str, &str)> = part.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = r.post(&don_path, &part).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text);
    assert_eq!(res.location(), format!("{don_path}?recorded=1"));
    assert_eq!(app.entry_count().await, entries + 1);
    let last = app.get(&format!("/api/v1/entries/{}", entries + 1)).await;
    assert_eq!(last.body["actor"], "recipient-link:KR-DSMC");
    let page = r.get(&format!("{don_path}?recorded=1")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("The acknowledgement was recorded."));
    assert!(
        !page.text.contains("data-lot=\"PO-S-2-1\""),
        "the masks are done"
    );
    let journal = v.get("/journal").await;
    assert!(journal.text.contains("recipient-link:KR-DSMC"));
    // The rest arrives: the shipment is acknowledged and the link stops working.
    let csrf = r.get(&don_path).await.csrf();
    let rest = [
        ("_csrf", csrf.as_str()),
        ("date", today.as_str()),
        ("lines[0].sku", "GOGGLES"),
        ("lines[0].lot", "RUN-W-1-1"),
        ("lines[0].received_qty", "1000"),
        ("action", "record"),
    ];
    let res = r.post(&don_path, &rest).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text);
    let shipment = app.get("/api/v1/shipments/DON-W-1").await;
    assert_eq!(shipment.body["status"], "acknowledged");
    // The donation's page lists the entries it made in sequence: its dispatch, then the two
    // acknowledgements, read in one call.
    let detail = v.get("/donations/DON-W-1").await;
    let dispatch = shipment.body["dispatch_seq"].as_u64().unwrap();
    let at = |seq: u64| detail.text.find(&format!("<tr data-seq=\"{seq}\">"));
    let rows: Vec<Option<usize>> = [dispatch, entries + 1, entries + 2].map(at).to_vec();
    assert!(
        rows.iter().all(Option::is_some) && rows.windows(2).all(|w| w[0] < w[1]),
        "{rows:?}\n{}",
        detail.text
    );
    let batch = app.get("/api/v1/shipments/B-W-1").await.body["dispatch_seq"]
        .as_u64()
        .unwrap();
    assert_eq!(
        at(batch),
        None,
        "the batch's dispatch is not the donation's"
    );
    let thanks = r.get(&format!("{don_path}?recorded=1")).await;
    assert!(thanks.text.contains("Thank you"));
    let again = r.get(&don_path).await;
    assert_eq!(again.status, StatusCode::GONE);
    assert!(again.text.contains("no longer works"));
    let entries = app.entry_count().await;
    let res = r.post(&don_path, &rest).await;
    assert_eq!(res.status, StatusCode::GONE);
    assert_eq!(
        app.entry_count().await,
        entries,
        "a used link writes nothing"
    );
    let packing = v.get("/donations/DON-W-1/packing-list").await;
    assert!(
        !packing.text.contains("recipient-link"),
        "no link once done"
    );
    let dash = v.get("/").await;
    assert!(
        !dash.text.contains("data-shipment=\"DON-W-1\""),
        "no longer in transit"
    );

    // Trace: forward from the polycarbonate to the hospital, with the recall view; backward
    // from the goggles to the supplier.
    let fwd = v.get("/trace?lot=PO-S-1-1&direction=forward").await;
    assert_eq!(fwd.status, StatusCode::OK, "{}", fwd.text);
    for step in [
        "data-kind=\"run\" data-id=\"RUN-W-1\"",
        "data-kind=\"lot\" data-id=\"RUN-W-1-1\"",
        "data-kind=\"shipment\" data-id=\"DON-W-1\"",
        "data-recipient=\"KR-DSMC\"",
    ] {
        assert!(fwd.text.contains(step), "{step}:\n{}", fwd.text);
    }
    let back = v.get("/trace?lot=RUN-W-1-1&direction=backward").await;
    assert!(back.text.contains("data-id=\"PO-S-1-1\"") && back.text.contains("SUP-MED"));
    assert!(!back.text.contains("id=\"recall\""));
    let zh = v
        .get("/trace?lot=PO-S-1-1&direction=forward&lang=zh-CN")
        .await;
    assert!(zh.text.contains("召回"));
    v.get("/?lang=en").await;
    let missing = v.get("/trace?lot=NO-SUCH-LOT").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // The key persists in the database: another process over it signs the same links.
    let other = service::Service::open(&app.db.url, service::WriterConfig::default())
        .await
        .unwrap();
    assert_eq!(
        other
            .secret(service::secrets::RECIPIENT_LINK_KEY)
            .await
            .unwrap(),
        app.service
            .secret(service::secrets::RECIPIENT_LINK_KEY)
            .await
            .unwrap()
    );
    drop(other);

    // A staff member acknowledges the batch's Nanxin line through the form.
    let form = v.get("/record/acknowledgement?shipment=B-W-1").await;
    assert!(form.text.contains("value=\"NANXIN\""));
    // After 60 days the links have expired; the Xiacun one is refused, and nothing written.
    let nanxin = r.get(path_of_link(&app, &nanxin_link)).await;
    assert_eq!(nanxin.status, StatusCode::OK);
    let csrf = nanxin.csrf();
    app.advance(time::Duration::days(61));
    let expired = r.get(path_of_link(&app, &xiacun_link)).await;
    assert_eq!(expired.status, StatusCode::GONE);
    assert!(expired.text.contains("expired"));
    let entries = app.entry_count().await;
    let res = r
        .post(
            path_of_link(&app, &xiacun_link),
            &[
                ("_csrf", &csrf),
                ("date", &today),
                ("lines[0].sku", "MASK"),
                ("lines[0].received_qty", "300"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::GONE);
    assert_eq!(app.entry_count().await, entries);

    app.stop().await;
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A chromedriver on a free port of 127.0.0.1, ended when dropped.
struct Driver {
    child: tokio::process::Child,
    url: String,
    /// One Chromium profile per session, so that each session starts with no cookie.
    profiles: std::sync::Mutex<Vec<tempfile::TempDir>>,
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            PathBuf::from("/usr/bin"),
            PathBuf::from("/usr/lib/chromium"),
        ])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Driver {
    /// Starts chromedriver, or says why it cannot (and fails when the browser is required).
    async fn start() -> Option<Driver> {
        let required = std::env::var("PPE_TEST_REQUIRE_BROWSER").as_deref() == Ok("1");
        let missing = |why: String| {
            assert!(!required, "PPE_TEST_REQUIRE_BROWSER=1 but {why}");
            eprintln!(
                "skipping the browser story: {why} (apt-get install -y chromium chromium-driver)"
            );
        };
        let Some(driver) = find_program("chromedriver") else {
            missing("chromedriver is not installed".into());
            return None;
        };
        if find_program("chromium").is_none() {
            missing("chromium is not installed".into());
            return None;
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = tokio::process::Command::new(&driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", driver.display()));
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(r) = http.get(format!("{url}/status")).send().await {
                if r.status().is_success() {
                    return Some(Driver {
                        child,
                        url,
                        profiles: std::sync::Mutex::new(Vec::new()),
                    });
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not answer on {url} within 10 s");
    }

    /// A new browser session, with a profile of its own: no cookie of another session.
    async fn client(&self) -> Client {
        let chromium = find_program("chromium").expect("chromium");
        let profile = tempfile::tempdir().unwrap();
        let profile_dir = profile.path().display().to_string();
        self.profiles.lock().unwrap().push(profile);
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                // Without the background-networking flags Chromium keeps trying to reach
                // Google's services, which this closed network does not allow.
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-default-apps", "--disable-extensions",
                    "--disable-dev-shm-usage", "--window-size=1280,1000",
                    format!("--user-data-dir={profile_dir}"),
                ],
                "prefs": { "intl.accept_languages": "en-US,en" },
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let dir = target.join("browser-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn css(c: &Client, selector: &str) -> fantoccini::elements::Element {
    match c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(selector))
        .await
    {
        Ok(e) => e,
        Err(e) => {
            // Say where the browser is and what it shows, so that a failure explains itself.
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let body = c
                .find(Locator::Css("body"))
                .await
                .ok()
                .map(|b| async move { b.text().await.unwrap_or_default() });
            let body = match body {
                Some(f) => f.await,
                None => String::new(),
            };
            panic!("no {selector} on {url}: {e}\n--- the page says:\n{body}");
        }
    }
}

async fn text(c: &Client, selector: &str) -> String {
    css(c, selector).await.text().await.unwrap()
}

async fn fill(c: &Client, name: &str, value: &str) {
    let input = css(c, &format!("input[name='{name}']")).await;
    input.clear().await.unwrap();
    input.send_keys(value).await.unwrap();
}

/// Sets an input's value by script: date inputs take their typed text in the browser's own
/// locale, so the test sets the ISO value a date input holds.
async fn set_value(c: &Client, name: &str, value: &str) {
    c.execute(
        "document.querySelector(`input[name='${arguments[0]}']`).value = arguments[1];",
        vec![json!(name), json!(value)],
    )
    .await
    .unwrap();
}

async fn path_of(c: &Client) -> String {
    let u = c.current_url().await.unwrap();
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_owned(),
    }
}

/// The text of the one QR code in a PNG screenshot, read as a phone's camera would.
fn read_qr(path: &std::path::Path) -> String {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let (w, h) = (
        usize::try_from(info.width).unwrap(),
        usize::try_from(info.height).unwrap(),
    );
    let channels = info.color_type.samples();
    let stride = info.line_size;
    // Black on white: the green channel alone tells a module from paper.
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        buf[y * stride + x * channels + usize::from(channels >= 3)]
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in {}", path.display());
    grids[0].decode().expect("a readable QR code").1
}

/// Saves a screenshot of the whole page.
async fn screenshot(c: &Client, name: &str) -> PathBuf {
    let js = |script: &'static str| async move {
        c.execute(script, vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap_or(0)
    };
    // The window is the page plus the browser's own frame; size it so that the whole page fits.
    let want = js("return document.documentElement.scrollHeight;")
        .await
        .clamp(600, 4000);
    let frame = js("return window.outerHeight - window.innerHeight;").await;
    c.set_window_size(1280, u32::try_from(want + frame).unwrap())
        .await
        .unwrap();
    // The window grows asynchronously; wait until the page has the room before the picture.
    for _ in 0..20 {
        if js("return window.innerHeight;").await >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let png = c.screenshot().await.unwrap();
    let path = artifacts().join(name);
    std::fs::write(&path, png).unwrap();
    c.set_window_size(1280, 1000).await.unwrap();
    eprintln!("screenshot saved: {}", path.display());
    path
}

#[tokio::test]
async fn browser_story() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await;
    master_data(&app).await;
    // Some stock before the form, so the dashboard has two locations to chart.
    app.post_ok(
        "/api/v1/purchases",
        &json!({"purchase_id":"PO-0","date":"2020-02-12","supplier":"SUP-MED","location":"FG","currency":"USD","fx_rate":"7.0123",
                "lines":[{"sku":"GLOVE","qty":"2000","unit_price":"0.12"},{"sku":"PC-SHEET","qty":"250.5","unit_price":"5.70"}]}),
    )
    .await;
    let coordinator = app
        .service
        .create_token("nanwan-group", service::auth::Role::Coordinator, None)
        .await
        .unwrap()
        .token;
    let c = driver.client().await;
    let app = std::sync::Arc::new(app);
    // The recipient's browser: a session of its own, never signed in.
    let recipient = driver.client().await;
    let story = {
        let (app, c, r) = (app.clone(), c.clone(), recipient.clone());
        tokio::spawn(async move { browse(&app, &c, &r, &coordinator).await })
    };
    let outcome = story.await;
    // Close the browsers before judging, so that a failure leaves no Chromium behind.
    let _ = c.close().await;
    let _ = recipient.close().await;
    driver.stop().await;
    if let Ok(app) = std::sync::Arc::try_unwrap(app) {
        app.stop().await;
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn browse(app: &TestApp, c: &Client, recipient: &Client, coordinator: &str) {
    let base = &app.base;
    let today = app.service.now().date();
    let soon = (today + time::Duration::days(10)).to_string();

    // Signed out, the dashboard leads to the sign-in page; a wrong token is refused there.
    c.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(path_of(c).await, "/signin?next=%2F");
    assert_eq!(
        css(c, "html").await.attr("lang").await.unwrap().as_deref(),
        Some("en")
    );
    fill(c, "token", "ppe_wrong").await;
    css(c, "section.signin button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let refusal = text(c, ".field-error[data-field='token']").await;
    assert!(refusal.contains("not valid"), "{refusal}");

    // The admin token from the first start signs in and lands on the dashboard.
    fill(c, "token", &app.admin_token).await;
    css(c, "section.signin button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    // A click does not wait for the next page: wait for what only the next page has.
    css(c, ".cards").await;
    assert_eq!(text(c, "main h1").await, "Dashboard");
    assert_eq!(path_of(c).await, "/");
    let lots_before = text(c, ".cards .card:nth-child(2) .card-value").await;
    assert_eq!(lots_before, "2");
    assert!(c.find(Locator::Css("tr[data-sku='MASK']")).await.is_err());

    // Record a purchase through the form, with a second line added by the button.
    css(c, "nav.main a[href='/purchases']")
        .await
        .click()
        .await
        .unwrap();
    css(c, "a[href='/record/purchase']")
        .await
        .click()
        .await
        .unwrap();
    fill(c, "purchase_id", "PO-WEB-1").await;
    fill(c, "supplier", "SUP-MED").await;
    fill(c, "location", "RAW").await;
    fill(c, "lines[0].sku", "MASK").await;
    fill(c, "lines[0].qty", "1000").await;
    fill(c, "lines[0].unit_price", "0.85").await;
    set_value(c, "lines[0].expires_on", &soon).await;
    css(c, "button[data-add-line]").await.click().await.unwrap();
    fill(c, "lines[1].sku", "GLOVE").await;
    fill(c, "lines[1].qty", "500").await;
    fill(c, "lines[1].unit_price", "0.3").await;
    fill(c, "lines[1].lot", "GLV-2020-A").await;
    css(c, "button[value='record']")
        .await
        .click()
        .await
        .unwrap();
    let notice = text(c, "p.notice").await;
    assert_eq!(notice, "The purchase was recorded.");
    assert_eq!(path_of(c).await, "/purchases/PO-WEB-1?recorded=1");
    let lines = c.find_all(Locator::Css("#lines tbody tr")).await.unwrap();
    assert_eq!(lines.len(), 2);
    assert!(text(c, "#lines").await.contains("GLV-2020-A"));
    assert!(
        text(c, "dl.facts").await.contains("1,000.0000"),
        "850 + 150, grouped"
    );
    screenshot(c, "purchase.png").await;

    // It is in the list, and the dashboard changed: more lots, the masks on hand, and the
    // lot expiring in 10 days flagged.
    css(c, "nav.main a[href='/purchases']")
        .await
        .click()
        .await
        .unwrap();
    assert!(text(c, "#purchases tr[data-id='PO-WEB-1']")
        .await
        .contains("PO-WEB-1"));
    css(c, "nav.main a[href='/']").await.click().await.unwrap();
    css(c, ".cards").await;
    assert_eq!(text(c, ".cards .card:nth-child(2) .card-value").await, "4");
    let masks = text(c, "tr[data-sku='MASK'][data-location='RAW']").await;
    assert!(
        masks.contains("1,000") && masks.contains("850.0000"),
        "{masks}"
    );
    let expiring = text(c, "#expiring tr[data-lot='PO-WEB-1-1']").await;
    assert!(expiring.contains("10 days left"), "{expiring}");
    assert!(c
        .find(Locator::Css("#stock svg g.group[data-label='RAW']"))
        .await
        .is_ok());
    screenshot(c, "dashboard.png").await;

    // A bad quantity: the form says what the API says, next to the field, and writes nothing.
    let entries = app.entry_count().await;
    c.goto(&format!("{base}/record/purchase")).await.unwrap();
    fill(c, "purchase_id", "PO-WEB-BAD").await;
    fill(c, "supplier", "SUP-MED").await;
    fill(c, "location", "RAW").await;
    fill(c, "lines[0].sku", "MASK").await;
    fill(c, "lines[0].qty", "2.5").await;
    fill(c, "lines[0].unit_price", "0.85").await;
    css(c, "button[value='record']")
        .await
        .click()
        .await
        .unwrap();
    let shown = text(c, ".field-error[data-field='lines[0].qty']").await;
    let api = app
        .post(
            "/api/v1/purchases",
            &json!({"purchase_id":"PO-WEB-BAD","date":today.to_string(),"supplier":"SUP-MED","location":"RAW","currency":"CNY",
                    "lines":[{"sku":"MASK","qty":"2.5","unit_price":"0.85"}]}),
        )
        .await;
    let words = api.body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        api.fields(),
        vec!["lines[0].qty".to_owned()],
        "{}",
        api.text
    );
    assert_eq!(shown, words, "the form shows the API's words");
    assert_eq!(
        css(c, "input[name='lines[0].qty']")
            .await
            .attr("aria-invalid")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    assert_eq!(
        css(c, "input[name='lines[0].qty']")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("2.5"),
        "what was typed is kept"
    );
    assert!(text(c, ".error-summary").await.contains(words));
    assert_eq!(
        app.entry_count().await,
        entries,
        "a refused form writes nothing"
    );
    screenshot(c, "purchase-form-error.png").await;

    // Dispatch a donation of 600 of the masks through the form.
    css(c, "nav.main a[href='/donations']")
        .await
        .click()
        .await
        .unwrap();
    css(c, "a[href='/record/donation']")
        .await
        .click()
        .await
        .unwrap();
    fill(c, "donation_id", "DON-WEB-1").await;
    fill(c, "from_location", "RAW").await;
    fill(c, "recipient", "KR-DSMC").await;
    fill(c, "declared_value", "600").await;
    fill(c, "lines[0].sku", "MASK").await;
    fill(c, "lines[0].qty", "600").await;
    css(c, "button[value='record']")
        .await
        .click()
        .await
        .unwrap();
    assert!(text(c, "p.notice").await.contains("dispatched"));
    assert_eq!(path_of(c).await, "/donations/DON-WEB-1?recorded=1");
    assert_eq!(text(c, "#ledger-cost").await, "510.0000 CNY");
    assert!(text(c, "#difference").await.contains("over"));

    // It is in transit on the dashboard, and KR's declared value is flagged against its cost.
    css(c, "nav.main a[href='/']").await.click().await.unwrap();
    let transit = text(c, "#in-transit tr[data-shipment='DON-WEB-1']").await;
    assert!(
        transit.contains("KR-DSMC") && transit.contains("600"),
        "{transit}"
    );
    let kr = text(c, "#donations tr[data-country='KR']").await;
    assert!(
        kr.contains("600.0000") && kr.contains("510.0000") && kr.contains("17.65"),
        "{kr}"
    );
    assert!(c
        .find(Locator::Css("#donations svg g.group[data-label='KR']"))
        .await
        .is_ok());
    screenshot(c, "dashboard-in-transit.png").await;

    // Its packing list: the lines, a QR code and the recipient's link.
    c.goto(&format!("{base}/donations/DON-WEB-1"))
        .await
        .unwrap();
    css(c, "#packing-link").await.click().await.unwrap();
    css(c, "section.packing-sheet svg.qr").await;
    assert!(text(c, "section.packing-sheet table")
        .await
        .contains("PO-WEB-1-1"));
    let link = css(c, "a.recipient-link")
        .await
        .attr("href")
        .await
        .unwrap()
        .expect("the recipient's link");
    assert!(
        link.starts_with(&format!("{base}/r/DON-WEB-1~KR-DSMC~")),
        "{link}"
    );
    let shot = screenshot(c, "packing-list.png").await;
    // The QR code, as printed, holds the link.
    assert_eq!(
        read_qr(&shot),
        link,
        "the QR code scans to the printed link"
    );

    // The hospital opens the link in a browser that never signed in, and records what came.
    recipient.goto(&link).await.unwrap();
    css(recipient, "#recipient-form").await;
    assert!(
        recipient.find(Locator::Css("nav.main")).await.is_err(),
        "no navigation"
    );
    assert_eq!(text(recipient, "#shipment-id").await, "DON-WEB-1");
    fill(recipient, "lines[0].received_qty", "590").await;
    fill(recipient, "lines[0].damaged_qty", "10").await;
    screenshot(recipient, "recipient-form.png").await;
    css(recipient, "button[value='record']")
        .await
        .click()
        .await
        .unwrap();
    let done = text(recipient, ".recipient-done").await;
    assert!(done.contains("Thank you"), "{done}");
    let entries = app.entry_count().await;
    let last = app.get(&format!("/api/v1/entries/{entries}")).await;
    assert_eq!(last.body["actor"], "recipient-link:KR-DSMC");
    // The link has done its work: opened again, it is refused.
    recipient.goto(&link).await.unwrap();
    assert!(text(recipient, ".error-page")
        .await
        .contains("no longer works"));

    // Back at the dashboard: nothing in transit, and the journal names the recipient.
    c.goto(&format!("{base}/")).await.unwrap();
    css(c, ".cards").await;
    assert!(c
        .find(Locator::Css("#in-transit tr[data-shipment='DON-WEB-1']"))
        .await
        .is_err());
    assert!(text(c, "#in-transit").await.contains("No goods in transit"));
    screenshot(c, "dashboard-shipments.png").await;
    // The masks' lot traced forward: the donation, the hospital, and the recall view.
    c.goto(&format!("{base}/trace")).await.unwrap();
    fill(c, "lot", "PO-WEB-1-1").await;
    css(c, "button[value='forward']")
        .await
        .click()
        .await
        .unwrap();
    let recall = text(c, "#recall tr[data-recipient='KR-DSMC']").await;
    assert!(
        recall.contains("DON-WEB-1") && recall.contains("590"),
        "{recall}"
    );
    screenshot(c, "trace.png").await;
    c.goto(&format!("{base}/donations/DON-WEB-1"))
        .await
        .unwrap();
    assert!(text(c, "#status").await.contains("acknowledged"));
    assert!(text(c, "#acknowledgements")
        .await
        .contains("recipient-link:KR-DSMC"));

    // Switch to Chinese: the words change, codes and amounts do not, and the choice stays.
    c.goto(&format!("{base}/")).await.unwrap();
    css(c, "nav.lang a[data-lang='zh-CN']")
        .await
        .click()
        .await
        .unwrap();
    css(c, "html[lang='zh-CN'] .cards").await;
    assert_eq!(text(c, "main h1").await, "总览");
    assert_eq!(text(c, "nav.main a[href='/journal']").await, "日记账");
    let masks = text(c, "tr[data-sku='MASK'][data-location='RAW']").await;
    assert!(
        masks.contains("MASK") && masks.contains("340.0000"),
        "{masks}"
    );
    assert!(text(c, "#expiring").await.contains("剩余 10 天"));
    screenshot(c, "dashboard-zh.png").await;
    css(c, "nav.main a[href='/journal']")
        .await
        .click()
        .await
        .unwrap();
    css(c, "#journal").await;
    assert!(
        text(c, "main h1").await.contains("日记账"),
        "the language is kept"
    );
    assert!(text(c, "#journal").await.contains("年"));
    screenshot(c, "journal-zh.png").await;
    css(c, "nav.lang a[data-lang='en']")
        .await
        .click()
        .await
        .unwrap();
    css(c, "html[lang='en'] #journal").await;
    assert_eq!(text(c, "main h1").await, "Journal");

    // A coordinator signs in: reads everything, and is offered no purchase form.
    css(c, "form.signout button").await.click().await.unwrap();
    assert!(text(c, "p.notice").await.contains("signed out"));
    fill(c, "token", coordinator).await;
    css(c, "section.signin button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    assert_eq!(text(c, "header .who .name").await, "nanwan-group");
    css(c, "nav.main a[href='/purchases']")
        .await
        .click()
        .await
        .unwrap();
    assert!(text(c, "#purchases").await.contains("PO-WEB-1"));
    assert!(c
        .find(Locator::Css("a[href='/record/purchase']"))
        .await
        .is_err());
    c.goto(&format!("{base}/record/purchase")).await.unwrap();
    assert!(text(c, ".error-page").await.contains("coordinator may not"));
}

#[test]
fn urlencoding_of_line_fields() {
    assert_eq!(urlencode("lines[0].qty"), "lines%5B0%5D.qty");
    let v: Value = json!(form_body(&[("a b", "c&d")]));
    assert_eq!(v, json!("a%20b=c%26d"));
}
