// Palisade's widget and agent console in a real browser (Debian's Chromium,
// driven by playwright-core; no test tool downloads a browser of its own).
// Starts `palisade demo` on free loopback ports with a fresh data dir, then
// plays a visitor and an agent in two separate browser contexts.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
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

/** Starts the demo and reads the origin and the one-time password it prints. */
async function startDemo() {
  dataDir = mkdtempSync(join(tmpdir(), "palisade-browser-"));
  const [publicPort, opsPort] = [await freePort(), await freePort()];
  server = spawn(binary, ["demo", "--data-dir", dataDir], {
    env: {
      ...process.env,
      PALISADE_SERVER__PUBLIC_ADDR: `127.0.0.1:${publicPort}`,
      PALISADE_SERVER__OPS_ADDR: `127.0.0.1:${opsPort}`,
      // Every test signs the one demo owner in afresh, faster than a person would.
      PALISADE_LIMITS__LOGIN_PER_ACCOUNT: "60/min burst 20",
      RUST_LOG: "warn",
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

async function newPage(width = 1100) {
  // The server's certificate comes from its own fresh CA; the Rust end-to-end
  // tests check that chain, so the browser is told to accept it here.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width, height: 760 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error" && !msg.text().includes("401")) problems.push(msg.text());
  });
  return { context, page, problems };
}

async function openWidget(page) {
  await page.goto(`${demo.origin}/widget/demo.html`);
  await page.locator("#palisade-widget button").first().click();
  const frame = page.frameLocator("iframe");
  await frame.locator("textarea").waitFor();
  return frame;
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

let recoveryCodes = [];

/** Signs the demo owner in: sets up the second factor the first time, then
 * uses a recovery code (the app's code of this 30 s step is spent). */
async function signIn(page) {
  await page.goto(`${demo.origin}/app/`);
  await page.fill("#email", demo.email);
  await page.fill("#password", demo.password);
  await page.click("#login-submit");
  await Promise.race([page.locator("#mfa").waitFor(), page.locator("#login-error").waitFor()]);
  if (await page.locator("#login-error").isVisible()) throw new Error(`sign-in refused: ${await page.locator("#login-error").textContent()}`);
  if (recoveryCodes.length === 0) {
    // The set-up panel shows once the secret has arrived.
    await page.locator("#mfa-setup").waitFor();
    const secret = (await page.locator("#mfa-secret").textContent()).trim();
    assert.match(secret, /^[A-Z2-7]+=*$/);
    // The QR code renders (a data: SVG, allowed by the page's CSP).
    await page.waitForFunction(() => document.getElementById("mfa-qr").naturalWidth > 0);
    await page.screenshot({ path: join(shots, "agent-mfa-setup.png") });
    await page.fill("#mfa-code", totp(secret));
    await page.click("#mfa-submit");
    await page.locator("#mfa-codes").waitFor();
    recoveryCodes = await page.locator("#mfa-code-list li").allTextContents();
    assert.equal(recoveryCodes.length, 10);
    await page.click("#mfa-saved");
  } else {
    await page.click("#mfa-use-recovery");
    await page.fill("#mfa-code", recoveryCodes.pop());
    await page.click("#mfa-submit");
  }
  await page.locator("#console").waitFor();
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

test("a visitor and an agent chat live, and a reload keeps the history", async () => {
  const visitor = await newPage();
  const frame = await openWidget(visitor.page);
  await frame.locator("textarea").fill("Hello, is my teapot on its way?");
  await frame.locator("textarea").press("Enter");
  await frame.getByText("Hello, is my teapot on its way?").waitFor();

  const agent = await newPage(1200);
  await signIn(agent.page);
  await agent.page.locator("#conversations li").first().click();
  await agent.page.locator("#scroller").getByText("Hello, is my teapot on its way?").waitFor();
  // The side panel names the visitor's page (the host page the loader runs
  // on) and browser.
  const panel = agent.page.locator("#thread-visitor");
  await panel.getByText(`on ${demo.origin}/widget/demo.html`, { exact: false }).waitFor();
  assert.match(await panel.textContent(), /Chrome \d+/);
  await agent.page.fill("#reply", "Yes, it ships today.");
  await agent.page.press("#reply", "Enter");

  // The reply reaches the visitor live, without a reload.
  await frame.getByText("Yes, it ships today.").waitFor({ timeout: 10_000 });
  await visitor.page.screenshot({ path: join(shots, "visitor-live-reply.png") });

  // After a reload the whole conversation is still there.
  const reloaded = await openWidget(visitor.page);
  await reloaded.getByText("Hello, is my teapot on its way?").waitFor();
  await reloaded.getByText("Yes, it ships today.").waitFor();
  await agent.page.screenshot({ path: join(shots, "agent-console.png") });
  assert.deepEqual(visitor.problems, []);
  assert.deepEqual(agent.problems, []);
  await visitor.context.close();
  await agent.context.close();
});

test("a message made of markup is shown as text and runs nothing", async () => {
  const payload = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>`;
  const visitor = await newPage();
  const frame = await openWidget(visitor.page);
  await frame.locator("textarea").fill(payload);
  await frame.locator("textarea").press("Enter");
  await frame.getByText(payload).waitFor();

  const agent = await newPage(1200);
  await signIn(agent.page);
  await agent.page.locator("#conversations li").first().click();
  await agent.page.locator("#scroller").getByText(payload).waitFor();
  await agent.page.screenshot({ path: join(shots, "agent-sees-markup-as-text.png") });

  const framePwned = await visitor.page.frames().find((f) => f.url().includes("frame.html")).evaluate(() => window.__pwned);
  assert.equal(await agent.page.evaluate(() => window.__pwned), undefined);
  assert.equal(framePwned, undefined);
  assert.equal(await agent.page.locator("#scroller img").count(), 0);
  await visitor.context.close();
  await agent.context.close();
});

/** Calls the admin API from a signed-in console page, with its CSRF token. */
function adminCall(page, method, path, body) {
  return page.evaluate(
    async ([method, path, body]) => {
      const { api } = await import("/app/api.js");
      return api(method, path, body);
    },
    [method, path, body],
  );
}

test("admin settings change the widget: colour, corner, pre-chat form, away message", async () => {
  const agent = await newPage(1200);
  await signIn(agent.page);
  const { widgets } = await adminCall(agent.page, "GET", "/v1/admin/widgets");
  const settingsPath = `/v1/admin/widgets/${encodeURIComponent(widgets[0].id)}/settings`;
  const closed = { utc_offset_minutes: 0, days: [null, null, null, null, null, null, null] };
  await adminCall(agent.page, "PUT", settingsPath, {
    greeting: "Welcome to the teapot shop",
    settings: {
      theme_color: "#a01b2c",
      position: "left",
      prechat: { name: "required", email: "off" },
      hours: closed,
      away_message: "We're closed until Monday.",
    },
  });

  try {
    const visitor = await newPage(390); // a phone's width
    await visitor.page.goto(`${demo.origin}/widget/demo.html`);
    const launcher = visitor.page.locator("#palisade-widget .palisade-launcher");
    await launcher.waitFor();
    await visitor.page.waitForFunction(
      () => getComputedStyle(document.querySelector(".palisade-launcher")).backgroundColor === "rgb(160, 27, 44)",
    );
    const box = await launcher.boundingBox();
    assert.ok(box.x < 100, `the launcher sits on the left (x = ${box.x})`);

    await launcher.click();
    const frame = visitor.page.frameLocator("iframe");
    await frame.getByText("Welcome to the teapot shop").waitFor();
    // The name is required before the chat starts; the email is not asked.
    await frame.locator("#prechat-start").click();
    await frame.getByText("Please fill in your name.").waitFor();
    assert.equal(await frame.locator("#prechat-email-row").isHidden(), true);
    await frame.getByLabel("Name").fill("Ann Visitor");
    await frame.locator("#prechat-start").click();

    // Outside business hours: the away message and the email form.
    await frame.getByText("We're closed until Monday.").waitFor();
    await frame.getByLabel("Your email, so we can reply later").fill("ann@mail.example");
    await frame.getByRole("button", { name: "Save" }).click();
    await frame.getByText("Thanks! We'll reply to your email.").waitFor();
    const header = await frame.locator(".chat__header").evaluate((el) => getComputedStyle(el).backgroundColor);
    assert.equal(header, "rgb(160, 27, 44)");

    await frame.locator("textarea").fill("Is anyone there on Sunday?");
    await frame.locator("textarea").press("Enter");
    await frame.locator(".msg--mine").getByText("Is anyone there on Sunday?").waitFor();
    await visitor.page.screenshot({ path: join(shots, "visitor-away-themed.png") });

    // The agent sees who wrote and the email they left.
    await agent.page.locator("#conversations li").filter({ hasText: "Ann Visitor" }).first().click();
    await agent.page.locator("#scroller").getByText("Is anyone there on Sunday?").waitFor();
    await agent.page.locator("#thread-visitor").getByText("ann@mail.example").waitFor();
    await agent.page.screenshot({ path: join(shots, "agent-sees-away-email.png") });
    assert.deepEqual(visitor.problems, []);
    assert.deepEqual(agent.problems, []);
    await visitor.context.close();
  } finally {
    // Back to the defaults, so the order of tests does not matter.
    await adminCall(agent.page, "PUT", settingsPath, {
      greeting: widgets[0].greeting,
      settings: widgets[0].settings,
    });
    await agent.context.close();
  }
});

test("a private note reaches other agents and never the visitor's page", async () => {
  const note = "Internal: refunded twice already, be careful";
  const agent = await newPage(1200);
  await signIn(agent.page);
  // A second console of the same tenant, to see the note arrive live.
  const colleague = await newPage(1200);
  await signIn(colleague.page);

  const visitor = await newPage();
  const frame = await openWidget(visitor.page);
  await frame.locator("textarea").fill("Where is my refund?");
  await frame.locator("textarea").press("Enter");
  await frame.getByText("Where is my refund?").waitFor();

  for (const page of [agent.page, colleague.page]) {
    await page.locator("#conversations li").filter({ hasText: "Where is my refund?" }).first().click();
    await page.locator("#scroller").getByText("Where is my refund?").waitFor();
  }

  await agent.page.check("#note-mode");
  await agent.page.fill("#reply", note);
  await agent.page.press("#reply", "Enter");
  await agent.page.locator("#notes").getByText(note).waitFor();
  await colleague.page.locator("#notes").getByText(note).waitFor({ timeout: 10_000 });

  // Then a real reply: once it is on the visitor's page, the note had its chance.
  await agent.page.uncheck("#note-mode");
  await agent.page.fill("#reply", "Your refund is on its way.");
  await agent.page.press("#reply", "Enter");
  await frame.getByText("Your refund is on its way.").waitFor({ timeout: 10_000 });
  const framed = visitor.page.frames().find((f) => f.url().includes("frame.html"));
  assert.equal((await framed.content()).includes("refunded twice"), false);
  // Nor after a reload (history and replay).
  const reloaded = await openWidget(visitor.page);
  await reloaded.getByText("Your refund is on its way.").waitFor();
  const again = visitor.page.frames().find((f) => f.url().includes("frame.html"));
  assert.equal((await again.content()).includes("refunded twice"), false);
  await visitor.page.screenshot({ path: join(shots, "visitor-without-note.png") });
  await colleague.page.screenshot({ path: join(shots, "agent-sees-private-note.png") });
  assert.deepEqual(visitor.problems, []);
  assert.deepEqual(agent.problems, []);
  await visitor.context.close();
  await agent.context.close();
  await colleague.context.close();
});

test("a message written while offline is delivered once the network is back, exactly once", async () => {
  const text = `Sent while offline ${Date.now()}`;
  const visitor = await newPage();
  const frame = await openWidget(visitor.page);
  await frame.locator("textarea").fill("Before the tunnel");
  await frame.locator("textarea").press("Enter");
  await frame.locator(".msg--mine").getByText("Before the tunnel").waitFor();

  await visitor.context.setOffline(true);
  await frame.getByText("Reconnecting…").waitFor({ timeout: 20_000 });
  await frame.locator("textarea").fill(text);
  await frame.locator("textarea").press("Enter");
  await frame.locator(".msg--mine").getByText(text).waitFor();

  await visitor.context.setOffline(false);
  // The banner clears by itself once the socket is back.
  await frame.locator("#banner").waitFor({ state: "hidden", timeout: 30_000 });

  // The agent API holds the message once, after the one before it.
  const agent = await newPage(1200);
  await signIn(agent.page);
  const stored = await agent.page.evaluate(async (text) => {
    const { api } = await import("/app/api.js");
    for (let tries = 0; tries < 50; tries++) {
      const { conversations } = await api("GET", "/v1/agent/conversations?status=all");
      for (const c of conversations) {
        const path = `/v1/agent/conversations/${encodeURIComponent(c.id)}/messages`;
        const { messages } = await api("GET", path);
        const bodies = messages.map((m) => m.body);
        if (bodies.includes(text)) return bodies;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return [];
  }, text);
  assert.deepEqual(stored, ["Before the tunnel", text]);
  // And the visitor's page shows it once, no longer pending.
  await frame.locator(".msg--mine:not(.msg--sending)").getByText(text).waitFor();
  assert.equal(await frame.getByText(text).count(), 1);
  await visitor.page.screenshot({ path: join(shots, "visitor-after-offline.png") });
  await visitor.context.close();
  await agent.context.close();
});

test("an agent picks a canned response with /shortcut and the visitor gets it", async () => {
  const agent = await newPage(1200);
  await signIn(agent.page);
  await adminCall(agent.page, "PUT", "/v1/admin/canned-responses/shipping", {
    body: "Orders ship within 2 working days.",
  });

  const visitor = await newPage();
  const frame = await openWidget(visitor.page);
  await frame.locator("textarea").fill("When do you ship?");
  await frame.locator("textarea").press("Enter");
  await agent.page.locator("#conversations li").filter({ hasText: "When do you ship?" }).first().click();
  await agent.page.locator("#scroller").getByText("When do you ship?").waitFor();

  await agent.page.fill("#reply", "/ship");
  const option = agent.page.getByRole("option", { name: /\/shipping/ });
  await option.waitFor();
  assert.equal(await agent.page.getAttribute("#reply", "aria-expanded"), "true");
  await agent.page.screenshot({ path: join(shots, "agent-canned-picker.png") });
  await agent.page.press("#reply", "Enter"); // picks; does not send
  assert.equal(await agent.page.inputValue("#reply"), "Orders ship within 2 working days.");
  await agent.page.press("#reply", "Enter"); // sends
  await frame.getByText("Orders ship within 2 working days.").waitFor({ timeout: 10_000 });
  await visitor.page.screenshot({ path: join(shots, "visitor-gets-canned-reply.png") });
  assert.deepEqual(agent.problems, []);
  await visitor.context.close();
  await agent.context.close();
});

test("an agent in the background gets a notification and a title badge", async () => {
  const agent = await newPage(1200);
  // Stands in for the operating system's side: records notifications, and
  // answers the permission request the way a person clicking "Allow" would.
  // The console is made to believe its window is not focused.
  await agent.page.addInitScript(() => {
    window.__notifications = [];
    class Recorder {
      static permission = "default";
      static async requestPermission() {
        Recorder.permission = "granted";
        return "granted";
      }
      constructor(title, options) {
        window.__notifications.push({ title, body: options.body });
      }
      addEventListener() {}
      close() {}
    }
    window.Notification = Recorder;
    document.hasFocus = () => false;
  });
  await signIn(agent.page);
  // Asked only on a click, never on load.
  assert.equal(await agent.page.evaluate(() => Notification.permission), "default");
  await agent.page.click("#notify");
  await agent.page.locator("#notify").waitFor({ state: "hidden" });

  const visitor = await newPage();
  const frame = await openWidget(visitor.page);
  await frame.locator("textarea").fill("Anyone there? <b>bold</b>");
  await frame.locator("textarea").press("Enter");

  await agent.page.waitForFunction(() => window.__notifications.length > 0, null, { timeout: 10_000 });
  const shown = await agent.page.evaluate(() => window.__notifications);
  assert.deepEqual(shown, [{ title: "Visitor", body: "Anyone there? <b>bold</b>" }]);
  await agent.page.waitForFunction(() => /^\(\d+\) Palisade$/.test(document.title));
  await agent.page.screenshot({ path: join(shots, "agent-notified-in-background.png") });
  assert.deepEqual(agent.problems, []);
  await visitor.context.close();
  await agent.context.close();
});

test("inbox filters: unassigned and mine, with live unread counts", async () => {
  const agent = await newPage(1200);
  await signIn(agent.page);
  const unassigned = agent.page.locator('.filter[data-status="open"]');
  const mine = agent.page.locator('.filter[data-status="mine"]');

  const visitor = await newPage();
  const frame = await openWidget(visitor.page);
  const text = `Filter me ${Date.now()}`;
  await frame.locator("textarea").fill(text);
  await frame.locator("textarea").press("Enter");

  // The new message counts as unread on "Unassigned" (and "All"), live.
  await agent.page.waitForFunction(
    () => /Unassigned, \d+ unread/.test(document.querySelector('.filter[data-status="open"]').getAttribute("aria-label") || ""),
  );
  assert.equal(await mine.getAttribute("aria-label"), "Mine");

  const row = agent.page.locator("#conversations li").filter({ hasText: text });
  await row.click();
  await agent.page.click("#claim");
  await agent.page.locator("#thread-status").getByText(/assigned/i).waitFor();

  // Claimed: it leaves "Unassigned" and is under "Mine".
  await mine.click();
  await agent.page.locator("#conversations li").filter({ hasText: text }).waitFor();
  await unassigned.click();
  await agent.page.locator("#conversations li").filter({ hasText: text }).waitFor({ state: "detached" });
  // Closed, then reopened: back under "Mine".
  await agent.page.click("#close-conversation");
  await agent.page.locator("#reopen").waitFor();
  await agent.page.click("#reopen");
  await agent.page.locator("#close-conversation").waitFor();
  await mine.click();
  await agent.page.locator("#conversations li").filter({ hasText: text }).waitFor();
  await agent.page.screenshot({ path: join(shots, "agent-filters.png") });
  assert.deepEqual(agent.problems, []);
  await visitor.context.close();
  await agent.context.close();
});
