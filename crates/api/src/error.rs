//! The one API error: every refusal becomes an `application/problem+json` answer (RFC 9457)
//! with `type`, `title`, `status`, `detail` and, for validation, `errors: [{field, message}]`.
//! Failures of the server itself answer an opaque 500 and put the detail in the log.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ledger::{Rejection, RejectionClass};
use serde::Serialize;
use service::{FieldError, ServiceError};
use utoipa::ToSchema;

/// A problem answer (RFC 9457).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem (`/problems/insufficient-stock`).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The fields that were refused, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
    /// Facts about the refusal a client can act on (sku, lot, available, requested, ...).
    #[serde(flatten, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schema(value_type = Object)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    problem: Problem,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, title: &str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            problem: Problem {
                kind: format!("/problems/{code}"),
                title: title.to_owned(),
                status: status.as_u16(),
                detail: detail.into(),
                errors: Vec::new(),
                extensions: serde_json::Map::new(),
            },
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            "Malformed request",
            detail,
        )
    }

    pub fn invalid(fields: Vec<FieldError>) -> ApiError {
        let detail = fields
            .iter()
            .map(|f| format!("{} {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "Invalid value",
            detail,
        );
        e.problem.errors = fields
            .into_iter()
            .map(|f| ProblemField {
                field: f.field,
                message: f.message,
            })
            .collect();
        e
    }

    pub fn not_found(what: &str, id: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("{what} {id} not found"),
        )
    }

    pub fn too_large(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Request too large",
            detail,
        )
    }

    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the server failed; the detail is in its log",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The problem as it will be answered: the web pages show its fields and words on forms.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

fn rejection(r: Rejection) -> ApiError {
    let status = match r.class() {
        RejectionClass::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        RejectionClass::NotFound => StatusCode::NOT_FOUND,
        RejectionClass::Conflict => StatusCode::CONFLICT,
    };
    let title = match r.class() {
        RejectionClass::Invalid => "Invalid value",
        RejectionClass::NotFound => "Not found",
        RejectionClass::Conflict => "Conflict with the ledger's state",
    };
    let mut e = ApiError::new(status, r.code(), title, r.to_string());
    if let Some(field) = r.field() {
        e.problem.errors.push(ProblemField {
            field: field.to_owned(),
            message: r.to_string(),
        });
    }
    let ext = &mut e.problem.extensions;
    if let Rejection::InsufficientStock {
        account,
        sku,
        lot,
        available,
        requested,
        ..
    } = &r
    {
        ext.insert("account".into(), account.to_string().into());
        ext.insert("sku".into(), sku.to_string().into());
        ext.insert("lot".into(), lot.as_ref().map(|l| l.to_string()).into());
        ext.insert("available".into(), available.to_string().into());
        ext.insert("requested".into(), requested.to_string().into());
    }
    if let Rejection::MoreThanOutstanding {
        shipment,
        destination,
        sku,
        lot,
        outstanding,
        requested,
        ..
    } = &r
    {
        ext.insert("shipment".into(), shipment.to_string().into());
        ext.insert("destination".into(), destination.to_string().into());
        ext.insert("sku".into(), sku.to_string().into());
        ext.insert("lot".into(), lot.as_ref().map(|l| l.to_string()).into());
        ext.insert("outstanding".into(), outstanding.to_string().into());
        ext.insert("requested".into(), requested.to_string().into());
    }
    e
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        match e {
            ServiceError::Rejected(r) => rejection(r),
            ServiceError::Invalid(fields) => ApiError::invalid(fields),
            e @ ServiceError::IdempotencyKeyReused { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                e.to_string(),
            ),
            e @ ServiceError::WriterGone => {
                tracing::error!(error = %e, "writer unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Service unavailable",
                    "the ledger is shutting down; try again",
                )
            }
            ServiceError::Store(e) => ApiError::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(self.problem)).into_response();
        res.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        res
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
