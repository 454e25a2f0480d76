// Two-factor authentication: the settings page (turn TOTP on with a QR code, new backup codes,
// turn it off) and the second step of a sign-in that answered `twoFactorRequired`.
import { toCanvas } from "qrcode";
import { client, errorCode, errorMessage } from "../api";
import type { MeQuery } from "../gql/graphql";
import {
  DisableTwoFactor,
  EnableTwoFactor,
  GenerateBackupCodes,
  VerifyBackupCode,
  VerifyTotp,
} from "../operations";
import { field, h, link, navigate, onSubmit, status } from "../ui";

type Me = NonNullable<MeQuery["me"]>;

/** The TOTP code input: six digits, filled by password managers and phones' one-time codes. */
function totpField(label = "Code from your authenticator app", name = "code"): HTMLElement {
  return field(label, name, "text", {
    autocomplete: "one-time-code",
    inputmode: "numeric",
    pattern: "[0-9]{6}",
    maxlength: "6",
    required: true,
  });
}

/** Wrong code, spent or dead second step, too many tries: what to tell the user. */
function codeError(e: unknown): string {
  switch (errorCode(e)) {
    case "INVALID_CODE":
      return "That code is not right. Check it and try again.";
    case "INVALID_PASSWORD":
      return "That password is not right.";
    case "INVALID_TOKEN":
    case "TOKEN_EXPIRED":
      return "This sign-in has expired or had too many wrong codes. Sign in again.";
    case "TWO_FACTOR_NOT_ENABLED":
      return "Two-factor authentication is not on for this account.";
    default:
      return errorMessage(e);
  }
}

/** A list of backup codes, to be saved now: they are shown once. */
function backupCodeList(codes: readonly string[]): HTMLElement {
  return h(
    "ol",
    { class: "codes", id: "backup-codes", "aria-label": "Backup codes" },
    ...codes.map((c) => h("li", {}, h("code", {}, c))),
  );
}

/** The secret of an `otpauth://totp/…?secret=…` URI, for typing into an app by hand. */
function secretOf(uri: string): string {
  try {
    return new URL(uri).searchParams.get("secret") ?? "";
  } catch {
    return "";
  }
}

/** Groups of four characters, as authenticator apps show and accept them. */
function grouped(secret: string): string {
  return secret.replace(/(.{4})(?=.)/g, "$1 ");
}

/** `/two-factor`: the signed-in user's two-factor settings. */
export function twoFactorPage(me: Me): HTMLElement {
  const out = status();
  const section = h("section", { class: "card" }, h("h1", {}, "Two-factor authentication"));
  if (me.twoFactorEnabled) section.append(...enabledView(me));
  else section.append(...setupView(out), out.node);
  return section;
}

function setupView(out: ReturnType<typeof status>): HTMLElement[] {
  const intro = h(
    "p",
    { id: "two-factor-state" },
    "Two-factor authentication is off. Turn it on to ask for a code from an authenticator app (any TOTP app) after your password.",
  );
  const setup = h("div", { class: "setup" });
  const start = onSubmit(
    h(
      "form",
      { "aria-labelledby": "start-title" },
      h("h2", { id: "start-title" }, "Turn on"),
      field("Password", "password", "password", { autocomplete: "current-password", required: true }),
      h("button", { type: "submit" }, "Turn on two-factor"),
    ),
    async ({ password }) => {
      out.clear();
      try {
        const { data } = await client.mutate({ mutation: EnableTwoFactor, variables: { input: { password } } });
        if (!data) throw new Error("No answer from the service");
        start.hidden = true;
        intro.textContent = "Set up your authenticator app in three steps.";
        setup.replaceChildren(...(await enrolment(data.enableTwoFactor, out)));
        setup.querySelector("h2")?.focus();
      } catch (e) {
        out.fail(codeError(e));
      }
    },
  );
  return [intro, start, setup];
}

