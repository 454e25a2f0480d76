import { defineConfig } from "vite";

// The app runs on its own origin, http://127.0.0.1:5173 — the host of `cargo run`'s service
// (http://127.0.0.1:4000), so the two are one site and the session cookie goes along; the
// service trusts this origin in development by default. VITE_APEXKIT_URL points the app at
// another service; `--host localhost` serves it on http://localhost:5173 (passkeys need a
// domain name, see docs/src/frontend.md).
export default defineConfig({
  server: { host: "127.0.0.1", port: 5173, strictPort: true },
  preview: { host: "127.0.0.1", port: 5173, strictPort: true },
});
