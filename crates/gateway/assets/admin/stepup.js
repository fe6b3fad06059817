// Step-up: routes that change who can do what answer `403 step_up_required`
// unless the session proved its second factor in the last five minutes.
// `guarded` then asks for a code, sends it, and retries the request once.

import { ApiError, api, describeError } from "/app/api.js";
import { $, showError } from "./dom.js";

const ui = {
  dialog: $("stepup"),
  form: $("stepup-form"),
  code: $("stepup-code"),
  error: $("stepup-error"),
  cancel: $("stepup-cancel"),
};

/** The user closed the code dialog: the change was not made. */
export class StepUpCancelled extends Error {
  constructor() {
    super("Cancelled: the change was not made.");
  }
}

/** A sentence for the user about a failed change. */
export function explain(err) {
  return err instanceof StepUpCancelled ? err.message : describeError(err);
}

let pending = null; // { resolve, reject } of the open dialog

/** Resolves once a code was accepted; rejects if the user cancels. */
function askForCode() {
  showError(ui.error, null);
  ui.code.value = "";
  ui.dialog.showModal();
  ui.code.focus();
  return new Promise((resolve, reject) => {
    pending = { resolve, reject };
  });
}

ui.form.addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await api("POST", "/v1/agent/mfa/step-up", { code: ui.code.value.trim() });
    ui.dialog.close();
    pending?.resolve();
    pending = null;
  } catch (err) {
    const wrong = err instanceof ApiError && err.status === 401;
    showError(ui.error, wrong ? "That code did not work. Try the next one." : describeError(err));
    ui.code.select();
  }
});

function cancel() {
  if (ui.dialog.open) ui.dialog.close();
  pending?.reject(new StepUpCancelled());
  pending = null;
}

ui.cancel.addEventListener("click", cancel);
ui.dialog.addEventListener("cancel", (event) => {
  event.preventDefault();
  cancel();
});

/** `api`, asking for a second-factor code when the route needs a fresh one. */
export async function guarded(method, path, body) {
  try {
    return await api(method, path, body);
  } catch (err) {
    if (!(err instanceof ApiError && err.code === "step_up_required")) throw err;
    await askForCode();
    return api(method, path, body);
  }
}
