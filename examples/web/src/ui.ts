// Small DOM helpers: elements built with textContent (never innerHTML with data), forms with a
// status line announced to screen readers, and client-side navigation.

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | boolean | EventListener | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") node.addEventListener(key.replace(/^on/, ""), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** A labelled input (id `f-NAME` unless `extra.id` names another). */
export function field(
  label: string,
  name: string,
  type = "text",
  extra: Attrs = {},
): HTMLElement {
  const id = typeof extra.id === "string" ? extra.id : `f-${name}`;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("input", { name, type, ...extra, id }),
  );
}

/** A status line (role=status, or alert for errors) for a form's outcome. */
export function status(): { node: HTMLElement; ok(msg: string): void; fail(msg: string): void; clear(): void } {
  const node = h("p", { class: "status", role: "status", "aria-live": "polite" });
  return {
    node,
    ok(msg) {
      node.className = "status ok";
      node.setAttribute("role", "status");
      node.textContent = msg;
    },
    fail(msg) {
      node.className = "status error";
      node.setAttribute("role", "alert");
      node.textContent = msg;
    },
    clear() {
      node.className = "status";
      node.textContent = "";
    },
  };
}

/** Runs `action` on submit with the form's values; the submit button is disabled meanwhile. */
export function onSubmit(
  form: HTMLFormElement,
  action: (values: Record<string, string>, data: FormData) => Promise<void>,
): HTMLFormElement {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const values: Record<string, string> = {};
    data.forEach((v, k) => (values[k] = String(v)));
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    try {
      await action(values, data);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  });
  return form;
}

let navigateHandler: (path: string) => void = () => {};

export function setNavigate(handler: (path: string) => void): void {
  navigateHandler = handler;
}

export function navigate(path: string): void {
  navigateHandler(path);
}

/** An in-app link. */
export function link(path: string, text: string, attrs: Attrs = {}): HTMLAnchorElement {
  return h("a", {
    href: path,
    ...attrs,
    onclick: ((event: MouseEvent) => {
      if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      navigate(path);
    }) as EventListener,
  }, text);
}

export function when(iso: string | null | undefined): string {
  if (!iso) return "never";
  return new Date(iso).toLocaleString();
}
