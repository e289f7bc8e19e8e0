//! The HTTP API (`/api/v1`): the axum router, authentication by one middleware, problem+json
//! errors, and the OpenAPI document generated from the handlers.
//!
//! Architecture invariant: only this crate knows HTTP. It translates requests into service
//! calls and `ServiceError`s into status codes; it holds no ledger logic and no SQL.

pub mod auth;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod routes;
pub mod routes_production;
pub mod routes_shipments;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Request};
use axum::routing::{on, MethodFilter};
use axum::Router;
use service::auth::Permission;
use service::Service;
use tower_http::trace::TraceLayer;

pub use auth::RouteTable;

/// Limits of the HTTP layer.
#[derive(Debug, Clone, Copy)]
pub struct ApiConfig {
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Longest a request may take before it is answered 408.
    pub request_timeout: Duration,
    /// Requests per second each token may make on average (0: no limit); past it, 429.
    pub rate_limit_per_second: u32,
    /// Requests a token may make at once before the rate applies.
    pub rate_limit_burst: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            body_limit_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            rate_limit_per_second: 200,
            rate_limit_burst: 400,
        }
    }
}

/// Builds the router and the table of every route's permission, from one list so that a route
/// cannot exist without a permission.
struct Builder {
    router: Router<Service>,
    table: RouteTable,
}

impl Builder {
    fn route<H, T>(
        mut self,
        method: Method,
        path: &'static str,
        permission: Permission,
        handler: H,
    ) -> Self
    where
        H: axum::handler::Handler<T, Service>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
        self.table.insert(method, path, permission);
        self.router = self.router.route(path, on(filter, handler));
        self
    }
}

