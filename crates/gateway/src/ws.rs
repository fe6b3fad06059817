//! The chat WebSocket protocol (see docs/API.md).
//!
//! One task per socket runs a select loop over four things: frames from the
//! client, acknowledgements coming back from the group-commit writer (kept in
//! submission order), events from the hub, and a keep-alive tick. Delivery is
//! by sequence number: a visitor socket sends message `n + 1` only after `n`,
//! and any gap (a lagging subscription, or messages committed while it was
//! replaying) is filled from the store. So a client that reconnects with its
//! last seen seq gets exactly what it missed, in order, once.

use crate::AppState;
use crate::error::ApiError;
use crate::extract::AgentAuth;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use palisade_chat::{Actor, ChatError, ConversationAccess, Event, PendingAppend};
use palisade_model::{
    AuthorKind, ClientMsgId, Conversation, ConversationId, Message, MessageBody, Note, Seq,
    now_millis,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
const PING_EVERY: Duration = Duration::from_secs(30);
/// A socket silent for this long (not even answering pings) is closed.
const IDLE_LIMIT: Duration = Duration::from_secs(75);
/// Invalid frames in a row before the socket is closed as abusive.
const MAX_INVALID_IN_A_ROW: u32 = 10;
/// Rate-limited frames in a row before the socket is closed as abusive.
const MAX_RATE_LIMITED_IN_A_ROW: u32 = 20;
/// Acknowledgements a socket may have outstanding before it stops reading.
const MAX_IN_FLIGHT: usize = 256;
const REPLAY_PAGE: i64 = 200;

/// Close codes (RFC 6455).
const POLICY_VIOLATION: u16 = 1008;
const GOING_AWAY: u16 = 1001;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientFrame {
    Hello {
        token: String,
        conversation_id: String,
        #[serde(default)]
        last_seq: Seq,
    },
    Send {
        #[serde(default)]
        conversation_id: Option<String>,
        client_msg_id: String,
        body: String,
    },
    Typing {
        #[serde(default)]
        conversation_id: Option<String>,
        typing: bool,
    },
    Ping {},
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerFrame<'a> {
    Ready {
        conversation_id: &'a ConversationId,
        last_seq: Seq,
    },
    Ack {
        client_msg_id: &'a str,
        conversation_id: &'a ConversationId,
        seq: Seq,
        message_id: &'a str,
        created_at: i64,
        duplicate: bool,
    },
    Message {
        message: &'a Message,
    },
    /// A private note; agent sockets only.
    Note {
        note: &'a Note,
    },
    Conversation {
        conversation: &'a Conversation,
    },
    Typing {
        conversation_id: &'a ConversationId,
        author_kind: AuthorKind,
        author_name: Option<&'a str>,
        typing: bool,
    },
    Pong,
    /// The agent socket fell behind: re-read the inbox.
    Resync,
    Error {
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<&'a str>,
    },
}

/// The socket was closed (by the peer, by us, or by an I/O error).
struct Closed;

type Acks = FuturesOrdered<
    futures_util::future::BoxFuture<
        'static,
        (
            String,
            ConversationId,
            Result<palisade_chat::Appended, ChatError>,
        ),
    >,
>;

/// One socket and its bookkeeping.
struct Socket {
    ws: WebSocket,
    state: AppState,
    invalid_in_a_row: u32,
    limited_in_a_row: u32,
    last_heard: Instant,
    acks: Acks,
    /// This socket's key in the rate limiter.
    id: String,
    /// The tenant and credential its sends count against, once known.
    caller: Option<(String, String)>,
}

impl Socket {
    fn new(ws: WebSocket, state: AppState) -> Self {
        state.metrics.websockets_open.fetch_add(1, Relaxed);
        Self {
            ws,
            state,
            invalid_in_a_row: 0,
            limited_in_a_row: 0,
            last_heard: Instant::now(),
            acks: FuturesOrdered::new(),
            id: uuid::Uuid::new_v4().simple().to_string(),
            caller: None,
        }
    }

    async fn send(&mut self, frame: &ServerFrame<'_>) -> Result<(), Closed> {
        let text = serde_json::to_string(frame).map_err(|_| Closed)?;
        self.ws
            .send(WsMessage::Text(text.into()))
            .await
            .map_err(|_| Closed)
    }

    async fn close(&mut self, code: u16, reason: &'static str) {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = self.ws.send(WsMessage::Close(Some(frame))).await;
    }

    /// Answers an invalid frame with an error event; too many in a row
    /// close the socket as abusive.
    async fn refuse(
        &mut self,
        code: &str,
        message: &str,
        client_msg_id: Option<&str>,
    ) -> Result<(), Closed> {
        self.state
            .metrics
            .websocket_frames_refused
            .fetch_add(1, Relaxed);
        self.invalid_in_a_row += 1;
        self.send(&ServerFrame::Error {
            code,
            message,
            client_msg_id,
        })
        .await?;
        if self.invalid_in_a_row >= MAX_INVALID_IN_A_ROW {
            self.close(POLICY_VIOLATION, "too many invalid frames")
                .await;
            return Err(Closed);
        }
        Ok(())
    }

    /// Answers a frame over a rate limit with a `rate_limited` error; a
    /// client that keeps going is closed with 1008.
    async fn rate_limited(&mut self, client_msg_id: Option<&str>) -> Result<(), Closed> {
        self.state.metrics.rate_limited.fetch_add(1, Relaxed);
        self.limited_in_a_row += 1;
        if self.limited_in_a_row >= MAX_RATE_LIMITED_IN_A_ROW {
            self.close(POLICY_VIOLATION, "rate limit exceeded").await;
            return Err(Closed);
        }
        self.send(&ServerFrame::Error {
            code: "rate_limited",
            message: "too many messages; slow down",
            client_msg_id,
        })
        .await
    }

    /// The next client frame that parses; invalid ones are refused here.
    /// `Ok(None)` means a control frame was handled and nothing is to do.
    async fn on_ws_message(
        &mut self,
        incoming: Option<Result<WsMessage, axum::Error>>,
    ) -> Result<Option<ClientFrame>, Closed> {
        let message = match incoming {
            Some(Ok(message)) => message,
            Some(Err(_)) | None => return Err(Closed),
        };
        self.last_heard = Instant::now();
        let text = match message {
            WsMessage::Text(text) => text,
            WsMessage::Binary(_) => {
                self.refuse(
                    "binary_frame",
                    "only text frames carrying JSON are accepted",
                    None,
                )
                .await?;
                return Ok(None);
            }
            WsMessage::Close(_) => return Err(Closed),
            WsMessage::Ping(_) | WsMessage::Pong(_) => return Ok(None),
        };
        if self
            .state
            .limits
            .check_socket(&self.id)
            .is_some_and(|d| !d.allowed)
        {
            self.rate_limited(None).await?;
            return Ok(None);
        }
        self.limited_in_a_row = 0;
        match crate::extract::parse_json::<ClientFrame>(text.as_bytes()) {
            Ok(frame) => {
                self.invalid_in_a_row = 0;
                Ok(Some(frame))
            }
            Err(ApiError::BadRequest { code, message }) => {
                self.refuse(code, &message, None).await?;
                Ok(None)
            }
            Err(_) => {
                self.refuse("invalid_frame", "frame is not a valid message", None)
                    .await?;
                Ok(None)
            }
        }
    }

    /// Validates a send and hands it to the writer; its ack comes later,
    /// in order, through `self.acks`.
    async fn submit(
        &mut self,
        access: &ConversationAccess,
        client_msg_id: String,
        body: String,
    ) -> Result<(), Closed> {
        let id = match ClientMsgId::parse(&client_msg_id) {
            Ok(id) => id,
            Err(err) => {
                return self
                    .refuse(
                        "invalid_client_msg_id",
                        &err.to_string(),
                        Some(&client_msg_id),
                    )
                    .await;
            }
        };
        let body = match MessageBody::parse(&body) {
            Ok(body) => body,
            Err(err) => {
                return self
                    .refuse("invalid_body", &err.to_string(), Some(&client_msg_id))
                    .await;
            }
        };
        if let Some((tenant, credential)) = &self.caller {
            let limits = &self.state.limits;
            let decision = limits.check_caller(crate::limits::Class::Send, tenant, credential);
            if decision.is_some_and(|d| !d.allowed) {
                return self.rate_limited(Some(&client_msg_id)).await;
            }
        }
        let conversation_id = access.conversation_id().clone();
        let pending: Result<PendingAppend, ChatError> =
            self.state.chat.submit(access, id, body).await;
        self.acks.push_back(Box::pin(async move {
            let outcome = match pending {
                Ok(pending) => pending.await.map_err(ChatError::from),
                Err(err) => Err(err),
            };
            (client_msg_id, conversation_id, outcome)
        }));
        Ok(())
    }

    async fn send_ack(
        &mut self,
        (client_msg_id, conversation_id, outcome): (
            String,
            ConversationId,
            Result<palisade_chat::Appended, ChatError>,
        ),
    ) -> Result<(), Closed> {
        match outcome {
            Ok(appended) => {
                let message = &appended.message;
                self.send(&ServerFrame::Ack {
                    client_msg_id: &client_msg_id,
                    conversation_id: &conversation_id,
                    seq: message.seq,
                    message_id: message.id.as_str(),
                    created_at: message.created_at,
                    duplicate: appended.duplicate,
                })
                .await
            }
            Err(ChatError::ClientIdReused) => {
                let message = "client_msg_id was already used for a different message";
                let client_msg_id = Some(client_msg_id.as_str());
                self.send(&ServerFrame::Error {
                    code: "conflict",
                    message,
                    client_msg_id,
                })
                .await
            }
            Err(ChatError::NotFound) => {
                self.send(&ServerFrame::Error {
                    code: "not_found",
                    message: "conversation not found",
                    client_msg_id: Some(&client_msg_id),
                })
                .await
            }
            Err(err) => {
                tracing::error!(error = %err, "storing a message failed");
                let message =
                    "the message was not stored; send it again with the same client_msg_id";
                self.send(&ServerFrame::Error {
                    code: "unavailable",
                    message,
                    client_msg_id: Some(&client_msg_id),
                })
                .await
            }
        }
    }

    /// Keep-alive: ping the client, and close a socket that went silent.
    async fn tick(&mut self) -> Result<(), Closed> {
        if self.last_heard.elapsed() > IDLE_LIMIT {
            self.close(GOING_AWAY, "idle").await;
            return Err(Closed);
        }
        self.ws
            .send(WsMessage::Ping(Default::default()))
            .await
            .map_err(|_| Closed)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.state.limits.forget_socket(&self.id);
        self.state.metrics.websockets_open.fetch_sub(1, Relaxed);
    }
}

fn configure(ws: WebSocketUpgrade, state: &AppState) -> WebSocketUpgrade {
    let max = state.settings.websocket_max_message_bytes;
    // Small buffers: tungstenite's defaults would cost 128 KiB per idle socket.
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(max)
        .max_frame_size(max)
}

// ---------------------------------------------------------------- visitors

pub async fn visitor_socket(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    configure(ws, &state).on_upgrade(move |ws| async move {
        let mut socket = Socket::new(ws, state);
        let _ = visitor_session(&mut socket).await;
    })
}

async fn visitor_session(socket: &mut Socket) -> Result<(), Closed> {
    let (access, conversation, client_last) = visitor_hello(socket).await?;
    let chat = socket.state.chat.clone();
    let conversation_id = conversation.id.clone();
    // Subscribe before replaying, so nothing committed in between is missed;
    // the seq check below drops what both paths deliver.
    let mut events = chat.hub().subscribe_conversation(&conversation_id);
    let mut last_sent = client_last.clamp(0, conversation.last_seq);
    replay(socket, &access, &mut last_sent).await?;
    socket
        .send(&ServerFrame::Ready {
            conversation_id: &conversation_id,
            last_seq: last_sent,
        })
        .await?;

    let mut keepalive = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        tokio::select! {
            incoming = socket.ws.recv(), if socket.acks.len() < MAX_IN_FLIGHT => {
                let Some(frame) = socket.on_ws_message(incoming).await? else { continue };
                match frame {
                    ClientFrame::Send { conversation_id: named, client_msg_id, body } => {
                        if named.is_some_and(|id| id != conversation_id.as_str()) {
                            socket.refuse("wrong_conversation", "this socket serves the conversation named in hello", Some(&client_msg_id)).await?;
                            continue;
                        }
                        socket.submit(&access, client_msg_id, body).await?;
                    }
                    ClientFrame::Typing { conversation_id: named, typing } => {
                        if named.is_some_and(|id| id != conversation_id.as_str()) {
                            let message = "this socket serves the conversation named in hello";
                            socket.refuse("wrong_conversation", message, None).await?;
                            continue;
                        }
                        chat.typing(&access, typing);
                    }
                    ClientFrame::Ping {} => socket.send(&ServerFrame::Pong).await?,
                    ClientFrame::Hello { .. } => socket.refuse("unexpected_hello", "hello was already received", None).await?,
                }
            }
            Some(ack) = socket.acks.next(), if !socket.acks.is_empty() => socket.send_ack(ack).await?,
            event = events.recv() => match event {
                Ok(event) => deliver_to_visitor(socket, &access, &event, &mut last_sent).await?,
                Err(RecvError::Lagged(_)) => replay(socket, &access, &mut last_sent).await?,
                Err(RecvError::Closed) => return Err(Closed),
            },
            _ = keepalive.tick() => socket.tick().await?,
        }
    }
}

