// Signed-in pages: home (the user, their sessions, a verification link to ask for), passkeys,
// change password. Two-factor settings are in two-factor.ts.
import { client, errorCode, errorMessage } from "../api";
import type { MeQuery, PasskeyFieldsFragment } from "../gql/graphql";
import {
  ChangePassword,
  DeletePasskey,
  PasskeyRegistrationOptions,
  Passkeys,
  RegisterPasskey,
  RenamePasskey,
  RevokeOtherSessions,
  RevokeSession,
  SendVerificationEmail,
  Sessions,
} from "../operations";
import { field, h, link, navigate, onSubmit, status, when } from "../ui";
import { createCredential, hostProblem, supported } from "../webauthn";

type Me = NonNullable<MeQuery["me"]>;

export function homePage(me: Me): HTMLElement {
  const out = status();
  const list = h("ul", { class: "list", "aria-label": "Your sessions" });

  async function load(): Promise<void> {
    try {
      const { data } = await client.query({ query: Sessions });
      list.replaceChildren(
        ...(data?.sessions ?? []).map((s) =>
          h(
            "li",
            { class: "row", "data-session": s.id },
            h(
              "div",
              {},
              h("strong", {}, s.userAgent ?? "Unknown device"),
              s.current ? h("span", { class: "badge" }, "This device") : null,
              h("br"),
              h("small", {}, `Signed in ${when(s.createdAt)} · from ${s.ipAddress ?? "?"} · until ${when(s.expiresAt)}`),
            ),
            s.current
              ? null
              : h(
                  "button",
                  {
                    type: "button",
                    class: "secondary",
                    "aria-label": `Revoke session from ${s.userAgent ?? "unknown device"}`,
                    onclick: (async () => {
                      try {
                        await client.mutate({ mutation: RevokeSession, variables: { id: s.id } });
                        await load();
                        out.ok("Session revoked.");
                      } catch (e) {
                        out.fail(errorMessage(e));
                      }
                    }) as EventListener,
                  },
                  "Revoke",
                ),
          ),
        ),
      );
    } catch (e) {
      if (errorCode(e) === "UNAUTHENTICATED") navigate("/sign-in");
      else out.fail(errorMessage(e));
    }
  }
  void load();

  const others = h("button", { type: "button", class: "secondary", id: "revoke-others" }, "Sign out all other sessions");
  others.addEventListener("click", async () => {
    try {
      await client.mutate({ mutation: RevokeOtherSessions });
      await load();
      out.ok("Every other session was signed out.");
    } catch (e) {
      out.fail(errorMessage(e));
    }
  });

  // Ask for a verification link; it lands on /verify-email in this app (a trusted origin).
  const verifyOut = status();
  const verify = h("button", { type: "button", class: "secondary", id: "send-verification" }, "Send me a verification link");
  verify.addEventListener("click", async () => {
    verify.disabled = true;
    try {
      await client.mutate({
        mutation: SendVerificationEmail,
        variables: { input: { email: me.email, callbackURL: `${location.origin}/verify-email` } },
      });
      verifyOut.ok(`Check your inbox: a verification link is on its way to ${me.email}.`);
    } catch (e) {
      verifyOut.fail(errorMessage(e));
    } finally {
      verify.disabled = false;
    }
  });

  return h(
    "section",
    { class: "card" },
    h("h1", {}, `Hello, ${me.name || me.email}`),
    h(
      "p",
      {},
      "Signed in as ",
      h("strong", { id: "me-email" }, me.email),
      h("span", { id: "me-verified" }, me.emailVerified ? " (verified)" : " (not verified yet)"),
    ),
    me.emailVerified ? null : h("div", { class: "verify" }, verify, verifyOut.node),
    h(
      "p",
      { id: "me-two-factor" },
      me.twoFactorEnabled
        ? `Two-factor authentication is on (${me.backupCodesRemaining} backup codes left). `
        : "Two-factor authentication is off. ",
      link("/two-factor", me.twoFactorEnabled ? "Manage" : "Turn it on"),
    ),
    h("h2", {}, "Sessions"),
    list,
    others,
    out.node,
  );
}

