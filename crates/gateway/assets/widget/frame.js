// The visitor's side of a chat, inside the widget iframe.
//
// This runs on Palisade's origin, never on the host page's. The host page
// hears only three things from it, by postMessage and only at the host's own
// origin: the frame is ready, how many messages are unread, and that the
// visitor wants the chat closed.
//
// Start-up: the widget key from the URL -> the token and conversation
// saved for that key, or new ones (session.js) -> history over HTTP -> a
// WebSocket hello with the last seq seen, which replays anything newer and
// then streams.

import { charCount, isSendKey } from "./dom.js";
import { ApiError, fetchJson, socketUrl } from "./http.js";
import { applyTheme } from "./theme.js";
import { ChatLog } from "./chatlog.js";
import { VisitorSession } from "./session.js";
import { Socket } from "./socket.js";
import { TypingIn, TypingOut } from "./typing.js";

const PAGE_SIZE = 100;
const MAX_BODY_CHARS = 4000;
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
  prechat: $("prechat"),
  prechatError: $("prechat-error"),
  away: $("away"),
  awayMessage: $("away-message"),
  awayForm: $("away-form"),
  awayEmail: $("away-email"),
  awayError: $("away-error"),
  awayDone: $("away-done"),
};

// The loader passes the key as ?key= (the server needs it there to set
// frame-ancestors); #key= is accepted too.
const widgetKey =
  new URLSearchParams(location.search).get("key") ||
  new URLSearchParams(location.hash.slice(1)).get("key") ||
  "";
const visitor = new VisitorSession(widgetKey, hostPage());
const parentOrigin = findParentOrigin();

let socket = null;
let ready = false; // the current socket's hello has been answered with "ready"
let panelOpen = true; // the host page is showing the chat panel
let unread = 0;
let counting = false; // unread counts only messages that arrive after start-up
let carryOver = []; // bodies still unsent when the session had to start over
let settings = null; // the widget's public settings, read once per page load
let profile = null; // what the visitor typed into the pre-chat form

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
  return socket.send({ type: "typing", conversation_id: visitor.conversationId, typing });
});

// ---- start-up -------------------------------------------------------------

