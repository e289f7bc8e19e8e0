//! The service's error: a domain rejection, field errors found while parsing, or a failure of
//! the store. The API turns each into one problem+json answer.

use ledger::Rejection;
use store::StoreError;

/// One field that was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The domain refused the request.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// Fields that could not be parsed; all of them, not just the first.
    #[error("invalid request: {}", .0.iter().map(|e| format!("{} {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// An `Idempotency-Key` reused with a different body.
    #[error("Idempotency-Key {key:?} was used before with a different request")]
    IdempotencyKeyReused { key: String },
    /// The store failed; the detail goes to the log, not to the client.
    #[error("storage failure: {0}")]
    Store(#[from] StoreError),
    /// The writer is gone (the service is shutting down).
    #[error("the ledger writer is not running")]
    WriterGone,
}

impl ServiceError {
    pub fn field(field: impl Into<String>, message: impl std::fmt::Display) -> ServiceError {
        ServiceError::Invalid(vec![FieldError {
            field: field.into(),
            message: message.to_string(),
        }])
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Collects field errors while parsing a request, so that a client learns of every bad field
/// at once.
#[derive(Debug, Default)]
pub struct Fields {
    errors: Vec<FieldError>,
}

impl Fields {
    /// Records the error of `r` under `field` and returns its value, if any.
    pub fn take<T, E: std::fmt::Display>(
        &mut self,
        field: impl Into<String>,
        r: std::result::Result<T, E>,
    ) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(FieldError {
                    field: field.into(),
                    message: e.to_string(),
                });
                None
            }
        }
    }
    pub fn push(&mut self, field: impl Into<String>, message: impl std::fmt::Display) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.to_string(),
        });
    }
    /// `Ok` when nothing was recorded.
    pub fn finish(self) -> Result<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Invalid(self.errors))
        }
    }
}
