//! Authentication and authorisation by one mechanism: a middleware that finds the route's
//! permission in the table the router was built from, checks the bearer token, and answers
//! 401 or 403 before any handler runs. Handlers take the [`Caller`] it leaves behind.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use service::auth::{Caller as ServiceCaller, Permission};
use service::Service;

use crate::error::ApiError;

/// The permission of every (method, route) the router serves.
#[derive(Debug, Default, Clone)]
pub struct RouteTable {
    map: HashMap<(Method, &'static str), Permission>,
}

impl RouteTable {
    pub fn insert(&mut self, method: Method, path: &'static str, p: Permission) {
        let old = self.map.insert((method.clone(), path), p);
        assert!(old.is_none(), "route {method} {path} registered twice");
    }
    pub fn get(&self, method: &Method, path: &str) -> Option<Permission> {
        self.map.get(&(method.clone(), path)).copied()
    }
    /// Every route, sorted, for tests that walk them all.
    pub fn routes(&self) -> Vec<(Method, &'static str, Permission)> {
        let mut v: Vec<_> = self
            .map
            .iter()
            .map(|((m, p), perm)| (m.clone(), *p, *perm))
            .collect();
        v.sort_by(|a, b| (a.1, a.0.as_str()).cmp(&(b.1, b.0.as_str())));
        v
    }
}

/// The caller of a request that passed authentication.
#[derive(Debug, Clone)]
pub struct Caller(pub ServiceCaller);

impl Caller {
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::internal("a handler that needs a caller is on an open route"))
    }
}

fn unauthorized(detail: &str) -> Response {
    let mut res = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Unauthorized",
        detail,
    )
    .into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer"),
    );
    res
}

/// A per-token rate limiter (GCRA, from `governor`), keyed by the token's name.
type Limiter = governor::DefaultKeyedRateLimiter<String>;

/// What the middleware needs: the service (to check tokens), the route table, and the limiter.
#[derive(Clone)]
pub struct Guard {
    service: Service,
    table: Arc<RouteTable>,
    limiter: Option<Arc<Limiter>>,
}

impl Guard {
    pub fn new(service: Service, table: Arc<RouteTable>, config: &crate::ApiConfig) -> Guard {
        let limiter = std::num::NonZeroU32::new(config.rate_limit_per_second).map(|rate| {
            let burst = std::num::NonZeroU32::new(
                config.rate_limit_burst.max(config.rate_limit_per_second),
            )
            .unwrap_or(rate);
            Arc::new(governor::RateLimiter::keyed(
                governor::Quota::per_second(rate).allow_burst(burst),
            ))
        });
        Guard {
            service,
            table,
            limiter,
        }
    }
}

fn too_many(retry_after_s: u64) -> Response {
    let mut res = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too many requests",
        format!("this token is over its request rate; retry after {retry_after_s} s"),
    )
    .into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&retry_after_s.to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

/// The middleware. Routes not in the table (404s) pass through untouched. The rate limit is
/// per authenticated token, so that a stranger's bad tokens cannot use up a user's quota.
pub async fn authorize(
    State(Guard {
        service,
        table,
        limiter,
    }): State<Guard>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let Some(path) = path else {
        return next.run(req).await;
    };
    let Some(permission) = table.get(req.method(), &path) else {
        return next.run(req).await;
    };
    if permission == Permission::Open {
        return next.run(req).await;
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return unauthorized("this route needs a bearer token: Authorization: Bearer <token>");
    };
    let caller = match service.authenticate(token).await {
        Ok(Ok(c)) => c,
        Ok(Err(why)) => {
            tracing::info!(reason = %why, "token refused");
            return unauthorized("the token is not valid (unknown, revoked or expired)");
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    tracing::Span::current().record("actor", caller.name.as_str());
    if let Some(limiter) = &limiter {
        if let Err(not_until) = limiter.check_key(&caller.name) {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            return too_many(wait.as_secs().max(1));
        }
    }
    if !caller.role.may(permission) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            format!("the role {} may not do this ({permission:?})", caller.role),
        )
        .into_response();
    }
    req.extensions_mut().insert(Caller(caller));
    next.run(req).await
}
