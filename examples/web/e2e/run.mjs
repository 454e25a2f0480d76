// Browser tests of the example app in headless Chromium (Debian's, driven by playwright-core;
// no browser download). Started by tests/it/browser.rs, which runs the service, this app's dev
// server and an SMTP sink, and passes:
//   WEB_URL      the app's origin (http://localhost:PORT)
//   API_URL      the service (http://localhost:PORT, another origin on the same site)
//   MAIL_DIR     where the sink drops each recipient's links (<email>.txt)
//   SHOTS_DIR    where screenshots go (under target/)
//   CHROMIUM     the browser binary (default /usr/bin/chromium)
// Prints one line per scenario and `N passed, M failed`; exits non-zero on any failure.
import { createServer } from "node:http";
import { mkdirSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const WEB = process.env.WEB_URL ?? "http://localhost:5173";
const API = process.env.API_URL ?? "http://localhost:4000";
const MAIL_DIR = process.env.MAIL_DIR ?? "mail";
const SHOTS = process.env.SHOTS_DIR ?? "screenshots";
const PASSWORD = "correct horse battery staple";
mkdirSync(SHOTS, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox"],
});

let passed = 0;
let failed = 0;
const only = process.env.ONLY;

async function scenario(name, body) {
  if (only && !name.includes(only)) return;
  const context = await browser.newContext();
  try {
    await body(context);
    passed++;
    console.log(`ok - ${name}`);
  } catch (error) {
    failed++;
    console.log(`not ok - ${name}\n${error?.stack ?? error}`);
  } finally {
    await context.close();
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function signUp(page, email, name = "Ada") {
  await page.goto(`${WEB}/sign-up`);
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.locator("#me-email", { hasText: email }).waitFor();
}

async function signIn(page, email, password = PASSWORD) {
  await page.goto(`${WEB}/sign-in`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.locator("#me-email", { hasText: email }).waitFor();
}

/** The links mailed to `email`, as the test's SMTP sink caught them. */
async function mailedLink(email, contains) {
  const file = join(MAIL_DIR, `${email}.txt`);
  for (let i = 0; i < 100; i++) {
    if (existsSync(file)) {
      const link = readFileSync(file, "utf8").split("\n").find((l) => l.includes(contains));
      if (link) return link.trim();
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no mail with ${contains} for ${email}`);
}

const unique = () => Math.random().toString(36).slice(2, 10);

await scenario("sign up, reload, still signed in, sessions list, sign out", async (context) => {
  const page = await context.newPage();
  const email = `ada-${unique()}@example.com`;
  await page.goto(`${WEB}/sign-up`);
  await shot(page, "sign-up");
  await signUp(page, email);
  // The session is an HttpOnly cookie: the page's script cannot see it.
  assert(!(await page.evaluate(() => document.cookie)).includes("apexkit"), "cookie hidden from JS");
  await page.reload();
  await page.locator("#me-email", { hasText: email }).waitFor();
  const sessions = page.getByRole("list", { name: "Your sessions" }).getByRole("listitem");
  await sessions.first().waitFor();
  assert((await sessions.count()) === 1, "one session");
  assert((await sessions.first().textContent()).includes("This device"), "current session marked");
  await shot(page, "home");
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await page.waitForURL(`${WEB}/sign-in`);
  await page.reload();
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  assert(page.url() === `${WEB}/sign-in`, "signed out after reload");
  await shot(page, "sign-in");
});

await scenario("a second browser's session is revoked from the first", async (context) => {
  const email = `bob-${unique()}@example.com`;
  const first = await context.newPage();
  await signUp(first, email, "Bob");
  const other = await browser.newContext();
  try {
    const second = await other.newPage();
    await signIn(second, email);
    const secondList = second.getByRole("list", { name: "Your sessions" }).getByRole("listitem");
    await secondList.nth(1).waitFor();
    await first.reload();
    const list = first.getByRole("list", { name: "Your sessions" }).getByRole("listitem");
    await list.nth(1).waitFor();
    assert((await list.count()) === 2, "two sessions listed");
    await shot(first, "sessions");
    await first.getByRole("button", { name: /^Revoke session/ }).click();
    await first.getByText("Session revoked.").waitFor();
    await list.nth(1).waitFor({ state: "detached" });
    assert((await list.count()) === 1, "one session left");
    await second.reload();
    await second.waitForURL(`${WEB}/sign-in`);
    await first.reload();
    await first.locator("#me-email", { hasText: email }).waitFor();
  } finally {
    await other.close();
  }
});

await scenario("password reset through the mailed link", async (context) => {
  const page = await context.newPage();
  const email = `cleo-${unique()}@example.com`;
  await signUp(page, email, "Cleo");
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await page.waitForURL(`${WEB}/sign-in`);
  await page.getByRole("link", { name: "Forgot your password?" }).click();
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Send reset link" }).click();
  await page.getByText("a reset link is on its way").waitFor();
  await shot(page, "forgot-password");
  const link = await mailedLink(email, "/reset-password?token=");
  assert(link.startsWith(`${WEB}/reset-password?token=`), `link to the app: ${link}`);
  await page.goto(link);
  await page.getByLabel("New password", { exact: true }).fill("a brand new passphrase");
  await page.getByRole("button", { name: "Set new password" }).click();
  await page.getByText("Your password was changed").waitFor();
  await shot(page, "reset-password");
  assert(!page.url().includes("token="), "token dropped from the address bar");
  // The link is spent.
  await page.goto(link);
  await page.getByLabel("New password", { exact: true }).fill("yet another passphrase");
  await page.getByRole("button", { name: "Set new password" }).click();
  await page.getByText("This link is no longer valid").waitFor();
  await signIn(page, email, "a brand new passphrase");
});

await scenario("passkey registration and passkey-only sign-in (virtual authenticator)", async (context) => {
  const page = await context.newPage();
  page.on("dialog", (dialog) => dialog.accept());
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  const email = `dana-${unique()}@example.com`;
  await signUp(page, email, "Dana");
  await page.getByRole("link", { name: "Passkeys" }).click();
  await page.getByText("No passkeys yet.").waitFor();
  await page.getByLabel("Name", { exact: true }).fill("Laptop");
  await page.getByRole("button", { name: "Add a passkey" }).click();
  await page.getByText("Passkey added.").waitFor();
  await page.locator(".passkey-name", { hasText: "Laptop" }).waitFor();
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  assert(credentials.length === 1 && credentials[0].isResidentCredential, "a discoverable credential");
  await page.getByLabel("New name for Laptop").fill("Work laptop");
  await page.getByRole("button", { name: "Rename" }).click();
  await page.locator(".passkey-name", { hasText: "Work laptop" }).waitFor();
  await shot(page, "passkeys");

  // Passkey only: signed out, no email, no password.
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await page.waitForURL(`${WEB}/sign-in`);
  await page.getByRole("button", { name: "Sign in with a passkey" }).click();
  await page.locator("#me-email", { hasText: email }).waitFor();
  await shot(page, "signed-in-with-passkey");
  // Email first works too.
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await page.waitForURL(`${WEB}/sign-in`);
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Sign in with a passkey" }).click();
  await page.locator("#me-email", { hasText: email }).waitFor();
  const after = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  assert(after.credentials[0].signCount >= 2, "the authenticator signed twice");

  // Deleting it: the account still has its password.
  await page.getByRole("link", { name: "Passkeys" }).click();
  await page.getByRole("button", { name: "Delete Work laptop" }).click();
  await page.getByText("Passkey deleted.").waitFor();
  await page.getByText("No passkeys yet.").waitFor();
  // A deleted passkey no longer signs in.
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await page.waitForURL(`${WEB}/sign-in`);
  await page.getByRole("button", { name: "Sign in with a passkey" }).click();
  await page.locator(".status.error").waitFor();
  assert(page.url() === `${WEB}/sign-in`, "still signed out");
});

await scenario("a page on an untrusted origin cannot read the session or mutate with the cookie", async (context) => {
  const page = await context.newPage();
  const email = `eve-${unique()}@example.com`;
  await signUp(page, email, "Victim");
  // Another site (127.0.0.1 is not the same site as localhost) serving an attacker's page.
  const evil = createServer((_, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<!doctype html><title>evil</title><h1>evil</h1>");
  });
  await new Promise((r) => evil.listen(0, "127.0.0.1", r));
  const evilUrl = `http://127.0.0.1:${evil.address().port}/`;
  try {
    const attacker = await context.newPage();
    await attacker.goto(evilUrl);
    const read = await attacker.evaluate(async (api) => {
      try {
        const res = await fetch(`${api}/graphql`, {
          method: "POST",
          credentials: "include",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ query: "{ me { email } sessions { id } }" }),
        });
        return `read: ${await res.text()}`;
      } catch (e) {
        return `blocked: ${e}`;
      }
    }, API);
    assert(read.startsWith("blocked"), `CORS keeps the answer from the page: ${read}`);
    // A "simple" request needs no preflight and is sent anyway: the service must refuse it.
    const blind = await attacker.evaluate(async (api) => {
      await fetch(`${api}/graphql`, {
        method: "POST",
        mode: "no-cors",
        credentials: "include",
        headers: { "content-type": "text/plain" },
        body: JSON.stringify({ query: "mutation { revokeSessions }" }),
      });
      return "sent";
    }, API);
    assert(blind === "sent", "request sent");
    // And a top-level form post, which carries no Lax cookie cross-site and an untrusted Origin.
    await attacker.setContent(
      `<form method="post" action="${API}/graphql" enctype="text/plain">
         <input name='{"query":"mutation { revokeSessions }","x":"' value='"}'></form>`,
    );
    const [response] = await Promise.all([
      attacker.waitForNavigation(),
      attacker.evaluate(() => document.forms[0].submit()),
    ]);
    assert(response && response.status() >= 400, `form post refused: ${response?.status()}`);
    await shot(attacker, "untrusted-origin");
    // The victim is still signed in, with the one session.
    await page.reload();
    await page.locator("#me-email", { hasText: email }).waitFor();
    const sessions = page.getByRole("list", { name: "Your sessions" }).getByRole("listitem");
    await sessions.first().waitFor();
    assert((await sessions.count()) === 1, "session intact");
  } finally {
    evil.close();
  }
});

await browser.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
