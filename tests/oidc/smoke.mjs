#!/usr/bin/env node
// Smoke test of provider.mjs: the flows the Rust integration tests rely on, driven over plain
// HTTP with global fetch and a small cookie jar (no browser, no server at the redirect URI).
//
//   node tests/oidc/smoke.mjs        exits 0 when every check passes
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const CONFIG = join(here, 'sample-config.json');
const REDIRECT_URI = 'http://127.0.0.1:1/oauth/callback'; // nothing listens there
const CLIENT = { id: 'apexkit', secret: 'apexkit-secret', auth: 'basic' };
const CLIENT_ES256 = { id: 'apexkit-post-es256', secret: 'apexkit-post-secret', auth: 'post' };

const ok = (what) => console.log(`ok - ${what}`);
const b64url = (buf) => Buffer.from(buf).toString('base64url');
const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

// --- provider process -------------------------------------------------------------------------

const child = spawn(process.execPath, [join(here, 'provider.mjs'), CONFIG, '0'], {
  stdio: ['pipe', 'pipe', 'inherit'],
});
const exited = new Promise((resolve) => { child.on('exit', (code, signal) => resolve({ code, signal })); });
const watchdog = setTimeout(() => {
  console.error('not ok - smoke test timed out after 60 s');
  child.kill('SIGKILL');
  process.exit(1);
}, 60_000);

const firstLine = await new Promise((resolve, reject) => {
  const rl = createInterface({ input: child.stdout });
  rl.once('line', (line) => { rl.close(); resolve(line); });
  child.once('exit', (code) => reject(new Error(`provider exited (${code}) before its ready line`)));
});
const ready = JSON.parse(firstLine);
const { issuer } = ready;
assert.deepEqual(Object.keys(ready), ['issuer', 'port']);
assert.equal(issuer, `http://127.0.0.1:${ready.port}`);
ok(`provider ready: ${firstLine}`);

// --- a minimal cookie jar (name + path; host-only, 127.0.0.1 is the only host) --------------

class CookieJar {
  #cookies = new Map(); // `${path}\0${name}` -> { name, value, path }

  store(response) {
    for (const header of response.headers.getSetCookie()) {
      const [pair, ...attrs] = header.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = '/';
      let expired = value === '';
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=');
        const key = k.toLowerCase();
        if (key === 'path') path = v || '/';
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      const id = `${path}\0${name}`;
      if (expired) this.#cookies.delete(id);
      else this.#cookies.set(id, { name, value, path });
    }
  }

  header(url) {
    const { pathname } = new URL(url);
    const matching = [...this.#cookies.values()].filter(({ path }) => pathname === path
      || pathname.startsWith(path.endsWith('/') ? path : `${path}/`));
    matching.sort((a, b) => b.path.length - a.path.length); // RFC 6265: longer paths first
    return matching.map(({ name, value }) => `${name}=${value}`).join('; ');
  }
}

async function request(jar, url, { method = 'GET', form, headers = {} } = {}) {
  const cookie = jar.header(url);
  const response = await fetch(url, {
    method,
    redirect: 'manual',
    headers: {
      ...headers,
      ...(cookie ? { cookie } : {}),
      ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
    },
    body: form ? new URLSearchParams(form).toString() : undefined,
  });
  jar.store(response);
  return response;
}

// --- the authorization flow -------------------------------------------------------------------

function pkce() {
  const verifier = b64url(randomBytes(32));
  return { verifier, challenge: b64url(createHash('sha256').update(verifier).digest()) };
}