export function passkeysPage(): HTMLElement {
  const out = status();
  const list = h("ul", { class: "list", "aria-label": "Your passkeys" });

  function row(p: PasskeyFieldsFragment): HTMLElement {
    const name = p.name ?? "Unnamed passkey";
    const renameForm = onSubmit(
      h(
        "form",
        { class: "inline" },
        h("label", { class: "visually-hidden", for: `rename-${p.id}` }, `New name for ${name}`),
        h("input", { id: `rename-${p.id}`, name: "name", value: name, maxlength: "64", required: true }),
        h("button", { type: "submit", class: "secondary" }, "Rename"),
      ),
      async ({ name: newName }) => {
        try {
          await client.mutate({ mutation: RenamePasskey, variables: { input: { id: p.id, name: newName } } });
          await load();
          out.ok("Passkey renamed.");
        } catch (e) {
          out.fail(errorMessage(e));
        }
      },
    );
    const remove = h("button", { type: "button", class: "danger", "aria-label": `Delete ${name}` }, "Delete");
    remove.addEventListener("click", async () => {
      if (!confirm(`Delete the passkey “${name}”?`)) return;
      try {
        await client.mutate({ mutation: DeletePasskey, variables: { id: p.id } });
        await load();
        out.ok("Passkey deleted.");
      } catch (e) {
        out.fail(
          errorCode(e) === "FAILED_TO_UNLINK_LAST_ACCOUNT"
            ? "This is your last way to sign in; add another before deleting it."
            : errorMessage(e),
        );
      }
    });
    return h(
      "li",
      { class: "row", "data-passkey": p.id },
      h(
        "div",
        {},
        h("strong", { class: "passkey-name" }, name),
        h("br"),
        h(
          "small",
          {},
          `${p.deviceType === "multiDevice" ? "Synced" : "This device only"} · added ${when(p.createdAt)} · last used ${when(p.lastUsedAt)}`,
        ),
      ),
      renameForm,
      remove,
    );
  }

  async function load(): Promise<void> {
    try {
      const { data } = await client.query({ query: Passkeys });
      const passkeys = data?.passkeys ?? [];
      list.replaceChildren(...(passkeys.length ? passkeys.map(row) : [h("li", {}, "No passkeys yet.")]));
    } catch (e) {
      if (errorCode(e) === "UNAUTHENTICATED") navigate("/sign-in");
      else out.fail(errorMessage(e));
    }
  }
  void load();

  const add = onSubmit(
    h(
      "form",
      { "aria-labelledby": "add-title" },
      h("h2", { id: "add-title" }, "Add a passkey"),
      field("Name", "name", "text", { maxlength: "64", placeholder: "e.g. Laptop" }),
      h("button", { type: "submit", id: "add-passkey" }, "Add a passkey"),
    ),
    async ({ name }) => {
      out.clear();
      try {
        const { data } = await client.mutate({ mutation: PasskeyRegistrationOptions });
        const response = await createCredential(data?.passkeyRegistrationOptions);
        await client.mutate({
          mutation: RegisterPasskey,
          variables: { input: { response, name: name.trim() || null } },
        });
        add.reset();
        await load();
        out.ok("Passkey added.");
      } catch (e) {
        out.fail(
          errorCode(e) === "UNAUTHENTICATED"
            ? "For your security, sign in again (within the last 5 minutes) to add a passkey."
            : errorMessage(e),
        );
      }
    },
  );

  const passkeysUnavailable = supported() ? hostProblem() : "This browser does not support passkeys.";
  return h(
    "section",
    { class: "card" },
    h("h1", {}, "Passkeys"),
    h("p", {}, "Sign in with your fingerprint, face or device PIN instead of a password."),
    list,
    passkeysUnavailable ? h("p", { class: "status error" }, passkeysUnavailable) : add,
    out.node,
  );
}

export function changePasswordPage(): HTMLElement {
  const out = status();
  const form = onSubmit(
    h(
      "form",
      { "aria-labelledby": "title" },
      field("Current password", "currentPassword", "password", { autocomplete: "current-password", required: true }),
      field("New password", "newPassword", "password", { autocomplete: "new-password", required: true, minlength: "8" }),
      h(
        "div",
        { class: "field checkbox" },
        h("input", { id: "f-revoke", name: "revokeOtherSessions", type: "checkbox" }),
        h("label", { for: "f-revoke" }, "Sign out every other session"),
      ),
      h("button", { type: "submit" }, "Change password"),
      out.node,
    ),
    async ({ currentPassword, newPassword }, data) => {
      try {
        await client.mutate({
          mutation: ChangePassword,
          variables: {
            input: { currentPassword, newPassword, revokeOtherSessions: data.has("revokeOtherSessions") },
          },
        });
        out.ok(
          data.has("revokeOtherSessions")
            ? "Your password was changed, and every other session was signed out."
            : "Your password was changed.",
        );
        form.reset();
      } catch (e) {
        out.fail(errorCode(e) === "INVALID_PASSWORD" ? "Your current password is not right." : errorMessage(e));
      }
    },
  );
  return h("section", { class: "card" }, h("h1", { id: "title" }, "Change password"), form);
}
