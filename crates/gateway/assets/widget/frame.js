// The visitor's side of a chat, inside the widget iframe.
//
// This runs on Palisade's origin, never on the host page's. The host page
// hears only three things from it, by postMessage and only at the host's own
// origin: the frame is ready, how many messages are unread, and that the
// visitor wants the chat closed.
//
// Start-up: the widget key from location.hash -> the token and conversation
// saved for that key, or new ones -> history over HTTP -> a WebSocket hello
// with the last seq seen, which replays anything newer and then streams.

import { charCount, isSendKey } from "./dom.js";
import { ApiError, fetchJson, socketUrl } from "./http.js";
import { ChatLog } from "./chatlog.js";
import { Socket } from "./socket.js";
import { TypingIn, TypingOut } from "./typing.js";

const PAGE_SIZE = 100;
const MAX_BODY_CHARS = 4000;
// A saved token with under a minute left is not worth trying; one with under
// an hour left is traded in for a fresh one for the same visitor.
const MIN_TOKEN_LIFE_MS = 60 * 1000;
const RENEW_BEFORE_MS = 60 * 60 * 1000;
const START_RETRY_MAX_MS = 30 * 1000;

const $ = (id) => document.getElementById(id);
const ui = {
  title: $("title"),
  close: $("close"),
  banner: $("banner"),
  scroller: $("scroller"),
  greeting: $("greeting"),
  typing: $("typing"),
  ended: $("ended"),
  restart: $("restart"),
  composer: $("composer"),
  input: $("input"),
  send: $("send"),
};

const widgetKey = new URLSearchParams(location.hash.slice(1)).get("key") || "";
const store = savedSession(`palisade.visitor.${widgetKey}`);
const parentOrigin = findParentOrigin();

let session = null; // { token, expires_at, visitor_id, conversation_id, widget }
let socket = null;
let ready = false; // the current socket's hello has been answered with "ready"
let panelOpen = true; // the host page is showing the chat panel
let unread = 0;
let counting = false; // unread counts only messages that arrive after start-up
let carryOver = []; // bodies still unsent when the session had to start over

const log = new ChatLog($("log"), {
  scroller: ui.scroller,
  isMine: (m) => m.author_kind === "visitor",
  authorLabel: (m) => (m.author_kind === "agent" ? m.author_name || "Agent" : null),
  onRetry(entry) {
    log.markSending(entry);
    transmit(entry);
    ui.input.focus();
  },
});

const typingIn = new TypingIn(ui.typing);
const typingOut = new TypingOut((typing) => {
  if (!ready) return false;
  return socket.send({ type: "typing", conversation_id: session.conversation_id, typing });
});

// ---- start-up -------------------------------------------------------------

async function start(attempt = 0) {
  try {
    await openSession();
  } catch (err) {
    if (err instanceof ApiError && err.status < 500 && err.status !== 429) {
      // An unknown or disabled widget key, or a page not allowed to use it.
      showBanner("Chat is not available right now.");
      return;
    }
    showBanner("Can't reach the chat. Trying again…");
    const delay = Math.min(1000 * 2 ** attempt, START_RETRY_MAX_MS);
    setTimeout(() => start(attempt + 1), delay);
    return;
  }

  showBanner(null);
  for (const body of carryOver.splice(0)) log.addPending(body);
  counting = true;
  setComposerEnabled(true);
  if (document.hasFocus()) ui.input.focus();
  connect();
}

// Resumes the saved session, or starts a new one if the server no longer
// knows the saved token.
async function openSession() {
  try {
    await resume(store.load());
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) throw err;
    store.clear();
    await resume(null);
  }
}

async function resume(saved) {
  session = await usableSession(saved);
  showWidget(session.widget);

  // Listing this visitor's conversations also proves the token still works.
  const conversation = session.conversation_id && (await findConversation(session.conversation_id));
  if (conversation) {
    showEnded(conversation.status === "closed");
  } else {
    await newConversation();
  }

  store.save(session);
  log.clear();
  await loadHistory();
}

async function usableSession(saved) {
  const left = saved ? saved.expires_at - Date.now() : 0;
  if (left > RENEW_BEFORE_MS) return saved;

  if (left > MIN_TOKEN_LIFE_MS) {
    try {
      const fresh = await createSession({ resume_token: saved.token });
      return { ...fresh, conversation_id: saved.conversation_id };
    } catch (err) {
      // Offline or the server is busy: the old token still has time left.
      if (!(err instanceof ApiError)) return saved;
    }
  }
  return createSession({});
}

