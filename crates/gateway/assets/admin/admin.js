// The admin console: one page of sections for a tenant's owners and admins,
// signed in with the agent console's session (the sign-in and its second
// factor happen at /app/). Each section loads on its own, so one failing
// request leaves the others working.

import { ApiError, api, describeError, setCsrfToken, whenSessionExpires } from "/app/api.js";
import { startAgents } from "./agents.js";
import { reloadAudit, startAudit } from "./audit.js";
import { startCanned } from "./canned.js";
import { $, wireCopyButtons, wireDismissButtons } from "./dom.js";
import { startKeys } from "./keys.js";
import { loadOverview, startOverview } from "./overview.js";
import { startPartners } from "./partners.js";
import { startSecurity } from "./security.js";
import { startWidget } from "./widget.js";

const ADMIN_ROLES = ["owner", "admin"];

function showGate(text) {
  $("loading").hidden = true;
  $("admin").hidden = true;
  $("gate-text").textContent = text;
  $("gate").hidden = false;
}

/** After any change: the audit log and overview show its effect. */
function changed() {
  reloadAudit();
  loadOverview();
}

async function start() {
  let me;
  try {
    const session = await api("GET", "/v1/agent/me");
    if (session.stage !== "full") {
      showGate("Finish signing in at the console first.");
      return;
    }
    me = session.agent;
    setCsrfToken(session.csrf_token);
  } catch (err) {
    const signedOut = err instanceof ApiError && err.status === 401;
    showGate(signedOut ? "Sign in at the console first." : describeError(err));
    return;
  }
  if (!ADMIN_ROLES.includes(me.role)) {
    showGate("Only owners and admins can open the admin console.");
    return;
  }
  whenSessionExpires(() => showGate("Your session ended. Sign in again."));

  $("me").textContent = `${me.name} (${me.role})`;
  $("loading").hidden = true;
  $("admin").hidden = false;
  wireCopyButtons();
  wireDismissButtons();
  await Promise.all([
    startAgents(changed),
    startKeys(me, changed),
    startSecurity(me, changed),
    startAudit(),
    startWidget(changed),
    startCanned(changed),
    startOverview(),
    startPartners(changed),
  ]);
  document.body.dataset.ready = "true";
}

start();
