//! Tokens and roles: who may do what (DESIGN section 4), bearer tokens of 256 random bits
//! stored only as their SHA-256, and the check of a presented token.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use ledger::Rejection;
use sha2::{Digest, Sha256};
use store::{Inserted, TokenRecord};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{Result, ServiceError};
use crate::Service;

/// Longest token lifetime accepted, in days (ten years).
pub const TOKEN_LIFETIME_MAX_DAYS: u32 = 3_650;
/// Prefix of every token, so that one found in a log or a paste is recognisable.
pub const TOKEN_PREFIX: &str = "ppe_";

/// A role a token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Manufacturer,
    Coordinator,
    Auditor,
}

impl Role {
    pub const ALL: &'static [Role] = &[
        Role::Admin,
        Role::Manufacturer,
        Role::Coordinator,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manufacturer => "manufacturer",
            Role::Coordinator => "coordinator",
            Role::Auditor => "auditor",
        }
    }

    /// The role table of DESIGN section 4. Every role reads; only the listed roles write.
    pub fn may(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Manufacturer => matches!(
                p,
                Read | Items
                    | Locations
                    | Boms
                    | Purchases
                    | Production
                    | Donations
                    | StockCounts
                    | Shipments
            ),
            Role::Coordinator => matches!(
                p,
                Read | Parties
                    | Locations
                    | Receipts
                    | Batches
                    | Donations
                    | Acknowledgements
                    | StockCounts
                    | Shipments
            ),
            Role::Auditor => matches!(p, Read),
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Role, String> {
        Role::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| "must be one of admin, manufacturer, coordinator, auditor".to_owned())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request needs to be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Open to anyone, no token needed (health, the OpenAPI document).
    Open,
    /// Read anything: lists, documents, balances, reports, trace, verify.
    Read,
    Items,
    Parties,
    Locations,
    Boms,
    Purchases,
    Receipts,
    Production,
    Batches,
    Donations,
    Acknowledgements,
    /// Closing a shipment to further acknowledgements.
    Shipments,
    StockCounts,
    Reversals,
    PeriodClose,
    Tokens,
}

/// Who is calling: a token's name and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

/// Why a token was not accepted. All of them answer 401; the reason goes to the log only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("no such token")]
    Unknown,
    #[error("the token was revoked")]
    Revoked,
    #[error("the token has expired")]
    Expired,
}

/// A token just created: the only time its secret is seen.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub record: TokenRecord,
    pub token: String,
}

/// The SHA-256 of a token, hex: all that is stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// How long a token found in the database is trusted without reading it again. A token
/// revoked through this service stops working at once (the cache is emptied); one revoked by
/// another process on the same database (`ppe token revoke` while `ppe serve` runs) stops
/// within this time. Expiry is checked on every request, cached or not.
const TOKEN_CACHE_TTL_MS: u64 = 1_000;
/// Tokens held at most; past it the cache is emptied and fills again (tokens are few).
const TOKEN_CACHE_MAX: usize = 1_024;

/// Tokens recently found, by the hash of the secret: every API request presents one, and
/// reading it from the database each time was a round trip to the database's thread per
/// request. Unknown tokens are never cached, so a token created elsewhere works at once and a
/// stranger's guesses take no room.
#[derive(Default)]
pub(crate) struct TokenCache {
    found: std::sync::Mutex<Found>,
}

/// Each token found, by the hash of its secret, with when it was read.
type Found = HashMap<String, (TokenRecord, std::time::Instant)>;

impl TokenCache {
    fn get(&self, hash: &str) -> Option<TokenRecord> {
        self.lock()
            .get(hash)
            .filter(|(_, at)| at.elapsed() < Duration::from_millis(TOKEN_CACHE_TTL_MS))
            .map(|(t, _)| t.clone())
    }

    fn put(&self, hash: String, token: TokenRecord) {
        let mut found = self.lock();
        if found.len() >= TOKEN_CACHE_MAX {
            found.clear();
        }
        found.insert(hash, (token, std::time::Instant::now()));
    }

    fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Found> {
        self.found
            .lock()
            .expect("the token cache is never poisoned")
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("a UTC time formats")
}

impl Service {
    /// Creates a token of `role` named `name`, valid for `expires_in_days` when given.
    pub async fn create_token(
        &self,
        name: &str,
        role: Role,
        expires_in_days: Option<u32>,
    ) -> Result<NewToken> {
        ledger::ident::check_ident(name).map_err(|e| ServiceError::field("name", e))?;
        if let Some(d) = expires_in_days {
            if d == 0 || d > TOKEN_LIFETIME_MAX_DAYS {
                return Err(ServiceError::field(
                    "expires_in_days",
                    format!("must be between 1 and {TOKEN_LIFETIME_MAX_DAYS}"),
                ));
            }
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| {
            ServiceError::Store(store::StoreError::Backend(format!("no randomness: {e}")))
        })?;
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
        let now = self.now();
        let record = TokenRecord {
            name: name.to_owned(),
            role: role.as_str().to_owned(),
            token_hash: token_hash(&token),
            created_at: rfc3339(now),
            expires_at: expires_in_days.map(|d| rfc3339(now + time::Duration::days(i64::from(d)))),
            revoked_at: None,
        };
        match self.store().insert_token(&record).await? {
            Inserted::Created => Ok(NewToken { record, token }),
            Inserted::Existing(_) => Err(Rejection::StateForbids {
                what: "token",
                id: name.to_owned(),
                message: "a token of this name exists; revoke it or choose another name".into(),
            }
            .into()),
        }
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        Ok(self.store().tokens().await?)
    }

    pub async fn revoke_token(&self, name: &str) -> Result<()> {
        let revoked = self
            .store()
            .revoke_token(name, &rfc3339(self.now()))
            .await?;
        // Emptied whether or not this call revoked it: a revocation must never wait for the
        // cache to expire here.
        self.token_cache().clear();
        if revoked {
            Ok(())
        } else {
            Err(Rejection::NotFound {
                what: "token (not revoked)",
                id: name.to_owned(),
            }
            .into())
        }
    }

    /// Checks a presented token.
    pub async fn authenticate(
        &self,
        token: &str,
    ) -> Result<std::result::Result<Caller, AuthFailure>> {
        let hash = token_hash(token);
        let t = match self.token_cache().get(&hash) {
            Some(t) => t,
            None => match self.store().token_by_hash(&hash).await? {
                Some(t) => {
                    self.token_cache().put(hash, t.clone());
                    t
                }
                None => return Ok(Err(AuthFailure::Unknown)),
            },
        };
        if t.revoked_at.is_some() {
            return Ok(Err(AuthFailure::Revoked));
        }
        if let Some(exp) = &t.expires_at {
            let exp = OffsetDateTime::parse(exp, &Rfc3339)
                .map_err(|e| store::StoreError::Corrupt(format!("token expiry {exp:?}: {e}")))?;
            if self.now() >= exp {
                return Ok(Err(AuthFailure::Expired));
            }
        }
        let role = t
            .role
            .parse::<Role>()
            .map_err(|e| store::StoreError::Corrupt(format!("token role {:?}: {e}", t.role)))?;
        Ok(Ok(Caller { name: t.name, role }))
    }

    /// On first start, when the database has no token at all, creates an admin token named
    /// `admin` and returns it so that it can be shown once.
    pub async fn first_admin_token(&self) -> Result<Option<NewToken>> {
        if !self.store().tokens().await?.is_empty() {
            return Ok(None);
        }
        self.create_token("admin", Role::Admin, None)
            .await
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_table_follows_design() {
        use Permission::*;
        assert!(Role::Auditor.may(Read));
        for p in [
            Items,
            Parties,
            Locations,
            Boms,
            Purchases,
            Receipts,
            Production,
            Batches,
            Donations,
            Acknowledgements,
            Shipments,
            StockCounts,
            Reversals,
            PeriodClose,
            Tokens,
        ] {
            assert!(!Role::Auditor.may(p), "auditor may {p:?}");
            assert!(Role::Admin.may(p));
        }
        assert!(!Role::Coordinator.may(Production));
        assert!(Role::Coordinator.may(Batches));
        assert!(!Role::Manufacturer.may(Batches));
        assert!(Role::Manufacturer.may(Production));
        assert!(!Role::Manufacturer.may(Reversals));
    }

    #[test]
    fn only_the_hash_is_kept() {
        let h = token_hash("ppe_secret");
        assert_eq!(h.len(), 64);
        assert!(!h.contains("secret"));
    }
}
