//! Records as the store returns them and the API shows them.

use crate::{
    AgentId, ClientMsgId, ConversationId, Email, MessageBody, MessageId, NoteId, TenantId,
    VisitorId, WidgetId,
};
use serde::{Deserialize, Serialize};

/// A message's position in its conversation: 1, 2, 3, ... with no gaps.
pub type Seq = i64;

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorKind {
    Visitor,
    Agent,
    System,
}

impl AuthorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visitor => "visitor",
            Self::Agent => "agent",
            Self::System => "system",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "visitor" => Some(Self::Visitor),
            "agent" => Some(Self::Agent),
            "system" => Some(Self::System),
            _ => None,
        }
    }
}

/// Where a conversation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    Open,
    Assigned,
    Closed,
}

impl ConversationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Assigned => "assigned",
            Self::Closed => "closed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "open" => Some(Self::Open),
            "assigned" => Some(Self::Assigned),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

/// What an account may do. The platform operator manages tenants and reads
/// no tenant's conversations; owners, admins and agents act in their own
/// tenant only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Operator,
    Owner,
    Admin,
    Agent,
}

/// One thing a route may need. Every route declares the permission it needs
/// (or that it is public or for visitors), and [`Role::permissions`] is the
/// whole matrix: nothing else grants access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Read the tenant's conversations and messages.
    ConversationsRead,
    /// Write messages, claim and close conversations.
    ConversationsWrite,
    /// See the tenant's widgets.
    WidgetsRead,
    /// See the tenant's agents.
    AgentsRead,
    /// Invite, change and deactivate agents and admins.
    AgentsManage,
    /// Create or change owners.
    OwnersManage,
    /// Create and revoke the tenant's API keys.
    ApiKeysManage,
    /// Create and manage tenants (platform operators only).
    TenantsManage,
    /// Read the tenant's audit log.
    AuditRead,
    /// Change tenant-wide settings: MFA policy, visitor identity verification.
    SettingsManage,
    /// Change widgets: theme, greeting, pre-chat fields, business hours,
    /// canned responses.
    WidgetsManage,
    /// Issue, renew and revoke partner certificates.
    PartnersManage,
    /// Subscribe, change and remove webhooks.
    WebhooksManage,
}

impl Permission {
    pub const ALL: [Permission; 13] = [
        Self::ConversationsRead,
        Self::ConversationsWrite,
        Self::WidgetsRead,
        Self::AgentsRead,
        Self::AgentsManage,
        Self::OwnersManage,
        Self::ApiKeysManage,
        Self::TenantsManage,
        Self::AuditRead,
        Self::SettingsManage,
        Self::WidgetsManage,
        Self::PartnersManage,
        Self::WebhooksManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConversationsRead => "conversations_read",
            Self::ConversationsWrite => "conversations_write",
            Self::WidgetsRead => "widgets_read",
            Self::AgentsRead => "agents_read",
            Self::AgentsManage => "agents_manage",
            Self::OwnersManage => "owners_manage",
            Self::ApiKeysManage => "api_keys_manage",
            Self::TenantsManage => "tenants_manage",
            Self::AuditRead => "audit_read",
            Self::SettingsManage => "settings_manage",
            Self::WidgetsManage => "widgets_manage",
            Self::PartnersManage => "partners_manage",
            Self::WebhooksManage => "webhooks_manage",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }
}

impl Role {
    pub const ALL: [Role; 4] = [Self::Operator, Self::Owner, Self::Admin, Self::Agent];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Agent => "agent",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }

    /// The permission matrix (also in docs/PERMISSIONS.md; a test keeps the
    /// two equal).
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Self::Operator => &[TenantsManage],
            Self::Owner => &[
                ConversationsRead,
                ConversationsWrite,
                WidgetsRead,
                AgentsRead,
                AgentsManage,
                OwnersManage,
                ApiKeysManage,
                AuditRead,
                SettingsManage,
                WidgetsManage,
                PartnersManage,
                WebhooksManage,
            ],
            Self::Admin => &[
                ConversationsRead,
                ConversationsWrite,
                WidgetsRead,
                AgentsRead,
                AgentsManage,
                ApiKeysManage,
                AuditRead,
                SettingsManage,
                WidgetsManage,
                PartnersManage,
                WebhooksManage,
            ],
            Self::Agent => &[ConversationsRead, ConversationsWrite],
        }
    }

    pub fn has(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }

    /// Whether multi-factor sign-in is mandatory for this role (for agents
    /// it is the tenant's choice).
    pub fn requires_mfa(self) -> bool {
        !matches!(self, Self::Agent)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Widget {
    pub id: WidgetId,
    pub tenant_id: TenantId,
    pub name: String,
    pub public_key: String,
    pub allowed_origins: Vec<String>,
    pub greeting: String,
    pub settings: crate::WidgetSettings,
}

#[derive(Clone, Debug, Serialize)]
pub struct Agent {
    pub id: AgentId,
    pub tenant_id: TenantId,
    pub email: Email,
    pub name: String,
    pub role: Role,
}

#[derive(Clone, Debug, Serialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub tenant_id: TenantId,
    pub visitor_id: VisitorId,
    pub visitor_name: Option<String>,
    /// The tenant's id for the visitor, vouched for by its signature
    /// (visitor identity verification); None when not verified.
    pub visitor_verified_user_id: Option<String>,
    pub status: ConversationStatus,
    pub assignee_id: Option<AgentId>,
    pub assignee_name: Option<String>,
    pub last_seq: Seq,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub seq: Seq,
    pub client_msg_id: ClientMsgId,
    pub author_kind: AuthorKind,
    pub author_id: Option<String>,
    pub author_name: Option<String>,
    pub body: MessageBody,
    pub created_at: i64,
}

/// A visitor as agents see them: the sealed fields opened.
#[derive(Clone, Debug, Serialize)]
pub struct VisitorDetails {
    pub id: VisitorId,
    pub widget_id: WidgetId,
    pub widget_name: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The host page the widget was last opened on: scheme, host and path.
    pub page_url: Option<String>,
    /// The visitor's browser, as its User-Agent header named it.
    pub browser: Option<String>,
    pub created_at: i64,
}

/// A private note: written by an agent for the tenant's agents, never
/// shown to the visitor. Kept apart from messages (its own table, no place
/// in the conversation's message sequence) so no visitor path can reach it.
#[derive(Clone, Debug, Serialize)]
pub struct Note {
    pub id: NoteId,
    pub conversation_id: ConversationId,
    pub author_id: AgentId,
    pub author_name: String,
    pub body: MessageBody,
    pub created_at: i64,
}

/// A ready-made reply of a tenant, inserted by typing `/shortcut`.
#[derive(Clone, Debug, Serialize)]
pub struct CannedResponse {
    pub shortcut: crate::Shortcut,
    pub body: MessageBody,
    pub updated_at: i64,
}
