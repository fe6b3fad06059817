// The open conversation: a header with the visitor's name, the status and
// the Claim and Close actions; the messages; typing notices; the reply box.
//
// Each conversation opened in this session keeps its own ChatLog, so going
// back to one fetches only what is newer, and a reply still being sent is
// not lost by looking at another conversation meanwhile.

import { charCount, h, isSendKey } from "/widget/dom.js";
import { ChatLog } from "/widget/chatlog.js";
import { TypingIn, TypingOut } from "/widget/typing.js";
import { ApiError, api, conversationPath, describeError } from "./api.js";
import { CannedPicker } from "./canned.js";

const PAGE_SIZE = 100;
const MAX_BODY_CHARS = 4000;
const ERROR_SHOWN_MS = 8000;

export class ThreadView {
  /**
   * ui     the elements of the thread section (see app.js)
   * hooks.send(frame)          sends over the socket; false if it is down
   * hooks.onConversation(c)    a claim or close returned a new record
   * hooks.onFetched(message)   the newest message of a page fetched over HTTP
   */
  constructor(ui, hooks) {
    this.ui = ui;
    this.hooks = hooks;
    this.me = null;
    this.conversation = null;
    this.logs = new Map(); // conversation id -> ChatLog
    this.drafts = new Map(); // conversation id -> unsent text in the box
    this.loading = new Map(); // conversation id -> fetch again when done?
    this.errorTimer = 0;

    this.typingIn = new TypingIn(ui.typing);
    this.typingOut = new TypingOut((typing) => {
      if (!this.conversation) return false;
      return hooks.send({ type: "typing", conversation_id: this.conversation.id, typing });
    });
    this.#wire();
  }

  get currentId() {
    return this.conversation ? this.conversation.id : null;
  }

  open(conversation) {
    if (this.currentId !== conversation.id) this.#leave();
    this.conversation = conversation;

    const log = this.#logFor(conversation.id);
    this.ui.scroller.replaceChildren(log.root);
    this.ui.reply.value = this.drafts.get(conversation.id) || "";
    this.ui.section.hidden = false;
    this.#renderHeader();
    log.scrollToEnd();
    this.catchUp();
    this.#loadVisitor(conversation.id);
    this.#loadNotes(conversation.id);
  }

  /** A private note arrived over the socket (or from our own POST). */
  onNote(note) {
    if (note.conversation_id !== this.currentId) return;
    const { notes, notesPanel } = this.ui;
    if ([...notes.children].some((li) => li.dataset.noteId === note.id)) return;
    const when = new Date(note.created_at).toLocaleTimeString([], {
      hour: "2-digit",
      minute: "2-digit",
    });
    const item = h(
      "li",
      { className: "notes__item", "data-note-id": note.id },
      h("span", { className: "notes__meta" }, `${note.author_name} · ${when}`),
      h("span", { className: "notes__body" }, note.body),
    );
    notes.append(item);
    notesPanel.hidden = false;
    notes.scrollTop = notes.scrollHeight;
  }

