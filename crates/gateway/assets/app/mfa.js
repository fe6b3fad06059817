// Two-step sign-in: entering a code after the password, and setting up an
// authenticator app when the account's role requires one. Each success
// starts a new session on the server; the caller gets the new CSRF token.

import { ApiError, api, describeError, setCsrfToken } from "./api.js";

const $ = (id) => document.getElementById(id);
const ui = {
  panel: $("mfa"),
  form: $("mfa-form"),
  lead: $("mfa-lead"),
  error: $("mfa-error"),
  setup: $("mfa-setup"),
  qr: $("mfa-qr"),
  secret: $("mfa-secret"),
  codeField: $("mfa-code-field"),
  codeLabel: $("mfa-code-label"),
  code: $("mfa-code"),
  submit: $("mfa-submit"),
  useRecovery: $("mfa-use-recovery"),
  codes: $("mfa-codes"),
  codeList: $("mfa-code-list"),
  saved: $("mfa-saved"),
};

let mode = "code"; // "code", "recovery" or "enroll"
let done = () => {};

function show(error) {
  ui.error.textContent = error || "";
  ui.error.hidden = !error;
}

function reset() {
  show(null);
  ui.setup.hidden = true;
  ui.codes.hidden = true;
  ui.codeField.hidden = false;
  ui.submit.hidden = false;
  ui.code.value = "";
  ui.panel.hidden = false;
}

/** After the password: ask for a code. `onDone(agent, csrf)` follows success. */
export function askForCode(csrf, onDone) {
  setCsrfToken(csrf);
  done = onDone;
  mode = "code";
  reset();
  ui.lead.textContent = "Enter the 6-digit code from your authenticator app.";
  ui.codeLabel.textContent = "Code";
  ui.useRecovery.hidden = false;
  ui.code.focus();
}

/** The role requires a second factor that is not set up yet: set it up. */
export async function enroll(csrf, onDone) {
  setCsrfToken(csrf);
  done = onDone;
  mode = "enroll";
  reset();
  ui.useRecovery.hidden = true;
  ui.lead.textContent =
    "Your role needs two-step sign-in. Scan the code with an authenticator app, " +
    "then enter the 6 digits it shows.";
  ui.codeLabel.textContent = "Code from the app";
  try {
    const { secret, qr_svg: svg } = await api("POST", "/v1/agent/mfa/enroll");
    ui.qr.src = `data:image/svg+xml;base64,${btoa(svg)}`;
    ui.secret.textContent = secret;
    ui.setup.hidden = false;
    ui.code.focus();
  } catch (err) {
    show(describeError(err));
  }
}

ui.useRecovery.addEventListener("click", () => {
  mode = "recovery";
  ui.lead.textContent = "Enter one of the recovery codes you saved when you set up the app.";
  ui.codeLabel.textContent = "Recovery code";
  ui.useRecovery.hidden = true;
  ui.code.value = "";
  ui.code.focus();
});

ui.form.addEventListener("submit", async (event) => {
  event.preventDefault();
  show(null);
  ui.submit.disabled = true;
  const value = ui.code.value.trim();
  try {
    if (mode === "enroll") {
      const answer = await api("POST", "/v1/agent/mfa/confirm", { code: value });
      setCsrfToken(answer.session.csrf_token);
      showRecoveryCodes(answer.recovery_codes, answer.session);
    } else {
      const body = mode === "code" ? { code: value } : { recovery_code: value };
      const session = await api("POST", "/v1/agent/login/mfa", body);
      ui.panel.hidden = true;
      done(session.agent, session.csrf_token);
    }
  } catch (err) {
    const wrong = err instanceof ApiError && err.status === 401;
    show(wrong ? "That code did not work. Codes change every 30 seconds; try the next one." : describeError(err));
    ui.code.select();
  } finally {
    ui.submit.disabled = false;
  }
});

function showRecoveryCodes(codes, session) {
  ui.setup.hidden = true;
  ui.codeField.hidden = true;
  ui.submit.hidden = true;
  ui.lead.textContent = "Two-step sign-in is on.";
  ui.codeList.replaceChildren(
    ...codes.map((code) => {
      const item = document.createElement("li");
      item.textContent = code;
      return item;
    }),
  );
  ui.codes.hidden = false;
  ui.saved.focus();
  ui.saved.onclick = () => {
    ui.panel.hidden = true;
    done(session.agent, session.csrf_token);
  };
}