async function start(attempt = 0) {
  try {
    settings ??= await fetchJson("GET", `/v1/visitor/widgets/${encodeURIComponent(widgetKey)}`);
    showWidget(settings);
    if (!profile && !visitor.returning && asksBeforeChat(settings)) {
      showBanner(null);
      showPrechat(settings);
      return;
    }
    const conversation = await visitor.open(profile || {});
    showAway(settings);
    showEnded(conversation.status === "closed");
    log.clear();
    await loadHistory();
  } catch (err) {
    const refused = err instanceof ApiError && err.status < 500;
    if (refused && err.code === "prechat_required") {
      // Our saved visitor was gone and the widget wants the form first.
      profile = null;
      showBanner(null);
      showPrechat(settings);
      return;
    }
    if (refused && err.status !== 401 && err.status !== 429) {
      // An unknown or disabled widget key, or a page not allowed to use it.
      showBanner("Chat is not available right now.");
      return;
    }
    if (refused && err.status === 401) visitor.forget();
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

// Fetches every message after the last one shown, a page at a time.
async function loadHistory() {
  const id = encodeURIComponent(visitor.conversationId);
  const path = `/v1/visitor/conversations/${id}/messages`;
  let after = log.lastSeq;

  for (;;) {
    const { messages } = await visitor.api("GET", `${path}?after_seq=${after}&limit=${PAGE_SIZE}`);
    for (const message of messages) receive(message);

    const last = messages.length ? messages[messages.length - 1].seq : after;
    if (messages.length < PAGE_SIZE || last <= after) return;
    after = last;
  }
}

// ---- live connection ------------------------------------------------------

function connect() {
  socket?.stop();
  ready = false;
  socket = new Socket(socketUrl("/v1/visitor/ws"), {
    onOpen() {
      socket.send({
        type: "hello",
        token: visitor.token,
        conversation_id: visitor.conversationId,
        last_seq: log.lastSeq,
      });
    },
    onFrame,
    onClose() {
      const helloAccepted = ready;
      ready = false;
      showBanner("Reconnecting…");
      if (!helloAccepted) checkSession();
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
      if (frame.message && frame.message.conversation_id === visitor.conversationId) {
        receive(frame.message);
      }
      break;

    case "ack":
      log.ack(frame);
      break;

    case "typing":
      if (frame.author_kind === "agent" && frame.conversation_id === visitor.conversationId) {
        if (frame.typing) typingIn.show(frame.author_name || "Agent");
        else typingIn.hide();
      }
      break;

    case "conversation":
      if (frame.conversation && frame.conversation.id === visitor.conversationId) {
        showEnded(frame.conversation.status === "closed");
      }
      break;

    case "error":
      if (frame.client_msg_id) log.fail(frame.client_msg_id, frame.message);
      else if (!ready) checkSession(); // the hello itself was refused
      break;
  }
}

// The socket closed or refused us before "ready". If the token is no longer
// valid, start over as a new visitor; if the conversation is gone, start a
// new one. Any other failure just waits for the next retry.
let checking = false;
async function checkSession() {
  if (checking || !visitor.state) return;
  checking = true;
  try {
    const { conversations } = await visitor.api("GET", "/v1/visitor/conversations");
    if (!conversations.some((c) => c.id === visitor.conversationId)) await switchConversation();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) startOver();
  } finally {
    checking = false;
  }
}

// Starts a new conversation for the same visitor and connects to it.
async function switchConversation() {
  await visitor.newConversation();
  showEnded(false);
  log.clear();
  typingIn.hide();
  connect();
}

function startOver() {
  carryOver = log.unsent().map((entry) => entry.body);
  socket?.stop();
  socket = null;
  ready = false;
  visitor.forget();
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
    conversation_id: visitor.conversationId,
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

// The host page the loader named in our fragment (http or https only), or
// null; the server keeps scheme, host and path.
function hostPage() {
  const page = new URLSearchParams(location.hash.slice(1)).get("page");
  return page && /^https?:\/\//i.test(page) && page.length <= 2048 ? page : null;
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

// ---- pre-chat form and away notice -----------------------------------------

function asksBeforeChat(widget) {
  const prechat = widget.prechat || {};
  return prechat.name !== undefined && (prechat.name !== "off" || prechat.email !== "off");
}

function showPrechat(widget) {
  for (const field of ["name", "email"]) {
    const rule = widget.prechat[field];
    const input = $(`prechat-${field}`);
    $(`prechat-${field}-row`).hidden = rule === "off";
    $(`prechat-${field}-note`).textContent = rule === "required" ? "(required)" : "(optional)";
    input.required = rule === "required";
  }
  ui.composer.hidden = true;
  ui.prechat.hidden = false;
  const first = ui.prechat.querySelector(".field:not([hidden]) input");
  if (first && document.hasFocus()) first.focus();
}

ui.prechat.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("prechat-name");
  const email = $("prechat-email");
  const invalid = [name, email].find((input) => !input.closest(".field").hidden && !input.checkValidity());
  if (invalid) {
    ui.prechatError.textContent = invalid === email && email.value.trim()
      ? "Please enter a valid email address."
      : `Please fill in your ${invalid === name ? "name" : "email"}.`;
    ui.prechatError.hidden = false;
    invalid.focus();
    return;
  }
  ui.prechatError.hidden = true;
  profile = { name: name.value, email: email.value };
  ui.prechat.hidden = true;
  ui.composer.hidden = false;
  start();
});

// Outside business hours: the away message, and a way to leave an email if
// the visitor has not given one yet. The chat itself stays open: messages
// wait for the agents.
function showAway(widget) {
  ui.away.hidden = widget.open_now !== false;
  ui.awayMessage.textContent = widget.away_message || "";
  ui.awayForm.hidden = visitor.emailLeft;
  if (visitor.emailLeft && !ui.away.hidden) {
    ui.awayDone.textContent = "We have your email and will reply there.";
    ui.awayDone.hidden = false;
  }
}

ui.awayForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!ui.awayEmail.checkValidity()) {
    ui.awayError.textContent = "Please enter a valid email address.";
    ui.awayError.hidden = false;
    return;
  }
  ui.awayError.hidden = true;
  try {
    await visitor.leaveEmail(ui.awayEmail.value.trim());
  } catch (err) {
    ui.awayError.textContent =
      err instanceof ApiError ? err.message : "Could not save your email. Please try again.";
    ui.awayError.hidden = false;
    return;
  }
  ui.awayForm.hidden = true;
  ui.awayDone.textContent = "Thanks! We'll reply to your email.";
  ui.awayDone.hidden = false;
});

// ---- view -----------------------------------------------------------------

function showWidget(widget) {
  applyTheme(document.documentElement, widget.theme_color);
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
    await switchConversation();
    ui.input.focus();
  } catch {
    showBanner("Could not start a new conversation. Please try again.");
  } finally {
    ui.restart.disabled = false;
  }
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
