//! Typed ids. Each kind of record has its own id type, so a conversation id can
//! never be passed where a tenant id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh, time-ordered id (UUIDv7).
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7().to_string())
            }

            /// Wraps an id read from the store or a request path. Ids are opaque:
            /// an unknown one simply matches nothing.
            pub fn from_raw(raw: impl Into<String>) -> Self {
                Self(raw.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A business using Palisade. Every row of tenant data carries one.
    TenantId
);
id_type!(
    /// A chat widget a tenant embeds on its site.
    WidgetId
);
id_type!(
    /// A visitor chatting through a widget.
    VisitorId
);
id_type!(
    /// An agent or admin account of a tenant.
    AgentId
);
id_type!(
    /// One conversation between a visitor and the tenant's agents.
    ConversationId
);
id_type!(
    /// One stored chat message.
    MessageId
);
id_type!(
    /// One private note agents keep on a conversation.
    NoteId
);
id_type!(
    /// A tenant API key (the id, not the secret token).
    ApiKeyId
);
