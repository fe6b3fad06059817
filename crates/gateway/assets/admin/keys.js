// API keys: list, create (the token is shown once, then only its prefix)
// and revoke.

import { api } from "/app/api.js";
import { $, el, row, showError, when } from "./dom.js";
import { explain, guarded } from "./stepup.js";

/** What a key may hold: the tenant permissions (an admin's role lacks owners_manage). */
const PERMISSIONS = [
  "conversations_read", "conversations_write", "widgets_read", "widgets_manage",
  "agents_read", "agents_manage", "owners_manage", "api_keys_manage", "audit_read",
  "settings_manage", "partners_manage", "webhooks_manage",
];

const ui = {
  rows: $("key-rows"),
  form: $("key-form"),
  name: $("key-name"),
  days: $("key-days"),
  permissions: $("key-permissions"),
  result: $("key-result"),
  token: $("key-token"),
  done: $("key-done"),
  error: $("keys-error"),
};

let onChange = () => {};

export function startKeys(me, changed) {
  onChange = changed;
  const mine = PERMISSIONS.filter((p) => me.role === "owner" || p !== "owners_manage");
  ui.permissions.append(
    ...mine.map((p) =>
      el("label", { class: "check" }, el("input", { type: "checkbox", value: p }), ` ${p}`),
    ),
  );
  ui.form.addEventListener("submit", create);
  ui.done.addEventListener("click", () => {
    ui.token.value = "";
    ui.result.hidden = true;
  });
  return loadKeys();
}

async function loadKeys() {
  try {
    const { api_keys: keys } = await api("GET", "/v1/admin/api-keys");
    ui.rows.replaceChildren(...keys.map(keyRow));
  } catch (err) {
    showError(ui.error, explain(err));
  }
}

function keyRow(key) {
  let status = "active";
  if (key.revoked_at) status = "revoked";
  else if (key.expires_at < Date.now()) status = "expired";
  let action = "";
  if (status === "active") {
    action = el("button", { class: "button button--quiet", type: "button" }, "Revoke");
    action.addEventListener("click", () => revoke(key));
  }
  const tr = row(key.name, key.prefix, key.permissions.join(", "), when(key.expires_at),
    when(key.last_used_at), status, action);
  tr.dataset.keyId = key.id;
  return tr;
}

async function create(event) {
  event.preventDefault();
  showError(ui.error, null);
  const permissions = [...ui.permissions.querySelectorAll("input:checked")].map((i) => i.value);
  const body = {
    name: ui.name.value.trim(),
    permissions,
    expires_in_days: Number(ui.days.value),
  };
  try {
    const answer = await guarded("POST", "/v1/admin/api-keys", body);
    ui.token.value = answer.token;
    ui.result.hidden = false;
    ui.form.reset();
    ui.token.select();
  } catch (err) {
    showError(ui.error, explain(err));
  }
  await loadKeys();
  onChange();
}

async function revoke(key) {
  showError(ui.error, null);
  try {
    await guarded("DELETE", `/v1/admin/api-keys/${encodeURIComponent(key.id)}`);
  } catch (err) {
    showError(ui.error, explain(err));
  }
  await loadKeys();
  onChange();
}
