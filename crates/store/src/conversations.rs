//! Conversations and reading their messages. Writing messages is the
//! [`crate::MessageWriter`]'s job alone.

use crate::rows::{self, CONVERSATION_SELECT, MESSAGE_SELECT};
use crate::{Result, Store};
use palisade_model::{
    AgentId, Conversation, ConversationId, ConversationStatus, Message, Seq, TenantId, VisitorId,
    WidgetId, now_millis,
};
use sqlx::AssertSqlSafe;

/// The most messages one read returns.
pub const MAX_PAGE: i64 = 500;

impl Store {
    pub async fn create_conversation(
        &self,
        tenant: &TenantId,
        widget: &WidgetId,
        visitor: &VisitorId,
    ) -> Result<Conversation> {
        let id = ConversationId::generate();
        let now = now_millis();
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "INSERT INTO conversations (id, tenant_id, widget_id, visitor_id, status, last_seq, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, 'open', 0, $5, $5)",
        )
        .bind(id.as_str())
        .bind(tenant.as_str())
        .bind(widget.as_str())
        .bind(visitor.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.conversation(tenant, &id)
            .await?
            .ok_or(crate::StoreError::NotFound)
    }

    pub async fn conversation(
        &self,
        tenant: &TenantId,
        id: &ConversationId,
    ) -> Result<Option<Conversation>> {
        let sql = format!("{CONVERSATION_SELECT} WHERE c.tenant_id = $1 AND c.id = $2");
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        match row {
            Some(row) => Ok(Some(rows::conversation(self, &row).await?)),
            None => Ok(None),
        }
    }

    /// The tenant's conversations, most recently active first; `None` means all.
    pub async fn conversations(
        &self,
        tenant: &TenantId,
        status: Option<ConversationStatus>,
        limit: i64,
    ) -> Result<Vec<Conversation>> {
        let sql = format!(
            "{CONVERSATION_SELECT} WHERE c.tenant_id = $1 AND ($2 = 'all' OR c.status = $2) \
             ORDER BY c.updated_at DESC, c.id DESC LIMIT $3"
        );
        let mut tx = self.tenant_tx(tenant).await?;
        let found = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(status.map_or("all", ConversationStatus::as_str))
            .bind(limit.clamp(1, MAX_PAGE))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut out = Vec::with_capacity(found.len());
        for row in &found {
            out.push(rows::conversation(self, row).await?);
        }
        Ok(out)
    }

    /// The tenant's conversations changed after the cursor `(updated_at, id)`, oldest change
    /// first, at most `limit`: a feed a partner pages through.
    pub async fn conversations_changed(
        &self,
        tenant: &TenantId,
        after: (i64, &str),
        limit: i64,
    ) -> Result<Vec<Conversation>> {
        let sql = format!(
            "{CONVERSATION_SELECT} WHERE c.tenant_id = $1 \
             AND (c.updated_at > $2 OR (c.updated_at = $2 AND c.id > $3)) \
             ORDER BY c.updated_at, c.id LIMIT $4"
        );
        let mut tx = self.tenant_tx(tenant).await?;
        let found = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(after.0)
            .bind(after.1)
            .bind(limit.clamp(1, MAX_PAGE))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut out = Vec::with_capacity(found.len());
        for row in &found {
            out.push(rows::conversation(self, row).await?);
        }
        Ok(out)
    }

    pub async fn visitor_conversations(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
    ) -> Result<Vec<Conversation>> {
        let sql = format!(
            "{CONVERSATION_SELECT} WHERE c.tenant_id = $1 AND c.visitor_id = $2 \
             ORDER BY c.created_at DESC LIMIT 100"
        );
        let mut tx = self.tenant_tx(tenant).await?;
        let found = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(visitor.as_str())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut out = Vec::with_capacity(found.len());
        for row in &found {
            out.push(rows::conversation(self, row).await?);
        }
        Ok(out)
    }

    /// Assigns the conversation to `agent` (re-opening it if it was closed).
    pub async fn claim_conversation(
        &self,
        tenant: &TenantId,
        id: &ConversationId,
        agent: &AgentId,
    ) -> Result<Option<Conversation>> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done = sqlx::query(
            "UPDATE conversations SET status = 'assigned', assignee_id = $3, updated_at = $4 \
             WHERE tenant_id = $1 AND id = $2 \
             AND EXISTS (SELECT 1 FROM agents a WHERE a.tenant_id = $1 AND a.id = $3)",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(agent.as_str())
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.conversation(tenant, id).await
    }

    pub async fn close_conversation(
        &self,
        tenant: &TenantId,
        id: &ConversationId,
    ) -> Result<Option<Conversation>> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done = sqlx::query(
            "UPDATE conversations SET status = 'closed', updated_at = $3 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.conversation(tenant, id).await
    }

    /// Opens a closed conversation again: back to its assignee if it had
    /// one, else unassigned. One that is not closed is returned unchanged.
    pub async fn reopen_conversation(
        &self,
        tenant: &TenantId,
        id: &ConversationId,
    ) -> Result<Option<Conversation>> {
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "UPDATE conversations SET updated_at = $3, status = CASE \
             WHEN assignee_id IS NULL THEN 'open' ELSE 'assigned' END \
             WHERE tenant_id = $1 AND id = $2 AND status = 'closed'",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.conversation(tenant, id).await
    }

    /// Messages with a sequence number above `after`, in order, at most `limit`.
    pub async fn messages_after(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        after: Seq,
        limit: i64,
    ) -> Result<Vec<Message>> {
        let sql = format!(
            "{MESSAGE_SELECT} WHERE m.tenant_id = $1 AND m.conversation_id = $2 AND m.seq > $3 \
             ORDER BY m.seq LIMIT $4"
        );
        let mut tx = self.tenant_tx(tenant).await?;
        let found = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(conversation.as_str())
            .bind(after)
            .bind(limit.clamp(1, MAX_PAGE))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut out = Vec::with_capacity(found.len());
        for row in &found {
            out.push(rows::message(self, row).await?);
        }
        Ok(out)
    }
}