/// Waits for the hello frame and authorises it.
async fn visitor_hello(
    socket: &mut Socket,
) -> Result<(ConversationAccess, Conversation, Seq), Closed> {
    let deadline = Instant::now() + HELLO_TIMEOUT;
    loop {
        let incoming = match tokio::time::timeout_at(deadline, socket.ws.recv()).await {
            Ok(incoming) => incoming,
            Err(_) => {
                socket
                    .close(POLICY_VIOLATION, "no hello within 10 seconds")
                    .await;
                return Err(Closed);
            }
        };
        let Some(frame) = socket.on_ws_message(incoming).await? else {
            continue;
        };
        let ClientFrame::Hello {
            token,
            conversation_id,
            last_seq,
        } = frame
        else {
            socket
                .refuse("hello_required", "the first message must be hello", None)
                .await?;
            continue;
        };
        let actor = match socket.state.visitor_actor(&token) {
            Ok(actor) => actor,
            Err(_) => {
                let _ = socket
                    .send(&ServerFrame::Error {
                        code: "unauthenticated",
                        message: "visitor token is invalid or expired",
                        client_msg_id: None,
                    })
                    .await;
                socket.close(POLICY_VIOLATION, "unauthenticated").await;
                return Err(Closed);
            }
        };
        if let Actor::Visitor {
            tenant_id,
            visitor_id,
            ..
        } = &actor
        {
            let caller = (
                tenant_id.as_str().to_owned(),
                visitor_id.as_str().to_owned(),
            );
            socket.caller = Some(caller);
        }
        let id = ConversationId::from_raw(conversation_id);
        match socket.state.chat.authorize(&actor, &id).await {
            Ok((access, conversation)) => return Ok((access, conversation, last_seq)),
            Err(ChatError::NotFound) => {
                let _ = socket
                    .send(&ServerFrame::Error {
                        code: "not_found",
                        message: "conversation not found",
                        client_msg_id: None,
                    })
                    .await;
                socket
                    .close(POLICY_VIOLATION, "conversation not found")
                    .await;
                return Err(Closed);
            }
            Err(err) => {
                tracing::error!(error = %err, "authorising a visitor socket failed");
                socket.close(1011, "internal error").await;
                return Err(Closed);
            }
        }
    }
}

