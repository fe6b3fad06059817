//! Visitor identity verification: the tenant's own server signs its user's
//! id with a secret it shares with Palisade (HMAC-SHA256, lower-case hex),
//! and the widget passes id and signature along. A matching signature means
//! the tenant vouches for the id.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The longest user id accepted, in bytes.
pub const MAX_USER_ID_BYTES: usize = 200;

fn mac(secret: &[u8], user_id: &str) -> Hmac<Sha256> {
    #[allow(clippy::expect_used, reason = "HMAC takes keys of any length")]
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(user_id.as_bytes());
    mac
}

/// The lower-case hex signature of `user_id` under `secret`.
pub fn user_hash(secret: &[u8], user_id: &str) -> String {
    let tag = mac(secret, user_id).finalize().into_bytes();
    tag.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `hex` is the signature of `user_id` under `secret`. The
/// comparison takes the same time wherever the first difference is.
pub fn verify_user_hash(secret: &[u8], user_id: &str, hex: &str) -> bool {
    let Some(tag) = decode_lower_hex(hex) else {
        return false;
    };
    mac(secret, user_id).verify_slice(&tag).is_ok()
}

fn decode_lower_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    hex.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_id_and_secret() {
        let signed = user_hash(b"secret one", "user-42");
        assert_eq!(signed.len(), 64);
        assert!(verify_user_hash(b"secret one", "user-42", &signed));
        assert!(!verify_user_hash(b"secret two", "user-42", &signed));
        assert!(!verify_user_hash(b"secret one", "user-43", &signed));
        assert!(!verify_user_hash(
            b"secret one",
            "user-42",
            &signed.to_uppercase()
        ));
        assert!(!verify_user_hash(b"secret one", "user-42", &signed[..62]));
        assert!(!verify_user_hash(b"secret one", "user-42", "zz"));
    }
}
