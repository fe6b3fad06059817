// Agents: the team list, invitations (the link is shown once), role
// changes (step-up) and deactivation.

import { api, describeError } from "/app/api.js";
import { $, el, row, showError } from "./dom.js";
import { explain, guarded } from "./stepup.js";

const ROLES = ["agent", "admin", "owner"];

const ui = {
  rows: $("agent-rows"),
  form: $("invite-form"),
  name: $("invite-name"),
  email: $("invite-email"),
  role: $("invite-role"),
  result: $("invite-result"),
  link: $("invite-link"),
  expires: $("invite-expires"),
  error: $("agents-error"),
};

let onChange = () => {};

/** `changed` runs after every change (the audit log shows it). */
export function startAgents(changed) {
  onChange = changed;
  ui.form.addEventListener("submit", invite);
  return loadAgents();
}

async function loadAgents() {
  try {
    const { agents } = await api("GET", "/v1/admin/agents");
    ui.rows.replaceChildren(...agents.map(agentRow));
  } catch (err) {
    showError(ui.error, describeError(err));
  }
}

function agentRow(agent) {
  const role = el("select", { "aria-label": `Role of ${agent.name}` });
  role.append(...ROLES.map((r) => el("option", { value: r, selected: r === agent.role }, r)));
  const setRole = el("button", { class: "button button--quiet", type: "button" }, "Change role");
  setRole.addEventListener("click", () =>
    act(`/v1/admin/agents/${encodeURIComponent(agent.id)}`, "PATCH", { role: role.value }),
  );

  const verb = agent.active ? "deactivate" : "reactivate";
  const toggle = el("button", { class: "button button--quiet", type: "button" },
    agent.active ? "Deactivate" : "Reactivate");
  toggle.addEventListener("click", () =>
    act(`/v1/admin/agents/${encodeURIComponent(agent.id)}/${verb}`, "POST"),
  );

  const actions = el("span", { class: "actions" }, role, setRole, toggle);
  const tr = row(agent.name, agent.email, agent.role, agent.active ? "yes" : "no",
    agent.mfa_enabled ? "on" : "off", actions);
  tr.dataset.agentId = agent.id;
  return tr;
}

async function act(path, method, body) {
  showError(ui.error, null);
  try {
    await guarded(method, path, body);
  } catch (err) {
    showError(ui.error, explain(err));
  }
  await loadAgents();
  onChange();
}

async function invite(event) {
  event.preventDefault();
  showError(ui.error, null);
  ui.result.hidden = true;
  const body = { name: ui.name.value.trim(), email: ui.email.value.trim(), role: ui.role.value };
  try {
    const answer = await guarded("POST", "/v1/admin/agents/invitations", body);
    ui.link.value = answer.invitation_url;
    ui.expires.textContent = new Date(answer.expires_at).toLocaleString();
    ui.result.hidden = false;
    ui.form.reset();
    ui.link.select();
  } catch (err) {
    showError(ui.error, explain(err));
  }
  onChange();
}