// Runs /auth -> (interaction form -> login|abort) -> resume, following redirects on the issuer
// only. Returns the authorization response parameters (from the Location of the final
// redirect, or from the auto-submit form for response_mode=form_post).
async function authorize(jar, {
  client = CLIENT, login = 'alice', abort = false, responseMode, scope = 'openid email profile offline_access',
  prompt, withPkce = true,
} = {}) {
  const state = b64url(randomBytes(12));
  const nonce = b64url(randomBytes(12));
  const { verifier, challenge } = pkce();
  const url = new URL('/auth', issuer);
  url.search = new URLSearchParams({
    client_id: client.id,
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    scope,
    state,
    nonce,
    ...(withPkce ? { code_challenge: challenge, code_challenge_method: 'S256' } : {}),
    ...(responseMode ? { response_mode: responseMode } : {}),
    ...(prompt ? { prompt } : {}),
  }).toString();

  let next = url.href;
  let interactions = 0;
  for (let hop = 0; hop < 10; hop += 1) {
    const res = await request(jar, next);
    if (res.status === 302 || res.status === 303) {
      const location = new URL(res.headers.get('location'), next);
      await res.arrayBuffer();
      if (location.origin !== issuer) {
        assert.equal(`${location.origin}${location.pathname}`, REDIRECT_URI, 'redirect target');
        return {
          state, nonce, verifier, interactions, params: Object.fromEntries(location.searchParams),
        };
      }
      next = location.href;
      continue;
    }
    const html = await res.text();
    assert.equal(res.status < 500, true, `HTTP ${res.status} at ${next}: ${html}`);
    if (new URL(next).pathname.startsWith('/interaction/')) {
      // The login form: <form method="post" action="/interaction/:uid/login"> with input "login".
      assert.equal(res.status, 200, html);
      const action = /<form method="post" action="([^"]+\/login)">/.exec(html)?.[1];
      assert.ok(action, `no login form in ${html}`);
      assert.match(html, /<input type="text" name="login"/);
      interactions += 1;
      const target = new URL(abort ? action.replace(/\/login$/, '/abort') : action, issuer).href;
      const posted = await request(jar, target, { method: 'POST', form: abort ? {} : { login, password: '' } });
      assert.equal(posted.status, 303, `POST ${target}: HTTP ${posted.status} ${await posted.text()}`);
      next = new URL(posted.headers.get('location'), target).href;
      continue;
    }
    if (responseMode === 'form_post' && res.status === 200) {
      // <form method="post" action="REDIRECT_URI"> with hidden inputs, auto-submitted by script.
      const action = /<form method="post" action="([^"]+)">/.exec(html)?.[1];
      assert.equal(action, REDIRECT_URI);
      const params = {};
      for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/>/g)) {
        params[m[1]] = m[2].replace(/&quot;/g, '"').replace(/&#39;/g, "'")
          .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
      }
      return {
        state, nonce, verifier, interactions, params,
      };
    }
    throw new Error(`unexpected HTTP ${res.status} at ${next}: ${html}`);
  }
  throw new Error('too many redirects');
}

async function token(client, params) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  const body = new URLSearchParams(params);
  if (client.auth === 'basic') {
    const enc = (s) => encodeURIComponent(s).replace(/%20/g, '+');
    headers.authorization = `Basic ${Buffer.from(`${enc(client.id)}:${enc(client.secret)}`).toString('base64')}`;
  } else {
    body.set('client_id', client.id);
    body.set('client_secret', client.secret);
  }
  const res = await fetch(new URL('/token', issuer), { method: 'POST', headers, body: body.toString() });
  return { status: res.status, json: await res.json() };
}

const jwks = await (await fetch(new URL('/jwks', issuer))).json();

function verifyIdToken(idToken, { nonce, clientId, alg }) {
  const [h, p, s] = idToken.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const payload = JSON.parse(Buffer.from(p, 'base64url'));
  assert.equal(header.alg, alg);
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `kid ${header.kid} not in JWKS`);
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const valid = verify('sha256', Buffer.from(`${h}.${p}`), alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key, Buffer.from(s, 'base64url'));
  assert.ok(valid, 'id_token signature');
  assert.equal(payload.iss, issuer);
  assert.equal(payload.aud, clientId);
  assert.equal(payload.nonce, nonce);
  assert.ok(payload.exp > Date.now() / 1000);
  return payload;
}