/// Sends every stored message after `last_sent`, in order.
async fn replay(
    socket: &mut Socket,
    access: &ConversationAccess,
    last_sent: &mut Seq,
) -> Result<(), Closed> {
    loop {
        let page = match socket
            .state
            .chat
            .history(access, *last_sent, REPLAY_PAGE)
            .await
        {
            Ok(page) => page,
            Err(err) => {
                tracing::error!(error = %err, "replaying messages failed");
                socket.close(1011, "internal error").await;
                return Err(Closed);
            }
        };
        for message in &page {
            socket.send(&ServerFrame::Message { message }).await?;
            *last_sent = message.seq;
        }
        if (page.len() as i64) < REPLAY_PAGE {
            return Ok(());
        }
    }
}

async fn deliver_to_visitor(
    socket: &mut Socket,
    access: &ConversationAccess,
    event: &Event,
    last_sent: &mut Seq,
) -> Result<(), Closed> {
    match event {
        Event::Message { message, .. } => {
            if message.seq == *last_sent + 1 {
                socket.send(&ServerFrame::Message { message }).await?;
                *last_sent = message.seq;
            } else if message.seq > *last_sent + 1 {
                replay(socket, access, last_sent).await?;
            }
            Ok(())
        }
        Event::Conversation { conversation } => {
            socket
                .send(&ServerFrame::Conversation { conversation })
                .await
        }
        // Private notes never reach a visitor. The hub keeps them off the
        // conversation's channel; this refuses them again if one ever came.
        Event::Note { .. } => Ok(()),
        Event::Typing {
            author_kind: AuthorKind::Visitor,
            ..
        } => Ok(()),
        Event::Typing {
            conversation_id,
            author_kind,
            author_name,
            typing,
            ..
        } => {
            socket
                .send(&ServerFrame::Typing {
                    conversation_id,
                    author_kind: *author_kind,
                    author_name: author_name.as_deref(),
                    typing: *typing,
                })
                .await
        }
    }
}

