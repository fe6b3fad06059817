// The agent console: sign-in, then the conversation list and the open
// conversation, kept current over the agent WebSocket.
//
// After every (re)connect the list and the open conversation are fetched
// again over HTTP, since events sent while the socket was down are gone.

import { socketUrl } from "/widget/http.js";
import { Socket } from "/widget/socket.js";
import {
  ApiError,
  api,
  conversationPath,
  describeError,
  setCsrfToken,
  whenSessionExpires,
} from "./api.js";
import { ConversationList } from "./list.js";
import { askForCode, enroll } from "./mfa.js";
import { Notifier } from "./notify.js";
import { ThreadView } from "./thread.js";

const $ = (id) => document.getElementById(id);
const ui = {
  loading: $("loading"),
  login: $("login"),
  loginForm: $("login-form"),
  loginError: $("login-error"),
  loginSubmit: $("login-submit"),
  email: $("email"),
  password: $("password"),
  console: $("console"),
  me: $("me"),
  logout: $("logout"),
  banner: $("banner"),
  filters: [...document.querySelectorAll(".filter")],
  noThread: $("no-thread"),
  back: $("back"),
};

let me = null; // the signed-in agent
let socket = null;
let filter = "open";
const fetchingConversations = new Set();

const notifier = new Notifier($("notify"));

const list = new ConversationList($("conversations"), $("list-empty"), {
  onSelect: openConversation,
  isViewing: (id) => thread.currentId === id && !document.hidden,
  onCounts: showCounts,
});

const thread = new ThreadView(
  {
    section: $("thread"),
    title: $("thread-title"),
    status: $("thread-status"),
    visitor: $("thread-visitor"),
    claim: $("claim"),
    close: $("close-conversation"),
    reopen: $("reopen"),
    error: $("thread-error"),
    scroller: $("scroller"),
    typing: $("typing"),
    composer: $("composer"),
    reply: $("reply"),
    noteMode: $("note-mode"),
    canned: $("canned"),
    notesPanel: $("notes-panel"),
    notes: $("notes"),
    replyLabel: $("reply-label"),
  },
  {
    send: (frame) => socket !== null && socket.send(frame),
    onConversation: applyConversation,
    onFetched: (message) => list.noteMessage(message, isFromMe(message)),
  },
);

// ---- signing in and out ---------------------------------------------------

async function resumeSession() {
  try {
    const { agent, csrf_token: csrf, stage } = await api("GET", "/v1/agent/me");
    continueSignIn(agent, csrf, stage);
  } catch (err) {
    showLogin(err instanceof ApiError ? null : describeError(err));
  }
}

/** Signs in fully, or first asks for the second factor or its set-up. */
function continueSignIn(agent, csrf, stage) {
  ui.loading.hidden = true;
  if (stage === "mfa") askForCode(csrf, signedIn);
  else if (stage === "enroll") enroll(csrf, signedIn);
  else signedIn(agent, csrf);
}

function signedIn(agent, csrf) {
  me = agent;
  thread.me = agent;
  list.setMe(agent.id);
  setCsrfToken(csrf);

  ui.me.textContent = agent.name;
  ui.loading.hidden = true;
  ui.login.hidden = true;
  ui.console.hidden = false;
  ui.filters.find((b) => b.dataset.status === filter).focus();

  refreshList();
  socket = new Socket(socketUrl("/v1/agent/ws"), { onOpen, onFrame, onClose });
  socket.start();
}

function signedOut(message) {
  socket?.stop();
  socket = null;
  me = null;
  setCsrfToken(null);
  list.reset();
  thread.reset();
  showBanner(null);
  ui.console.classList.remove("console--reading");
  ui.console.hidden = true;
  document.title = "Palisade";
  showLogin(message);
}

function showLogin(message) {
  ui.loading.hidden = true;
  ui.login.hidden = false;
  ui.loginError.textContent = message || "";
  ui.loginError.hidden = !message;
  ui.email.focus();
}

ui.loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  ui.loginError.hidden = true;
  ui.loginSubmit.disabled = true;

  const credentials = { email: ui.email.value.trim(), password: ui.password.value };
  try {
    const { agent, csrf_token: csrf, stage } = await api("POST", "/v1/agent/login", credentials);
    ui.password.value = "";
    ui.login.hidden = true;
    continueSignIn(agent, csrf, stage);
  } catch (err) {
    const wrong = err instanceof ApiError && err.status === 401;
    showLogin(wrong ? "That email and password do not match." : describeError(err));
    if (wrong) ui.password.select();
  } finally {
    ui.loginSubmit.disabled = false;
  }
});

