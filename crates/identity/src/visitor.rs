//! Signed visitor session tokens.
//!
//! Format: `v1.<base64url(claims JSON)>.<base64url(HMAC-SHA256(key, "v1." + payload))>`.
//! The signature is checked in constant time before the claims are parsed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use palisade_model::{TenantId, VisitorId, WidgetId};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const PREFIX: &str = "v1.";

/// What a visitor token vouches for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorClaims {
    #[serde(rename = "t")]
    pub tenant_id: TenantId,
    #[serde(rename = "w")]
    pub widget_id: WidgetId,
    #[serde(rename = "v")]
    pub visitor_id: VisitorId,
    /// Expiry, milliseconds since the Unix epoch.
    #[serde(rename = "exp")]
    pub expires_at: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VisitorTokenError {
    #[error("visitor token is malformed")]
    Malformed,
    #[error("visitor token signature is invalid")]
    BadSignature,
    #[error("visitor token has expired")]
    Expired,
}

/// Issues visitor tokens under the current server key and checks them under
/// it or a previous key still inside its rotation overlap.
#[derive(Clone)]
pub struct VisitorTokens {
    key: Vec<u8>,
    previous: Vec<Vec<u8>>,
}

impl std::fmt::Debug for VisitorTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VisitorTokens(***)")
    }
}

impl VisitorTokens {
    /// `key` must be at least 32 random bytes.
    pub fn new(key: &[u8]) -> Option<Self> {
        Self::with_previous(key, &[])
    }

    /// Issues with `key`; also accepts tokens signed with any of `previous`.
    /// Every key must be at least 32 bytes.
    pub fn with_previous(key: &[u8], previous: &[&[u8]]) -> Option<Self> {
        if key.len() < 32 || previous.iter().any(|k| k.len() < 32) {
            return None;
        }
        Some(Self {
            key: key.to_vec(),
            previous: previous.iter().map(|k| k.to_vec()).collect(),
        })
    }

    fn mac(&self) -> Hmac<Sha256> {
        mac_with(&self.key)
    }

    pub fn issue(&self, claims: &VisitorClaims) -> String {
        #[allow(
            clippy::expect_used,
            reason = "these claims are plain strings and integers"
        )]
        let json = serde_json::to_vec(claims).expect("claims serialise");
        let payload = URL_SAFE_NO_PAD.encode(json);
        let mut mac = self.mac();
        mac.update(PREFIX.as_bytes());
        mac.update(payload.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{PREFIX}{payload}.{signature}")
    }

    pub fn verify(&self, token: &str, now_millis: i64) -> Result<VisitorClaims, VisitorTokenError> {
        let rest = token
            .strip_prefix(PREFIX)
            .ok_or(VisitorTokenError::Malformed)?;
        let (payload, signature) = rest.split_once('.').ok_or(VisitorTokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| VisitorTokenError::Malformed)?;
        let genuine = std::iter::once(&self.key).chain(&self.previous).any(|key| {
            let mut mac = mac_with(key);
            mac.update(PREFIX.as_bytes());
            mac.update(payload.as_bytes());
            mac.verify_slice(&signature).is_ok()
        });
        if !genuine {
            return Err(VisitorTokenError::BadSignature);
        }
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| VisitorTokenError::Malformed)?;
        let claims: VisitorClaims =
            serde_json::from_slice(&json).map_err(|_| VisitorTokenError::Malformed)?;
        if claims.expires_at <= now_millis {
            return Err(VisitorTokenError::Expired);
        }
        Ok(claims)
    }
}

fn mac_with(key: &[u8]) -> Hmac<Sha256> {
    #[allow(clippy::expect_used, reason = "HMAC takes keys of any length")]
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(expires_at: i64) -> VisitorClaims {
        VisitorClaims {
            tenant_id: TenantId::from_raw("t1"),
            widget_id: WidgetId::from_raw("w1"),
            visitor_id: VisitorId::from_raw("v1"),
            expires_at,
        }
    }

    #[test]
    fn issued_token_verifies() {
        let tokens = VisitorTokens::new(&[7; 32]).expect("key");
        let token = tokens.issue(&claims(2_000));
        assert_eq!(tokens.verify(&token, 1_000), Ok(claims(2_000)));
    }

    #[test]
    fn expired_token_is_refused() {
        let tokens = VisitorTokens::new(&[7; 32]).expect("key");
        let token = tokens.issue(&claims(2_000));
        assert_eq!(
            tokens.verify(&token, 2_000),
            Err(VisitorTokenError::Expired)
        );
    }

    #[test]
    fn tampered_or_foreign_tokens_are_refused() {
        let tokens = VisitorTokens::new(&[7; 32]).expect("key");
        let other = VisitorTokens::new(&[8; 32]).expect("key");
        let token = tokens.issue(&claims(2_000));
        assert_eq!(
            other.verify(&token, 1_000),
            Err(VisitorTokenError::BadSignature)
        );
        let forged = tokens.issue(&claims(9_000));
        let (head, _) = forged.rsplit_once('.').expect("dot");
        let (_, sig) = token.rsplit_once('.').expect("dot");
        let spliced = format!("{head}.{sig}");
        assert_eq!(
            tokens.verify(&spliced, 1_000),
            Err(VisitorTokenError::BadSignature)
        );
        for junk in ["", "v1.", "v1.a", "v2.a.b", "v1.!!.??"] {
            assert!(tokens.verify(junk, 1_000).is_err(), "{junk}");
        }
    }

    #[test]
    fn tokens_signed_with_a_previous_key_still_verify_during_the_overlap() {
        let old = VisitorTokens::new(&[7; 32]).expect("key");
        let token = old.issue(&claims(i64::MAX));
        let rotated = VisitorTokens::with_previous(&[8; 32], &[&[7; 32]]).expect("keys");
        assert!(rotated.verify(&token, 0).is_ok());
        let after_overlap = VisitorTokens::new(&[8; 32]).expect("key");
        assert!(matches!(
            after_overlap.verify(&token, 0),
            Err(VisitorTokenError::BadSignature)
        ));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(VisitorTokens::new(&[1; 31]).is_none());
    }
}
