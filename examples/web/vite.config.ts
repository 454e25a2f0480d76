import { defineConfig } from "vite";

// The app runs on its own origin (default http://localhost:5173) and talks to the service at
// VITE_APEXKIT_URL (default http://localhost:4000) with the session cookie.
export default defineConfig({
  server: { host: "localhost", port: 5173, strictPort: true },
  preview: { host: "localhost", port: 5173, strictPort: true },
});
