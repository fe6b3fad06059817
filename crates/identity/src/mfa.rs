//! TOTP (RFC 6238) second factor and one-time recovery codes.
//!
//! Codes are six digits over 30-second steps, SHA-1 (what every
//! authenticator app speaks), accepting one step of clock skew either side.
//! [`Totp::verify`] returns the matched step so the caller can store it and
//! refuse the same code, or any earlier one, again: a code works once.
//! Recovery codes are random, shown once, and stored only as SHA-256.

use crate::{SecretString, random_token, sha256_hex};
use std::fmt::Write;

/// A second-factor secret, loaded for one check or enrolment.
pub struct Totp {
    inner: totp_rs::Totp,
}

impl std::fmt::Debug for Totp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Totp(***)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MfaError {
    #[error("the stored second-factor secret is not valid base32")]
    BadSecret,
    #[error("making the QR code failed")]
    Qr,
}

impl Totp {
    /// A new random 160-bit secret.
    pub fn generate() -> Self {
        let mut secret = [0u8; 20];
        #[allow(clippy::expect_used, reason = "no randomness means no security: stop")]
        getrandom::fill(&mut secret).expect("the operating system gives no randomness");
        Self::from_bytes(secret.to_vec())
    }

    fn from_bytes(secret: Vec<u8>) -> Self {
        // 160-bit secret, 6 digits, 30 s, skew 1: all within the RFC, so
        // the compliant builder cannot refuse them.
        let built = totp_rs::Builder::new().with_secret(secret).build();
        #[allow(
            clippy::expect_used,
            reason = "parameters fixed above are RFC-compliant"
        )]
        let inner = built.expect("RFC 6238 parameters");
        Self { inner }
    }

    /// Loads a secret as stored (base32).
    pub fn from_base32(stored: &str) -> Result<Self, MfaError> {
        let secret = totp_rs::Secret::try_from_base32(stored).map_err(|_| MfaError::BadSecret)?;
        Ok(Self::from_bytes(secret.as_ref().to_vec()))
    }

    /// The secret in base32: what is stored and what a person may type in.
    pub fn base32(&self) -> SecretString {
        SecretString::new(self.inner.secret().to_base32())
    }

    /// The `otpauth://` URL authenticator apps read from the QR code.
    pub fn otpauth_url(&self, issuer: &str, account: &str) -> SecretString {
        let label = format!("{}:{}", percent(issuer), percent(account));
        SecretString::new(format!(
            "otpauth://totp/{label}?secret={}&issuer={}&algorithm=SHA1&digits=6&period=30",
            self.base32().expose(),
            percent(issuer)
        ))
    }

    /// The step a code matches at `unix_seconds`, if it matches one later
    /// than `last_used_step` (so a code is never accepted twice).
    pub fn verify(&self, code: &str, unix_seconds: u64, last_used_step: u64) -> Option<u64> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let step = self.inner.check(code, unix_seconds)?;
        (step > last_used_step).then_some(step)
    }

    /// The current code, for tests and for showing that enrolment works.
    pub fn code_at(&self, unix_seconds: u64) -> String {
        self.inner.generate(unix_seconds).to_string()
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn percent(value: &str) -> String {
    value.bytes().fold(String::new(), |mut out, b| {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
        out
    })
}

/// A QR code of `text` as a small SVG document (black modules on white).
pub fn qr_svg(text: &str) -> Result<String, MfaError> {
    let qr = qrcodegen::QrCode::encode_text(text, qrcodegen::QrCodeEcc::Medium)
        .map_err(|_| MfaError::Qr)?;
    let size = qr.size();
    let border = 4;
    let full = size + 2 * border;
    let mut path = String::new();
    for y in 0..size {
        for x in 0..size {
            if qr.get_module(x, y) {
                let _ = write!(path, "M{},{}h1v1h-1z", x + border, y + border);
            }
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {full} {full}\" \
         shape-rendering=\"crispEdges\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\
         <path d=\"{path}\" fill=\"#000\"/></svg>"
    ))
}

/// Ten recovery codes: (the codes to show once, their hashes to store).
pub fn recovery_codes() -> (Vec<SecretString>, Vec<String>) {
    (0..10)
        .map(|_| {
            let code = random_token(10);
            let hash = recovery_code_hash(code.expose());
            (code, hash)
        })
        .unzip()
}

/// How a recovery code is stored and looked up.
pub fn recovery_code_hash(code: &str) -> String {
    sha256_hex(code.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_accepted_once_and_only_within_one_step_of_skew() {
        let totp = Totp::generate();
        let now = 1_800_000_000;
        let code = totp.code_at(now);
        let step = totp.verify(&code, now, 0).expect("current code");
        assert_eq!(step, now / 30);
        assert_eq!(totp.verify(&code, now, step), None, "replay refused");
        assert!(
            totp.verify(&totp.code_at(now - 30), now, 0).is_some(),
            "one step behind"
        );
        assert!(
            totp.verify(&totp.code_at(now - 90), now, 0).is_none(),
            "three steps behind"
        );
        for junk in ["", "12345", "1234567", "abcdef"] {
            assert!(totp.verify(junk, now, 0).is_none(), "{junk}");
        }
    }

    #[test]
    fn rfc_6238_sha1_test_vector() {
        // RFC 6238 appendix B: the ASCII secret "12345678901234567890" at
        // T = 59 s gives 94287082; six digits keep the last six.
        let totp = Totp::from_bytes(b"12345678901234567890".to_vec());
        assert_eq!(totp.code_at(59), "287082");
        assert_eq!(totp.code_at(1_111_111_109), "081804");
    }

    #[test]
    fn secret_round_trips_through_base32_and_url() {
        let totp = Totp::generate();
        let again = Totp::from_base32(totp.base32().expose()).expect("base32");
        assert_eq!(again.code_at(1_000_000), totp.code_at(1_000_000));
        let url = totp.otpauth_url("Palisade", "ann@example.com");
        assert!(
            url.expose()
                .starts_with("otpauth://totp/Palisade:ann%40example.com?secret=")
        );
        assert!(qr_svg(url.expose()).expect("qr").starts_with("<svg"));
    }

    #[test]
    fn recovery_codes_are_distinct_and_stored_hashed() {
        let (codes, hashes) = recovery_codes();
        assert_eq!(codes.len(), 10);
        assert_eq!(hashes[3], recovery_code_hash(codes[3].expose()));
        assert_ne!(codes[0], codes[1]);
    }
}
