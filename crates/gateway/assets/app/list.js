// The conversation list in the sidebar.
//
// It remembers every conversation the console has heard of and shows those
// matching the filter, most recently active first. A conversation's unread
// count is its last seq minus the last seq the agent has seen in it, so
// messages counted once are never counted twice, and messages missed while
// disconnected still count once the list is fetched again.

import { h, timeEl } from "/widget/dom.js";

const STATUS_LABELS = { open: "Open", assigned: "Assigned", closed: "Closed" };

export class ConversationList {
  /**
   * root        the <ul> to fill
   * emptyNote   shown when nothing matches the filter
   * hooks.onSelect(id)   the agent picked a conversation
   * hooks.isViewing(id)  the agent has this conversation on screen now
   * hooks.onCounts(map)  unread messages per filter, after each redraw
   */
  constructor(root, emptyNote, hooks) {
    this.root = root;
    this.emptyNote = emptyNote;
    this.hooks = hooks;
    this.filter = "open";
    this.meId = null; // for the "mine" filter
    this.renderQueued = false;
    this.reset();
  }

  reset() {
    this.records = new Map(); // id -> Conversation, as the server sent it
    this.lastSeq = new Map(); // id -> highest seq known
    this.seen = new Map(); // id -> highest seq the agent has seen
    this.activity = new Map(); // id -> time of the latest change or message
    this.preview = new Map(); // id -> body of the latest message
    this.touched = new Map(); // id -> performance.now() of our latest news of it
    this.selectedId = null;
    this.render();
  }

  has(id) {
    return this.records.has(id);
  }

  get(id) {
    return this.records.get(id);
  }

  /**
   * Takes a fresh fetch of `status`, asked for at `askedAt` (performance.now()).
   * Conversations it lacks have left that status, unless we heard of them
   * after the question was asked.
   */
  load(status, conversations, askedAt) {
    const fresh = new Set(conversations.map((c) => c.id));
    for (const [id, c] of this.records) {
      const stale = this.touched.get(id) < askedAt && id !== this.selectedId;
      if (stale && this.#matches(c, status) && !fresh.has(id)) this.records.delete(id);
    }
    for (const c of conversations) this.#merge(c);
    this.render();
  }

  /** A conversation record from an event or a single fetch. */
  upsert(conversation) {
    this.#merge(conversation);
    this.render();
  }

  /** A message arrived in some conversation. */
  noteMessage(message, fromMe) {
    const id = message.conversation_id;
    if (!this.records.has(id)) {
      // Stand-in until the real record is fetched; everything before this
      // message counts as seen.
      this.records.set(id, placeholder(message));
      this.seen.set(id, message.seq - 1);
    }

    this.lastSeq.set(id, Math.max(this.lastSeq.get(id) || 0, message.seq));
    this.activity.set(id, Math.max(this.activity.get(id) || 0, message.created_at));
    this.touched.set(id, performance.now());
    this.preview.set(id, message.body);
    // Replying means having read what came before.
    if (fromMe || this.hooks.isViewing(id)) this.markSeen(id);
    this.render();
  }

  markSeen(id) {
    const last = this.lastSeq.get(id) || 0;
    if ((this.seen.get(id) || 0) < last) {
      this.seen.set(id, last);
      this.render();
    }
  }

  unread(id) {
    return Math.max(0, (this.lastSeq.get(id) || 0) - (this.seen.get(id) || 0));
  }

  totalUnread() {
    let total = 0;
    for (const id of this.records.keys()) total += this.unread(id);
    return total;
  }

  select(id) {
    this.selectedId = id;
    this.render();
  }

  setMe(id) {
    this.meId = id;
    this.render();
  }

  setFilter(status) {
    this.filter = status;
    this.render();
  }

  /** Redraws once per frame, however many changes arrive in between. */
  render() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.#draw();
    });
  }

  #merge(c) {
    const old = this.records.get(c.id);
    if (old && old.updated_at > c.updated_at) return; // an older copy arrived late

    this.records.set(c.id, c);
    this.touched.set(c.id, performance.now());
    this.lastSeq.set(c.id, Math.max(this.lastSeq.get(c.id) || 0, c.last_seq));
    this.activity.set(c.id, Math.max(this.activity.get(c.id) || 0, c.updated_at));
    // The first time we hear of a conversation, its history counts as seen.
    if (!this.seen.has(c.id) || this.hooks.isViewing(c.id)) {
      this.seen.set(c.id, this.lastSeq.get(c.id));
    }
  }

  #draw() {
    const active = document.activeElement;
    const focused = this.root.contains(active) ? active.dataset.id : null;
    const shown = [...this.records.values()]
      .filter((c) => this.#matches(c, this.filter))
      .sort((a, b) => this.activity.get(b.id) - this.activity.get(a.id));

    this.root.replaceChildren(...shown.map((c) => h("li", {}, this.#item(c))));
    this.emptyNote.hidden = shown.length > 0;
    this.hooks.onCounts?.(this.#unreadByFilter());

    if (focused) {
      for (const button of this.root.querySelectorAll("button")) {
        if (button.dataset.id === focused) button.focus();
      }
    }
  }

  #matches(conversation, filter) {
    if (filter === "mine") {
      return conversation.status === "assigned" && conversation.assignee_id === this.meId;
    }
    return filter === "all" || conversation.status === filter;
  }

  #unreadByFilter() {
    const counts = { open: 0, mine: 0, all: 0, closed: 0 };
    for (const c of this.records.values()) {
      const unread = this.unread(c.id);
      if (unread === 0) continue;
      for (const filter of Object.keys(counts)) {
        if (this.#matches(c, filter)) counts[filter] += unread;
      }
    }
    return counts;
  }

  #item(c) {
    const unread = this.unread(c.id);
    const status = STATUS_LABELS[c.status] ? c.status : "open";
    const preview = this.preview.get(c.id);

    return h(
      "button",
      {
        type: "button",
        className: unread ? "conv conv--unread" : "conv",
        "data-id": c.id,
        "aria-current": c.id === this.selectedId ? "true" : undefined,
        onclick: () => this.hooks.onSelect(c.id),
      },
      h(
        "span",
        { className: "conv__row" },
        h("span", { className: "conv__name", textContent: c.visitor_name || "Visitor" }),
        timeEl(this.activity.get(c.id) || c.updated_at),
      ),
      h(
        "span",
        { className: "conv__row" },
        h("span", { className: `chip chip--${status}`, textContent: STATUS_LABELS[status] }),
        c.assignee_name && h("span", { className: "conv__assignee", textContent: c.assignee_name }),
        unread > 0 &&
          h(
            "span",
            { className: "conv__unread" },
            String(unread),
            h("span", { className: "sr-only", textContent: " unread" }),
          ),
      ),
      preview && h("span", { className: "conv__preview", textContent: preview }),
    );
  }
}

function placeholder(message) {
  return {
    id: message.conversation_id,
    visitor_name: message.author_kind === "visitor" ? message.author_name : null,
    status: "open",
    assignee_id: null,
    assignee_name: null,
    last_seq: message.seq,
    created_at: message.created_at,
    updated_at: 0, // any real record replaces this one
  };
}
