// Creates a Better Auth database through Better Auth's own API and prints, as one JSON line,
// what the Apexkit adoption tests need: each user's email and password, a bearer token (the raw
// session token), and the signed `better-auth.session_token` cookie of another session.
//
//   node seed.mjs pg-snake     postgres://…   the seed's Drizzle schema (snake_case), drizzle-kit push
//   node seed.mjs pg-camel     postgres://…   Better Auth's own schema (camelCase), its migrator
//   node seed.mjs sqlite-camel /path/file.db  the same on SQLite (better-sqlite3)
//
// Better Auth's secret comes from BETTER_AUTH_SECRET (a fixed test value otherwise) and is
// printed back.
import { betterAuth } from "better-auth";
import { admin, bearer, twoFactor } from "better-auth/plugins";
import { getMigrations } from "better-auth/db/migration";

const [kind, url] = process.argv.slice(2);
const secret = process.env.BETTER_AUTH_SECRET ?? "better-auth-test-secret-0123456789abcdef";
if (!kind || !url) {
  console.error("usage: node seed.mjs pg-snake|pg-camel|sqlite-camel URL");
  process.exit(2);
}

async function database() {
  if (kind === "sqlite-camel") {
    const { default: Database } = await import("better-sqlite3");
    return { options: new Database(url), close: async () => {} };
  }
  const { default: pg } = await import("pg");
  const pool = new pg.Pool({ connectionString: url });
  if (kind === "pg-camel") {
    return { options: pool, close: () => pool.end() };
  }
  if (kind === "pg-snake") {
    const { drizzle } = await import("drizzle-orm/node-postgres");
    const { drizzleAdapter } = await import("better-auth/adapters/drizzle");
    const schema = await import("./schema-snake.mjs");
    const db = drizzle(pool, { schema });
    // drizzle-kit's push, programmatically: the statements `drizzle-kit push` would run.
    const { createRequire } = await import("node:module");
    const { pushSchema } = createRequire(import.meta.url)("drizzle-kit/api");
    const push = await pushSchema(schema, db);
    await push.apply();
    return {
      options: drizzleAdapter(db, { provider: "pg", schema }),
      close: () => pool.end(),
      pushed: true,
    };
  }
  throw new Error(`unknown kind ${kind}`);
}

const db = await database();
const auth = betterAuth({
  database: db.options,
  secret,
  baseURL: "http://localhost:3000",
  emailAndPassword: {
    enabled: true,
    // Password reset requests leave a row in `verification` (the mail itself goes nowhere).
    sendResetPassword: async () => {},
  },
  plugins: [admin(), bearer(), twoFactor()],
  logger: { disabled: true },
});
if (!db.pushed) {
  const { runMigrations } = await getMigrations(auth.options);
  await runMigrations();
}
const ctx = await auth.$context;

const people = [
  { name: "Ada Admin", email: "ada@example.com", password: "Better-Auth pw 1 ünïcode", role: "admin" },
  { name: "Bob Banned", email: "bob@example.com", password: "correct horse battery 2", banned: true },
  { name: "Uma Unverified", email: "uma@example.com", password: "tr0ub4dor&3 staple", unverified: true },
  { name: "Vic Verified", email: "vic@example.com", password: "ﬁve ﬂowers (NFKC)" },
];

const users = [];
for (const p of people) {
  const { user, token } = await auth.api.signUpEmail({
    body: { name: p.name, email: p.email, password: p.password },
  });
  if (!p.unverified) {
    await ctx.internalAdapter.updateUser(user.id, { emailVerified: true });
  }
  // A second session, signed in as a browser would: its Set-Cookie is the signed cookie.
  const res = await auth.api.signInEmail({
    body: { email: p.email, password: p.password },
    asResponse: true,
  });
  if (!res.ok) throw new Error(`sign-in of ${p.email} failed: ${res.status}`);
  const setCookie = res.headers.getSetCookie().find((c) => c.startsWith("better-auth.session_token="));
  const cookie = setCookie.split(";")[0].slice("better-auth.session_token=".length);
  users.push({
    id: user.id,
    email: p.email,
    password: p.password,
    bearer: token,
    signedBearer: res.headers.get("set-auth-token"),
    cookie,
    role: p.role ?? "user",
    banned: !!p.banned,
    verified: !p.unverified,
  });
}

// The admin promotes and bans through the admin plugin's API, with the admin's session.
const ada = users[0];
await ctx.internalAdapter.updateUser(ada.id, { role: "admin" });
const adminHeaders = new Headers({ authorization: `Bearer ${ada.bearer}` });
await auth.api.banUser({
  body: { userId: users[1].id, banReason: "spam" },
  headers: adminHeaders,
});
// banUser revokes the banned user's sessions: theirs are not expected to authenticate.
// A plugin's own table: Vic starts enrolling in two-factor (a `twoFactor` row), which
// Apexkit keeps untouched.
const vic = users[3];
await auth.api.enableTwoFactor({
  body: { password: vic.password },
  headers: new Headers({ authorization: `Bearer ${vic.bearer}` }),
});
// A pending verification row, as Better Auth keeps for a password reset request.
await auth.api.requestPasswordReset({ body: { email: "vic@example.com", redirectTo: "/reset" } });

console.log(JSON.stringify({ kind, secret, users }));
await db.close();