async function createSession(extra) {
  const body = { widget_key: widgetKey, ...extra };
  const answer = await fetchJson("POST", "/v1/visitor/sessions", { body });
  return {
    token: answer.token,
    visitor_id: answer.visitor_id,
    expires_at: answer.expires_at,
    widget: answer.widget || {},
    conversation_id: null,
  };
}

async function findConversation(id) {
  const { conversations } = await api("GET", "/v1/visitor/conversations");
  return conversations.find((c) => c.id === id) || null;
}

async function newConversation() {
  const conversation = await api("POST", "/v1/visitor/conversations", {});
  session.conversation_id = conversation.id;
  store.save(session);
  showEnded(false);
}

// Fetches every message after the last one shown, a page at a time.
async function loadHistory() {
  const path = `/v1/visitor/conversations/${encodeURIComponent(session.conversation_id)}/messages`;
  let after = log.lastSeq;

  for (;;) {
    const { messages } = await api("GET", `${path}?after_seq=${after}&limit=${PAGE_SIZE}`);
    for (const message of messages) receive(message);

    const last = messages.length ? messages[messages.length - 1].seq : after;
    if (messages.length < PAGE_SIZE || last <= after) return;
    after = last;
  }
}

function api(method, path, body) {
  const headers = { authorization: `Bearer ${session.token}` };
  return fetchJson(method, path, { body, headers });
}

// ---- live connection ------------------------------------------------------

function connect() {
  socket?.stop();
  ready = false;
  socket = new Socket(socketUrl("/v1/visitor/ws"), {
    onOpen() {
      socket.send({
        type: "hello",
        token: session.token,
        conversation_id: session.conversation_id,
        last_seq: log.lastSeq,
      });
    },
    onFrame,
    onClose() {
      const helloAccepted = ready;
      ready = false;
      showBanner("Reconnecting…");
      if (!helloAccepted) checkToken();
    },
  });
  socket.start();
}

function onFrame(frame) {
  switch (frame.type) {
    case "ready":
      ready = true;
      showBanner(null);
      // Replay should have brought everything; if not, fill the gap.
      if (frame.last_seq > log.lastSeq) loadHistory().catch(() => {});
      for (const entry of log.unsent()) {
        log.markSending(entry);
        transmit(entry);
      }
      break;

    case "message":
      if (frame.message && frame.message.conversation_id === session.conversation_id) {
        receive(frame.message);
      }
      break;

    case "ack":
      log.ack(frame);
      break;

    case "typing":
      if (frame.author_kind === "agent" && frame.conversation_id === session.conversation_id) {
        if (frame.typing) typingIn.show(frame.author_name || "Agent");
        else typingIn.hide();
      }
      break;

    case "conversation":
      if (frame.conversation && frame.conversation.id === session.conversation_id) {
        showEnded(frame.conversation.status === "closed");
      }
      break;

    case "error":
      if (frame.client_msg_id) log.fail(frame.client_msg_id, frame.message);
      else if (!ready) checkToken(); // the hello itself was refused
      break;
  }
}

// The socket closed or refused us before "ready". If the token is the reason,
// start over as a new visitor; any other failure just waits for the retry.
let checkingToken = false;
async function checkToken() {
  if (checkingToken || !session) return;
  checkingToken = true;
  try {
    await api("GET", "/v1/visitor/conversations");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) startOver();
  } finally {
    checkingToken = false;
  }
}

function startOver() {
  carryOver = log.unsent().map((entry) => entry.body);
  socket?.stop();
  socket = null;
  ready = false;
  store.clear();
  setComposerEnabled(false);
  start();
}

// ---- messages -------------------------------------------------------------

function receive(message) {
  if (!log.add(message) || message.author_kind === "visitor") return;

  if (message.author_kind === "agent") typingIn.hide();
  if (counting && (document.hidden || !panelOpen)) setUnread(unread + 1);
}

function submit() {
  const body = ui.input.value.trim();
  if (!body || ui.input.disabled) return;

  if (charCount(body) > MAX_BODY_CHARS) {
    ui.input.setCustomValidity(`A message can be at most ${MAX_BODY_CHARS} characters.`);
    ui.input.reportValidity();
    return;
  }

  ui.input.value = "";
  typingOut.stop();
  transmit(log.addPending(body));
}

