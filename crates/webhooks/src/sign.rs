//! Signing deliveries. The scheme (docs/WEBHOOKS.md): the signature is
//! HMAC-SHA256, keyed with the subscription's secret exactly as it was shown
//! (its ASCII bytes), over `"{timestamp}.{body}"`, where the timestamp is
//! the Unix time in seconds sent in [`TIMESTAMP_HEADER`] and the body is the
//! exact request body. It is sent as `v1=<lower-case hex>` in
//! [`SIGNATURE_HEADER`]. The event's id ([`EVENT_ID_HEADER`]) stays the same
//! across retries, for de-duplication.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const EVENT_ID_HEADER: &str = "palisade-event-id";
pub const EVENT_TYPE_HEADER: &str = "palisade-event-type";
pub const TIMESTAMP_HEADER: &str = "palisade-timestamp";
pub const SIGNATURE_HEADER: &str = "palisade-signature";
/// The prefix of a secret as shown: tells readers what the string is.
pub const SECRET_PREFIX: &str = "whsec_";

/// The `palisade-signature` value for a body sent at `timestamp`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        // HMAC takes keys of any length; this branch cannot be reached.
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// A new secret as shown once: the prefix and 32 random bytes in hex.
pub fn new_secret() -> Result<String, getrandom::Error> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut bytes[..])?;
    Ok(format!("{SECRET_PREFIX}{}", hex::encode(&bytes[..])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_pythons_hmac() {
        // Computed with python3: hmac.new(b"whsec_test",
        // b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
        let sig = signature(b"whsec_test", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            sig,
            "v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
        assert_ne!(sig, signature(b"whsec_test", 1_700_000_001, br#"{"a":1}"#));
        assert_ne!(sig, signature(b"whsec_tesT", 1_700_000_000, br#"{"a":1}"#));
    }

    #[test]
    fn secrets_are_fresh_and_prefixed() {
        let a = new_secret().expect("randomness");
        let b = new_secret().expect("randomness");
        assert!(a.starts_with(SECRET_PREFIX) && a.len() == SECRET_PREFIX.len() + 64);
        assert_ne!(a, b);
    }
}
