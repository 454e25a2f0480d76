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
import { h, link, setNavigate } from "./ui";

const main = document.getElementById("main") as HTMLElement;
const nav = document.getElementById("nav") as HTMLElement;

const titles: Record<string, string> = {
  "/": "Home",
  "/sign-in": "Sign in",
  "/sign-up": "Create an account",
  "/forgot-password": "Reset your password",
  "/reset-password": "Choose a new password",
  "/verify-email": "Verify your email",
  "/passkeys": "Passkeys",
  "/change-password": "Change password",
};

const signedInOnly = new Set(["/", "/passkeys", "/change-password"]);
const signedOutOnly = new Set(["/sign-in", "/sign-up", "/forgot-password"]);

async function render(): Promise<void> {
  const path = location.pathname in titles ? location.pathname : "/";
  document.title = `${titles[path]} · Apexkit example`;
  let me = null;
  try {
    const { data } = await client.query({ query: Me });
    me = data?.me ?? null;
  } catch (e) {
    main.replaceChildren(h("p", { class: "status error", role: "alert" }, `Cannot reach the service: ${errorMessage(e)}`));
    return;
  }
  if (!me && signedInOnly.has(path)) return go("/sign-in", true);
  if (me && signedOutOnly.has(path)) return go("/", true);

  nav.replaceChildren(
    ...(me
      ? [
          link("/", "Home"),
          link("/passkeys", "Passkeys"),
          link("/change-password", "Password"),
          h("button", { type: "button", class: "link", id: "sign-out", onclick: signOut as EventListener }, "Sign out"),
        ]
      : [link("/sign-in", "Sign in"), link("/sign-up", "Sign up")]),
  );
  for (const a of nav.querySelectorAll("a")) {
    if (a.getAttribute("href") === path) a.setAttribute("aria-current", "page");
  }

  const page =
    path === "/" && me
      ? homePage(me)
      : path === "/passkeys"
        ? passkeysPage()
        : path === "/change-password"
          ? changePasswordPage()
          : path === "/sign-up"
            ? signUpPage()
            : path === "/forgot-password"
              ? forgotPasswordPage()
              : path === "/reset-password"
                ? resetPasswordPage()
                : path === "/verify-email"
                  ? verifyEmailPage()
                  : signInPage();
  main.replaceChildren(page);
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
