#!/usr/bin/env node
// Loopback OpenID Connect provider for the Apexkit Auth integration tests.
//
//   node tests/oidc/provider.mjs CONFIG.json [PORT]
//
// CONFIG may also come from env OIDC_CONFIG, PORT from env OIDC_PORT (0 or absent = any free
// port). Listens on 127.0.0.1 only. Once listening it prints exactly ONE line to stdout:
//
//   {"issuer":"http://127.0.0.1:PORT","port":PORT}
//
// and nothing else ever goes to stdout (diagnostics go to stderr). It runs until stdin reaches
// EOF (only when stdin is a pipe or socket, so spawn it with a piped stdin and drop the handle to
// stop it), or until SIGTERM / SIGINT; then it exits 0.
//
// See README.md for the configuration format and the interaction (login) form.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { fstatSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import process from 'node:process';

// Diagnostics must never reach stdout: the parent reads the ready line from it and may stop
// reading afterwards (a full pipe would block this process). oidc-provider prints its notices
// with console.info, so route every console method that writes to stdout to stderr.
console.log = console.error;
console.info = console.error;
console.debug = console.error;

const { default: Provider, errors } = await import('oidc-provider');

const log = (...args) => console.error('[oidc-provider-harness]', ...args);

function fail(message) {
  console.error(`provider.mjs: ${message}`);
  console.error('usage: node provider.mjs CONFIG.json [PORT]   (or env OIDC_CONFIG, OIDC_PORT)');
  process.exit(2);
}

// ---------------------------------------------------------------------------
// Command line and configuration

const configPath = process.argv[2] || process.env.OIDC_CONFIG;
if (!configPath) fail('no configuration file given');

const portArg = process.argv[3] ?? process.env.OIDC_PORT ?? '0';
if (!/^\d+$/.test(String(portArg)) || Number(portArg) > 65535) fail(`invalid port: ${portArg}`);
const requestedPort = Number(portArg);

let config;
try {
  config = JSON.parse(readFileSync(configPath, 'utf8'));
} catch (err) {
  fail(`cannot read configuration ${configPath}: ${err.message}`);
}
if (config === null || typeof config !== 'object' || Array.isArray(config)) {
  fail('configuration must be a JSON object');
}

const clients = config.clients ?? [];
if (!Array.isArray(clients) || clients.length === 0) fail('"clients" must be a non-empty array');

// accounts: { "<login id>": { sub, email, email_verified, name, picture, ... } }.
// The login id is what the interaction form takes; `sub` defaults to the login id.
const accountsByLogin = new Map();
const accountsBySub = new Map();
for (const [login, claims] of Object.entries(config.accounts ?? {})) {
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
    fail(`account ${login}: claims must be an object`);
  }
  const sub = claims.sub === undefined ? login : String(claims.sub);
  if (accountsBySub.has(sub)) fail(`account ${login}: duplicate sub ${sub}`);
  const account = { login, sub, claims: { ...claims, sub } };
  accountsByLogin.set(login, account);
  accountsBySub.set(sub, account);
}
if (accountsByLogin.size === 0) fail('"accounts" must have at least one account');

// Token lifetimes in seconds. All given as numbers (a deterministic harness, and no
// "default ttl function called" notices); `ttl` in the configuration overrides any of them.
const TTL_DEFAULTS = {
  AccessToken: 3600,
  AuthorizationCode: 60,
  BackchannelAuthenticationRequest: 600,
  ClientCredentials: 600,
  DeviceCode: 600,
  Grant: 14 * 24 * 3600,
  IdToken: 3600,
  Interaction: 3600,
  RefreshToken: 14 * 24 * 3600,
  Session: 14 * 24 * 3600,
};
const ttl = { ...TTL_DEFAULTS };
for (const [name, value] of Object.entries(config.ttl ?? {})) {
  if (!(name in TTL_DEFAULTS)) fail(`ttl.${name}: unknown, one of ${Object.keys(TTL_DEFAULTS).join(', ')}`);
  if (!Number.isInteger(value) || value <= 0) fail(`ttl.${name}: must be a positive integer (seconds)`);
  ttl[name] = value;
}

// "always": a refresh token for every authorization code exchange by a client whose
// grant_types include refresh_token. "offline_access": only when offline_access was granted
// (oidc-provider's default; per OIDC Core it needs prompt=consent in the request).
const refreshPolicy = config.issueRefreshToken ?? 'always';
if (!['always', 'offline_access'].includes(refreshPolicy)) {
  fail('issueRefreshToken must be "always" or "offline_access"');
}
if (config.clockTolerance !== undefined
  && (!Number.isInteger(config.clockTolerance) || config.clockTolerance < 0)) {
  fail('clockTolerance must be a non-negative integer (seconds)');
}

// ---------------------------------------------------------------------------
// Signing keys: fresh on every start. RS256 first, so it is the default for id_tokens;
// ES256 for clients registered with id_token_signed_response_alg "ES256".

