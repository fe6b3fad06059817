//! Turning rows into records. Stored enums that do not parse mean the
//! database was changed behind Palisade's back: that is reported, not guessed.

use crate::keyring::{MESSAGE_BODY, VISITOR_NAME};
use crate::{Result, Store, StoreError};
use palisade_model::{
    Agent, AgentId, AuthorKind, ClientMsgId, Conversation, ConversationId, ConversationStatus,
    Email, Message, MessageBody, MessageId, Role, TenantId, VisitorId, Widget, WidgetId,
    WidgetSettings,
};
use sqlx::Row;
use sqlx::any::AnyRow;

pub(crate) fn text(row: &AnyRow, col: &str) -> Result<String> {
    Ok(row.try_get::<String, _>(col)?)
}

pub(crate) fn opt_text(row: &AnyRow, col: &str) -> Result<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}

pub(crate) fn int(row: &AnyRow, col: &str) -> Result<i64> {
    Ok(row.try_get::<i64, _>(col)?)
}

pub(crate) fn opt_int(row: &AnyRow, col: &str) -> Result<Option<i64>> {
    Ok(row.try_get::<Option<i64>, _>(col)?)
}

/// Opens the sealed visitor name a select joined in as `visitor_name`, with
/// the visitor's id and key version as `visitor_id` and `visitor_key_version`.
async fn visitor_name(store: &Store, tenant: &str, row: &AnyRow) -> Result<Option<String>> {
    let Some(sealed) = opt_text(row, "visitor_name")? else {
        return Ok(None);
    };
    let visitor = text(row, "visitor_id")?;
    let version = opt_int(row, "visitor_key_version")?;
    let name = store
        .keys()
        .open(
            store.pool(),
            tenant,
            VISITOR_NAME,
            &visitor,
            version,
            &sealed,
        )
        .await?;
    Ok(Some(name))
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} {value:?}"))
}

pub(crate) const WIDGET_COLUMNS: &str =
    "w.id, w.tenant_id, w.name, w.public_key, w.allowed_origins, w.greeting, w.settings";

pub(crate) fn widget(row: &AnyRow) -> Result<Widget> {
    let origins = text(row, "allowed_origins")?;
    let allowed_origins = serde_json::from_str(&origins)
        .map_err(|_| StoreError::Corrupt("widget allowed_origins is not a JSON list".into()))?;
    Ok(Widget {
        id: WidgetId::from_raw(text(row, "id")?),
        tenant_id: TenantId::from_raw(text(row, "tenant_id")?),
        name: text(row, "name")?,
        public_key: text(row, "public_key")?,
        allowed_origins,
        greeting: text(row, "greeting")?,
        settings: widget_settings(opt_text(row, "settings")?)?,
    })
}

/// Stored settings were checked on the way in; a document that no longer
/// parses or checks was changed behind Palisade's back.
fn widget_settings(stored: Option<String>) -> Result<WidgetSettings> {
    let Some(json) = stored else {
        return Ok(WidgetSettings::default());
    };
    let settings: WidgetSettings = serde_json::from_str(&json)
        .map_err(|e| StoreError::Corrupt(format!("widget settings: {e}")))?;
    settings
        .check()
        .map_err(|e| StoreError::Corrupt(format!("widget settings: {e}")))?;
    Ok(settings)
}

pub(crate) const AGENT_COLUMNS: &str = "a.id, a.tenant_id, a.email, a.name, a.role";

pub(crate) fn agent(row: &AnyRow) -> Result<Agent> {
    let role = text(row, "role")?;
    Ok(Agent {
        id: AgentId::from_raw(text(row, "id")?),
        tenant_id: TenantId::from_raw(text(row, "tenant_id")?),
        email: Email::from_stored(text(row, "email")?),
        name: text(row, "name")?,
        role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
    })
}

/// Columns for [`conversation`], with the visitor's (sealed) and assignee's
/// names joined in.
pub(crate) const CONVERSATION_SELECT: &str = "SELECT c.id, c.tenant_id, c.visitor_id, \
     v.name AS visitor_name, v.key_version AS visitor_key_version, \
     v.verified_user_id AS visitor_verified_user_id, c.status, c.assignee_id, a.name AS assignee_name, c.last_seq, \
     c.created_at, c.updated_at \
     FROM conversations c \
     JOIN visitors v ON v.id = c.visitor_id AND v.tenant_id = c.tenant_id \
     LEFT JOIN agents a ON a.id = c.assignee_id AND a.tenant_id = c.tenant_id";

/// A conversation row, with the visitor's name opened.
pub(crate) async fn conversation(store: &Store, row: &AnyRow) -> Result<Conversation> {
    let status = text(row, "status")?;
    let tenant = text(row, "tenant_id")?;
    let visitor_name = visitor_name(store, &tenant, row).await?;
    Ok(Conversation {
        id: ConversationId::from_raw(text(row, "id")?),
        tenant_id: TenantId::from_raw(tenant),
        visitor_id: VisitorId::from_raw(text(row, "visitor_id")?),
        visitor_name,
        visitor_verified_user_id: opt_text(row, "visitor_verified_user_id")?,
        status: ConversationStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        assignee_id: opt_text(row, "assignee_id")?.map(AgentId::from_raw),
        assignee_name: opt_text(row, "assignee_name")?,
        last_seq: int(row, "last_seq")?,
        created_at: int(row, "created_at")?,
        updated_at: int(row, "updated_at")?,
    })
}

/// Columns for [`message`], with the author's name joined in (sealed, for a visitor).
pub(crate) const MESSAGE_SELECT: &str = "SELECT m.id, m.tenant_id, m.conversation_id, m.seq, \
     m.client_msg_id, m.author_kind, m.author_id, m.body, m.key_version, m.created_at, \
     a.name AS agent_name, v.id AS visitor_id, v.name AS visitor_name, \
     v.key_version AS visitor_key_version \
     FROM messages m \
     LEFT JOIN agents a ON m.author_kind = 'agent' AND a.id = m.author_id \
         AND a.tenant_id = m.tenant_id \
     LEFT JOIN visitors v ON m.author_kind = 'visitor' AND v.id = m.author_id \
         AND v.tenant_id = m.tenant_id";

/// A message row, with its body and its visitor author's name opened.
pub(crate) async fn message(store: &Store, row: &AnyRow) -> Result<Message> {
    let kind = text(row, "author_kind")?;
    let tenant = text(row, "tenant_id")?;
    let id = text(row, "id")?;
    let body = store
        .keys()
        .open(
            store.pool(),
            &tenant,
            MESSAGE_BODY,
            &id,
            opt_int(row, "key_version")?,
            &text(row, "body")?,
        )
        .await?;
    let author_name = match opt_text(row, "agent_name")? {
        Some(name) => Some(name),
        None => visitor_name(store, &tenant, row).await?,
    };
    Ok(Message {
        id: MessageId::from_raw(id),
        conversation_id: ConversationId::from_raw(text(row, "conversation_id")?),
        seq: int(row, "seq")?,
        client_msg_id: ClientMsgId::from_stored(text(row, "client_msg_id")?),
        author_kind: AuthorKind::parse(&kind).ok_or_else(|| corrupt("author kind", &kind))?,
        author_id: opt_text(row, "author_id")?,
        author_name,
        body: MessageBody::from_stored(body),
        created_at: int(row, "created_at")?,
    })
}
