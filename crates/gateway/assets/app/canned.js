// The /shortcut picker of the reply box: typing "/" and the start of a
// shortcut lists the tenant's canned responses; arrows move, Enter or Tab
// puts the chosen text in the box (to edit or send), Escape closes.
// Built as an ARIA combobox: the box keeps focus, the list is a listbox.

import { h } from "/widget/dom.js";
import { api } from "./api.js";

const TYPED = /^\/([a-z0-9_-]{0,32})$/;
const MAX_SHOWN = 8;
const FRESH_MS = 60 * 1000;

export class CannedPicker {
  constructor(input, list) {
    this.input = input;
    this.list = list;
    this.all = null; // [{ shortcut, body }], fetched on first use
    this.fetchedAt = 0;
    this.shown = [];
    this.active = -1;

    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", list.id);
    input.setAttribute("aria-expanded", "false");
    input.addEventListener("input", () => this.#update());
    input.addEventListener("blur", () => this.close());
  }

  get isOpen() {
    return !this.list.hidden;
  }

  /** Handles a key in the box; true if the picker used it. */
  handleKey(event) {
    if (!this.isOpen) return false;
    const moves = { ArrowDown: 1, ArrowUp: -1 };
    if (event.key in moves) {
      const count = this.shown.length;
      this.#highlight((this.active + moves[event.key] + count) % count);
    } else if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") {
      this.#choose(this.active);
    } else if (event.key === "Escape") {
      this.close();
    } else {
      return false;
    }
    event.preventDefault();
    return true;
  }

  close() {
    this.list.hidden = true;
    this.list.replaceChildren();
    this.shown = [];
    this.active = -1;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  async #update() {
    const typed = TYPED.exec(this.input.value);
    if (!typed) return this.close();

    if (!this.all || Date.now() - this.fetchedAt > FRESH_MS) {
      try {
        this.all = (await api("GET", "/v1/agent/canned-responses")).canned_responses;
        this.fetchedAt = Date.now();
      } catch {
        return this.close(); // no list: the box stays a plain box
      }
    }
    // The box may have changed while the list was on its way.
    const now = TYPED.exec(this.input.value);
    if (!now) return this.close();
    this.#show(this.all.filter((c) => c.shortcut.startsWith(now[1])).slice(0, MAX_SHOWN));
  }

  #show(matches) {
    if (matches.length === 0) return this.close();
    this.shown = matches;
    const options = matches.map((c, i) => {
      const option = h(
        "li",
        { id: `canned-${i}`, className: "canned__option", role: "option", "aria-selected": "false" },
        h("span", { className: "canned__shortcut" }, `/${c.shortcut}`),
        h("span", { className: "canned__body" }, c.body),
      );
      // mousedown, not click: the box must not lose focus first.
      option.addEventListener("mousedown", (event) => {
        event.preventDefault();
        this.#choose(i);
      });
      return option;
    });
    this.list.replaceChildren(...options);
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.#highlight(0);
  }

  #highlight(index) {
    this.active = index;
    [...this.list.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === index)));
    this.input.setAttribute("aria-activedescendant", `canned-${index}`);
  }

  #choose(index) {
    const chosen = this.shown[index];
    this.close();
    if (!chosen) return;
    this.input.value = chosen.body;
    this.input.setSelectionRange(chosen.body.length, chosen.body.length);
    this.input.dispatchEvent(new Event("input"));
  }
}