async function userinfo(accessToken) {
  const res = await fetch(new URL('/me', issuer), { headers: { authorization: `Bearer ${accessToken}` } });
  return { status: res.status, json: res.status === 200 ? await res.json() : null, www: res.headers.get('www-authenticate') };
}

// --- the checks ---------------------------------------------------------------------------------

try {
  const discovery = await (await fetch(new URL('/.well-known/openid-configuration', issuer))).json();
  assert.equal(discovery.issuer, issuer);
  assert.equal(discovery.authorization_response_iss_parameter_supported, true);
  assert.deepEqual(discovery.code_challenge_methods_supported, ['S256']);
  for (const s of ['openid', 'email', 'profile', 'offline_access']) assert.ok(discovery.scopes_supported.includes(s));
  assert.ok(discovery.response_modes_supported.includes('form_post'));
  assert.equal(jwks.keys[0].alg, 'RS256');
  ok('discovery + JWKS (RS256 first, ES256 second)');

  // 1. code + PKCE, response_mode=query (the default for code), client_secret_basic, RS256.
  const jar = new CookieJar();
  const a = await authorize(jar);
  assert.equal(a.interactions, 1);
  assert.equal(a.params.state, a.state);
  assert.equal(a.params.iss, issuer, 'RFC 9207 iss in the authorization response');
  assert.ok(a.params.code);
  ok(`authorize (query): code, state, iss=${a.params.iss}`);

  const t = await token(CLIENT, {
    grant_type: 'authorization_code', code: a.params.code, redirect_uri: REDIRECT_URI, code_verifier: a.verifier,
  });
  assert.equal(t.status, 200, JSON.stringify(t.json));
  assert.equal(t.json.token_type, 'Bearer');
  assert.equal(t.json.expires_in, 2, 'ttl.AccessToken from the config');
  assert.ok(t.json.refresh_token, 'refresh token issued');
  const claims = verifyIdToken(t.json.id_token, { nonce: a.nonce, clientId: CLIENT.id, alg: 'RS256' });
  assert.equal(claims.sub, 'alice');
  assert.equal(claims.email, 'alice@example.test');
  ok(`token: access (expires_in ${t.json.expires_in}), refresh, id_token RS256 sub=${claims.sub} nonce ok`);

  const u = await userinfo(t.json.access_token);
  assert.equal(u.status, 200);
  assert.deepEqual(u.json, {
    sub: 'alice', email: 'alice@example.test', email_verified: true, name: 'Alice Example', picture: 'https://example.test/alice.png',
  });
  ok(`userinfo: ${JSON.stringify(u.json)}`);

  // 2. Same cookie jar: the provider session signs in silently (no interaction), then a wrong
  //    code_verifier is refused.
  const silent = await authorize(jar);
  assert.equal(silent.interactions, 0);
  const bad = await token(CLIENT, {
    grant_type: 'authorization_code', code: silent.params.code, redirect_uri: REDIRECT_URI, code_verifier: pkce().verifier,
  });
  assert.equal(bad.json.error, 'invalid_grant');
  ok('existing session: no interaction; wrong code_verifier: invalid_grant');

  const noPkce = await authorize(jar, { withPkce: false });
  assert.equal(noPkce.params.error, 'invalid_request');
  ok(`no code_challenge: error=invalid_request (${noPkce.params.error_description})`);

  // 3. Access token expiry (ttl.AccessToken = 2 s) and refresh.
  await sleep(3000);
  const expired = await userinfo(t.json.access_token);
  assert.equal(expired.status, 401);
  assert.match(expired.www, /invalid_token/);
  ok('after 3 s the access token is refused: 401 invalid_token');

  const r = await token(CLIENT, { grant_type: 'refresh_token', refresh_token: t.json.refresh_token });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.ok(r.json.access_token && r.json.access_token !== t.json.access_token);
  const u2 = await userinfo(r.json.access_token);
  assert.equal(u2.status, 200);
  assert.equal(u2.json.sub, 'alice');
  ok(`refresh_token grant: new access token works (refresh token ${r.json.refresh_token === t.json.refresh_token ? 'kept' : 'rotated'})`);

  // offline_access survives only with prompt=consent (OIDC Core 11); the login form covers the
  // consent too, so it is still one interaction.
  const consent = await authorize(new CookieJar(), { prompt: 'consent' });
  assert.equal(consent.interactions, 1);
  const t3 = await token(CLIENT, {
    grant_type: 'authorization_code', code: consent.params.code, redirect_uri: REDIRECT_URI, code_verifier: consent.verifier,
  });
  assert.equal(t3.status, 200, JSON.stringify(t3.json));
  assert.deepEqual(t3.json.scope.split(' ').sort(), ['email', 'offline_access', 'openid', 'profile']);
  assert.ok(t3.json.refresh_token);
  ok(`prompt=consent: one interaction, scope "${t3.json.scope}"`);

  // 4. Abort: error=access_denied back at the redirect URI.
  const denied = await authorize(new CookieJar(), { abort: true });
  assert.equal(denied.params.error, 'access_denied');
  assert.equal(denied.params.state, denied.state);
  assert.equal(denied.params.iss, issuer);
  assert.equal(denied.params.code, undefined);
  ok(`abort: error=access_denied (${denied.params.error_description}), state, iss`);

  // 5. response_mode=form_post, client_secret_post, ES256 id_token, email_verified false.
  const fp = await authorize(new CookieJar(), { client: CLIENT_ES256, login: 'bob', responseMode: 'form_post' });
  assert.equal(fp.params.state, fp.state);
  assert.equal(fp.params.iss, issuer);
  assert.ok(fp.params.code);
  ok('authorize (form_post): code, state, iss parsed from the auto-submit form');
  const t2 = await token(CLIENT_ES256, {
    grant_type: 'authorization_code', code: fp.params.code, redirect_uri: REDIRECT_URI, code_verifier: fp.verifier,
  });
  assert.equal(t2.status, 200, JSON.stringify(t2.json));
  const bob = verifyIdToken(t2.json.id_token, { nonce: fp.nonce, clientId: CLIENT_ES256.id, alg: 'ES256' });
  assert.equal(bob.sub, 'bob-7f3a');
  assert.equal(bob.email_verified, false);
  const u3 = await userinfo(t2.json.access_token);
  assert.equal(u3.json.email_verified, false);
  ok(`token (client_secret_post): id_token ES256 sub=${bob.sub} email_verified=${bob.email_verified}`);

  // A replayed code is refused, and (oidc-provider's revokeGrantPolicy) revokes the grant: the
  // tokens issued for that code stop working.
  const replay = await token(CLIENT_ES256, {
    grant_type: 'authorization_code', code: fp.params.code, redirect_uri: REDIRECT_URI, code_verifier: fp.verifier,
  });
  assert.equal(replay.json.error, 'invalid_grant');
  assert.equal((await userinfo(t2.json.access_token)).status, 401);
  ok('code replay: invalid_grant, and the grant\'s access token is revoked');

  // 6. An unknown account is refused by the login form (400), the interaction stays open.
  const j3 = new CookieJar();
  const start = await request(j3, `${issuer}/auth?${new URLSearchParams({
    client_id: CLIENT.id, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid', code_challenge: pkce().challenge, code_challenge_method: 'S256',
  })}`);
  const interactionUrl = new URL(start.headers.get('location'), issuer).href;
  const unknown = await request(j3, `${interactionUrl}/login`, { method: 'POST', form: { login: 'mallory' } });
  assert.equal(unknown.status, 400);
  ok(`unknown login: HTTP 400 "${(await unknown.text()).trim()}"`);
} catch (err) {
  console.error(`not ok - ${err.stack ?? err}`);
  child.kill('SIGTERM');
  await exited;
  process.exit(1);
}

// Closing stdin stops the provider, with exit code 0.
child.stdin.end();
const { code, signal } = await exited;
clearTimeout(watchdog);
assert.equal(code, 0, `provider exit code ${code} signal ${signal}`);
ok('stdin closed: provider exited 0');
console.log('smoke: all checks passed');