/** Steps 1–3 of an enrolment: scan (or type), save the backup codes, confirm with a code. */
async function enrolment(
  setup: { totpURI: string; backupCodes: readonly string[] },
  out: ReturnType<typeof status>,
): Promise<HTMLElement[]> {
  const secret = secretOf(setup.totpURI);
  // Drawn here from the URI (the service also offers `qrCodeSvg`): a canvas, described for
  // screen readers, with the secret as text beside it for anyone who cannot scan.
  const canvas = h("canvas", {
    id: "totp-qr",
    role: "img",
    "aria-label": "QR code to add this account to an authenticator app",
  });
  await toCanvas(canvas, setup.totpURI, { errorCorrectionLevel: "M", margin: 2, width: 220 });

  const confirm = onSubmit(
    h(
      "form",
      { "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, "3. Confirm"),
      h("p", {}, "Enter the code your app shows now. Two-factor is on only after this step."),
      totpField(),
      h("button", { type: "submit" }, "Confirm and turn on"),
    ),
    async ({ code }) => {
      out.clear();
      try {
        await client.mutate({ mutation: VerifyTotp, variables: { input: { code: code.trim() } } });
        navigate("/two-factor");
      } catch (e) {
        out.fail(codeError(e));
      }
    },
  );

  return [
    h("h2", { tabindex: "-1" }, "1. Scan the QR code"),
    h("p", {}, "Open your authenticator app, add an account, and scan:"),
    h("div", { class: "qr" }, canvas),
    h(
      "p",
      {},
      "Can't scan? Enter this key instead (time-based, 6 digits): ",
      h("code", { id: "totp-secret", "data-secret": secret }, grouped(secret)),
    ),
    h("h2", {}, "2. Save your backup codes"),
    h(
      "p",
      {},
      "Each code signs you in once if you lose your phone. Keep them somewhere safe — they are not shown again.",
    ),
    backupCodeList(setup.backupCodes),
    confirm,
  ];
}

function enabledView(me: Me): HTMLElement[] {
  const regenOut = status();
  const offOut = status();
  const fresh = h("div", { class: "fresh-codes" });
  const remaining = h("span", { id: "backup-remaining" }, `${me.backupCodesRemaining} backup codes left.`);
  const regenerate = onSubmit(
    h(
      "form",
      { "aria-labelledby": "regen-title" },
      h("h2", { id: "regen-title" }, "New backup codes"),
      h("p", {}, "Ten new codes; the old ones stop working."),
      field("Password", "password", "password", { id: "regen-password", autocomplete: "current-password", required: true }),
      field("Code from your app, or a backup code", "code", "text", {
        id: "regen-code",
        autocomplete: "one-time-code",
        required: true,
      }),
      h("button", { type: "submit", class: "secondary" }, "Get new backup codes"),
      regenOut.node,
    ),
    async ({ password, code }) => {
      regenOut.clear();
      try {
        const { data } = await client.mutate({
          mutation: GenerateBackupCodes,
          variables: { input: { password, code: code.trim() } },
        });
        regenerate.reset();
        const codes = data?.generateBackupCodes ?? [];
        remaining.textContent = `${codes.length} backup codes left.`;
        fresh.replaceChildren(
          h("h3", {}, "Your new backup codes"),
          backupCodeList(codes),
        );
        regenOut.ok("Here are your new backup codes: save them now. The old ones no longer work.");
      } catch (e) {
        regenOut.fail(codeError(e));
      }
    },
  );
  const disable = onSubmit(
    h(
      "form",
      { "aria-labelledby": "off-title" },
      h("h2", { id: "off-title" }, "Turn off"),
      field("Password", "password", "password", { id: "off-password", autocomplete: "current-password", required: true }),
      field("Code from your app, or a backup code", "code", "text", {
        id: "off-code",
        autocomplete: "one-time-code",
        required: true,
      }),
      h("button", { type: "submit", class: "danger" }, "Turn off two-factor"),
      offOut.node,
    ),
    async ({ password, code }) => {
      offOut.clear();
      try {
        await client.mutate({ mutation: DisableTwoFactor, variables: { input: { password, code: code.trim() } } });
        navigate("/two-factor");
      } catch (e) {
        offOut.fail(codeError(e));
      }
    },
  );
  return [
    h(
      "p",
      { id: "two-factor-state" },
      "Two-factor authentication is on. ",
      remaining,
    ),
    regenerate,
    fresh,
    disable,
  ];
}

/**
 * `/sign-in/two-factor`: the second step. The sign-in that led here (password, magic link,
 * email code, social) set the `apexkit.two_factor` cookie on the service's origin; the
 * mutations below send it (`credentials: "include"`), so no token passes through the page.
 */
export function twoFactorStepPage(): HTMLElement {
  const out = status();
  let backup = false;
  const codeSlot = h("div", {}, totpField());
  const toggle = h("button", { type: "button", class: "link-button", id: "toggle-backup" }, "Use a backup code instead");
  const form = onSubmit(
    h(
      "form",
      { "aria-labelledby": "title" },
      codeSlot,
      h(
        "div",
        { class: "field checkbox" },
        h("input", { id: "f-trust", name: "trustDevice", type: "checkbox" }),
        h("label", { for: "f-trust" }, "Trust this browser for 30 days"),
      ),
      h("button", { type: "submit" }, "Verify"),
      out.node,
    ),
    async ({ code }, data) => {
      out.clear();
      const input = { code: code.trim(), trustDevice: data.has("trustDevice") };
      try {
        if (backup) await client.mutate({ mutation: VerifyBackupCode, variables: { input } });
        else await client.mutate({ mutation: VerifyTotp, variables: { input } });
        navigate("/");
      } catch (e) {
        out.fail(codeError(e));
        if (errorCode(e) === "INVALID_TOKEN" || errorCode(e) === "TOKEN_EXPIRED") {
          out.node.append(" ", link("/sign-in", "Sign in again"));
        }
        form.querySelector<HTMLInputElement>("input[name=code]")?.select();
      }
    },
  );
  toggle.addEventListener("click", () => {
    backup = !backup;
    codeSlot.replaceChildren(
      backup
        ? field("Backup code", "code", "text", { autocomplete: "off", spellcheck: "false", required: true })
        : totpField(),
    );
    toggle.textContent = backup ? "Use your authenticator app instead" : "Use a backup code instead";
    out.clear();
    codeSlot.querySelector("input")?.focus();
  });
  return h(
    "section",
    { class: "card" },
    h("h1", { id: "title" }, "Two-factor authentication"),
    h("p", {}, "Your account is protected with a second step. Enter the code from your authenticator app."),
    form,
    toggle,
    h("p", {}, link("/sign-in", "Start over")),
  );
}