/// The router and its route table.
pub fn router(service: Service, config: ApiConfig) -> (Router, Arc<RouteTable>) {
    use routes as r;
    use routes_production as rp;
    use routes_shipments as sh;
    use Method as M;
    use Permission as P;
    let b = Builder {
        router: Router::new(),
        table: RouteTable::default(),
    }
    .route(M::GET, "/healthz", P::Open, r::healthz)
    .route(M::GET, "/api/v1/openapi.json", P::Open, openapi::serve)
    .route(M::POST, "/api/v1/items", P::Items, r::create_item)
    .route(M::GET, "/api/v1/items", P::Read, r::list_items)
    .route(M::GET, "/api/v1/items/{sku}", P::Read, r::get_item)
    .route(M::POST, "/api/v1/parties", P::Parties, r::create_party)
    .route(M::GET, "/api/v1/parties", P::Read, r::list_parties)
    .route(M::GET, "/api/v1/parties/{code}", P::Read, r::get_party)
    .route(
        M::POST,
        "/api/v1/locations",
        P::Locations,
        r::create_location,
    )
    .route(M::GET, "/api/v1/locations", P::Read, r::list_locations)
    .route(M::GET, "/api/v1/locations/{code}", P::Read, r::get_location)
    .route(
        M::POST,
        "/api/v1/purchases",
        P::Purchases,
        r::create_purchase,
    )
    .route(M::GET, "/api/v1/purchases", P::Read, r::list_purchases)
    .route(M::GET, "/api/v1/purchases/{id}", P::Read, r::get_purchase)
    .route(M::POST, "/api/v1/receipts", P::Receipts, sh::create_receipt)
    .route(M::GET, "/api/v1/receipts", P::Read, sh::list_receipts)
    .route(M::GET, "/api/v1/receipts/{id}", P::Read, sh::get_receipt)
    .route(M::POST, "/api/v1/batches", P::Batches, sh::create_batch)
    .route(M::GET, "/api/v1/batches", P::Read, sh::list_batches)
    .route(M::GET, "/api/v1/batches/{id}", P::Read, sh::get_batch)
    .route(
        M::POST,
        "/api/v1/donations",
        P::Donations,
        sh::create_donation,
    )
    .route(M::GET, "/api/v1/donations", P::Read, sh::list_donations)
    .route(M::GET, "/api/v1/donations/{id}", P::Read, sh::get_donation)
    .route(M::GET, "/api/v1/shipments", P::Read, sh::list_shipments)
    .route(M::GET, "/api/v1/shipments/{id}", P::Read, sh::get_shipment)
    .route(
        M::POST,
        "/api/v1/shipments/{id}/acknowledgements",
        P::Acknowledgements,
        sh::acknowledge,
    )
    .route(
        M::GET,
        "/api/v1/shipments/{id}/acknowledgements",
        P::Read,
        sh::list_acknowledgements,
    )
    .route(
        M::GET,
        "/api/v1/shipments/{id}/acknowledgements/{ack_id}",
        P::Read,
        sh::get_acknowledgement,
    )
    .route(
        M::POST,
        "/api/v1/shipments/{id}/close",
        P::Shipments,
        sh::close_shipment,
    )
    .route(M::POST, "/api/v1/boms", P::Boms, rp::create_bom)
    .route(M::GET, "/api/v1/boms", P::Read, rp::list_boms)
    .route(
        M::GET,
        "/api/v1/boms/{product_sku}/{version}",
        P::Read,
        rp::get_bom,
    )
    .route(
        M::POST,
        "/api/v1/production-runs",
        P::Production,
        rp::create_production_run,
    )
    .route(
        M::GET,
        "/api/v1/production-runs",
        P::Read,
        rp::list_production_runs,
    )
    .route(
        M::GET,
        "/api/v1/production-runs/{id}",
        P::Read,
        rp::get_production_run,
    )
    .route(
        M::POST,
        "/api/v1/stock-counts",
        P::StockCounts,
        rp::create_stock_count,
    )
    .route(
        M::GET,
        "/api/v1/stock-counts",
        P::Read,
        rp::list_stock_counts,
    )
    .route(
        M::GET,
        "/api/v1/stock-counts/{id}",
        P::Read,
        rp::get_stock_count,
    )
    .route(
        M::GET,
        "/api/v1/reports/production",
        P::Read,
        rp::production_report,
    )
    .route(M::GET, "/api/v1/entries", P::Read, r::list_entries)
    .route(M::GET, "/api/v1/entries/{seq}", P::Read, r::get_entry)
    .route(
        M::POST,
        "/api/v1/entries/{seq}/reversal",
        P::Reversals,
        r::reverse_entry,
    )
    .route(M::GET, "/api/v1/balances", P::Read, r::balances)
    .route(M::GET, "/api/v1/verify", P::Read, r::verify)
    .route(M::GET, "/api/v1/reports/{name}", P::Read, r::report)
    .route(M::GET, "/api/v1/trace/{lot}", P::Read, r::trace)
    .route(
        M::POST,
        "/api/v1/periods/close",
        P::PeriodClose,
        r::close_period,
    )
    .route(M::POST, "/api/v1/tokens", P::Tokens, r::create_token)
    .route(M::GET, "/api/v1/tokens", P::Tokens, r::list_tokens)
    .route(
        M::POST,
        "/api/v1/tokens/{name}/revoke",
        P::Tokens,
        r::revoke_token,
    );
    let table = Arc::new(b.table);
    let router = b
        .router
        .fallback(|| async { error::ApiError::new(axum::http::StatusCode::NOT_FOUND, "not-found", "Not found", "no such route") })
        .method_not_allowed_fallback(|| async { error::ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed", "this route does not take that method") })
        .route_layer(axum::middleware::from_fn_with_state(auth::Guard::new(service.clone(), table.clone(), &config), auth::authorize))
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, config.request_timeout))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let path = req.extensions().get::<axum::extract::MatchedPath>().map_or_else(|| req.uri().path().to_owned(), |m| m.as_str().to_owned());
            tracing::info_span!("request", method = %req.method(), path = %path, actor = tracing::field::Empty)
        }))
        .with_state(service);
    (router, table)
}

/// Serves the router on a bound listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
