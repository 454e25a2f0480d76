// Browser tests of the example app in headless Chromium (Debian's, driven by playwright-core;
// no browser download). Started by tests/it/browser.rs, which runs the service, this app's dev
// server and an SMTP sink, and passes:
//   WEB_URL      the app's origin (http://localhost:PORT)
//   API_URL      the service (http://localhost:PORT, another origin on the same site)
//   MAIL_DIR     where the sink drops each recipient's links (<email>.txt) and the text of
//                their mail (<email>.mail.txt)
//   SHOTS_DIR    where screenshots go (under target/)
//   CHROMIUM     the browser binary (default /usr/bin/chromium)
//   SLOW_API_MS  optional: hold every request to the service this long, to shake out scenarios
//                that act on a page before the app has finished drawing it
// Prints one line per scenario and `N passed, M failed`; exits non-zero on any failure.
import { createHmac } from "node:crypto";
import { createServer } from "node:http";
import { mkdirSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import jsQR from "jsqr";
import { chromium } from "playwright-core";

const WEB = process.env.WEB_URL ?? "http://localhost:5173";
const API = process.env.API_URL ?? "http://localhost:4000";
const MAIL_DIR = process.env.MAIL_DIR ?? "mail";
const SHOTS = process.env.SHOTS_DIR ?? "screenshots";
const PASSWORD = "correct horse battery staple";
const SLOW_API_MS = Number(process.env.SLOW_API_MS ?? 0);
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
  if (SLOW_API_MS > 0) {
    await context.route(`${API}/**`, async (route) => {
      await new Promise((resolve) => setTimeout(resolve, SLOW_API_MS));
      await route.continue();
    });
  }
  try {
    await body(context);
    passed++;
    console.log(`ok - ${name}`);
  } catch (error) {
    failed++;
    console.log(`not ok - ${name}\n${error?.stack ?? error}`);
    // Where each page of the scenario stood, as a screenshot beside the others.
    const slug = name.replace(/[^a-z0-9]+/gi, "-").slice(0, 40);
    for (const [i, page] of context.pages().entries()) {
      console.log(`  page ${i}: ${page.url()}`);
      await page.screenshot({ path: join(SHOTS, `failed-${slug}-${i}.png`), fullPage: true }).catch(() => {});
    }
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

/** The `nth` link (1-based) containing `contains` mailed to `email`, as the SMTP sink caught it. */
async function mailedLink(email, contains, nth = 1) {
  const file = join(MAIL_DIR, `${email}.txt`);
  for (let i = 0; i < 100; i++) {
    if (existsSync(file)) {
      const links = readFileSync(file, "utf8").split("\n").filter((l) => l.includes(contains));
      if (links.length >= nth) return links[nth - 1].trim();
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no mail with ${contains} for ${email}`);
}

/** The `nth` (1-based) 6-digit sign-in code mailed to `email`. */
async function mailedCode(email, nth = 1) {
  const file = join(MAIL_DIR, `${email}.mail.txt`);
  for (let i = 0; i < 100; i++) {
    if (existsSync(file)) {
      const codes = [...readFileSync(file, "utf8").matchAll(/sign-in code is: (\d{6})/g)].map((m) => m[1]);
      if (codes.length >= nth) return codes[nth - 1];
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no sign-in code for ${email}`);
}

// RFC 6238 TOTP (HMAC-SHA1, 6 digits, 30 s) from the base32 secret the setup page shows: an
// implementation of our own, so the test does not trust the service's.
function base32(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const out = [];
  let bits = 0;
  let value = 0;
  for (const c of text.replace(/[\s=]/g, "").toUpperCase()) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error(`not base32: ${c}`);
    value = ((value << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

function totpAt(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

const currentStep = () => Math.floor(Date.now() / 30_000);

/** A TOTP code the service takes now: a step within ±1 of now and after the last one used. */
async function freshTotp(totp) {
  for (;;) {
    const now = currentStep();
    const step = Math.max(now, totp.lastStep + 1);
    if (step <= now + 1) {
      totp.lastStep = step;
      return totpAt(totp.secret, step);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** A 6-digit code that is none of the codes around now. */
function wrongTotp(secret) {
  const now = currentStep();
  const near = new Set([-2, -1, 0, 1, 2].map((d) => totpAt(secret, now + d)));
  let n = 0;
  while (near.has(String(n).padStart(6, "0"))) n++;
  return String(n).padStart(6, "0");
}

async function signOut(page) {
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await page.waitForURL(`${WEB}/sign-in`);
}

/** Email and password on the sign-in page, without waiting for where it leads. */
async function submitPassword(page, email, password = PASSWORD) {
  await page.goto(`${WEB}/sign-in`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
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
  // The authenticator's AAGUID was recorded at registration (the page's own origin asks).
  const listed = await page.evaluate(async (api) => {
    const res = await fetch(`${api}/graphql`, {
      method: "POST",
      credentials: "include",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ passkeys { name aaguid } }" }),
    });
    return res.json();
  }, API);
  const aaguid = listed?.data?.passkeys?.[0]?.aaguid;
  assert(/^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/.test(aaguid ?? ""), `aaguid stored: ${JSON.stringify(listed)}`);

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

await scenario("two-factor: enrol through the QR page, then password → TOTP, magic link → backup code, trusted browser", async (context) => {
  const page = await context.newPage();
  const email = `fay-${unique()}@example.com`;
  await signUp(page, email, "Fay");
  await page.getByRole("link", { name: "Two-factor" }).click();
  await page.getByText("Two-factor authentication is off.").waitFor();
  await page.getByLabel("Password").fill("not my password");
  await page.getByRole("button", { name: "Turn on two-factor" }).click();
  await page.getByRole("alert").getByText("That password is not right.").waitFor();
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Turn on two-factor" }).click();

  // The QR code is drawn in the browser: decode it and compare with the key shown as text.
  const qr = page.getByRole("img", { name: /QR code/ });
  await qr.waitFor();
  const pixels = await qr.evaluate((canvas) => {
    const { width, height } = canvas;
    return { width, height, data: Array.from(canvas.getContext("2d").getImageData(0, 0, width, height).data) };
  });
  const decoded = jsQR(Uint8ClampedArray.from(pixels.data), pixels.width, pixels.height);
  assert(decoded, "the QR code decodes");
  const uri = new URL(decoded.data);
  assert(uri.protocol === "otpauth:" && uri.host === "totp", `an otpauth://totp URI: ${decoded.data}`);
  assert(decodeURIComponent(uri.pathname).endsWith(email), `the account in the URI: ${decoded.data}`);
  const secret = (await page.locator("#totp-secret").textContent()).replace(/\s/g, "");
  assert(/^[A-Z2-7]{16,}$/.test(secret), `a base32 key shown: ${secret}`);
  assert(uri.searchParams.get("secret") === secret, "the QR code and the key shown agree");
  const backupCodes = (await page.getByRole("list", { name: "Backup codes" }).getByRole("listitem").allTextContents()).map((c) => c.trim());
  assert(backupCodes.length === 10 && new Set(backupCodes).size === 10, `ten backup codes: ${backupCodes}`);
  await shot(page, "two-factor-setup");

  const totp = { secret, lastStep: 0 };
  await page.getByLabel("Code from your authenticator app").fill(wrongTotp(secret));
  await page.getByRole("button", { name: "Confirm and turn on" }).click();
  await page.getByText("That code is not right.").waitFor();
  await page.getByLabel("Code from your authenticator app").fill(await freshTotp(totp));
  await page.getByRole("button", { name: "Confirm and turn on" }).click();
  await page.locator("#backup-remaining", { hasText: "10 backup codes left." }).waitFor();
  await shot(page, "two-factor-on");

  // Password, then the second step: no session until the code.
  await signOut(page);
  await submitPassword(page, email);
  await page.waitForURL(`${WEB}/sign-in/two-factor`);
  await page.getByRole("heading", { name: "Two-factor authentication" }).waitFor();
  await shot(page, "two-factor-step");
  const probe = await page.evaluate(async (api) => {
    const res = await fetch(`${api}/graphql`, {
      method: "POST",
      credentials: "include",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ me { email } }" }),
    });
    return res.json();
  }, API);
  assert(probe.data.me === null, `not signed in before the second factor: ${JSON.stringify(probe)}`);
  await page.getByLabel("Code from your authenticator app").fill(wrongTotp(secret));
  await page.getByRole("button", { name: "Verify" }).click();
  await page.getByText("That code is not right.").waitFor();
  assert(page.url() === `${WEB}/sign-in/two-factor`, "a wrong code does not sign in");
  await page.getByLabel("Code from your authenticator app").fill(await freshTotp(totp));
  await page.getByRole("button", { name: "Verify" }).click();
  await page.locator("#me-email", { hasText: email }).waitFor();
  await page.reload();
  await page.locator("#me-email", { hasText: email }).waitFor();

  // A magic link stops at the second step too: its landing goes to the code page; a backup code.
  await signOut(page);
  await page.getByRole("link", { name: "Email me a sign-in link" }).click();
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Email me a sign-in link" }).click();
  await page.getByText("Check your inbox").waitFor();
  await page.goto(await mailedLink(email, "/magic-link?token="));
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${WEB}/sign-in/two-factor`);
  await page.getByRole("button", { name: "Use a backup code instead" }).click();
  await page.getByLabel("Backup code").fill(backupCodes[0]);
  await page.getByRole("button", { name: "Verify" }).click();
  await page.locator("#me-email", { hasText: email }).waitFor();
  await page.locator("#me-two-factor", { hasText: "9 backup codes left" }).waitFor();

  // A backup code works once; the next one, trusting this browser.
  await signOut(page);
  await submitPassword(page, email);
  await page.waitForURL(`${WEB}/sign-in/two-factor`);
  await page.getByRole("button", { name: "Use a backup code instead" }).click();
  await page.getByLabel("Backup code").fill(backupCodes[0]);
  await page.getByRole("button", { name: "Verify" }).click();
  await page.getByText("That code is not right.").waitFor();
  await page.getByLabel("Backup code").fill(backupCodes[1]);
  await page.getByLabel("Trust this browser for 30 days").check();
  await page.getByRole("button", { name: "Verify" }).click();
  await page.locator("#me-email", { hasText: email }).waitFor();
  await signOut(page);
  await submitPassword(page, email);
  await page.locator("#me-email", { hasText: email }).waitFor(); // trusted: no second step
  // Another browser is not trusted.
  const other = await browser.newContext();
  try {
    const second = await other.newPage();
    await submitPassword(second, email);
    await second.waitForURL(`${WEB}/sign-in/two-factor`);
  } finally {
    await other.close();
  }

  // New backup codes (password + a code), then turn it off.
  await page.getByRole("link", { name: "Two-factor" }).click();
  await page.locator("#backup-remaining", { hasText: "8 backup codes left." }).waitFor();
  await page.locator("#regen-password").fill(PASSWORD);
  await page.locator("#regen-code").fill(backupCodes[2]);
  await page.getByRole("button", { name: "Get new backup codes" }).click();
  await page.getByText("Here are your new backup codes").waitFor();
  const fresh = (await page.getByRole("list", { name: "Backup codes" }).getByRole("listitem").allTextContents()).map((c) => c.trim());
  assert(fresh.length === 10 && !fresh.some((c) => backupCodes.includes(c)), `ten new codes: ${fresh}`);
  await page.locator("#backup-remaining", { hasText: "10 backup codes left." }).waitFor();
  await shot(page, "two-factor-backup-codes");
  await page.locator("#off-password").fill(PASSWORD);
  await page.locator("#off-code").fill(backupCodes[3]); // void now
  await page.getByRole("button", { name: "Turn off two-factor" }).click();
  await page.getByText("That code is not right.").waitFor();
  await page.locator("#off-code").fill(fresh[0]);
  await page.getByRole("button", { name: "Turn off two-factor" }).click();
  await page.getByText("Two-factor authentication is off.").waitFor();
  await signOut(page);
  await signIn(page, email);
});

await scenario("change password, then only the new one signs in", async (context) => {
  const page = await context.newPage();
  const email = `gus-${unique()}@example.com`;
  const newPassword = "a different passphrase";
  await signUp(page, email, "Gus");
  await page.getByRole("link", { name: "Password" }).click();
  await page.getByLabel("Current password").fill("wrong password");
  await page.getByLabel("New password").fill(newPassword);
  await page.getByRole("button", { name: "Change password" }).click();
  await page.getByRole("alert").getByText("Your current password is not right.").waitFor();
  await page.getByLabel("Current password").fill(PASSWORD);
  await page.getByLabel("New password").fill(newPassword);
  await page.getByLabel("Sign out every other session").check();
  await page.getByRole("button", { name: "Change password" }).click();
  await page.getByText("Your password was changed, and every other session was signed out.").waitFor();
  await shot(page, "change-password");
  // The session was replaced (a new cookie): still signed in after a reload.
  await page.reload();
  await page.getByRole("heading", { name: "Change password" }).waitFor();
  assert(page.url() === `${WEB}/change-password`, "still signed in");
  await signOut(page);
  await submitPassword(page, email, PASSWORD);
  await page.locator(".status.error").waitFor();
  assert(page.url() === `${WEB}/sign-in`, "the old password is refused");
  await signIn(page, email, newPassword);
});

await scenario("verify email from the mailed link", async (context) => {
  const page = await context.newPage();
  const email = `hal-${unique()}@example.com`;
  await signUp(page, email, "Hal");
  await page.locator("#me-verified", { hasText: "not verified yet" }).waitFor();
  await page.getByRole("button", { name: "Send me a verification link" }).click();
  await page.getByText("a verification link is on its way").waitFor();
  const link = await mailedLink(email, "/verify-email?token=");
  assert(link.startsWith(`${WEB}/verify-email?token=`), `link to the app: ${link}`);
  await page.goto(link);
  await page.getByText(`${email} is verified.`).waitFor();
  assert(!page.url().includes("token="), "token dropped from the address bar");
  await shot(page, "verify-email");
  await page.getByRole("link", { name: "Continue" }).click();
  await page.locator("#me-verified", { hasText: "(verified)" }).waitFor();
  assert(!(await page.getByRole("button", { name: "Send me a verification link" }).count()), "no more link to ask for");
  // The link is spent.
  await page.goto(link);
  await page.getByText("This link is no longer valid").waitFor();
});

await scenario("magic link: mailed, opened, button pressed, signed in on the app", async (context) => {
  const page = await context.newPage();
  const email = `ivy-${unique()}@example.com`;
  await page.goto(`${WEB}/sign-in`);
  await page.getByRole("link", { name: "Email me a sign-in link" }).click();
  await page.waitForURL(`${WEB}/sign-in/magic-link`);
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Email me a sign-in link" }).click();
  await page.getByText(`a sign-in link is on its way to ${email}`).waitFor();
  await shot(page, "magic-link");
  const link = await mailedLink(email, "/magic-link?token=");
  assert(link.startsWith(`${API}/magic-link?token=`), `link to the service's page: ${link}`);
  await page.goto(link);
  await shot(page, "magic-link-landing");
  await page.getByRole("button", { name: "Sign in" }).click();
  // A new address: signed up, verified (the mail proved it), on the app's origin.
  await page.locator("#me-email", { hasText: email }).waitFor();
  assert(new URL(page.url()).origin === WEB, `back on the app: ${page.url()}`);
  await page.locator("#me-verified", { hasText: "(verified)" }).waitFor();
  await page.reload();
  await page.locator("#me-email", { hasText: email }).waitFor();
  // Spent: the link's flow is kept until it would have expired, so a second use lands on the
  // app's errorCallbackURL, signed out.
  await signOut(page);
  await page.goto(link);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${WEB}/sign-in/magic-link?error=invalid_token`);
  await page.getByRole("alert").getByText("That sign-in link is no longer valid").waitFor();
  await page.goto(`${WEB}/`);
  await page.waitForURL(`${WEB}/sign-in`);
  // A dead link's landing on the app, as an expired one (whose flow is still known) arrives.
  await page.goto(`${WEB}/sign-in/magic-link?error=token_expired`);
  await page.getByRole("alert").getByText("That sign-in link has expired.").waitFor();
  assert(page.url() === `${WEB}/sign-in/magic-link`, "the error dropped from the address bar");
});

await scenario("email code: mailed, typed, signed in", async (context) => {
  const page = await context.newPage();
  const email = `jo-${unique()}@example.com`;
  await signUp(page, email, "Jo");
  await signOut(page);
  await page.getByRole("link", { name: "a sign-in code" }).click();
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Email me a code" }).click();
  await page.getByText(`A code is on its way to ${email}`).waitFor();
  const code = await mailedCode(email);
  const wrong = code === "000000" ? "000001" : "000000";
  await page.getByLabel("Sign-in code").fill(wrong);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("That code is wrong").waitFor();
  await shot(page, "email-code");
  await page.getByLabel("Sign-in code").fill(code);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#me-email", { hasText: email }).waitFor();
});

await browser.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
