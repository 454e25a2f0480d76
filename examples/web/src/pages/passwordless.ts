// Sign-in by mail, no password: a magic link (the mail's link opens the service's own
// /magic-link page, whose button signs in and sends the browser back here) and a 6-digit code.
// Both sign up a new address, and both stop at the second step for a user with two-factor on.
import { client, errorCode, errorMessage } from "../api";
import { SendSignInOtp, SignInEmailOtp, SignInMagicLink } from "../operations";
import { field, h, link, onSubmit, status } from "../ui";
import { afterSignIn } from "./auth";

/** What the service's `/magic-link` page appends to `errorCallbackURL` for a dead link. */
const MAGIC_LINK_ERRORS: Record<string, string> = {
  invalid_token: "That sign-in link is no longer valid: it was used already. Request a new one.",
  token_expired: "That sign-in link has expired. Request a new one.",
  user_banned: "This account is suspended.",
  email_not_verified: "Verify your email address first.",
};

/** `/sign-in/magic-link`: asks for a link; also where a dead link lands (`?error=…`). */
export function magicLinkPage(): HTMLElement {
  const out = status();
  const error = new URLSearchParams(location.search).get("error");
  if (error) {
    out.fail(MAGIC_LINK_ERRORS[error] ?? "Signing in with that link failed. Request a new one.");
    history.replaceState(null, "", "/sign-in/magic-link");
  }
  const form = onSubmit(
    h(
      "form",
      { "aria-labelledby": "title" },
      field("Email", "email", "email", { autocomplete: "username", required: true }),
      h("button", { type: "submit" }, "Email me a sign-in link"),
      out.node,
    ),
    async ({ email }) => {
      out.clear();
      try {
        // The link opens the service's page; its button signs in and redirects to one of these
        // (on a trusted origin). With two-factor on, to `/?twoFactorRequired=true`: main.ts
        // routes that to the second step.
        await client.mutate({
          mutation: SignInMagicLink,
          variables: {
            input: {
              email,
              callbackURL: `${location.origin}/`,
              newUserCallbackURL: `${location.origin}/`,
              errorCallbackURL: `${location.origin}/sign-in/magic-link`,
            },
          },
        });
        out.ok(`Check your inbox: a sign-in link is on its way to ${email.trim()}. It works once, within 5 minutes.`);
      } catch (e) {
        out.fail(errorMessage(e));
      }
    },
  );
  return h(
    "section",
    { class: "card" },
    h("h1", { id: "title" }, "Sign in with a link"),
    h("p", {}, "We email you a link that signs you in — no password needed. New here? The link creates your account."),
    form,
    h("p", {}, link("/sign-in", "Back to sign-in")),
  );
}

/** `/sign-in/email-code`: the address, then the 6-digit code mailed to it. */
export function emailCodePage(): HTMLElement {
  const out = status();
  let email = "";

  const codeForm = onSubmit(
    h(
      "form",
      { "aria-labelledby": "code-title", hidden: true },
      h("h2", { id: "code-title" }, "Enter the code"),
      field("Sign-in code", "otp", "text", {
        autocomplete: "one-time-code",
        inputmode: "numeric",
        pattern: "[0-9]{6}",
        maxlength: "6",
        required: true,
        "aria-describedby": "code-help",
      }),
      h("p", { id: "code-help", class: "help" }, "Six digits, valid for 5 minutes."),
      h("button", { type: "submit" }, "Sign in"),
    ),
    async ({ otp }) => {
      out.clear();
      try {
        const { data } = await client.mutate({
          mutation: SignInEmailOtp,
          variables: { input: { email, otp: otp.trim() } },
        });
        afterSignIn(data?.signInEmailOtp);
      } catch (e) {
        out.fail(
          errorCode(e) === "INVALID_CODE"
            ? "That code is wrong, expired or used up (three tries per code). Check it, or send a new one."
            : errorMessage(e),
        );
        (codeForm.elements.namedItem("otp") as HTMLInputElement).focus();
      }
    },
  );

  const emailForm = onSubmit(
    h(
      "form",
      { "aria-labelledby": "title" },
      field("Email", "email", "email", { autocomplete: "username", required: true }),
      h("button", { type: "submit" }, "Email me a code"),
    ),
    async (values) => {
      out.clear();
      try {
        await client.mutate({ mutation: SendSignInOtp, variables: { input: { email: values.email } } });
        email = values.email;
        out.ok(`A code is on its way to ${email.trim()}. A new code replaces the previous one.`);
        codeForm.hidden = false;
        (emailForm.querySelector("button") as HTMLButtonElement).textContent = "Send a new code";
        (codeForm.elements.namedItem("otp") as HTMLInputElement).focus();
      } catch (e) {
        out.fail(errorMessage(e));
      }
    },
  );

  return h(
    "section",
    { class: "card" },
    h("h1", { id: "title" }, "Sign in with a code"),
    h("p", {}, "We email you a 6-digit code. New here? The code creates your account."),
    emailForm,
    codeForm,
    out.node,
    h("p", {}, link("/sign-in", "Back to sign-in")),
  );
}
