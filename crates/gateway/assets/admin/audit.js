// The audit log: this tenant's entries, newest first, filtered by action,
// actor and outcome, a page at a time ("Older" follows `next_before`).

import { api } from "/app/api.js";
import { $, row, showError, when } from "./dom.js";
import { explain } from "./stepup.js";

const PAGE = 50;

const ui = {
  form: $("audit-form"),
  action: $("audit-action"),
  actor: $("audit-actor"),
  outcome: $("audit-outcome"),
  rows: $("audit-rows"),
  older: $("audit-older"),
  error: $("audit-error"),
};

let nextBefore = null;

export function startAudit() {
  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    reloadAudit();
  });
  ui.older.addEventListener("click", () => load(nextBefore));
  return reloadAudit();
}

/** Reads the newest page again (after a change elsewhere on the page). */
export function reloadAudit() {
  ui.rows.replaceChildren();
  return load(null);
}

async function load(before) {
  showError(ui.error, null);
  const query = new URLSearchParams({ limit: String(PAGE) });
  for (const [name, field] of [["action", ui.action], ["actor", ui.actor], ["outcome", ui.outcome]]) {
    const value = field.value.trim();
    if (value) query.set(name, value);
  }
  if (before !== null) query.set("before", String(before));
  try {
    const page = await api("GET", `/v1/admin/audit?${query}`);
    ui.rows.append(
      ...page.entries.map((e) => {
        const tr = row(e.seq, when(e.at), `${e.actor} (${e.actor_kind})`, e.action, e.target,
          e.outcome, e.ip);
        tr.dataset.outcome = e.outcome;
        return tr;
      }),
    );
    nextBefore = page.next_before;
    ui.older.hidden = nextBefore === null;
  } catch (err) {
    showError(ui.error, explain(err));
  }
}
