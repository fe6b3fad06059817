// Partner certificates: list with expiry, issue (the private key is shown
// once) and revoke. Issuing and revoking are step-up routes.

import { api } from "/app/api.js";
import { $, el, row, showError, when } from "./dom.js";
import { explain, guarded } from "./stepup.js";

const ui = {
  rows: $("partner-rows"),
  form: $("partner-form"),
  name: $("partner-name"),
  days: $("partner-days"),
  result: $("partner-result"),
  cert: $("partner-cert"),
  key: $("partner-key"),
  chain: $("partner-chain"),
  done: $("partner-done"),
  error: $("partners-error"),
};

let onChange = () => {};

export function startPartners(changed) {
  onChange = changed;
  ui.form.addEventListener("submit", issue);
  ui.done.addEventListener("click", () => {
    ui.cert.value = "";
    ui.key.value = "";
    ui.chain.value = "";
    ui.result.hidden = true;
  });
  return load();
}

async function load() {
  try {
    const { certificates } = await api("GET", "/v1/admin/partners/certificates");
    ui.rows.replaceChildren(...certificates.map(certRow));
  } catch (err) {
    showError(ui.error, explain(err));
  }
}

function status(cert) {
  if (cert.revoked_at) return `revoked ${when(cert.revoked_at)}`;
  if (cert.not_after < Date.now()) return "expired";
  return cert.expiring_soon ? "expires soon" : "valid";
}

function certRow(cert) {
  let action = "";
  if (!cert.revoked_at && cert.not_after >= Date.now()) {
    action = el("button", { class: "button button--quiet", type: "button" }, "Revoke");
    action.addEventListener("click", () => revoke(cert.serial));
  }
  const tr = row(cert.partner, cert.serial, when(cert.not_before), when(cert.not_after),
    status(cert), action);
  tr.dataset.serial = cert.serial;
  return tr;
}

async function issue(event) {
  event.preventDefault();
  showError(ui.error, null);
  const body = { partner: ui.name.value.trim() };
  if (ui.days.value) body.days = Number(ui.days.value);
  try {
    const issued = await guarded("POST", "/v1/admin/partners/certificates", body);
    ui.cert.value = issued.certificate_pem;
    ui.key.value = issued.private_key_pem ?? "";
    ui.chain.value = issued.chain_pem;
    ui.result.hidden = false;
    ui.form.reset();
  } catch (err) {
    showError(ui.error, explain(err));
  }
  await load();
  onChange();
}

async function revoke(serial) {
  showError(ui.error, null);
  try {
    await guarded("POST", `/v1/admin/partners/certificates/${encodeURIComponent(serial)}/revoke`);
  } catch (err) {
    showError(ui.error, explain(err));
  }
  await load();
  onChange();
}
