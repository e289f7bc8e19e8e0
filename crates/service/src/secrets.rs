//! Server secrets: 256-bit random keys made on first use and kept in the database, so that
//! what the service signs with them (a recipient's acknowledgement link) stays valid across
//! restarts and in every process that serves the same database.

use crate::error::{Result, ServiceError};
use crate::Service;

/// The name of the key that signs recipients' acknowledgement links.
pub const RECIPIENT_LINK_KEY: &str = "recipient-link-hmac";

impl Service {
    /// The secret named `name` (32 bytes), made now when the database has none. Two processes
    /// asking at once get the same value: the first one stored wins.
    pub async fn secret(&self, name: &str) -> Result<Vec<u8>> {
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| {
            ServiceError::Store(store::StoreError::Backend(format!("no randomness: {e}")))
        })?;
        let now = self
            .now()
            .format(&time::format_description::well_known::Rfc3339)
            .expect("a UTC time formats");
        let stored = self.store().secret(name, &hex::encode(fresh), &now).await?;
        hex::decode(&stored).map_err(|_| {
            ServiceError::Store(store::StoreError::Corrupt(format!(
                "secret {name} is not hex"
            )))
        })
    }
}
