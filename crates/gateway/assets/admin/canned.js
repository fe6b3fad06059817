// Canned responses: the tenant's ready-made replies, added or replaced by
// shortcut and deleted.

import { api } from "/app/api.js";
import { $, el, showError } from "./dom.js";
import { explain } from "./stepup.js";

const ui = {
  list: $("canned-list"),
  form: $("canned-form"),
  shortcut: $("canned-shortcut"),
  body: $("canned-body"),
  error: $("canned-error"),
};

let onChange = () => {};

export function startCanned(changed) {
  onChange = changed;
  ui.form.addEventListener("submit", save);
  return load();
}

async function load() {
  try {
    const { canned_responses: all } = await api("GET", "/v1/agent/canned-responses");
    ui.list.replaceChildren(...all.map(item));
  } catch (err) {
    showError(ui.error, explain(err));
  }
}

function item(canned) {
  const remove = el("button", { class: "button button--quiet", type: "button",
    "aria-label": `Delete /${canned.shortcut}` }, "Delete");
  remove.addEventListener("click", () => removeCanned(canned.shortcut));
  return el("li", { class: "canned-admin__item" },
    el("code", {}, `/${canned.shortcut}`), el("span", {}, canned.body), remove);
}

const path = (shortcut) => `/v1/admin/canned-responses/${encodeURIComponent(shortcut)}`;

async function save(event) {
  event.preventDefault();
  showError(ui.error, null);
  try {
    await api("PUT", path(ui.shortcut.value.trim()), { body: ui.body.value });
    ui.form.reset();
  } catch (err) {
    showError(ui.error, explain(err));
  }
  await load();
  onChange();
}

async function removeCanned(shortcut) {
  showError(ui.error, null);
  try {
    await api("DELETE", path(shortcut));
  } catch (err) {
    showError(ui.error, explain(err));
  }
  await load();
  onChange();
}
