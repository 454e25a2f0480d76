// The example app: a history-API router over a handful of pages. Who is signed in is asked of
// the service (`me`) on every navigation: the session lives in an HttpOnly cookie this page
// cannot read, which is the point.
import "./style.css";
import { client, errorMessage } from "./api";
import { Me, SignOut } from "./operations";
import { changePasswordPage, homePage, passkeysPage } from "./pages/account";
import {
  forgotPasswordPage,
  resetPasswordPage,
  signInPage,
  signUpPage,
  verifyEmailPage,
} from "./pages/auth";
import { emailCodePage, magicLinkPage } from "./pages/passwordless";
import { twoFactorPage, twoFactorStepPage } from "./pages/two-factor";
import { h, link, setNavigate } from "./ui";

const main = document.getElementById("main") as HTMLElement;
const nav = document.getElementById("nav") as HTMLElement;

const titles: Record<string, string> = {
  "/": "Home",
  "/sign-in": "Sign in",
  "/sign-in/magic-link": "Sign in with a link",
  "/sign-in/email-code": "Sign in with a code",
  "/sign-in/two-factor": "Two-factor authentication",
  "/sign-up": "Create an account",
  "/forgot-password": "Reset your password",
  "/reset-password": "Choose a new password",
  "/verify-email": "Verify your email",
  "/passkeys": "Passkeys",
  "/change-password": "Change password",
  "/two-factor": "Two-factor authentication",
};

const signedInOnly = new Set(["/", "/passkeys", "/change-password", "/two-factor"]);
const signedOutOnly = new Set([
  "/sign-in",
  "/sign-up",
  "/forgot-password",
  "/sign-in/magic-link",
  "/sign-in/email-code",
  "/sign-in/two-factor",
]);

// Each navigation's render gets a ticket; one that a later navigation overtook draws nothing.
let rendering = 0;

async function render(): Promise<void> {
  const ticket = ++rendering;
  const path = location.pathname in titles ? location.pathname : "/";
  document.title = `${titles[path]} · Apexkit example`;
  // The page being left goes at once: its form must not take input meant for the next page
  // while the service is asked who is signed in.
  main.setAttribute("aria-busy", "true");
  main.replaceChildren(h("p", { class: "status" }, "Loading…"));
  let me = null;
  try {
    const { data } = await client.query({ query: Me });
    if (ticket !== rendering) return;
    me = data?.me ?? null;
  } catch (e) {
    if (ticket !== rendering) return;
    main.removeAttribute("aria-busy");
    main.replaceChildren(h("p", { class: "status error", role: "alert" }, `Cannot reach the service: ${errorMessage(e)}`));
    return;
  }
  // A redirect flow (magic link, social sign-in) that stopped at the second factor comes back
  // to its callbackURL with `?twoFactorRequired=true` and the `apexkit.two_factor` cookie set.
  if (!me && new URLSearchParams(location.search).get("twoFactorRequired") === "true") {
    return go("/sign-in/two-factor", true);
  }
  if (!me && signedInOnly.has(path)) return go("/sign-in", true);
  if (me && signedOutOnly.has(path)) return go("/", true);

  nav.replaceChildren(
    ...(me
      ? [
          link("/", "Home"),
          link("/passkeys", "Passkeys"),
          link("/two-factor", "Two-factor"),
          link("/change-password", "Password"),
          h("button", { type: "button", class: "link", id: "sign-out", onclick: signOut as EventListener }, "Sign out"),
        ]
      : [link("/sign-in", "Sign in"), link("/sign-up", "Sign up")]),
  );
  for (const a of nav.querySelectorAll("a")) {
    if (a.getAttribute("href") === path) a.setAttribute("aria-current", "page");
  }

  const pages: Record<string, () => HTMLElement> = {
    "/": () => (me ? homePage(me) : signInPage()),
    "/passkeys": passkeysPage,
    "/two-factor": () => (me ? twoFactorPage(me) : signInPage()),
    "/change-password": changePasswordPage,
    "/sign-up": signUpPage,
    "/sign-in": signInPage,
    "/sign-in/magic-link": magicLinkPage,
    "/sign-in/email-code": emailCodePage,
    "/sign-in/two-factor": twoFactorStepPage,
    "/forgot-password": forgotPasswordPage,
    "/reset-password": resetPasswordPage,
    "/verify-email": verifyEmailPage,
  };
  const page = (pages[path] ?? signInPage)();
  main.replaceChildren(page);
  main.removeAttribute("aria-busy");
  // Move focus to the new page's heading, for keyboard and screen-reader users.
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }
}

async function signOut(): Promise<void> {
  try {
    await client.mutate({ mutation: SignOut });
  } finally {
    go("/sign-in");
  }
}

function go(path: string, replace = false): void {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  void render();
}

setNavigate((path) => go(path));
window.addEventListener("popstate", () => void render());
void render();