  async #loadNotes(id) {
    this.ui.notes.replaceChildren();
    this.ui.notesPanel.hidden = true;
    let answer;
    try {
      answer = await api("GET", conversationPath(id, "/notes"));
    } catch (err) {
      if (id === this.currentId) this.#showError(`Could not load notes. ${describeError(err)}`);
      return;
    }
    for (const note of answer.notes) this.onNote(note);
  }

  // A private note goes over HTTP (never on the message path), and shows
  // once the server has stored it.
  async #sendNote(id, body) {
    try {
      this.onNote(await api("POST", conversationPath(id, "/notes"), { body }));
    } catch (err) {
      this.ui.reply.value = body;
      this.#showError(`Could not save the note. ${describeError(err)}`);
    }
  }

  // Who the visitor is (name, email, widget), under the title. Rendered as
  // text; a failure leaves the line empty rather than blocking the thread.
  async #loadVisitor(id) {
    this.ui.visitor.textContent = "";
    let visitor;
    try {
      visitor = await api("GET", conversationPath(id, "/visitor"));
    } catch {
      return;
    }
    if (id !== this.currentId) return;
    const parts = [visitor.email || "no email given", `via ${visitor.widget_name}`];
    const verified = this.conversation && this.conversation.visitor_verified_user_id;
    if (verified) parts.splice(1, 0, `verified as ${verified}`);
    if (visitor.page_url) parts.push(`on ${visitor.page_url}`);
    if (visitor.browser) parts.push(browserName(visitor.browser));
    this.ui.visitor.textContent = parts.join(" · ");
    // The whole User-Agent, for whoever needs the detail.
    this.ui.visitor.title = visitor.browser || "";
  }

  /** Leaves the conversation (the list takes the screen on phones). */
  closeView() {
    this.#leave();
    this.conversation = null;
    this.ui.section.hidden = true;
  }

  /** Forgets everything, for sign-out. */
  reset() {
    this.closeView();
    for (const log of this.logs.values()) log.clear();
    this.logs.clear();
    this.drafts.clear();
  }

  /** A newer record of some conversation. */
  update(conversation) {
    if (conversation.id !== this.currentId) return;
    this.conversation = conversation;
    this.#renderHeader();
  }

  onMessage(message) {
    const log = this.logs.get(message.conversation_id);
    if (!log) return;

    log.add(message);
    if (message.conversation_id !== this.currentId) return;
    if (message.author_kind === "visitor") this.typingIn.hide();
    // A seq beyond the unbroken run means something was missed.
    if (message.seq > log.lastSeq) this.catchUp();
  }

  onAck(frame) {
    this.logs.get(frame.conversation_id)?.ack(frame);
  }

  onError(frame) {
    for (const log of this.logs.values()) {
      if (log.fail(frame.client_msg_id, frame.message)) return;
    }
  }

  onTyping(frame) {
    if (frame.conversation_id !== this.currentId || frame.author_kind !== "visitor") return;
    if (frame.typing) this.typingIn.show(frame.author_name || "Visitor");
    else this.typingIn.hide();
  }

  /** Fetches the open conversation's messages after the last one shown. */
  catchUp() {
    const id = this.currentId;
    if (!id) return;
    if (this.loading.has(id)) {
      this.loading.set(id, true); // run once more when this fetch is done
      return;
    }

    this.loading.set(id, false);
    this.#fetchAfter(id)
      .catch((err) => this.#showError(`Could not load messages. ${describeError(err)}`))
      .finally(() => {
        const again = this.loading.get(id);
        this.loading.delete(id);
        if (again && this.currentId === id) this.catchUp();
      });
  }

  /** After a reconnect: sends again every reply still waiting for an ack. */
  resendUnsent() {
    for (const [id, log] of this.logs) {
      for (const entry of log.unsent()) {
        log.markSending(entry);
        this.#transmit(id, log, entry);
      }
    }
  }

  async #fetchAfter(id) {
    const log = this.logs.get(id);
    let after = log.lastSeq;

    for (;;) {
      const path = conversationPath(id, `/messages?after_seq=${after}&limit=${PAGE_SIZE}`);
      const { messages } = await api("GET", path);
      for (const message of messages) log.add(message);
      if (messages.length) this.hooks.onFetched(messages[messages.length - 1]);

      const last = messages.length ? messages[messages.length - 1].seq : after;
      if (messages.length < PAGE_SIZE || last <= after) return;
      after = last;
    }
  }

  #logFor(id) {
    let log = this.logs.get(id);
    if (log) return log;

    const root = h("div", {
      className: "log",
      role: "log",
      "aria-live": "polite",
      "aria-relevant": "additions",
      "aria-label": "Messages",
    });
    log = new ChatLog(root, {
      scroller: this.ui.scroller,
      isMine: (m) => m.author_kind === "agent" && this.me !== null && m.author_id === this.me.id,
      authorLabel: (m) => {
        if (m.author_kind === "system") return null;
        return m.author_name || (m.author_kind === "visitor" ? "Visitor" : "Agent");
      },
      onRetry: (entry) => {
        log.markSending(entry);
        this.#transmit(id, log, entry);
      },
    });
    this.logs.set(id, log);
    return log;
  }

  #submit() {
    const conversation = this.conversation;
    const body = this.ui.reply.value.trim();
    if (!conversation || !body) return;

    if (charCount(body) > MAX_BODY_CHARS) {
      this.ui.reply.setCustomValidity(`A message can be at most ${MAX_BODY_CHARS} characters.`);
      this.ui.reply.reportValidity();
      return;
    }

    this.ui.reply.value = "";
    this.drafts.delete(conversation.id);
    this.typingOut.stop();
    if (this.ui.noteMode.checked) {
      this.#sendNote(conversation.id, body);
      return;
    }
    const log = this.logs.get(conversation.id);
    this.#transmit(conversation.id, log, log.addPending(body));
  }

  // Over the socket when it is up; otherwise by a plain POST.
  #transmit(conversationId, log, entry) {
    const frame = {
      type: "send",
      conversation_id: conversationId,
      client_msg_id: entry.id,
      body: entry.body,
    };
    if (this.hooks.send(frame)) return;

    const path = conversationPath(conversationId, "/messages");
    api("POST", path, { client_msg_id: entry.id, body: entry.body })
      .then((ack) => log.ack({ ...ack, client_msg_id: entry.id }))
      .catch((err) => {
        // A refusal is final; a network failure is left to the ack timer
        // and to the resend after the socket reconnects.
        if (err instanceof ApiError) log.fail(entry.id, err.message);
      });
  }

  async #act(action, button) {
    const id = this.currentId;
    if (!id) return;

    button.disabled = true;
    try {
      this.hooks.onConversation(await api("POST", conversationPath(id, `/${action}`)));
    } catch (err) {
      this.#showError(`Could not ${action} the conversation. ${describeError(err)}`);
    } finally {
      button.disabled = false;
    }
  }

  #renderHeader() {
    const c = this.conversation;
    const name = c.visitor_name || "Visitor";
    const mine = this.me !== null && c.assignee_id === this.me.id;

    this.ui.title.textContent = name;
    this.ui.replyLabel.textContent = `Reply to ${name}`;
    if (c.status === "closed") this.ui.status.textContent = "Closed";
    else if (c.status !== "assigned") this.ui.status.textContent = "Open, waiting for an agent";
    else if (mine) this.ui.status.textContent = "Assigned to you";
    else this.ui.status.textContent = `Assigned to ${c.assignee_name || "another agent"}`;

    this.ui.claim.hidden = c.status === "closed" || mine;
    this.ui.claim.textContent = c.status === "assigned" ? "Take over" : "Claim";
    this.ui.close.hidden = c.status === "closed";
    this.ui.reopen.hidden = c.status !== "closed";
    this.ui.composer.hidden = c.status === "closed";
    if (c.status === "closed") this.typingOut.stop();
  }

  #leave() {
    if (this.conversation) this.drafts.set(this.conversation.id, this.ui.reply.value);
    this.typingOut.stop();
    this.typingIn.hide();
    this.#showError(null);
  }

  #showError(text) {
    clearTimeout(this.errorTimer);
    this.ui.error.textContent = text || "";
    this.ui.error.hidden = !text;
    if (text) this.errorTimer = setTimeout(() => this.#showError(null), ERROR_SHOWN_MS);
  }

  #wire() {
    const { composer, reply, claim, close } = this.ui;
    const picker = new CannedPicker(reply, this.ui.canned);

    composer.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#submit();
    });
    reply.addEventListener("keydown", (event) => {
      if (picker.handleKey(event)) return;
      if (isSendKey(event)) {
        event.preventDefault();
        this.#submit();
      }
    });
    reply.addEventListener("input", () => {
      reply.setCustomValidity("");
      if (!this.ui.noteMode.checked) this.typingOut.input(reply.value.trim() !== "");
    });
    reply.addEventListener("blur", () => this.typingOut.stop());

    // Note mode marks the box, so nobody sends a note to a visitor by
    // mistake (or a reply as a note).
    this.ui.noteMode.addEventListener("change", () => {
      const note = this.ui.noteMode.checked;
      composer.classList.toggle("composer--note", note);
      reply.placeholder = note ? "Write a private note (agents only)…" : "Write a reply…";
      if (note) this.typingOut.stop();
      reply.focus();
    });

    claim.addEventListener("click", () => this.#act("claim", claim));
    close.addEventListener("click", () => this.#act("close", close));
    this.ui.reopen.addEventListener("click", () => this.#act("reopen", this.ui.reopen));
  }
}

/**
 * A short name for a User-Agent ("Firefox 128", "Chrome 131"), or the
 * start of it when no known browser is named. Order matters: Edge and
 * Opera also say Chrome, and Chrome also says Safari.
 */
function browserName(userAgent) {
  const known = [
    ["Edge", /Edg\/(\d+)/],
    ["Opera", /OPR\/(\d+)/],
    ["Firefox", /Firefox\/(\d+)/],
    ["Chrome", /(?:HeadlessChrome|Chrome|Chromium)\/(\d+)/],
    ["Safari", /Version\/(\d+)[^ ]* .*Safari\//],
  ];
  for (const [name, pattern] of known) {
    const match = userAgent.match(pattern);
    if (match) return `${name} ${match[1]}`;
  }
  return userAgent.slice(0, 40);
}
