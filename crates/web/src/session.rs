//! Who is asking, in which language, and whether a form really came from our own page.
//!
//! The session is the caller's API token, kept in an HttpOnly, SameSite=Strict cookie: the
//! pages need no session table, so several processes behind a load balancer serve them alike.
//! Every POST carries a CSRF token in its `_csrf` field, checked here before any handler runs:
//! for a signed-in caller it is derived from the session's token (only a holder of the token
//! can compute it, and it survives restarts); before sign-in it is a random value also kept in
//! a SameSite=Strict cookie (double submit). A POST whose `Origin` names another site is
//! refused as well.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use service::auth::{Caller, Permission};
use sha2::{Digest, Sha256};

use crate::i18n::{Lang, Msg};
use crate::Web;

/// The session cookie: the caller's API token.
pub const SESSION_COOKIE: &str = "ppe_session";
/// The chosen language, when the person switched it.
pub const LANG_COOKIE: &str = "ppe_lang";
/// The CSRF token of forms shown before sign-in.
pub const FORM_COOKIE: &str = "ppe_form";
/// The form field every POST carries its CSRF token in.
pub const CSRF_FIELD: &str = "_csrf";

/// What a page handler knows about its request.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub lang: Lang,
    pub caller: Option<Caller>,
    /// The CSRF token to put in every form of this page.
    pub csrf: String,
    /// The request's path and query, for the language switch and the return after sign-in.
    pub path: String,
    pub query: Option<String>,
    /// Today, from the service's clock (UTC).
    pub today: time::Date,
}

impl Ctx {
    pub fn t(&self, m: Msg) -> &'static str {
        self.lang.t(m)
    }

    /// Whether the caller's role may do `p`; what a page offers follows this.
    pub fn may(&self, p: Permission) -> bool {
        self.caller.as_ref().is_some_and(|c| c.role.may(p))
    }

    /// This page in another language: the same path and query, with `lang` replaced.
    pub fn lang_href(&self, lang: Lang) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in query_pairs(self.query.as_deref()) {
            if k != "lang" {
                q.append_pair(&k, &v);
            }
        }
        q.append_pair("lang", lang.tag());
        format!("{}?{}", self.path, q.finish())
    }

    /// A query parameter of the request.
    pub fn param(&self, name: &str) -> Option<String> {
        query_pairs(self.query.as_deref())
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        parts.extensions.get::<Ctx>().cloned().ok_or_else(|| {
            tracing::error!("a page handler ran without the web context middleware");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        })
    }
}

/// The pairs of a query string, decoded.
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The cookies of a request, by name (the first of a repeated name wins).
pub fn cookies(headers: &HeaderMap) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for v in headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for pair in v.split(';') {
            if let Some((k, val)) = pair.trim().split_once('=') {
                map.entry(k.trim().to_owned())
                    .or_insert_with(|| val.trim().to_owned());
            }
        }
    }
    map
}

/// The language of a request: `?lang=`, else the language cookie, else `Accept-Language`.
pub fn language(headers: &HeaderMap, query: Option<&str>) -> (Lang, Option<Lang>) {
    let asked = query_pairs(query)
        .into_iter()
        .find(|(k, _)| k == "lang")
        .and_then(|(_, v)| Lang::parse(&v));
    let lang = asked
        .or_else(|| {
            cookies(headers)
                .get(LANG_COOKIE)
                .and_then(|v| Lang::parse(v))
        })
        .unwrap_or_else(|| {
            Lang::negotiate(
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok()),
            )
        });
    (lang, asked)
}

/// The CSRF token of a signed-in session: a SHA-256 of the session's token under a label of
/// its own, so it reveals nothing of the token and cannot be computed without it.
pub fn session_csrf(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"ppe-web-csrf\0");
    h.update(token.as_bytes());
    hex::encode(&h.finalize()[..16])
}

fn random_hex() -> Option<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).ok()?;
    Some(hex::encode(b))
}

/// Compares two secrets in time that does not depend on where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A cookie that the browser sends back only to this site and scripts cannot read.
pub fn cookie(name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict{age}"
    ))
    .expect("cookie names and values are plain ASCII")
}

/// A cookie that tells the browser to forget one.
pub fn clear_cookie(name: &str) -> HeaderValue {
    cookie(name, "", Some(0))
}

/// Whether a POST's `Origin`, when the browser sent one, is this site.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    origin == format!("http://{host}") || origin == format!("https://{host}")
}

