/**
 * Logging in to the gateway's pages: OpenID Connect authorization code + PKCE
 * (openid-client) against a configured issuer; the ID token is then verified by
 * the gateway's own authenticator, exactly like a bearer token, so a web
 * approver is the same identity as on the CLI. A login is a sealed `__Host-`
 * cookie (Secure, HttpOnly, SameSite=Lax; web/seal.ts) holding the identity, a
 * CSRF token for its forms and an expiry; the login round trip's PKCE verifier,
 * state and nonce ride in a sealed cookie too. Nothing is kept in the process:
 * replicas sharing `approvals.web.cookieKeyFile` serve each other's logins.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { seal, unseal } from './seal.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type * as Oidc from 'openid-client';
import { GatehouseError } from '../errors.js';
import type { Identity } from '../identity/identity.js';

const SESSION_COOKIE = '__Host-gatehouse-session';
const LOGIN_COOKIE = '__Host-gatehouse-login';
const LOGIN_TTL_MS = 10 * 60 * 1000;
/** Browsers keep cookies up to 4096 bytes, name and attributes included. */
const MAX_COOKIE_VALUE = 3800;

export interface WebOptions {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret?: string;
  readonly sessionMinutes: number;
  /** The gateway's URL as browsers reach it; the redirect URI is under it. */
  readonly publicUrl: string;
  /** The sealed cookies' key (web/seal.ts sealKey): the same on every replica. */
  readonly cookieKey: Buffer;
}

export interface Session {
  readonly identity: Identity;
  readonly csrf: string;
  readonly expiresAt: number;
}

interface PendingLogin {
  readonly verifier: string;
  readonly state: string;
  readonly nonce: string;
  readonly returnTo: string;
  readonly expiresAt: number;
}

function cookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

function cookie(name: string, value: string, maxAgeSeconds: number): string {
  return `${name}=${value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=${maxAgeSeconds}`;
}

export function redirect(res: ServerResponse, location: string, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(303, { location, 'cache-control': 'no-store', ...headers });
  res.end();
}

/**
 * openid-client, loaded with the first login: a gateway whose approvers never log in on the web
 * keeps it out of its heap (with jsdiff, ~1.5 MiB of RSS; bench/README.md, thirteenth session).
 */
const openidClient = (): Promise<typeof Oidc> => import('openid-client');

export function createLogin(deps: { readonly verify: (idToken: string) => Promise<Identity>; readonly options: WebOptions; readonly now: () => number }) {
  const { options, now } = deps;
  const { cookieKey } = options;
  const redirectUri = `${options.publicUrl}/gatehouse/callback`;
  const origin = new URL(options.publicUrl).origin;
  let config: Promise<Oidc.Configuration> | undefined;

  function discover(): Promise<Oidc.Configuration> {
    // Discovered on first use, and again after a failure: the issuer may start after the gateway.
    config ??= openidClient()
      .then((oidc) =>
        oidc.discovery(
          new URL(options.issuer),
          options.clientId,
          options.clientSecret,
          options.clientSecret ? oidc.ClientSecretPost(options.clientSecret) : oidc.None(),
          // eslint-disable-next-line @typescript-eslint/no-deprecated -- the demo issuer serves plain HTTP on loopback; openid-client marks this escape hatch deprecated so that it stands out, and it is used only for http: issuers
          new URL(options.issuer).protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : undefined,
        ),
      )
      .catch((err: unknown) => {
        config = undefined;
        throw err;
      });
    return config;
  }

  function sessionOf(req: IncomingMessage): Session | undefined {
    return unseal(cookieKey, 'session', cookies(req).get(SESSION_COOKIE) ?? '', now()) as Session | undefined;
  }

  function sameString(a: string, b: string): boolean {
    const x = Buffer.from(a);
    const y = Buffer.from(b);
    return x.length === y.length && timingSafeEqual(x, y);
  }

  /** A form post must come from our own page: same origin (when the browser says) and the session's CSRF token. */
  function checkForm(req: IncomingMessage, session: Session, form: URLSearchParams): void {
    const o = req.headers.origin;
    if (o !== undefined && o !== origin) throw new GatehouseError('GATEHOUSE_DENIED', 'this form was posted from another site');
    if (!sameString(form.get('csrf') ?? '', session.csrf)) throw new GatehouseError('GATEHOUSE_DENIED', 'the form has expired; reload the page and try again');
  }

  async function login(res: ServerResponse, returnTo: string): Promise<void> {
    const cfg = await discover();
    const oidc = await openidClient();
    const pending: PendingLogin = {
      verifier: oidc.randomPKCECodeVerifier(),
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      returnTo,
      expiresAt: now() + LOGIN_TTL_MS,
    };
    const url = oidc.buildAuthorizationUrl(cfg, {
      redirect_uri: redirectUri,
      scope: 'openid email groups',
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
    });
    redirect(res, url.href, { 'set-cookie': cookie(LOGIN_COOKIE, seal(cookieKey, 'login', pending), LOGIN_TTL_MS / 1000) });
  }

  async function callback(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    // The code is single-use at the issuer, and the state binds it to this cookie: a replayed
    // callback fails at the token endpoint.
    const pending = unseal(cookieKey, 'login', cookies(req).get(LOGIN_COOKIE) ?? '', now()) as PendingLogin | undefined;
    if (!pending) throw new GatehouseError('GATEHOUSE_UNAUTHENTICATED', 'this login is unknown or took too long; start again at /gatehouse/approvals');
    const cfg = await discover();
    const oidc = await openidClient();
    const current = new URL(redirectUri);
    current.search = url.search;
    let idToken: string | undefined;
    try {
      const tokens = await oidc.authorizationCodeGrant(cfg, current, {
        pkceCodeVerifier: pending.verifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
      idToken = tokens.id_token;
    } catch (err) {
      throw new GatehouseError('GATEHOUSE_UNAUTHENTICATED', `the login failed: ${(err as Error).message}`);
    }
    if (!idToken) throw new GatehouseError('GATEHOUSE_UNAUTHENTICATED', 'the issuer returned no ID token');
    const identity = await deps.verify(idToken);
    const session: Session = { identity, csrf: randomBytes(24).toString('base64url'), expiresAt: now() + options.sessionMinutes * 60_000 };
    let sealed = seal(cookieKey, 'session', session);
    // A token with many claims may not fit a cookie: the pages need who and which groups, not every claim.
    const slim: Session = { ...session, identity: { ...identity, claims: {} } };
    if (sealed.length > MAX_COOKIE_VALUE) sealed = seal(cookieKey, 'session', slim);
    if (sealed.length > MAX_COOKIE_VALUE)
      throw new GatehouseError('GATEHOUSE_BAD_REQUEST', 'this identity (its groups) is too large for a browser cookie; use the CLI');
    redirect(res, pending.returnTo, { 'set-cookie': [cookie(SESSION_COOKIE, sealed, options.sessionMinutes * 60), cookie(LOGIN_COOKIE, '', 0)] });
  }

  /**
   * Ends the session of a logged-in form post (checked like any form) by clearing its cookie in the
   * browser. A sealed cookie copied before cannot be revoked: it lasts until its expiry
   * (approvals.web.sessionMinutes), as the threat model says.
   */
  function logout(req: IncomingMessage, session: Session | undefined, form: URLSearchParams): string {
    if (session) checkForm(req, session, form);
    return cookie(SESSION_COOKIE, '', 0);
  }

  return { sessionOf, checkForm, login, callback, logout };
}

export type Login = ReturnType<typeof createLogin>;