function signingJwk(kty, alg, options) {
  const { privateKey } = generateKeyPairSync(kty, options);
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `${alg.toLowerCase()}-${randomBytes(6).toString('hex')}`, alg, use: 'sig' };
}
const jwks = {
  keys: [
    signingJwk('rsa', 'RS256', { modulusLength: 2048 }),
    signingJwk('ec', 'ES256', { namedCurve: 'P-256' }),
  ],
};

// ---------------------------------------------------------------------------
// HTTP server first (port 0 = any free port), so the issuer can carry the actual port.

const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(requestedPort, '127.0.0.1', resolve);
}).catch((err) => fail(`cannot listen on 127.0.0.1:${requestedPort}: ${err.message}`));
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const htmlSafe = (value) => String(value)
  .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
  .replace(/"/g, '&quot;').replace(/'/g, '&#39;');

const provider = new Provider(issuer, {
  clients,
  async findAccount(_ctx, sub) {
    const account = accountsBySub.get(sub);
    if (!account) return undefined;
    return {
      accountId: account.sub,
      // oidc-provider keeps only the claims the granted scopes allow.
      async claims() { return { ...account.claims }; },
    };
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'middle_name', 'nickname', 'preferred_username',
      'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at'],
  },
  scopes: ['openid', 'email', 'profile', 'offline_access'],
  // false: id_tokens also carry the scope claims (email, name, ...) as Google's do; true: only
  // sub & co., the scope claims come from userinfo alone (OIDC Core 5.4 strictly).
  conformIdTokenClaims: config.conformIdTokenClaims ?? false,
  responseTypes: ['code'],
  pkce: { methods: ['S256'], required: () => true },
  issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token')
    && (refreshPolicy === 'always' || code.scopes.has('offline_access')),
  ...(config.rotateRefreshToken === undefined ? {} : { rotateRefreshToken: !!config.rotateRefreshToken }),
  ttl,
  // Extra id_token signing algorithms (e.g. ["RS256", "HS256", "none"]) so a client's
  // id_token_signed_response_alg can ask for them: the relying party's attack tests.
  ...(config.idTokenSigningAlgValues === undefined ? {} : {
    enabledJWA: { idTokenSigningAlgValues: config.idTokenSigningAlgValues },
  }),
  // oidc-provider accepts tokens up to clockTolerance seconds past their exp (default 15 s);
  // 0 here, so a 2 s access token is refused after 2 s. Same clock on both ends.
  clockTolerance: config.clockTolerance ?? 0,
  jwks,
  cookies: {
    keys: [randomBytes(32).toString('base64url')],
    // Plain http on 127.0.0.1: nothing is marked Secure (oidc-provider only does so over
    // https); SameSite=Lax rather than this version's None, which wants Secure.
    long: { httpOnly: true, sameSite: 'lax', signed: true },
    short: { httpOnly: true, sameSite: 'lax', signed: true },
  },
  features: {
    devInteractions: { enabled: false }, // our own /interaction routes below
    revocation: { enabled: true },
    userinfo: { enabled: true },
  },
  interactions: {
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  clientBasedCORS: () => true,
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html>\n<html><head><title>error</title></head><body>\n${
      Object.entries(out).map(([k, v]) => `<pre id="${htmlSafe(k)}">${htmlSafe(k)}: ${htmlSafe(v)}</pre>`).join('\n')
    }\n</body></html>\n`;
  },
});

// Attack tests (off unless configured): the id_tokens the token endpoint returns are
// - `idTokenExpiredSecondsAgo: N`: signed as usual but with `exp` N seconds in the past
//   (oidc-provider's own `expiresAt` option of IdToken#issue);
// - `tamperIdTokens: true`: their payload altered after signing (`sub` and `email` are
//   another user's), the signature left as it was.
if (config.idTokenExpiredSecondsAgo !== undefined
  && (!Number.isInteger(config.idTokenExpiredSecondsAgo) || config.idTokenExpiredSecondsAgo <= 0)) {
  fail('idTokenExpiredSecondsAgo must be a positive integer (seconds)');
}
{
  const issue = provider.IdToken.prototype.issue;
  provider.IdToken.prototype.issue = async function issueForTests(options = {}) {
    if (options.use !== 'idtoken') return issue.call(this, options);
    const expiresAt = config.idTokenExpiredSecondsAgo === undefined
      ? options.expiresAt
      : Math.floor(Date.now() / 1000) - config.idTokenExpiredSecondsAgo;
    const token = await issue.call(this, { ...options, expiresAt });
    if (!config.tamperIdTokens) return token;
    const [header, payload, signature] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    claims.sub = 'victim-sub';
    claims.email = 'victim@example.test';
    claims.email_verified = true;
    return [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.');
  };
}

// Errors to stderr, one line each (expected ones too: negative tests provoke them).
for (const event of ['server_error', 'authorization.error', 'grant.error', 'userinfo.error',
  'revocation.error', 'end_session.error', 'discovery.error', 'jwks.error',
  'backchannel.error', 'registration_create.error', 'introspection.error']) {
  provider.on(event, (_ctx, err) => log(`${event}: ${err.name}: ${err.message}${
    err.error_description ? ` (${err.error_description})` : ''}${
    err.error_detail ? ` [${err.error_detail}]` : ''}`));
}

// ---------------------------------------------------------------------------
// Interactions, without a browser:
//   GET  /interaction/:uid        HTML form, action /interaction/:uid/login, field `login`
//   POST /interaction/:uid/login  login=<account id>: signs in AND grants every requested scope
//   POST /interaction/:uid/abort  ends the request with error=access_denied
// (GET on /abort works as well.)

function send(res, status, body, type = 'text/plain; charset=utf-8') {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw Object.assign(new Error('request body too large'), { status: 413 });
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function renderForm(uid, details) {
  const { prompt, params } = details;
  const hint = params.login_hint ?? '';
  return `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Sign in</title></head>
<body>
<h1>Sign in to ${htmlSafe(params.client_id)}</h1>
<p>prompt: <span id="prompt">${htmlSafe(prompt.name)}</span>; scope: <span id="scope">${htmlSafe(params.scope ?? '')}</span></p>
<form method="post" action="/interaction/${htmlSafe(uid)}/login">
  <input type="text" name="login" value="${htmlSafe(hint)}" autofocus>
  <input type="password" name="password" value="">
  <button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${htmlSafe(uid)}/abort">
  <button type="submit">Cancel</button>
</form>
<p>accounts: ${[...accountsByLogin.keys()].map((l) => `<code>${htmlSafe(l)}</code>`).join(' ')}</p>
</body>
</html>
`;
}

async function handleInteraction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'interaction uid does not match the interaction cookie\n');

  if (action === undefined) {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed\n');
    return send(res, 200, renderForm(uid, details), 'text/html; charset=utf-8');
  }

  if (action === 'abort') {
    if (req.method !== 'POST' && req.method !== 'GET') return send(res, 405, 'method not allowed\n');
    return provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }

  // action === 'login'
  if (req.method !== 'POST') return send(res, 405, 'method not allowed\n');
  const form = await readForm(req);
  const login = form.get('login') ?? '';
  let accountId;
  if (login !== '') {
    const account = accountsByLogin.get(login) ?? accountsBySub.get(login);
    if (!account) return send(res, 400, `unknown account: ${login}\n`);
    accountId = account.sub;
  } else if (details.prompt.name !== 'login' && details.session?.accountId) {
    accountId = details.session.accountId; // consent prompt for the signed-in account
  } else {
    return send(res, 400, 'missing form field: login\n');
  }

  // Grant everything requested, so no separate consent step follows.
  const { params, prompt } = details;
  let grant;
  if (details.grantId && details.session?.accountId === accountId) {
    grant = await provider.Grant.find(details.grantId);
  }
  grant ??= new provider.Grant({ accountId, clientId: params.client_id });
  if (params.scope) grant.addOIDCScope(params.scope);
  if (prompt.details?.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details?.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(prompt.details?.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();

  return provider.interactionFinished(req, res, {
    login: { accountId, amr: ['pwd'], remember: true },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

// Static clients are only validated when first used; do it now, so a bad client fails here.
for (const client of clients) {
  try {
    const found = await provider.Client.find(String(client.client_id));
    if (!found) throw new Error('not found');
  } catch (err) {
    fail(`client ${client.client_id}: ${err.error_description ?? err.message}`);
  }
}

const oidcCallback = provider.callback();
const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|abort))?\/?$/;

server.on('request', (req, res) => {
  const { pathname } = new URL(req.url, issuer);
  const match = INTERACTION.exec(pathname);
  if (!match) return oidcCallback(req, res);
  return handleInteraction(req, res, match[1], match[2]).catch((err) => {
    if (res.headersSent) { res.destroy(); return; }
    if (err instanceof errors.SessionNotFound) {
      return send(res, 400, `${err.message}: ${err.error_description ?? ''}\n`);
    }
    log('interaction error:', err);
    return send(res, err.status ?? 500, `${err.message}\n`);
  });
});

// ---------------------------------------------------------------------------
// Ready line, then run until stdin EOF (pipe/socket only) or SIGTERM/SIGINT.

process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);

let stopping = false;
function stop(reason) {
  if (stopping) return;
  stopping = true;
  log(`stopping (${reason})`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

let stdinKind = null;
try {
  const st = fstatSync(0);
  if (st.isFIFO()) stdinKind = 'pipe';
  else if (st.isSocket()) stdinKind = 'socket';
} catch { /* no stdin at all */ }
if (stdinKind) {
  process.stdin.on('end', () => stop('stdin closed'));
  process.stdin.on('error', () => stop('stdin error'));
  process.stdin.resume();
}