// ------------------------------------------------------------------ agents

/// Agent sockets authenticate by the session cookie and must come from
/// Palisade's own origin (a page elsewhere cannot ride the cookie).
pub async fn agent_socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: AgentAuth,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if origin != Some(state.settings.public_origin.as_str()) {
        return Err(ApiError::Forbidden("WebSocket origin is not allowed"));
    }
    Ok(configure(ws, &state)
        .on_upgrade(move |ws| async move {
            let mut socket = Socket::new(ws, state);
            let caller = (
                auth.agent.tenant_id.as_str().to_owned(),
                auth.token_hash.clone(),
            );
            socket.caller = Some(caller);
            let _ = agent_session(&mut socket, auth).await;
        })
        .into_response())
}

async fn agent_session(socket: &mut Socket, auth: AgentAuth) -> Result<(), Closed> {
    let chat = socket.state.chat.clone();
    let actor = auth.actor();
    let mut events = chat.hub().subscribe_tenant(&auth.agent.tenant_id);
    let state = socket.state.clone();
    let mut ended = state.ended_sessions.subscribe();
    let mut accesses: HashMap<ConversationId, ConversationAccess> = HashMap::new();
    let mut keepalive = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        tokio::select! {
            incoming = socket.ws.recv(), if socket.acks.len() < MAX_IN_FLIGHT => {
                let Some(frame) = socket.on_ws_message(incoming).await? else { continue };
                let (named, client_msg_id) = match &frame {
                    ClientFrame::Send { conversation_id, client_msg_id, .. } => (conversation_id.clone(), Some(client_msg_id.clone())),
                    ClientFrame::Typing { conversation_id, .. } => (conversation_id.clone(), None),
                    ClientFrame::Ping {} => { socket.send(&ServerFrame::Pong).await?; continue; }
                    ClientFrame::Hello { .. } => { socket.refuse("unexpected_hello", "agent sockets need no hello", None).await?; continue; }
                };
                let Some(named) = named else {
                    socket.refuse("missing_field", "conversation_id is required on agent sockets", client_msg_id.as_deref()).await?;
                    continue;
                };
                let Some(access) = agent_access(socket, &actor, &mut accesses, named, client_msg_id.as_deref()).await? else { continue };
                match frame {
                    ClientFrame::Send { client_msg_id, body, .. } => socket.submit(&access, client_msg_id, body).await?,
                    ClientFrame::Typing { typing, .. } => chat.typing(&access, typing),
                    ClientFrame::Ping {} | ClientFrame::Hello { .. } => {}
                }
            }
            Some(ack) = socket.acks.next(), if !socket.acks.is_empty() => socket.send_ack(ack).await?,
            event = events.recv() => match event {
                Ok(event) => deliver_to_agent(socket, &event).await?,
                Err(RecvError::Lagged(_)) => socket.send(&ServerFrame::Resync).await?,
                Err(RecvError::Closed) => return Err(Closed),
            },
            hash = ended.recv() => {
                let ours = match hash {
                    Ok(hash) => hash == auth.token_hash,
                    // Missed some: check our own session now.
                    Err(RecvError::Lagged(_)) => !session_live(&state, &auth).await,
                    Err(RecvError::Closed) => true,
                };
                if ours {
                    socket.close(POLICY_VIOLATION, "session ended").await;
                    return Err(Closed);
                }
            }
            _ = keepalive.tick() => {
                socket.tick().await?;
                // Expiry and deactivation end the sockets too.
                if !session_live(&state, &auth).await {
                    socket.close(POLICY_VIOLATION, "session ended").await;
                    return Err(Closed);
                }
            }
        }
    }
}

