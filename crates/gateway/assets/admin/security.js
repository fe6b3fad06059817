// Security: the tenant's policies (both step-up), a new visitor identity
// secret (shown once) and the admin's own two-step sign-in.

import { api } from "/app/api.js";
import { $, showError, when } from "./dom.js";
import { explain, guarded } from "./stepup.js";

const ui = {
  form: $("policy-form"),
  requireMfa: $("require-mfa"),
  requireIdentity: $("require-identity"),
  identityState: $("identity-state"),
  rotate: $("rotate-secret"),
  result: $("secret-result"),
  secret: $("secret-value"),
  myMfa: $("my-mfa"),
  myMfaLink: $("my-mfa-link"),
  error: $("security-error"),
};

let onChange = () => {};

export function startSecurity(me, changed) {
  onChange = changed;
  ui.form.addEventListener("submit", savePolicy);
  ui.rotate.addEventListener("click", rotate);
  return Promise.all([loadTenant(), showMyMfa(me)]);
}

function showTenant(tenant) {
  ui.requireMfa.checked = tenant.require_agent_mfa;
  const identity = tenant.identity_verification;
  ui.requireIdentity.checked = identity.required;
  ui.identityState.textContent = identity.secret_set
    ? `An identity secret is set (made ${when(identity.rotated_at)}).`
    : "No identity secret yet: make one before requiring verification.";
}

async function loadTenant() {
  try {
    showTenant(await api("GET", "/v1/admin/tenant"));
  } catch (err) {
    showError(ui.error, explain(err));
  }
}

async function showMyMfa(me) {
  try {
    const { agents } = await api("GET", "/v1/admin/agents");
    const mine = agents.find((a) => a.id === me.id);
    const on = Boolean(mine?.mfa_enabled);
    ui.myMfa.textContent = on
      ? "Your two-step sign-in is on."
      : "Your two-step sign-in is not set up yet.";
    ui.myMfaLink.hidden = on;
  } catch (err) {
    showError(ui.error, explain(err));
  }
}

async function savePolicy(event) {
  event.preventDefault();
  showError(ui.error, null);
  const body = {
    require_agent_mfa: ui.requireMfa.checked,
    identity_verification_required: ui.requireIdentity.checked,
  };
  try {
    showTenant(await guarded("PATCH", "/v1/admin/tenant", body));
  } catch (err) {
    showError(ui.error, explain(err));
    await loadTenant();
  }
  onChange();
}

async function rotate() {
  showError(ui.error, null);
  ui.result.hidden = true;
  try {
    const { secret } = await guarded("POST", "/v1/admin/identity-secret");
    ui.secret.value = secret;
    ui.result.hidden = false;
    ui.secret.select();
  } catch (err) {
    showError(ui.error, explain(err));
  }
  await loadTenant();
  onChange();
}
