//! Refusals as pages: not found, not allowed, and failures, in the page's language.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;
use service::ServiceError;

use crate::i18n::Msg;
use crate::layout::{self, Nav};
use crate::session::{self, Ctx};

/// A page that could not be shown, and why.
#[derive(Debug)]
pub struct PageError {
    ctx: Ctx,
    status: StatusCode,
    title: Msg,
    detail: String,
}

pub type PageResult = Result<Response, PageError>;

impl PageError {
    pub fn new(ctx: &Ctx, status: StatusCode, title: Msg, detail: &str) -> PageError {
        PageError {
            ctx: ctx.clone(),
            status,
            title,
            detail: detail.to_owned(),
        }
    }

    /// A refusal of the service, with the status and words the API would answer.
    pub fn from_service(ctx: &Ctx, e: ServiceError) -> PageError {
        let api = api::error::ApiError::from(e);
        let status = api.status();
        let title = match status {
            StatusCode::NOT_FOUND => Msg::NotFoundTitle,
            StatusCode::FORBIDDEN => Msg::ForbiddenTitle,
            _ => Msg::ErrorTitle,
        };
        PageError::new(ctx, status, title, &api.problem().detail)
    }

    pub fn not_found(ctx: &Ctx) -> PageError {
        PageError::new(
            ctx,
            StatusCode::NOT_FOUND,
            Msg::NotFoundTitle,
            ctx.t(Msg::NotFoundText),
        )
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let ctx = &self.ctx;
        let title = ctx.t(self.title);
        let body = html! {
            section.error-page {
                h1 { (title) }
                @if !self.detail.is_empty() { p.detail { (self.detail) } }
                p { a href="/" { (ctx.t(Msg::BackToDashboard)) } }
            }
        };
        (self.status, layout::page(ctx, title, Nav::None, body)).into_response()
    }
}

/// Turns a service result into a page result.
pub trait OrPage<T> {
    fn or_page(self, ctx: &Ctx) -> Result<T, PageError>;
}

impl<T> OrPage<T> for Result<T, ServiceError> {
    fn or_page(self, ctx: &Ctx) -> Result<T, PageError> {
        self.map_err(|e| PageError::from_service(ctx, e))
    }
}

/// The answer for a path no page has: outside the page middleware, so it knows the language
/// but not the caller.
pub fn not_found_bare(headers: &HeaderMap) -> Response {
    let (lang, _) = session::language(headers, None);
    let ctx = Ctx {
        lang,
        caller: None,
        csrf: String::new(),
        path: "/".into(),
        query: None,
        today: time::OffsetDateTime::now_utc().date(),
    };
    let mut res = PageError::not_found(&ctx).into_response();
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    res
}
