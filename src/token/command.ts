/**
 * `gatehouse login` and `gatehouse token`: people log in once (authorization
 * code + PKCE with a loopback redirect, or the device flow), and kubectl's
 * exec credential plugin answers every later call from the cache, refreshing
 * with the refresh token when the ID token runs out. bin/gatehouse.js loads
 * this module alone for them, without the rest of the CLI: `gatehouse token`
 * runs before every kubectl request and must start fast.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { demoKey, execCredential, isFresh, loginKey, readCached, writeCached, type CachedToken } from './cache.js';
import { discover, OidcError, pkce, tokenGrant, type Discovery } from './oidc-client.js';
import { readIssuerFile } from '../demo/issuer-file.js';

const DEFAULT_SCOPES = 'openid email groups offline_access';

/** Who logs in where: the same three options for `login` and `token`, so one names the other's cache entry. */
const CLIENT_OPTIONS = {
  issuer: { type: 'string' },
  'client-id': { type: 'string' },
  'client-secret': { type: 'string' },
} as const;

function fail(message: string): number {
  process.stderr.write(`gatehouse: ${message}\n`);
  return 1;
}

export async function runTokenCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...CLIENT_OPTIONS,
      demo: { type: 'boolean', default: false },
      user: { type: 'string' },
      groups: { type: 'string', default: '' },
      agent: { type: 'string' },
      'on-behalf-of': { type: 'string' },
    },
  });
  if (values.demo) return demoToken(values);
  const issuer = values.issuer;
  const clientId = values['client-id'];
  if (!issuer || !clientId) return fail('usage: gatehouse token --issuer URL --client-id ID   (after gatehouse login with the same two)');
  const key = loginKey(issuer, clientId);
  const cached = readCached(key);
  if (cached && isFresh(cached)) {
    process.stdout.write(execCredential(cached));
    return 0;
  }
  if (!cached?.refreshToken) return fail(`no login for ${issuer} (client ${clientId}): run gatehouse login --issuer ${issuer} --client-id ${clientId}`);
  let next: CachedToken;
  try {
    next = await tokenGrant(await discover(issuer), clientId, { grant_type: 'refresh_token', refresh_token: cached.refreshToken }, values['client-secret']);
  } catch (err) {
    return fail(`the login for ${issuer} could not be refreshed (${(err as Error).message}): run gatehouse login --issuer ${issuer} --client-id ${clientId}`);
  }
  // Issuers may rotate the refresh token or keep it; keep the old one if none came back.
  const stored = { ...next, ...(next.refreshToken ? {} : { refreshToken: cached.refreshToken }) };
  writeCached(key, stored);
  process.stdout.write(execCredential(stored));
  return 0;
}

/** The demo's identities: minted by the demo issuer, then answered from the cache like a login. */
async function demoToken(v: { user?: string | undefined; groups: string; agent?: string | undefined; 'on-behalf-of'?: string | undefined }): Promise<number> {
  if (!v.user) return fail('usage: gatehouse token --demo --user NAME [--groups a,b] [--agent NAME --on-behalf-of PERSON]');
  const file = readIssuerFile();
  if ('missing' in file) return fail(file.missing);
  const key = demoKey(file.issuer, v.user, v.groups, v.agent, v['on-behalf-of']);
  let t = readCached(key);
  if (!t || !isFresh(t)) {
    // Only on a miss: the issuer module pulls in jose.
    const { mintToken } = await import('../demo/issuer.js');
    const minted = await mintToken(file, {
      user: v.user,
      groups: v.groups.split(',').filter(Boolean),
      ttlSeconds: 900,
      ...(v.agent ? { agent: v.agent } : {}),
      ...(v['on-behalf-of'] ? { onBehalfOf: v['on-behalf-of'] } : {}),
    });
    t = { token: minted.token, expiresAt: minted.expiresAt.getTime(), issuer: file.issuer, clientId: file.clientId };
    writeCached(key, t);
  }
  process.stdout.write(execCredential(t));
  return 0;
}

