//! The web pages: server-rendered HTML for the people who use the ledger in a browser
//! (coordinators, manufacturers, auditors), in Chinese and English, served by `ppe serve`
//! under `/` next to the API.
//!
//! Architecture invariant: the pages call the same `Service` methods as the API and turn a
//! refusal into words through the API's own error mapping (`api::error::ApiError`), so a form
//! refuses exactly what the API refuses, with the same words, next to the field it names.
//! The pages hold no ledger logic and no SQL; `service` knows nothing of HTML.
//!
//! Every page is registered in [`pages_router`] with the permission it needs, from one list,
//! like the API's routes; one middleware (`session::context`) signs the caller in from the
//! session cookie, checks that permission with `Role::may`, checks the CSRF token of every
//! POST and picks the language, before any handler runs.

pub mod chart;
mod components;
mod form;
pub mod i18n;
mod layout;
pub mod link;
mod pages;
mod qr;
mod session;

use std::sync::Arc;

use api::{ApiConfig, RouteTable};
use axum::extract::{FromRef, Request};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::Router;
use service::auth::Permission;
use service::Service;
use tower_http::trace::TraceLayer;

pub use i18n::{Lang, Msg};

/// The state every page handler can reach.
#[derive(Clone)]
pub(crate) struct Web {
    pub service: Service,
    pub table: Arc<RouteTable>,
    /// Largest form body accepted, as for the API.
    pub body_limit: usize,
    /// The key that signs recipients' links.
    pub link_key: link::LinkKey,
}

impl FromRef<Web> for link::LinkKey {
    fn from_ref(w: &Web) -> link::LinkKey {
        w.link_key.clone()
    }
}

impl FromRef<Web> for Service {
    fn from_ref(w: &Web) -> Service {
        w.service.clone()
    }
}

/// The pages and the table of the permission each needs, built from one list so that a page
/// cannot exist without a permission.
struct Pages {
    router: Router<Web>,
    table: RouteTable,
}

impl Pages {
    fn page<H, T>(
        mut self,
        method: Method,
        path: &'static str,
        permission: Permission,
        handler: H,
    ) -> Self
    where
        H: axum::handler::Handler<T, Web>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
        self.table.insert(method, path, permission);
        self.router = self.router.route(path, on(filter, handler));
        self
    }
}

/// The web pages alone, with their middleware. `Permission::Open` pages need no sign-in;
/// every other page needs a signed-in caller whose role `may` the permission.
pub fn pages_router(service: Service, config: ApiConfig) -> Router {
    use pages as p;
    use Method as M;
    use Permission as P;
    let b = Pages {
        router: Router::new(),
        table: RouteTable::default(),
    }
    .page(M::GET, "/static/{file}", P::Open, p::assets::serve)
    .page(M::GET, "/signin", P::Open, p::signin::form)
    .page(M::POST, "/signin", P::Open, p::signin::submit)
    .page(M::POST, "/signout", P::Open, p::signin::sign_out)
    .page(M::GET, "/", P::Read, p::dashboard::show)
    .page(M::GET, "/purchases", P::Read, p::purchases::list)
    .page(M::GET, "/purchases/{id}", P::Read, p::purchases::detail)
    .page(M::GET, "/record/purchase", P::Purchases, p::purchases::form)
    .page(
        M::POST,
        "/record/purchase",
        P::Purchases,
        p::purchases::submit,
    )
    .page(M::GET, "/runs", P::Read, p::runs::list)
    .page(M::GET, "/runs/{id}", P::Read, p::runs::detail)
    .page(
        M::GET,
        "/record/production-run",
        P::Production,
        p::runs::form,
    )
    .page(
        M::POST,
        "/record/production-run",
        P::Production,
        p::runs::submit,
    )
    .page(M::GET, "/batches", P::Read, p::batches::list)
    .page(M::GET, "/batches/{id}", P::Read, p::batches::detail)
    .page(
        M::GET,
        "/batches/{id}/packing-list",
        P::Batches,
        p::packing::batch,
    )
    .page(M::GET, "/record/batch", P::Batches, p::batches::form)
    .page(M::POST, "/record/batch", P::Batches, p::batches::submit)
    .page(M::GET, "/donations", P::Read, p::donations::list)
    .page(M::GET, "/donations/{id}", P::Read, p::donations::detail)
    .page(
        M::GET,
        "/donations/{id}/packing-list",
        P::Donations,
        p::packing::donation,
    )
    .page(M::GET, "/record/donation", P::Donations, p::donations::form)
    .page(
        M::POST,
        "/record/donation",
        P::Donations,
        p::donations::submit,
    )
    .page(M::GET, "/shipments/{id}", P::Read, p::shipments::by_id)
    .page(
        M::GET,
        "/record/acknowledgement",
        P::Acknowledgements,
        p::acknowledge::form,
    )
    .page(
        M::POST,
        "/record/acknowledgement",
        P::Acknowledgements,
        p::acknowledge::submit,
    )
    // A recipient's link: no account; the signed token in the path is checked by the page.
    .page(M::GET, "/r/{token}", P::Open, p::recipient::show)
    .page(M::POST, "/r/{token}", P::Open, p::recipient::submit)
    .page(M::GET, "/trace", P::Read, p::trace::show)
    .page(M::GET, "/journal", P::Read, p::journal::list)
    .page(M::GET, "/journal/{seq}", P::Read, p::journal::entry)
    .page(M::GET, "/verify", P::Read, p::journal::verify)
    .page(M::GET, "/items", P::Read, p::master::items)
    .page(M::GET, "/parties", P::Read, p::master::parties)
    .page(M::GET, "/locations", P::Read, p::master::locations);
    let web = Web {
        service,
        table: Arc::new(b.table),
        body_limit: config.body_limit_bytes,
        link_key: link::LinkKey::default(),
    };
    b.router
        .route_layer(axum::middleware::from_fn_with_state(
            web.clone(),
            session::context,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let path = req
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map_or_else(|| req.uri().path().to_owned(), |m| m.as_str().to_owned());
                tracing::info_span!("page", method = %req.method(), path = %path)
            }),
        )
        .with_state(web)
}

/// The whole application: the API under `/api/v1` (unchanged, with its own route table,
/// authentication and problem+json errors) and the pages under `/`. An unknown path under
/// `/api/` still answers problem+json; elsewhere it answers an HTML page.
pub fn app(service: Service, config: ApiConfig) -> (Router, Arc<RouteTable>) {
    let (api, table) = api::router(service.clone(), config);
    let router = api.merge(pages_router(service, config)).fallback(not_found);
    (router, table)
}

async fn not_found(req: Request) -> Response {
    let path = req.uri().path();
    if path.starts_with("/api/") || path == "/healthz" {
        return api::error::ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            "no such route",
        )
        .into_response();
    }
    pages::errors::not_found_bare(req.headers())
}
