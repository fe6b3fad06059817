//! A secret's policy, stored as JSON beside it.

use serde::{Deserialize, Serialize};

/// Who reads a secret: Palisade itself (`system:<component>`) or an operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    System(String),
    Operator,
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::System(component) => write!(f, "system:{component}"),
            Self::Operator => f.write_str("operator"),
        }
    }
}

/// Rotation, expiry, overlap and readers of one secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// After this long a secret is reported as due for rotation.
    pub rotate_every_secs: Option<u64>,
    /// A version cannot be read after this long.
    pub expire_after_secs: Option<u64>,
    /// How long a replaced version keeps verifying old signatures.
    pub overlap_secs: u64,
    /// Principals allowed to read values (`operator`, `system:<component>`).
    pub readers: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            rotate_every_secs: None,
            expire_after_secs: None,
            overlap_secs: 0,
            readers: vec!["operator".into()],
        }
    }
}

impl Policy {
    pub fn allows(&self, principal: &Principal) -> bool {
        let name = principal.to_string();
        self.readers.contains(&name)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    pub fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}
