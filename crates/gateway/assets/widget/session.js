// Who the visitor is, for one widget key: a visitor token and the current
// conversation, saved in localStorage so that someone who comes back (or
// opens a second tab) continues the same conversation.
//
// The token is a bearer credential for this visitor only. It is kept in
// Palisade's own origin storage, which the host page cannot read.

import { ApiError, fetchJson } from "./http.js";

// A saved token with under a minute left is not worth trying; one with under
// an hour left is traded in for a fresh one for the same visitor.
const MIN_TOKEN_LIFE_MS = 60 * 1000;
const RENEW_BEFORE_MS = 60 * 60 * 1000;

export class VisitorSession {
  constructor(widgetKey, page = null) {
    this.widgetKey = widgetKey;
    this.page = page; // the host page, for the agent's side panel
    this.store = savedState(`palisade.visitor.${widgetKey}`);
    this.state = null; // { token, expires_at, visitor_id, conversation_id, widget, email_left }
    this.profile = {}; // what the pre-chat form asked for, used for a new visitor
  }

  get token() {
    return this.state.token;
  }

  get conversationId() {
    return this.state.conversation_id;
  }

  /** The widget's public settings (see GET /v1/visitor/widgets/{key}). */
  get widget() {
    return this.state.widget || {};
  }

  /** True when a token from an earlier visit is saved. */
  get returning() {
    return this.store.load() !== null;
  }

  /** True once this visitor has given an email (pre-chat or away form). */
  get emailLeft() {
    return Boolean(this.state && this.state.email_left);
  }

  /**
   * Resumes the saved session, or starts a new one if there is none or the
   * server no longer accepts its token. A new visitor is created with
   * `profile` ({ name?, email? } from the pre-chat form). Returns the
   * current conversation, which may be closed.
   */
  async open(profile = {}) {
    this.profile = profile;
    try {
      return await this.#resume(this.store.load());
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) throw err;
      this.forget();
      return this.#resume(null);
    }
  }

  /** Saves the email a visitor leaves so agents can answer later. */
  async leaveEmail(email) {
    await this.api("POST", "/v1/visitor/contact", { email });
    this.state.email_left = true;
    this.store.save(this.state);
  }

  /** Starts a new conversation and makes it the current one. */
  async newConversation() {
    const conversation = await this.api("POST", "/v1/visitor/conversations", {});
    this.state.conversation_id = conversation.id;
    this.store.save(this.state);
    return conversation;
  }

  /** Drops the saved token, so the next open() starts a new visitor. */
  forget() {
    this.state = null;
    this.store.clear();
  }

  api(method, path, body) {
    const headers = { authorization: `Bearer ${this.state.token}` };
    return fetchJson(method, path, { body, headers });
  }

  async #resume(saved) {
    this.state = await this.#usable(saved);
    this.store.save(this.state);

    // Listing this visitor's conversations also proves the token works.
    if (this.state.conversation_id) {
      const { conversations } = await this.api("GET", "/v1/visitor/conversations");
      const current = conversations.find((c) => c.id === this.state.conversation_id);
      if (current) return current;
    }
    return this.newConversation();
  }

  async #usable(saved) {
    const left = saved ? saved.expires_at - Date.now() : 0;
    if (left > RENEW_BEFORE_MS) return saved;

    if (left > MIN_TOKEN_LIFE_MS) {
      try {
        const fresh = await this.#create({ resume_token: saved.token });
        return { ...fresh, conversation_id: saved.conversation_id, email_left: saved.email_left };
      } catch (err) {
        // Offline or the server is busy: the old token still has time left.
        if (!(err instanceof ApiError)) return saved;
      }
    }
    const profile = {};
    for (const field of ["name", "email"]) {
      const value = (this.profile && this.profile[field]) || "";
      if (value.trim()) profile[field] = value.trim();
    }
    const created = await this.#create(profile);
    return { ...created, email_left: Boolean(profile.email) };
  }

  async #create(extra) {
    const body = { widget_key: this.widgetKey, ...extra };
    if (this.page) body.page_url = this.page;
    const answer = await fetchJson("POST", "/v1/visitor/sessions", { body });
    return {
      token: answer.token,
      visitor_id: answer.visitor_id,
      expires_at: answer.expires_at,
      widget: answer.widget || {},
      conversation_id: null,
    };
  }
}

// localStorage can be blocked (private modes, third-party storage rules);
// then this visit still works and the next one starts afresh.
function savedState(name) {
  return {
    load() {
      try {
        const value = JSON.parse(localStorage.getItem(name) || "null");
        if (!value || typeof value.token !== "string") return null;
        return typeof value.expires_at === "number" ? value : null;
      } catch {
        return null;
      }
    },
    save(value) {
      try {
        localStorage.setItem(name, JSON.stringify(value));
      } catch {
        // Blocked: see above.
      }
    },
    clear() {
      try {
        localStorage.removeItem(name);
      } catch {
        // Blocked: see above.
      }
    },
  };
}
