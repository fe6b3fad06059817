// The admin console in a real browser (Debian's Chromium, driven by
// playwright-core). Starts `palisade demo` on free loopback ports with a
// fresh data dir; the demo owner signs in at /app/, sets up a second
// factor, opens /admin/ and runs the tenant from there.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..");
const targetDir = process.env.CARGO_TARGET_DIR || join(repo, "target");
const binary = process.env.PALISADE_BIN || join(targetDir, "debug", "palisade");
const shots = join(targetDir, "browser-screenshots");
const CHROMIUM_ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const XSS_NAME = `<img src=x onerror="window.__pwned=1">Eve`;

let server;
let dataDir;
let browser;
let demo; // { origin, password, email }

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

async function startDemo() {
  dataDir = mkdtempSync(join(tmpdir(), "palisade-admin-browser-"));
  const [publicPort, opsPort] = [await freePort(), await freePort()];
  server = spawn(binary, ["demo", "--data-dir", dataDir], {
    env: {
      ...process.env,
      PALISADE_SERVER__PUBLIC_ADDR: `127.0.0.1:${publicPort}`,
      PALISADE_SERVER__OPS_ADDR: `127.0.0.1:${opsPort}`,
      // The firewall refuses markup in names; logging only here lets a
      // name made of markup reach the page, which must show it as text.
      PALISADE_WAF__MODE: "detect",
      RUST_LOG: "error",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo did not start:\n${out}`)), 30_000);
    server.once("error", (err) => reject(new Error(`cannot run ${binary}: ${err.message}`)));
    server.once("exit", (code) => reject(new Error(`demo exited with ${code}:\n${out}`)));
    server.stdout.on("data", (chunk) => {
      out += chunk;
      const password = /Password:\s+(\S+)/.exec(out);
      const email = /Agent login:\s+(\S+)/.exec(out);
      if (password && email && out.includes("Stop with Ctrl-C")) {
        clearTimeout(timer);
        resolve({ origin: `https://127.0.0.1:${publicPort}`, password: password[1], email: email[1] });
      }
    });
  });
}

/** RFC 6238 code (SHA-1, 6 digits, 30 s) for a base32 secret. */
function totp(base32, unixSeconds = Math.floor(Date.now() / 1000)) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of base32.replace(/=+$/, "")) bits += alphabet.indexOf(ch).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(value).padStart(6, "0");
}

/** Makes every session's second-factor proof six minutes old, so the next
 * sensitive change needs a fresh code (the window is five minutes). */
function ageSecondFactorProofs() {
  const db = join(dataDir, "palisade.db");
  const sql = "UPDATE agent_sessions SET mfa_at = mfa_at - 360000 WHERE mfa_at IS NOT NULL;";
  execFileSync("sqlite3", ["-cmd", ".timeout 5000", db, sql]);
}

