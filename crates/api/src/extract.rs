//! Extractors whose refusals are problem+json, not axum's plain-text defaults: a JSON body
//! read exactly and strictly (unknown fields refused, the failing field named), query strings,
//! and the `Idempotency-Key` header.

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use service::FieldError;

use crate::error::ApiError;

/// Longest `Idempotency-Key` accepted.
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 255;

/// A JSON body. A body that is not JSON is 400; JSON of the wrong shape is 422 naming the
/// field (`lines[0].qty`); a body over the limit is 413.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_json(&bytes).map(Json)
    }
}

/// A body as bytes, for handlers that parse it themselves; over the limit it is 413
/// problem+json, not axum's plain text.
#[derive(Debug)]
pub struct RawBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::too_large(format!("the body is larger than this server accepts: {e}"))
                } else {
                    ApiError::bad_request(format!("cannot read the body: {e}"))
                }
            })
    }
}

/// Parses JSON strictly, naming the field at fault.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut *de) {
        // Anything but whitespace after the document (a second document, garbage) makes the
        // body malformed, as serde_json::from_slice would say.
        Ok(v) => match de.end() {
            Ok(()) => Ok(v),
            Err(e) => Err(ApiError::bad_request(format!(
                "the body is not valid JSON: {e}"
            ))),
        },
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let field = if path == "." { "body".to_owned() } else { path };
                    Err(ApiError::invalid(vec![FieldError {
                        field,
                        message: data_message(&inner),
                    }]))
                }
                _ => Err(ApiError::bad_request(format!(
                    "the body is not valid JSON: {inner}"
                ))),
            }
        }
    }
}

/// serde's message without its " at line 1 column 42" suffix, which names no field.
fn data_message(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// A query string; a malformed one is 400.
#[derive(Debug)]
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Q(v))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// The optional `Idempotency-Key` header.
#[derive(Debug)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(v) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyKey(None));
        };
        let bad = || {
            ApiError::invalid(vec![FieldError {
                field: "Idempotency-Key".into(),
                message: format!("must be 1 to {IDEMPOTENCY_KEY_MAX_LEN} visible ASCII characters"),
            }])
        };
        let s = v.to_str().map_err(|_| bad())?;
        if s.is_empty()
            || s.len() > IDEMPOTENCY_KEY_MAX_LEN
            || !s.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(bad());
        }
        Ok(IdempotencyKey(Some(s.to_owned())))
    }
}
