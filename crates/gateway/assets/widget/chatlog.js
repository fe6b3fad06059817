// The message list both chat screens share.
//
// Confirmed messages sit in seq order and each seq is shown once, however
// often it arrives (history, replay, live). The user's own messages appear at
// once as "pending" after the confirmed ones; an ack or the echoed message
// gives them their seq and their place. A pending message that has no ack
// after ten seconds shows "Not sent" and a Retry button.

import { h, linkify, newClientMsgId, timeEl } from "./dom.js";

const ACK_TIMEOUT_MS = 10000;
const NEAR_BOTTOM_PX = 48;

export class ChatLog {
  /**
   * root      the element holding the messages (role="log")
   * options.scroller      the element that scrolls; defaults to root
   * options.isMine(m)     whether a message was written by this user
   * options.authorLabel(m) the name shown on someone else's message, or null
   * options.onRetry(entry) the user pressed Retry on a pending message
   */
  constructor(root, options) {
    this.root = root;
    this.options = options;
    this.scroller = options.scroller || root;
    this.pending = new Map();
    this.clear();
  }

  /** Forgets every message. `lastSeq` starts over at 0. */
  clear() {
    for (const entry of this.pending.values()) clearTimeout(entry.timer);
    this.pending = new Map(); // client_msg_id -> pending entry
    this.bySeq = new Map(); // seq -> element
    // Every seq from 1 to lastSeq is on screen. Later ones may be too, after
    // a gap; asking for "after lastSeq" fills the gap and dedupes the rest.
    this.lastSeq = 0;
    this.root.replaceChildren();
  }

  /** Adds a confirmed message; returns true if it was not shown before. */
  add(message) {
    if (this.bySeq.has(message.seq)) return false;

    const mine = this.options.isMine(message);
    const entry = message.client_msg_id && this.pending.get(message.client_msg_id);
    if (entry && mine) {
      this.#settle(entry, message.seq, message.created_at);
      return false;
    }

    const el = this.#render(message, mine);
    this.#index(message.seq, el);
    this.#keepAtBottom(() => this.#place(el, message.seq), false);
    return true;
  }

  /** Shows a message the user is sending; returns its pending entry. */
  addPending(body) {
    const el = this.#render({ body, created_at: Date.now() }, true);
    const entry = { id: newClientMsgId(), body, el, status: null, state: "", timer: 0 };
    entry.rejected = false; // set once the server refuses it; then only Retry resends

    this.pending.set(entry.id, entry);
    this.#keepAtBottom(() => this.root.append(el), true);
    this.#setState(entry, "sending");
    return entry;
  }

  /** Puts a pending entry back to "sending" and restarts its ack timer. */
  markSending(entry) {
    entry.rejected = false;
    if (this.pending.get(entry.id) === entry) this.#setState(entry, "sending");
  }

  /** Applies an ack frame or POST answer; returns false if not ours. */
  ack({ client_msg_id: id, seq, created_at: createdAt }) {
    const entry = this.pending.get(id);
    if (!entry) return false;

    if (this.bySeq.has(seq)) {
      // History already brought this very message; drop the duplicate.
      this.#release(entry);
      entry.el.remove();
    } else {
      this.#settle(entry, seq, createdAt);
    }
    return true;
  }

  /** The server refused a pending message; it waits for a manual retry. */
  fail(id, reason) {
    const entry = this.pending.get(id);
    if (!entry) return false;
    entry.rejected = true;
    this.#setState(entry, "failed", reason);
    return true;
  }

  /** Pending messages to send again after a reconnect (not the refused). */
  unsent() {
    return [...this.pending.values()].filter((entry) => !entry.rejected);
  }

  scrollToEnd() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  #render(message, mine) {
    const kind = mine ? "mine" : message.author_kind === "system" ? "system" : "theirs";
    const label = mine ? null : this.options.authorLabel(message);

    return h(
      "div",
      { className: `msg msg--${kind}` },
      h(
        "div",
        { className: "msg__meta" },
        mine && h("span", { className: "sr-only", textContent: "You, " }),
        label && h("span", { className: "msg__author", textContent: label }),
        timeEl(message.created_at),
      ),
      h("div", { className: "msg__body" }, linkify(message.body)),
    );
  }

  #setState(entry, state, reason) {
    clearTimeout(entry.timer);
    entry.state = state;
    entry.el.classList.toggle("msg--sending", state === "sending");
    entry.el.classList.toggle("msg--failed", state === "failed");

    let status;
    if (state === "sending") {
      status = h("div", { className: "msg__status", textContent: "Sending…" });
      entry.timer = setTimeout(() => this.#setState(entry, "failed"), ACK_TIMEOUT_MS);
    } else {
      const retry = () => this.options.onRetry(entry);
      status = h(
        "div",
        { className: "msg__status" },
        reason ? `Not sent: ${reason} ` : "Not sent. ",
        h("button", { type: "button", className: "msg__retry", onclick: retry }, "Retry"),
      );
    }

    if (entry.status) entry.status.replaceWith(status);
    else entry.el.append(status);
    entry.status = status;
  }

  // A pending message got its seq: it becomes an ordinary confirmed one.
  #settle(entry, seq, createdAt) {
    this.#release(entry);
    entry.status?.remove();
    entry.el.classList.remove("msg--sending", "msg--failed");
    if (createdAt) entry.el.querySelector("time")?.replaceWith(timeEl(createdAt));

    this.#index(seq, entry.el);
    this.#place(entry.el, seq);
  }

  #release(entry) {
    clearTimeout(entry.timer);
    this.pending.delete(entry.id);
    entry.state = "sent";
  }

  #index(seq, el) {
    el.dataset.seq = String(seq);
    this.bySeq.set(seq, el);
    while (this.bySeq.has(this.lastSeq + 1)) this.lastSeq += 1;
  }

  // Inserts `el` after every confirmed message with a smaller seq and before
  // any pending one. Walks from the end, where new messages almost always go.
  #place(el, seq) {
    let before = null;
    for (let node = this.root.lastElementChild; node; node = node.previousElementSibling) {
      if (node === el) continue;
      if (node.dataset.seq !== undefined && Number(node.dataset.seq) < seq) break;
      before = node;
    }
    if (el.nextElementSibling !== before || el.parentNode !== this.root) {
      this.root.insertBefore(el, before);
    }
  }

  // Follows new messages only if the reader was already at the bottom (or
  // `force`), so reading older messages is not interrupted.
  #keepAtBottom(change, force) {
    if (!this.root.isConnected) return change();
    const s = this.scroller;
    const atBottom = s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM_PX;
    change();
    if (atBottom || force) this.scrollToEnd();
  }
}