// Sends now if connected; otherwise the message waits for the next "ready".
function transmit(entry) {
  if (!ready) return;
  socket.send({
    type: "send",
    conversation_id: session.conversation_id,
    client_msg_id: entry.id,
    body: entry.body,
  });
}

// ---- the page around us ---------------------------------------------------

function tellParent(message) {
  if (parentOrigin) window.parent.postMessage(message, parentOrigin);
}

function setUnread(count) {
  if (count === unread) return;
  unread = count;
  tellParent({ type: "palisade:unread", count });
}

function markSeen() {
  if (!document.hidden && panelOpen) setUnread(0);
}

// The origin of the page that embeds us, or null if unknown (then we post
// nothing). ancestorOrigins is exact where supported; otherwise the referrer,
// which the loader asks to be at least the origin (referrerpolicy="origin").
function findParentOrigin() {
  if (window.parent === window) return null;
  const ancestors = location.ancestorOrigins;
  const candidate = ancestors && ancestors.length ? ancestors[0] : document.referrer;
  try {
    const origin = new URL(candidate).origin;
    return origin === "null" ? null : origin;
  } catch {
    return null;
  }
}

// The loader tells us when its panel is shown or hidden.
window.addEventListener("message", (event) => {
  if (!parentOrigin || event.source !== window.parent || event.origin !== parentOrigin) return;
  const data = event.data;
  if (!data || data.type !== "palisade:visibility" || typeof data.open !== "boolean") return;

  panelOpen = data.open;
  if (panelOpen) {
    markSeen();
    if (!ui.input.disabled) ui.input.focus();
  } else {
    typingOut.stop();
  }
});

// ---- view -----------------------------------------------------------------

function showWidget(widget) {
  const name = widget.name || "Chat";
  ui.title.textContent = name;
  document.title = name;
  ui.greeting.textContent = widget.greeting || "";
  ui.greeting.hidden = !widget.greeting;
}

function showBanner(text) {
  ui.banner.textContent = text || "";
  ui.banner.hidden = !text;
}

function showEnded(closed) {
  ui.ended.hidden = !closed;
  ui.composer.hidden = closed;
  if (closed) typingIn.hide();
}

function setComposerEnabled(enabled) {
  ui.input.disabled = !enabled;
  ui.send.disabled = !enabled;
}

function savedSession(name) {
  // Storage can be blocked (private modes, third-party rules); then this
  // visit still works and the next one starts afresh.
  return {
    load() {
      try {
        const value = JSON.parse(localStorage.getItem(name) || "null");
        const valid = value && typeof value.token === "string" && typeof value.expires_at === "number";
        return valid ? value : null;
      } catch {
        return null;
      }
    },
    save(value) {
      try {
        localStorage.setItem(name, JSON.stringify(value));
      } catch {
        // See above.
      }
    },
    clear() {
      try {
        localStorage.removeItem(name);
      } catch {
        // See above.
      }
    },
  };
}

// ---- wiring ---------------------------------------------------------------

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  submit();
});

ui.input.addEventListener("keydown", (event) => {
  if (isSendKey(event)) {
    event.preventDefault();
    submit();
  }
});

ui.input.addEventListener("input", () => {
  ui.input.setCustomValidity("");
  typingOut.input(ui.input.value.trim() !== "");
});

ui.input.addEventListener("blur", () => typingOut.stop());

ui.restart.addEventListener("click", async () => {
  ui.restart.disabled = true;
  try {
    await newConversation();
  } catch {
    showBanner("Could not start a new conversation. Please try again.");
    return;
  } finally {
    ui.restart.disabled = false;
  }
  log.clear();
  typingIn.hide();
  connect();
  ui.input.focus();
});

ui.close.hidden = !parentOrigin;
ui.close.addEventListener("click", () => tellParent({ type: "palisade:close" }));

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") tellParent({ type: "palisade:close" });
});

document.addEventListener("visibilitychange", markSeen);

tellParent({ type: "palisade:ready" });
setComposerEnabled(false);

if (/^[A-Za-z0-9_.:-]{1,128}$/.test(widgetKey)) {
  start();
} else {
  showBanner("This chat is not set up correctly (no widget key).");
}
