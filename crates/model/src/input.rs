//! Validated inputs: values that can only be made valid.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an input was refused. The message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("message body is empty")]
    EmptyBody,
    #[error("message body has {chars} characters; the limit is {limit}")]
    BodyTooLong { chars: usize, limit: usize },
    #[error("message body contains a control character other than newline or tab")]
    BodyControlChar,
    #[error("client_msg_id must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', ':' or '-'")]
    BadClientMsgId,
    #[error("email address is not valid")]
    BadEmail,
    #[error("name must be 1 to 100 characters without control or text-direction characters")]
    BadName,
    #[error("shortcut must be 1 to 32 characters of a-z, 0-9, '_' or '-'")]
    BadShortcut,
    #[error(
        "page_url must be an http:// or https:// URL of at most 2048 characters without credentials, spaces, control or text-direction characters"
    )]
    BadPageUrl,
}

/// True for characters that reorder displayed text (bidirectional controls):
/// harmless in chat text, but in a name they can disguise who wrote what.
/// The whole Unicode Bidi_Control set, the Arabic letter mark included.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// A person's display name: trimmed, 1 to 100 characters, no control or
/// text-direction characters. Rendered as text like everything else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let name = raw.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > 100 || name.chars().any(|c| c.is_control() || is_bidi_control(c)) {
            return Err(InputError::BadName);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The text of a chat message: trimmed, 1 to [`MessageBody::MAX_CHARS`]
/// characters, no control characters but newline and tab. Always plain text:
/// whatever shows it must render it as text, never as markup.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct MessageBody(String);

impl MessageBody {
    pub const MAX_CHARS: usize = 4000;

    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(InputError::EmptyBody);
        }
        let chars = trimmed.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(InputError::BodyTooLong {
                chars,
                limit: Self::MAX_CHARS,
            });
        }
        if trimmed
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(InputError::BodyControlChar);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// Wraps a body read back from the store, where it was validated on the way in.
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Message text is customer data: debug output shows its size, never its words.
impl fmt::Debug for MessageBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageBody({} bytes)", self.0.len())
    }
}

/// The sender's own id for a message, which makes resending idempotent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ClientMsgId(String);

impl ClientMsgId {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-');
        if raw.is_empty() || raw.len() > 64 || !raw.chars().all(ok_char) {
            return Err(InputError::BadClientMsgId);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, checked only for shape (one '@', no spaces, sane length):
/// deliverability is not ours to judge.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let raw = raw.trim();
        let shape_ok = raw.len() <= 254
            && !raw.chars().any(|c| c.is_whitespace() || c.is_control())
            && matches!(raw.split_once('@'), Some((local, domain))
                if !local.is_empty() && domain.contains('.') && !domain.contains('@'));
        if shape_ok {
            Ok(Self(raw.to_lowercase()))
        } else {
            Err(InputError::BadEmail)
        }
    }

    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Personal data: debug output does not show it.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_trimmed_and_bounded() {
        assert_eq!(
            MessageBody::parse("  hi \n").map(|b| b.0),
            Ok("hi".to_owned())
        );
        assert_eq!(MessageBody::parse(" \n\t "), Err(InputError::EmptyBody));
        let long = "é".repeat(MessageBody::MAX_CHARS + 1);
        assert!(matches!(
            MessageBody::parse(&long),
            Err(InputError::BodyTooLong { .. })
        ));
        let max = "é".repeat(MessageBody::MAX_CHARS);
        assert!(MessageBody::parse(&max).is_ok());
    }

    #[test]
    fn body_refuses_control_chars_but_keeps_code_and_newlines() {
        assert_eq!(
            MessageBody::parse("a\u{0}b"),
            Err(InputError::BodyControlChar)
        );
        let code = "SELECT * FROM t; <script>alert(1)</script>\n\tx";
        assert!(MessageBody::parse(code).is_ok());
    }

    #[test]
    fn body_debug_hides_text() {
        let body = MessageBody::parse("secret words").expect("valid");
        assert!(!format!("{body:?}").contains("secret"));
    }