export async function runLoginCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...CLIENT_OPTIONS,
      scopes: { type: 'string', default: DEFAULT_SCOPES },
      device: { type: 'boolean', default: false },
      port: { type: 'string', default: '0' },
      'no-browser': { type: 'boolean', default: false },
    },
  });
  const issuer = values.issuer;
  const clientId = values['client-id'];
  if (!issuer || !clientId)
    return fail(
      'usage: gatehouse login --issuer URL --client-id ID [--client-secret S] [--scopes "openid email groups offline_access"] [--device] [--no-browser]',
    );
  let t: CachedToken;
  try {
    const d = await discover(issuer);
    t = values.device
      ? await deviceFlow(d, clientId, values.scopes, values['client-secret'])
      : await codeFlow(d, clientId, values.scopes, Number(values.port), !values['no-browser'], values['client-secret']);
  } catch (err) {
    return fail(`login failed: ${(err as Error).message}`);
  }
  writeCached(loginKey(issuer, clientId), t);
  const claims = JSON.parse(Buffer.from(t.token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { email?: string; sub?: string };
  process.stderr.write(
    `Logged in to ${issuer} as ${claims.email ?? claims.sub ?? '?'}; the token is valid until ${new Date(t.expiresAt).toISOString()}${t.refreshToken ? ' and is refreshed after that' : ''}.\n`,
  );
  return 0;
}

/** Authorization code + PKCE, the code delivered to a one-shot listener on loopback (RFC 8252). */
async function codeFlow(d: Discovery, clientId: string, scopes: string, port: number, openBrowser: boolean, clientSecret?: string): Promise<CachedToken> {
  const { verifier, challenge } = pkce();
  const state = randomBytes(16).toString('base64url');
  const nonce = randomBytes(16).toString('base64url');
  let redirectUri = '';
  const code = await new Promise<string>((resolve, reject) => {
    const server = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (u.pathname !== '/callback') {
        res.writeHead(404).end();
        return;
      }
      const error = u.searchParams.get('error');
      const ok = !error && u.searchParams.get('state') === state && u.searchParams.get('code');
      res.writeHead(ok ? 200 : 400, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(ok ? 'Logged in to Gatehouse. You can close this tab.\n' : 'The login did not complete; see the terminal.\n');
      server.close();
      clearTimeout(timer);
      if (error) reject(new Error(`the issuer answered ${error}: ${u.searchParams.get('error_description') ?? ''}`));
      // A callback with another state is not ours (a forged or stale link): refused.
      else if (!ok) reject(new Error('the callback carried no code or the wrong state'));
      else resolve(u.searchParams.get('code')!);
    });
    const timer = setTimeout(() => {
      server.close();
      reject(new Error('nobody completed the login within 5 minutes'));
    }, 300_000);
    server.listen(port, '127.0.0.1', () => {
      redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`;
      const url = new URL(d.authorization_endpoint);
      for (const [k, v] of Object.entries({
        response_type: 'code',
        client_id: clientId,
        redirect_uri: redirectUri,
        scope: scopes,
        state,
        nonce,
        code_challenge: challenge,
        code_challenge_method: 'S256',
        // offline_access (a refresh token) needs the person's consent each time it is asked for.
        ...(scopes.split(' ').includes('offline_access') ? { prompt: 'consent' } : {}),
      }))
        url.searchParams.set(k, v);
      process.stderr.write(`Open this URL to log in:\n\n  ${url.href}\n\n`);
      if (openBrowser) {
        const opener = process.platform === 'darwin' ? 'open' : 'xdg-open';
        spawn(opener, [url.href], { stdio: 'ignore', detached: true })
          .on('error', () => {})
          .unref();
      }
    });
  });
  const t = await tokenGrant(d, clientId, { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }, clientSecret);
  const claims = JSON.parse(Buffer.from(t.token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { nonce?: string };
  if (claims.nonce !== nonce) throw new Error('the ID token does not carry this login’s nonce');
  return t;
}

/** The device authorization grant (RFC 8628): for a terminal with no browser. */
async function deviceFlow(d: Discovery, clientId: string, scopes: string, clientSecret?: string): Promise<CachedToken> {
  if (!d.device_authorization_endpoint) throw new Error(`${d.issuer} does not offer the device flow; log in without --device`);
  const res = await fetch(d.device_authorization_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: clientId, scope: scopes, ...(clientSecret ? { client_secret: clientSecret } : {}) }),
    signal: AbortSignal.timeout(15_000),
  });
  const a = (await res.json()) as {
    device_code?: string;
    user_code?: string;
    verification_uri?: string;
    verification_uri_complete?: string;
    interval?: number;
    expires_in?: number;
  };
  if (!res.ok || !a.device_code) throw new Error(`${d.issuer} refused the device authorization (HTTP ${res.status})`);
  process.stderr.write(`Open ${a.verification_uri_complete ?? a.verification_uri} and enter the code ${a.user_code}\n`);
  let interval = (a.interval ?? 5) * 1000;
  const deadline = Date.now() + (a.expires_in ?? 600) * 1000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, interval));
    try {
      return await tokenGrant(d, clientId, { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: a.device_code }, clientSecret);
    } catch (err) {
      if (err instanceof OidcError && err.error === 'authorization_pending') continue;
      if (err instanceof OidcError && err.error === 'slow_down') {
        interval += 5000;
        continue;
      }
      throw err;
    }
  }
  throw new Error('the device code expired before anyone entered it');
}