/// The middleware of every page: language, caller, permission, CSRF, security headers.
pub async fn context(State(web): State<Web>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let query = parts.uri.query().map(str::to_owned);
    let path = parts.uri.path().to_owned();
    let (lang, asked_lang) = language(&parts.headers, query.as_deref());
    let jar = cookies(&parts.headers);
    let mut set_cookies: Vec<HeaderValue> = Vec::new();
    if let Some(l) = asked_lang {
        // The language is no secret, so it lasts a year; still HttpOnly and SameSite=Strict.
        set_cookies.push(cookie(LANG_COOKIE, l.tag(), Some(365 * 24 * 3600)));
    }

    let token = jar.get(SESSION_COOKIE).filter(|t| !t.is_empty()).cloned();
    let mut caller = None;
    if let Some(t) = &token {
        match web.service.authenticate(t).await {
            Ok(Ok(c)) => caller = Some(c),
            Ok(Err(why)) => {
                tracing::info!(reason = %why, "session token refused");
                set_cookies.push(clear_cookie(SESSION_COOKIE));
            }
            Err(e) => {
                let ctx = Ctx {
                    lang,
                    caller: None,
                    csrf: String::new(),
                    path,
                    query,
                    today: web.service.now().date(),
                };
                return crate::pages::errors::PageError::from_service(&ctx, e).into_response();
            }
        }
    }
    let csrf = match (&caller, &token) {
        (Some(_), Some(t)) => session_csrf(t),
        _ => match jar.get(FORM_COOKIE).filter(|v| v.len() == 32) {
            Some(v) => v.clone(),
            None => {
                let v = random_hex().unwrap_or_default();
                set_cookies.push(cookie(FORM_COOKIE, &v, None));
                v
            }
        },
    };
    let ctx = Ctx {
        lang,
        caller,
        csrf,
        path,
        query,
        today: web.service.now().date(),
    };

    let permission = parts
        .extensions
        .get::<MatchedPath>()
        .and_then(|m| web.table.get(&parts.method, m.as_str()));
    let mut res = match check(&web, &ctx, permission, &mut parts, body).await {
        Err(refusal) => refusal,
        Ok(body) => {
            parts.extensions.insert(ctx);
            next.run(Request::from_parts(parts, body)).await
        }
    };
    let headers = res.headers_mut();
    for c in set_cookies {
        headers.append(header::SET_COOKIE, c);
    }
    security_headers(headers);
    res
}

/// Checks permission and, for a POST, origin and CSRF token; gives the body back to pass on.
async fn check(
    web: &Web,
    ctx: &Ctx,
    permission: Option<Permission>,
    parts: &mut Parts,
    body: Body,
) -> Result<Body, Response> {
    use crate::pages::errors::PageError;
    // A page missing from the table is a bug; refusing is the safe side of it.
    let permission = permission.ok_or_else(|| {
        PageError::new(ctx, StatusCode::INTERNAL_SERVER_ERROR, Msg::ErrorTitle, "").into_response()
    })?;
    if permission != Permission::Open {
        let Some(caller) = &ctx.caller else {
            let here = match &ctx.query {
                Some(q) => format!("{}?{q}", ctx.path),
                None => ctx.path.clone(),
            };
            let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
            return Err(Redirect::to(&format!("/signin?next={next}")).into_response());
        };
        if !caller.role.may(permission) {
            let text = ctx
                .lang
                .tf(Msg::ForbiddenText, &[("role", ctx.lang.role(caller.role))]);
            return Err(
                PageError::new(ctx, StatusCode::FORBIDDEN, Msg::ForbiddenTitle, &text)
                    .into_response(),
            );
        }
    }
    if parts.method != Method::POST {
        return Ok(body);
    }
    let refused = || {
        PageError::new(
            ctx,
            StatusCode::FORBIDDEN,
            Msg::ForbiddenTitle,
            ctx.t(Msg::FormExpired),
        )
        .into_response()
    };
    if !same_origin(&parts.headers) {
        return Err(refused());
    }
    let bytes = axum::body::to_bytes(body, web.body_limit)
        .await
        .map_err(|_| {
            PageError::new(
                ctx,
                StatusCode::PAYLOAD_TOO_LARGE,
                Msg::ErrorTitle,
                "the form is larger than this server accepts",
            )
            .into_response()
        })?;
    let sent = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if ctx.csrf.is_empty() || !same_secret(&sent, &ctx.csrf) {
        tracing::info!(path = %ctx.path, "form refused: CSRF token missing or wrong");
        return Err(refused());
    }
    Ok(Body::from(bytes))
}

/// Headers that keep the pages from being framed, sniffed or leaking their address, and that
/// allow only this site's own scripts and styles.
fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Addresses (which may one day carry a recipient's link token) never leave the site.
    // Not `no-referrer`: under it browsers send `Origin: null` with every form.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_csrf_token_depends_on_the_token_and_hides_it() {
        let a = session_csrf("ppe_aaaa");
        assert_eq!(a, session_csrf("ppe_aaaa"));
        assert_ne!(a, session_csrf("ppe_aaab"));
        assert_eq!(a.len(), 32);
        assert!(!a.contains("aaaa"));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn cookies_are_read_from_every_header() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; ppe_lang=zh-CN"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        let c = cookies(&h);
        assert_eq!(c.get("ppe_lang").map(String::as_str), Some("zh-CN"));
        assert_eq!(c.get("b").map(String::as_str), Some("2"));
    }

    #[test]
    fn the_language_comes_from_the_query_then_the_cookie_then_the_header() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("zh-CN,zh;q=0.9"),
        );
        assert_eq!(language(&h, None), (Lang::Zh, None));
        h.insert(header::COOKIE, HeaderValue::from_static("ppe_lang=en"));
        assert_eq!(language(&h, None), (Lang::En, None));
        assert_eq!(
            language(&h, Some("after=3&lang=zh-CN")),
            (Lang::Zh, Some(Lang::Zh))
        );
    }

    #[test]
    fn only_our_own_origin_may_post() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
    }
}