ui.logout.addEventListener("click", async () => {
  try {
    await api("POST", "/v1/agent/logout");
  } catch {
    // Signed out here either way; the cookie expires on its own.
  }
  signedOut(null);
});

whenSessionExpires(() => signedOut("Your session has ended. Please sign in again."));

// ---- live events ----------------------------------------------------------

function onOpen() {
  showBanner(null);
  refreshList();
  thread.catchUp();
  thread.resendUnsent();
}

function onClose({ opened }) {
  showBanner("Reconnecting…");
  // A socket refused before opening may mean the session is gone; asking
  // /me finds out (a 401 there signs us out).
  if (!opened && me) api("GET", "/v1/agent/me").catch(() => {});
}

function onFrame(frame) {
  switch (frame.type) {
    case "conversation":
      if (frame.conversation) applyConversation(frame.conversation);
      break;
    case "message":
      if (frame.message) onMessage(frame.message);
      break;
    case "ack":
      thread.onAck(frame);
      break;
    case "typing":
      thread.onTyping(frame);
      break;
    case "note":
      if (frame.note) thread.onNote(frame.note);
      break;
    case "error":
      if (frame.client_msg_id) thread.onError(frame);
      break;
    case "resync":
      // The server dropped events for this socket (it fell behind).
      refreshList();
      thread.catchUp();
      break;
  }
  updateTitle();
}

function onMessage(message) {
  const id = message.conversation_id;
  const known = list.has(id);

  list.noteMessage(message, isFromMe(message));
  thread.onMessage(message);
  if (message.author_kind === "visitor") notifier.visitorMessage(message, message.author_name);
  if (!known) fetchConversation(id);
}

function isFromMe(message) {
  return message.author_kind === "agent" && me !== null && message.author_id === me.id;
}

function applyConversation(conversation) {
  list.upsert(conversation);
  thread.update(conversation);
}

// ---- fetching -------------------------------------------------------------

async function refreshList() {
  const status = filter;
  // "Mine" is the assigned conversations whose assignee is this agent.
  const asked = status === "mine" ? "assigned" : status;
  const askedAt = performance.now();
  try {
    const { conversations } = await api("GET", `/v1/agent/conversations?status=${asked}`);
    list.load(status, conversations, askedAt);
    updateTitle();
  } catch (err) {
    if (me) showBanner(`Could not load conversations. ${describeError(err)}`);
  }
}

// A message for a conversation we had not heard of yet.
async function fetchConversation(id) {
  if (fetchingConversations.has(id)) return;
  fetchingConversations.add(id);
  try {
    list.upsert(await api("GET", conversationPath(id)));
  } catch {
    // The placeholder row stays; the next list refresh corrects it.
  } finally {
    fetchingConversations.delete(id);
  }
}

// ---- view -----------------------------------------------------------------

function openConversation(id) {
  const conversation = list.get(id);
  if (!conversation) return;

  list.select(id);
  thread.open(conversation);
  list.markSeen(id);
  ui.noThread.hidden = true;
  ui.console.classList.add("console--reading");
  updateTitle();
}

ui.back.addEventListener("click", () => {
  const id = thread.currentId;
  thread.closeView();
  list.select(null);
  ui.noThread.hidden = false;
  ui.console.classList.remove("console--reading");
  requestAnimationFrame(() => {
    for (const button of document.querySelectorAll(".conv")) {
      if (button.dataset.id === id) button.focus();
    }
  });
});

for (const button of ui.filters) {
  button.addEventListener("click", () => {
    filter = button.dataset.status;
    for (const other of ui.filters) other.setAttribute("aria-pressed", String(other === button));
    list.setFilter(filter);
    refreshList();
  });
}

// Unread messages per filter, on the filter buttons (and in their names).
function showCounts(counts) {
  for (const button of ui.filters) {
    const count = counts[button.dataset.status] || 0;
    const badge = button.querySelector(".filter__count");
    badge.textContent = count > 0 ? ` ${count > 99 ? "99+" : count}` : "";
    const label = button.firstChild.textContent.trim();
    button.setAttribute("aria-label", count > 0 ? `${label}, ${count} unread` : label);
  }
}

function showBanner(text) {
  ui.banner.textContent = text || "";
  ui.banner.hidden = !text;
}

function updateTitle() {
  const unread = list.totalUnread();
  const away = document.hidden || !document.hasFocus();
  document.title = away && unread > 0 ? `(${unread}) Palisade` : "Palisade";
}

// The badge counts while the window is in the background, not only while
// its tab is hidden.
window.addEventListener("focus", updateTitle);
window.addEventListener("blur", updateTitle);

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && thread.currentId) list.markSeen(thread.currentId);
  updateTitle();
});

resumeSession();
