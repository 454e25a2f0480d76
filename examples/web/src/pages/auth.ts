// Signed-out pages: sign up, sign in (password, passkey, social), forgot password, and the
// landing pages of mailed links (reset password, verify email). Magic link and email code are in
// passwordless.ts, the second step of a sign-in in two-factor.ts.
import { client, errorCode, errorMessage } from "../api";
import {
  PasskeyAuthenticationOptions,
  RequestPasswordReset,
  ResetPassword,
  SignIn,
  SignInPasskey,
  SignInSocial,
  SignUp,
  SocialProviders,
  VerifyEmail,
} from "../operations";
import { field, h, link, navigate, onSubmit, status } from "../ui";
import { getCredential, hostProblem, supported } from "../webauthn";

/**
 * Where a sign-in goes on: home, or — for a user with two-factor on, whose sign-in answered
 * `twoFactorRequired` and no session — the second step. The service has set the HttpOnly
 * `apexkit.two_factor` cookie, so the page carries no token.
 */
export function afterSignIn(payload: { twoFactorRequired: boolean } | null | undefined): void {
  navigate(payload?.twoFactorRequired ? "/sign-in/two-factor" : "/");
}

export function signUpPage(): HTMLElement {
  const out = status();
  const form = onSubmit(
    h(
      "form",
      { "aria-labelledby": "title" },
      field("Name", "name", "text", { autocomplete: "name", required: true }),
      field("Email", "email", "email", { autocomplete: "username", required: true }),
      field("Password", "password", "password", {
        autocomplete: "new-password",
        required: true,
        minlength: "8",
      }),
      h("button", { type: "submit" }, "Create account"),
      out.node,
    ),
    async ({ name, email, password }) => {
      try {
        const { data } = await client.mutate({
          mutation: SignUp,
          variables: { input: { name, email, password } },
        });
        if (data?.signUpEmail.session) navigate("/");
        else out.ok("Check your inbox to verify your address, then sign in.");
      } catch (e) {
        out.fail(errorMessage(e));
      }
    },
  );
  return h(
    "section",
    { class: "card" },
    h("h1", { id: "title" }, "Create an account"),
    form,
    h("p", {}, "Already have one? ", link("/sign-in", "Sign in")),
  );
}

export function signInPage(): HTMLElement {
  const out = status();
  const form = onSubmit(
    h(
      "form",
      { "aria-labelledby": "title" },
      field("Email", "email", "email", { autocomplete: "username webauthn", required: true }),
      field("Password", "password", "password", { autocomplete: "current-password", required: true }),
      h("button", { type: "submit" }, "Sign in"),
      out.node,
    ),
    async ({ email, password }) => {
      try {
        const { data } = await client.mutate({ mutation: SignIn, variables: { input: { email, password } } });
        afterSignIn(data?.signInEmail);
      } catch (e) {
        out.fail(errorMessage(e));
      }
    },
  );

  const passkeyButton = h(
    "button",
    { type: "button", class: "secondary", id: "passkey-sign-in" },
    "Sign in with a passkey",
  );
  passkeyButton.addEventListener("click", async () => {
    out.clear();
    passkeyButton.disabled = true;
    try {
      // Email first when the field is filled; otherwise any passkey the device offers.
      const email = (form.elements.namedItem("email") as HTMLInputElement).value.trim();
      const { data } = await client.mutate({
        mutation: PasskeyAuthenticationOptions,
        variables: { input: email ? { email } : {} },
      });
      const response = await getCredential(data?.passkeyAuthenticationOptions);
      const { data: signed } = await client.mutate({ mutation: SignInPasskey, variables: { input: { response } } });
      // Without user verification, a user with two-factor on still has a second step.
      afterSignIn(signed?.signInPasskey);
    } catch (e) {
      out.fail(errorMessage(e));
    } finally {
      passkeyButton.disabled = false;
    }
  });

  const social = h("div", { class: "social" });
  void client
    .query({ query: SocialProviders })
    .then(({ data }) => {
      for (const provider of data?.socialProviders ?? []) {
        const button = h("button", { type: "button", class: "secondary" }, `Continue with ${provider.name}`);
        button.addEventListener("click", async () => {
          try {
            const { data: started } = await client.mutate({
              mutation: SignInSocial,
              variables: {
                input: {
                  provider: provider.id,
                  callbackURL: `${location.origin}/`,
                  errorCallbackURL: `${location.origin}/sign-in`,
                },
              },
            });
            if (started?.signInSocial.url) location.assign(started.signInSocial.url);
          } catch (e) {
            out.fail(errorMessage(e));
          }
        });
        social.append(button);
      }
    })
    .catch(() => {});

  const params = new URLSearchParams(location.search);
  if (params.get("error")) out.fail(`Sign-in failed: ${params.get("error")}`);

  return h(
    "section",
    { class: "card" },
    h("h1", { id: "title" }, "Sign in"),
    form,
    h(
      "div",
      { class: "alternatives" },
      supported() && !hostProblem() ? passkeyButton : null,
      social,
      h(
        "p",
        { class: "by-mail" },
        "No password? ",
        link("/sign-in/magic-link", "Email me a sign-in link"),
        " or ",
        link("/sign-in/email-code", "a sign-in code"),
        ".",
      ),
    ),
    h("p", {}, link("/forgot-password", "Forgot your password?")),
    h("p", {}, "New here? ", link("/sign-up", "Create an account")),
  );
}

