//! Domain types shared by every Palisade part.
//!
//! Ids, validated inputs and the records that cross part boundaries live here,
//! so that a value which reached the chat service or the store has already been
//! checked. This crate knows nothing of HTTP, SQL or I/O and must stay that way:
//! every other crate depends on it.

mod ids;
mod input;
mod records;
mod widget;

pub use ids::{
    AgentId, ApiKeyId, ConversationId, MessageId, NoteId, TenantId, VisitorId, WidgetId,
};
pub use input::{
    ClientMsgId, DisplayName, Email, InputError, MessageBody, PageUrl, Shortcut, browser_label,
};
pub use records::{
    Agent, AuthorKind, CannedResponse, Conversation, ConversationStatus, Message, Note, Permission,
    Role, Seq, VisitorDetails, Widget,
};
pub use widget::{
    BusinessHours, ClockTime, FieldRule, Position, PreChat, SettingsError, ThemeColor,
    WidgetSettings, Window, check_text,
};

/// Milliseconds since the Unix epoch: the one time format of Palisade's records.
pub fn now_millis() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}