/// True while the socket's session exists, is within its idle and absolute
/// limits, and its agent is active.
async fn session_live(state: &AppState, auth: &AgentAuth) -> bool {
    let store = state.chat.store();
    let now = now_millis();
    let idle = i64::try_from(state.settings.session_idle.as_millis()).unwrap_or(i64::MAX);
    let session_ok = matches!(store.session(&auth.token_hash).await,
        Ok(Some(s)) if s.expires_at > now && s.last_seen_at.saturating_add(idle) > now);
    let agent_ok = matches!(
        store.agent(&auth.agent.tenant_id, &auth.agent.id).await,
        Ok(Some(_))
    );
    session_ok && agent_ok
}

/// The access for a conversation named on an agent socket, authorised once
/// and then remembered for the socket's life.
async fn agent_access(
    socket: &mut Socket,
    actor: &Actor,
    accesses: &mut HashMap<ConversationId, ConversationAccess>,
    named: String,
    client_msg_id: Option<&str>,
) -> Result<Option<ConversationAccess>, Closed> {
    let id = ConversationId::from_raw(named);
    if let Some(access) = accesses.get(&id) {
        return Ok(Some(access.clone()));
    }
    match socket.state.chat.authorize(actor, &id).await {
        Ok((access, _)) => {
            if accesses.len() >= 1024 {
                accesses.clear();
            }
            accesses.insert(id, access.clone());
            Ok(Some(access))
        }
        Err(ChatError::NotFound) => {
            socket
                .refuse("not_found", "conversation not found", client_msg_id)
                .await?;
            Ok(None)
        }
        Err(err) => {
            tracing::error!(error = %err, "authorising an agent frame failed");
            socket
                .send(&ServerFrame::Error {
                    code: "unavailable",
                    message: "try again",
                    client_msg_id,
                })
                .await?;
            Ok(None)
        }
    }
}

async fn deliver_to_agent(socket: &mut Socket, event: &Event) -> Result<(), Closed> {
    match event {
        Event::Message { message, .. } => socket.send(&ServerFrame::Message { message }).await,
        Event::Note { note, .. } => socket.send(&ServerFrame::Note { note }).await,
        Event::Conversation { conversation } => {
            socket
                .send(&ServerFrame::Conversation { conversation })
                .await
        }
        Event::Typing {
            author_kind: AuthorKind::Visitor,
            conversation_id,
            author_name,
            typing,
            ..
        } => {
            socket
                .send(&ServerFrame::Typing {
                    conversation_id,
                    author_kind: AuthorKind::Visitor,
                    author_name: author_name.as_deref(),
                    typing: *typing,
                })
                .await
        }
        Event::Typing { .. } => Ok(()),
    }
}
