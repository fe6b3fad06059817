//! Private notes on a conversation: agents only. Nothing on a visitor's
//! path (history, replay, socket) reads this table.

use crate::Result;
use crate::Store;
use crate::keyring::{KeyRing, NOTE_BODY};
use crate::rows;
use palisade_model::{AgentId, ConversationId, MessageBody, Note, NoteId, TenantId, now_millis};

impl Store {
    /// Stores a note, its body sealed with the tenant's active data key.
    /// The caller has authorised the agent for the conversation.
    pub async fn add_note(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        author: (&AgentId, &str),
        body: &MessageBody,
    ) -> Result<Note> {
        let id = NoteId::generate();
        let mut conn = self.pool().acquire().await?;
        let (version, key) = self.keys().active_key(&mut conn, tenant.as_str()).await?;
        drop(conn);
        let sealed = KeyRing::seal(&key, tenant.as_str(), NOTE_BODY, id.as_str(), body.as_str())?;
        let created_at = now_millis();
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "INSERT INTO notes (id, tenant_id, conversation_id, author_id, body, key_version, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.as_str())
        .bind(tenant.as_str())
        .bind(conversation.as_str())
        .bind(author.0.as_str())
        .bind(sealed)
        .bind(version)
        .bind(created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Note {
            id,
            conversation_id: conversation.clone(),
            author_id: author.0.clone(),
            author_name: author.1.to_owned(),
            body: body.clone(),
            created_at,
        })
    }

    /// The conversation's notes, oldest first (at most 500).
    pub async fn notes(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Vec<Note>> {
        let mut tx = self.tenant_tx(tenant).await?;
        let found = sqlx::query(
            "SELECT n.id, n.author_id, a.name AS author_name, n.body, n.key_version, \
             n.created_at FROM notes n \
             JOIN agents a ON a.id = n.author_id AND a.tenant_id = n.tenant_id \
             WHERE n.tenant_id = $1 AND n.conversation_id = $2 \
             ORDER BY n.created_at, n.id LIMIT 500",
        )
        .bind(tenant.as_str())
        .bind(conversation.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut notes = Vec::with_capacity(found.len());
        for row in &found {
            let id = rows::text(row, "id")?;
            let version = rows::opt_int(row, "key_version")?;
            let sealed = rows::text(row, "body")?;
            let body = self
                .keys()
                .open(
                    self.pool(),
                    tenant.as_str(),
                    NOTE_BODY,
                    &id,
                    version,
                    &sealed,
                )
                .await?;
            notes.push(Note {
                id: NoteId::from_raw(id),
                conversation_id: conversation.clone(),
                author_id: AgentId::from_raw(rows::text(row, "author_id")?),
                author_name: rows::text(row, "author_name")?,
                body: MessageBody::from_stored(body),
                created_at: rows::int(row, "created_at")?,
            });
        }
        Ok(notes)
    }
}