export function forgotPasswordPage(): HTMLElement {
  const out = status();
  const form = onSubmit(
    h(
      "form",
      { "aria-labelledby": "title" },
      field("Email", "email", "email", { autocomplete: "username", required: true }),
      h("button", { type: "submit" }, "Send reset link"),
      out.node,
    ),
    async ({ email }) => {
      try {
        await client.mutate({
          mutation: RequestPasswordReset,
          variables: { input: { email, redirectTo: `${location.origin}/reset-password` } },
        });
        out.ok("If an account exists for that address, a reset link is on its way.");
      } catch (e) {
        out.fail(errorMessage(e));
      }
    },
  );
  return h("section", { class: "card" }, h("h1", { id: "title" }, "Reset your password"), form);
}

/** Where the mailed reset link lands: `/reset-password?token=…`. */
export function resetPasswordPage(): HTMLElement {
  const token = new URLSearchParams(location.search).get("token") ?? "";
  const out = status();
  if (!token) out.fail("This link has no token. Request a new one.");
  const form = onSubmit(
    h(
      "form",
      { "aria-labelledby": "title" },
      field("New password", "newPassword", "password", {
        autocomplete: "new-password",
        required: true,
        minlength: "8",
      }),
      h("button", { type: "submit" }, "Set new password"),
      out.node,
    ),
    async ({ newPassword }) => {
      try {
        await client.mutate({ mutation: ResetPassword, variables: { input: { token, newPassword } } });
        // The token is spent: drop it from the address bar and history.
        history.replaceState(null, "", "/reset-password");
        out.ok("Your password was changed. Every session was signed out.");
        form.append(h("p", {}, link("/sign-in", "Sign in with the new password")));
      } catch (e) {
        const code = errorCode(e);
        out.fail(
          code === "INVALID_TOKEN" || code === "TOKEN_EXPIRED"
            ? "This link is no longer valid. Request a new one."
            : errorMessage(e),
        );
      }
    },
  );
  return h("section", { class: "card" }, h("h1", { id: "title" }, "Choose a new password"), form);
}

/** Where the mailed verification link lands: `/verify-email?token=…`. */
export function verifyEmailPage(): HTMLElement {
  const token = new URLSearchParams(location.search).get("token") ?? "";
  const out = status();
  const section = h("section", { class: "card" }, h("h1", {}, "Verify your email"), out.node);
  if (!token) {
    out.fail("This link has no token.");
    return section;
  }
  out.ok("Verifying…");
  client
    .mutate({ mutation: VerifyEmail, variables: { token } })
    .then(({ data }) => {
      history.replaceState(null, "", "/verify-email");
      out.ok(`${data?.verifyEmail.email ?? "Your address"} is verified.`);
      section.append(h("p", {}, link("/", "Continue")));
    })
    .catch((e) => {
      const code = errorCode(e);
      out.fail(
        code === "INVALID_TOKEN" || code === "TOKEN_EXPIRED"
          ? "This link is no longer valid. Request a new one."
          : errorMessage(e),
      );
    });
  return section;
}