/** Waits for `shown`; if the section's error paragraph shows first, fails with its text. */
async function expectShown(page, shown, error) {
  await Promise.race([page.locator(shown).waitFor(), page.locator(error).waitFor()]);
  if (await page.locator(error).isVisible()) {
    throw new Error(`${error}: ${await page.locator(error).textContent()}`);
  }
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  demo = await startDemo();
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("an owner runs the tenant from the admin console", async () => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("console", (msg) => {
    // Chromium logs refused requests; the test makes some on purpose (a
    // step-up demand, a business-hours window the server rejects).
    if (msg.type() === "error" && !/status of 40[013]/.test(msg.text())) problems.push(msg.text());
  });

  // A visitor starts a conversation, for the overview to count.
  const visitor = await browser.newContext({ ignoreHTTPSErrors: true });
  const widgetPage = await visitor.newPage();
  await widgetPage.goto(`${demo.origin}/widget/demo.html`);
  await widgetPage.locator("#palisade-widget button").first().click();
  const chat = widgetPage.frameLocator("iframe");
  await chat.locator("textarea").fill("Is anyone there?");
  await chat.locator("textarea").press("Enter");
  await chat.getByText("Is anyone there?").waitFor();
  await visitor.close();

  // Sign in at the console and set up the second factor.
  await page.goto(`${demo.origin}/app/`);
  await page.fill("#email", demo.email);
  await page.fill("#password", demo.password);
  await page.click("#login-submit");
  await page.locator("#mfa-setup").waitFor();
  const secret = (await page.locator("#mfa-secret").textContent()).trim();
  await page.fill("#mfa-code", totp(secret));
  await page.click("#mfa-submit");
  await page.locator("#mfa-codes").waitFor();
  await page.click("#mfa-saved");
  await page.locator("#console").waitFor();

  // Answer the visitor, so the overview has a first-response time.
  await page.locator("#conversations li").first().click();
  await page.locator("#scroller").getByText("Is anyone there?").waitFor();
  await page.fill("#reply", "Yes, how can I help?");
  await page.press("#reply", "Enter");
  await page.locator("#scroller").getByText("Yes, how can I help?").waitFor();

  // The console links owners to the admin page.
  await page.click("#admin-link");
  await page.waitForURL(/\/admin\/$/);
  await page.locator("body[data-ready=true]").waitFor();
  await page.locator("#agent-rows tr").first().waitFor();
  assert.match(await page.locator("#my-mfa").textContent(), /is on/);

  // Invite an agent whose name is markup: the link is shown once.
  await page.fill("#invite-name", XSS_NAME);
  await page.fill("#invite-email", "eve@admin-test.example");
  await page.selectOption("#invite-role", "agent");
  await page.click("#invite-form button[type=submit]");
  await expectShown(page, "#invite-result", "#agents-error");
  const link = await page.inputValue("#invite-link");
  assert.match(link, /\/app\/#invite=/);
  await page.click("#invite-result button[data-dismiss]");
  assert.equal(await page.locator("#invite-result").isHidden(), true);

  // The invited person accepts (as they would from the link), then shows
  // in the list with the markup as plain text.
  const token = decodeURIComponent(link.split("#invite=")[1]);
  const accepted = await page.request.post(`${demo.origin}/v1/agent/invitations/accept`, {
    data: { token, name: XSS_NAME, password: "a long and careful passphrase 7" },
  });
  assert.equal(accepted.status(), 201);
  await page.reload();
  await page.locator("body[data-ready=true]").waitFor();
  const eve = page.locator("#agent-rows tr", { hasText: "eve@admin-test.example" });
  await eve.waitFor();
  assert.equal(await eve.locator("td").first().textContent(), XSS_NAME);
  assert.equal(await page.locator("#agent-rows img").count(), 0);

  // Changing her role needs a fresh second-factor code.
  ageSecondFactorProofs();
  await eve.locator("select").selectOption("admin");
  await eve.getByRole("button", { name: "Change role" }).click();
  await page.locator("#stepup[open]").waitFor();
  await page.screenshot({ path: join(shots, "admin-step-up.png") });
  await page.fill("#stepup-code", totp(secret, Math.floor(Date.now() / 1000) + 30));
  await page.click("#stepup-form button[type=submit]");
  await page.waitForFunction(() => !document.getElementById("stepup").open);
  await page.locator("#agent-rows tr", { hasText: "eve@admin-test.example" })
    .locator("td:nth-child(3)", { hasText: "admin" }).waitFor();

  // Deactivate and reactivate her.
  await page.locator("#agent-rows tr", { hasText: "eve@admin-test.example" })
    .getByRole("button", { name: "Deactivate" }).click();
  const eveAgain = page.locator("#agent-rows tr", { hasText: "eve@admin-test.example" });
  await eveAgain.locator("td:nth-child(4)", { hasText: "no" }).waitFor();
  await eveAgain.getByRole("button", { name: "Reactivate" }).click();
  await eveAgain.locator("td:nth-child(4)", { hasText: "yes" }).waitFor();

  // An API key: the token is shown once, then only its prefix.
  await page.fill("#key-name", "deploy bot");
  await page.check("#key-permissions input[value=conversations_read]");
  await page.fill("#key-days", "30");
  await page.click("#key-form button[type=submit]");
  await expectShown(page, "#key-result", "#keys-error");
  const apiToken = await page.inputValue("#key-token");
  assert.match(apiToken, /^plk_/);
  await page.click("#key-done");
  assert.equal(await page.locator("#key-result").isHidden(), true);
  const keyRow = page.locator("#key-rows tr", { hasText: "deploy bot" });
  await keyRow.waitFor();
  assert.equal(await keyRow.locator("td:nth-child(2)").textContent(), apiToken.slice(0, 12));
  assert.equal((await page.content()).includes(apiToken), false, "the token is gone from the page");

  // Revoking keeps the row, marked revoked.
  await keyRow.getByRole("button", { name: "Revoke" }).click();
  await keyRow.locator("td:nth-child(6)", { hasText: "revoked" }).waitFor();

  // Security: a new identity secret (shown once), then both policies on.
  await page.click("#rotate-secret");
  await expectShown(page, "#secret-result", "#security-error");
  assert.ok((await page.inputValue("#secret-value")).length >= 32);
  await page.locator("#identity-state", { hasText: "An identity secret is set" }).waitFor();
  await page.click("#secret-result button[data-dismiss]");
  assert.equal(await page.inputValue("#secret-value"), "");
  await page.check("#require-mfa");
  await page.check("#require-identity");
  await page.click("#policy-form button[type=submit]");
  await page.locator("#audit-rows tr", { hasText: "tenant.settings" }).first().waitFor();
  const tenant = await page.request.get(`${demo.origin}/v1/admin/tenant`);
  const policy = await tenant.json();
  assert.equal(policy.require_agent_mfa, true);
  assert.equal(policy.identity_verification.required, true);

  // The audit log shows those actions, and filters by action.
  for (const action of ["agent.invite", "agent.role_change", "api_key.create", "mfa.step_up"]) {
    await page.locator("#audit-rows tr", { hasText: action }).first().waitFor();
  }
  await page.selectOption("#audit-limit", "10");
  await page.click("#audit-form button[type=submit]");
  await page.locator("#audit-older").waitFor();
  assert.equal(await page.locator("#audit-rows tr").count(), 10);
  await page.click("#audit-older");
  await page.locator("#audit-rows tr:nth-child(11)").waitFor();
  const seqs = (await page.locator("#audit-rows tr td:first-child").allTextContents()).map(Number);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => b - a), "newest first across pages");
  assert.equal(new Set(seqs).size, seqs.length, "no entry twice");
  await page.selectOption("#audit-limit", "50");
  await page.fill("#audit-action", "agent.role_change");
  await page.click("#audit-form button[type=submit]");
  await page.locator("#audit-rows tr", { hasText: "agent.role_change" }).first().waitFor();
  const actions = await page.locator("#audit-rows tr td:nth-child(4)").allTextContents();
  assert.ok(actions.length > 0 && actions.every((a) => a === "agent.role_change"), actions.join());

  // The widget preview follows the colour field; saving keeps it.
  await page.locator("#widget").scrollIntoViewIfNeeded();
  await page.locator("#widget-color").fill("#c0392b");
  const launcher = page.locator("#preview-launcher");
  await page.waitForFunction(
    () => getComputedStyle(document.getElementById("preview-launcher")).backgroundColor === "rgb(192, 57, 43)",
  );
  await page.fill("#widget-greeting", "Hi there! <b>bold?</b>");
  assert.equal(await page.locator("#preview-greeting").textContent(), "Hi there! <b>bold?</b>");
  assert.match(await page.inputValue("#widget-snippet"), /<script src="https:\/\/127\.0\.0\.1:\d+\/widget\/loader\.js"/);
  await page.check("#hours-on");
  await page.check("#hours-days input[aria-label='Open on Monday']");
  await page.fill("#hours-days input[aria-label^='Monday closes']", "25:00");
  await page.click("#widget-form button[type=submit]");
  await page.locator("#widget-error").waitFor();
  await page.fill("#hours-days input[aria-label^='Monday closes']", "18:30");
  await page.click("#widget-form button[type=submit]");
  await expectShown(page, "#widget-saved", "#widget-error");
  const widgets = await (await page.request.get(`${demo.origin}/v1/admin/widgets`)).json();
  const saved = widgets.widgets[0];
  assert.equal(saved.settings.theme_color, "#c0392b");
  assert.deepEqual(saved.settings.hours.days[0], { open: "09:00", close: "18:30" });
  assert.equal(saved.settings.hours.days[1], null);
  await page.fill("#audit-action", "");
  await page.click("#audit-form button[type=submit]");
  await page.locator("#audit-rows tr", { hasText: "widget.settings.update" }).first().waitFor();
  await launcher.screenshot({ path: join(shots, "admin-widget-launcher.png") });

  // Canned responses: add two, delete one.
  for (const [shortcut, body] of [["hello", "Hi! How can I help?"], ["bye", "Thanks, bye!"]]) {
    await page.fill("#canned-shortcut", shortcut);
    await page.fill("#canned-body", body);
    await page.click("#canned-form button[type=submit]");
    await page.locator("#canned-list li", { hasText: `/${shortcut}` }).waitFor();
  }
  await page.getByRole("button", { name: "Delete /bye" }).click();
  await page.locator("#canned-list li", { hasText: "/bye" }).waitFor({ state: "detached" });
  assert.deepEqual(await page.locator("#canned-list code").allTextContents(), ["/hello"]);

  // A partner certificate: issued (the key shown once), then revoked.
  await page.fill("#partner-name", "acme-sync");
  await page.click("#partner-form button[type=submit]");
  await expectShown(page, "#partner-result", "#partners-error");
  assert.match(await page.inputValue("#partner-cert"), /-----BEGIN CERTIFICATE-----/);
  assert.match(await page.inputValue("#partner-key"), /PRIVATE KEY-----/);
  await page.click("#partner-done");
  const cert = page.locator("#partner-rows tr", { hasText: "acme-sync" });
  await cert.locator("td:nth-child(5)", { hasText: "valid" }).waitFor();
  await cert.getByRole("button", { name: "Revoke" }).click();
  await cert.locator("td:nth-child(5)", { hasText: "revoked" }).waitFor();
  assert.equal(await page.inputValue("#partner-key"), "");

  // The overview draws both charts as SVG with text labels, and a table.
  await page.locator("#overview").scrollIntoViewIfNeeded();
  await page.locator("#chart-conversations svg rect").last().waitFor();
  await page.locator("#chart-response svg").waitFor();
  assert.equal(await page.locator("#chart-conversations svg rect").count(), 14);
  assert.equal(await page.locator("#overview-rows tr").count(), 14);
  const today = await page.locator("#overview-rows tr").last().locator("td").allTextContents();
  assert.equal(today[0], new Date().toISOString().slice(0, 10));
  assert.equal(today[1], "1");
  assert.match(today[2], /^\d+ s$/, "answered within the minute");
  assert.equal(await page.locator("#chart-response svg circle").count(), 1);
  assert.equal(await page.locator("#chart-response svg path.chart__line").count(), 1);
  assert.equal(await page.locator("#backlog").textContent(), "Open now: 1 unassigned, 0 assigned.");
  assert.equal(await page.locator("#chart-conversations svg text.chart__value").allTextContents().then((t) => t.join()), "1");

  await page.locator("#overview").screenshot({ path: join(shots, "admin-overview.png") });
  await page.screenshot({ path: join(shots, "admin-console.png"), fullPage: true });
  // At phone width the page does not scroll sideways; wide tables scroll in their card.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.locator("#agents").scrollIntoViewIfNeeded();
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1));
  await page.screenshot({ path: join(shots, "admin-console-phone.png") });
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.deepEqual(problems, []);
  await context.close();
});