    #[test]
    fn client_msg_id_charset() {
        assert!(ClientMsgId::parse("c-0190f1a2.x:1_").is_ok());
        for bad in ["", "has space", "ünï", &"a".repeat(65), "a/b"] {
            assert_eq!(
                ClientMsgId::parse(bad),
                Err(InputError::BadClientMsgId),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_refuse_controls_and_direction_overrides() {
        assert_eq!(
            DisplayName::parse(" Ann Lee ").map(|n| n.0),
            Ok("Ann Lee".to_owned())
        );
        for bad in [
            "",
            "  ",
            "a\nb",
            "evil\u{202e}gnp",
            "a\u{61c}b",
            &"n".repeat(101),
        ] {
            assert_eq!(DisplayName::parse(bad), Err(InputError::BadName), "{bad:?}");
        }
    }

    #[test]
    fn email_shape() {
        assert_eq!(
            Email::parse(" Ann@Example.COM ").map(|e| e.0),
            Ok("ann@example.com".into())
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.com",
            "a b@x.com",
            "a@b@c.com",
            "a@localhost",
        ] {
            assert_eq!(Email::parse(bad), Err(InputError::BadEmail), "{bad}");
        }
    }
}

/// The name of a canned response, typed as `/shortcut` in the reply box:
/// 1 to 32 characters of `a-z`, `0-9`, `_` and `-`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Shortcut(String);

impl Shortcut {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let ok = (1..=32).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ok {
            return Err(InputError::BadShortcut);
        }
        Ok(Self(raw.to_owned()))
    }

    /// A value read back from the store, where only parsed values are written.
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The host page a widget runs on, as agents see it: an `http://` or
/// `https://` URL cut to scheme, host and path. Query and fragment are
/// dropped (they can carry the visitor's own tokens); what is left is
/// rendered as text, never as a link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PageUrl(String);

impl PageUrl {
    pub const MAX_LEN: usize = 2048;

    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let lower = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
        let scheme_ok = lower.starts_with("https://") || lower.starts_with("http://");
        let clean = !raw
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || is_bidi_control(c));
        if !scheme_ok || !clean || raw.chars().count() > Self::MAX_LEN {
            return Err(InputError::BadPageUrl);
        }
        let end = raw.find(['?', '#']).unwrap_or(raw.len());
        let kept = &raw[..end];
        let host = kept.split_once("://").map_or("", |(_, rest)| rest);
        let authority = host.split('/').next().unwrap_or("");
        if authority.is_empty() || authority.contains('@') {
            return Err(InputError::BadPageUrl);
        }
        Ok(Self(kept.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A browser's User-Agent header as a label for agents: printable ASCII
/// only (anything else becomes `?`), at most 256 characters; `None` when
/// nothing printable is left.
pub fn browser_label(user_agent: &[u8]) -> Option<String> {
    let label: String = user_agent
        .iter()
        .take(256)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect();
    let label = label.trim();
    (!label.is_empty()).then(|| label.to_owned())
}

#[cfg(test)]
mod page_tests {
    use super::*;

    #[test]
    fn page_urls_keep_scheme_host_and_path_only() {
        let page = PageUrl::parse("https://shop.example/checkout?token=s3cret#step-2");
        assert_eq!(
            page.map(|p| p.0),
            Ok("https://shop.example/checkout".to_owned())
        );
        assert_eq!(
            PageUrl::parse("HTTP://shop.example").map(|p| p.0),
            Ok("HTTP://shop.example".to_owned())
        );
        let long = format!("https://shop.example/{}", "a".repeat(2100));
        for bad in [
            "",
            "javascript:alert(1)",
            "data:text/html,x",
            "https://",
            "https:///path",
            "https://shop.example/a b",
            "https://shop.example/\u{7}",
            "ftp://shop.example/",
            "https://user:secret@shop.example/p",
            "https://shop.example/\u{202e}gnp.exe",
            long.as_str(),
        ] {
            assert_eq!(PageUrl::parse(bad), Err(InputError::BadPageUrl), "{bad}");
        }
    }

    #[test]
    fn browser_labels_are_printable_and_bounded() {
        assert_eq!(
            browser_label(b"  Mozilla/5.0 (X11)  ").as_deref(),
            Some("Mozilla/5.0 (X11)")
        );
        assert_eq!(browser_label(b"a\nb\xffc").as_deref(), Some("a?b?c"));
        assert_eq!(browser_label(&[b'x'; 300]).map(|l| l.len()), Some(256));
        assert_eq!(browser_label(b"   "), None);
    }
}

#[cfg(test)]
mod shortcut_tests {
    use super::*;

    #[test]
    fn shortcuts_are_short_lower_case_words() {
        assert!(Shortcut::parse("refund-policy_2").is_ok());
        for bad in ["", "Refund", "has space", "/slash", &"x".repeat(33), "é"] {
            assert_eq!(Shortcut::parse(bad), Err(InputError::BadShortcut), "{bad}");
        }
    }
}
