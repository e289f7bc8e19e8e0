//! Recipients' acknowledgement links: a signed, expiring token naming one shipment and one
//! destination, so that a hospital or community with no account can record what arrived of
//! that shipment, and of nothing else.
//!
//! A token is `SHIPMENT~DESTINATION~EXPIRES~SIGNATURE`: the shipment id and the destination's
//! party code as they are (identifiers never hold `~`), the expiry in Unix seconds, and the
//! HMAC-SHA256 of the first three under the server's secret (`service::secrets`), in base64url.
//! Anything changed in the first three (another shipment, another destination, a later
//! expiry) no longer matches the signature. The token holds no state: whether the shipment is
//! still open is asked of the ledger each time the link is used.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use service::Service;
use sha2::Sha256;
use tokio::sync::OnceCell;

/// How long a link printed on a packing list works.
pub const LINK_LIFETIME_DAYS: i64 = 60;

/// What a link names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub shipment: String,
    pub destination: String,
    /// Unix seconds after which the link is refused.
    pub expires: i64,
}

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Not a token this server makes.
    Malformed,
    /// The signature does not match what the token names.
    BadSignature,
    /// Signed, but past its expiry.
    Expired,
}

/// Separates the parts of a token; never part of an identifier or a number.
const SEP: char = '~';
/// Domain separation: this key signs nothing else, and a later format gets a new label.
const LABEL: &[u8] = b"ppe-recipient-link/v1\n";

fn mac(secret: &[u8], payload: &str) -> Hmac<Sha256> {
    let mut m =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any size");
    m.update(LABEL);
    m.update(payload.as_bytes());
    m
}

fn payload(c: &Claims) -> String {
    format!("{}{SEP}{}{SEP}{}", c.shipment, c.destination, c.expires)
}

/// The token for `claims`, signed with `secret`.
pub fn sign(secret: &[u8], claims: &Claims) -> String {
    let p = payload(claims);
    let sig = mac(secret, &p).finalize().into_bytes();
    format!("{p}{SEP}{}", URL_SAFE_NO_PAD.encode(sig))
}

/// The claims of `token` when `secret` signed it and it has not expired at `now` (Unix
/// seconds). The signature is checked first, in constant time, and only then the expiry.
pub fn verify(secret: &[u8], token: &str, now: i64) -> Result<Claims, LinkError> {
    let parts: Vec<&str> = token.split(SEP).collect();
    let [shipment, destination, expires, sig] = parts[..] else {
        return Err(LinkError::Malformed);
    };
    if shipment.is_empty() || destination.is_empty() {
        return Err(LinkError::Malformed);
    }
    let claims = Claims {
        shipment: shipment.to_owned(),
        destination: destination.to_owned(),
        expires: expires.parse().map_err(|_| LinkError::Malformed)?,
    };
    // One token per claim: `+5` or `05` is not how this server writes `5`.
    if claims.expires.to_string() != expires {
        return Err(LinkError::Malformed);
    }
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| LinkError::Malformed)?;
    mac(secret, &payload(&claims))
        .verify_slice(&sig)
        .map_err(|_| LinkError::BadSignature)?;
    if now > claims.expires {
        return Err(LinkError::Expired);
    }
    Ok(claims)
}

/// The server's key for links: read from the database (made there on first use) once per
/// process, then kept.
#[derive(Clone, Default)]
pub struct LinkKey(Arc<OnceCell<Vec<u8>>>);

impl LinkKey {
    pub async fn get(&self, s: &Service) -> service::Result<&[u8]> {
        self.0
            .get_or_try_init(|| s.secret(service::secrets::RECIPIENT_LINK_KEY))
            .await
            .map(Vec::as_slice)
    }
}

/// The path of a link's page.
pub fn path(token: &str) -> String {
    format!("/r/{token}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn claims() -> Claims {
        Claims {
            shipment: "DON-KR-1".into(),
            destination: "KR-DSMC".into(),
            expires: 1_600_000_000,
        }
    }

    #[test]
    fn a_signed_link_reads_back_until_it_expires() {
        let t = sign(KEY, &claims());
        assert!(t.starts_with("DON-KR-1~KR-DSMC~1600000000~"));
        assert_eq!(verify(KEY, &t, 1_599_999_999), Ok(claims()));
        assert_eq!(verify(KEY, &t, 1_600_000_000), Ok(claims()));
        assert_eq!(verify(KEY, &t, 1_600_000_001), Err(LinkError::Expired));
        // Only URL-safe characters: the token goes into a path and a QR code as it is.
        assert!(t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.~".contains(c)));
    }

    #[test]
    fn changing_anything_breaks_the_signature() {
        let t = sign(KEY, &claims());
        let other_shipment = t.replacen("DON-KR-1", "DON-FR-1", 1);
        assert_eq!(
            verify(KEY, &other_shipment, 0),
            Err(LinkError::BadSignature)
        );
        let other_party = t.replacen("KR-DSMC", "FR-APHP", 1);
        assert_eq!(verify(KEY, &other_party, 0), Err(LinkError::BadSignature));
        let later = t.replacen("1600000000", "1900000000", 1);
        assert_eq!(verify(KEY, &later, 0), Err(LinkError::BadSignature));
        let padded = t.replacen("1600000000", "+1600000000", 1);
        assert_eq!(verify(KEY, &padded, 0), Err(LinkError::Malformed));
        assert_eq!(
            verify(b"another key, another server.....", &t, 0),
            Err(LinkError::BadSignature)
        );
        let mut flipped = t.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(verify(KEY, &flipped, 0), Err(LinkError::BadSignature));
    }

    #[test]
    fn what_is_not_a_token_is_malformed() {
        for t in [
            "",
            "DON-KR-1",
            "DON-KR-1~KR-DSMC~1600000000",
            "DON-KR-1~KR-DSMC~soon~AAAA",
            "~KR-DSMC~1~AAAA",
            "DON-KR-1~KR-DSMC~1~not base64!",
            "a~b~1~c~d",
        ] {
            assert_eq!(verify(KEY, t, 0), Err(LinkError::Malformed), "{t:?}");
        }
    }
}
