// The audit log: this tenant's entries, newest first, filtered by action,
// actor and outcome, a page at a time ("Older" follows `next_before`).
// Changing a filter or the page size reads the newest page again.

import { api } from "/app/api.js";
import { $, row, showError, when } from "./dom.js";
import { explain } from "./stepup.js";

const ui = {
  form: $("audit-form"),
  action: $("audit-action"),
  actor: $("audit-actor"),
  outcome: $("audit-outcome"),
  limit: $("audit-limit"),
  rows: $("audit-rows"),
  older: $("audit-older"),
  error: $("audit-error"),
};

let nextBefore = null;
let generation = 0; // bumped by each fresh read; older answers are dropped

export function startAudit() {
  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    reloadAudit();
  });
  ui.limit.addEventListener("change", reloadAudit);
  ui.outcome.addEventListener("change", reloadAudit);
  ui.older.addEventListener("click", () => load(nextBefore, generation));
  return reloadAudit();
}

/** Reads the newest page again (after a change elsewhere on the page). */
export function reloadAudit() {
  generation += 1;
  ui.rows.replaceChildren();
  ui.older.hidden = true;
  return load(null, generation);
}

async function load(before, asOf) {
  showError(ui.error, null);
  const query = new URLSearchParams({ limit: ui.limit.value });
  for (const [name, field] of [["action", ui.action], ["actor", ui.actor], ["outcome", ui.outcome]]) {
    const value = field.value.trim();
    if (value) query.set(name, value);
  }
  if (before !== null) query.set("before", String(before));
  ui.older.disabled = true;
  try {
    const page = await api("GET", `/v1/admin/audit?${query}`);
    if (asOf !== generation) return;
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
  } finally {
    ui.older.disabled = false;
  }
}
