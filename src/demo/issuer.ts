/**
 * The demo's OpenID provider: the real `oidc-provider`, on loopback, signing
 * JWT access tokens (audience "gatehouse") with a key it publishes at /jwks.
 * A client-credentials client mints tokens for any demo user: a development
 * issuer only, bound to 127.0.0.1, its secret in a 0600 file. A second,
 * public client ("gatehouse", authorization code + PKCE) logs people in to the
 * approvals page through oidc-provider's development login form: the login is
 * a demo person's name (alice, bob, carol, dave), any password.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import { PEOPLE } from '../testbed/world.js';
import { readIssuerFile, type IssuerFile } from './issuer-file.js';

export const DEMO_AUDIENCE = 'gatehouse';
/** `gatehouse login`'s client: public, PKCE, a loopback redirect on any port, refresh tokens, the device flow. */
export const DEMO_CLI_CLIENT = 'gatehouse-cli';
const RESOURCE = 'urn:gatehouse';
const CLIENT_ID = 'gatehouse-demo-minter';

export interface DemoIssuer {
  readonly issuer: string;
  /** Requests to the token endpoint so far (tests: a cached credential asks nothing). */
  tokenRequests(): number;
  close(): Promise<void>;
}

export type { IssuerFile } from './issuer-file.js';

export interface TokenRequest {
  readonly user: string;
  readonly groups: readonly string[];
  readonly agent?: string;
  readonly onBehalfOf?: string;
  readonly ttlSeconds?: number;
}

/** Lifetime asked for by the minting request, between 1 s and 1 h (default 10 min). */
function requestedTtl(ctx: { oidc: { body?: unknown } }): number {
  const ttl = Number((ctx.oidc.body as Record<string, string> | undefined)?.['ttl_seconds'] ?? 600);
  return Number.isFinite(ttl) ? Math.min(Math.max(Math.round(ttl), 1), 3600) : 600;
}

/** The demo person a development login names: "carol" or "carol@example.com". */
function demoPerson(login: string): { user: string; groups: readonly string[] } | undefined {
  const name = login.toLowerCase().replace(/@example\.com$/, '');
  return name === 'agent' ? undefined : (PEOPLE as Record<string, { user: string; groups: readonly string[] }>)[name];
}

export async function startDemoIssuer(port: number, secretFile: string, webRedirectUris: readonly string[] = []): Promise<DemoIssuer> {
  const issuer = `http://127.0.0.1:${port}`;
  const clientSecret = randomBytes(32).toString('base64url');
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: `demo-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };
  // Imported here, not at the top: `gatehouse demo token` (kubectl's exec plugin) only needs mintToken.
  const { default: Provider } = await import('oidc-provider');
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: clientSecret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_post',
      },
      // The approvals page: its ID tokens' audience is the gateway's, so the gateway verifies them like bearer tokens.
      {
        client_id: DEMO_AUDIENCE,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: [...webRedirectUris],
        token_endpoint_auth_method: 'none',
      },
      {
        client_id: DEMO_CLI_CLIENT,
        application_type: 'native',
        grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
        response_types: ['code'],
        // RFC 8252 §7.3: a native client's loopback redirect matches on any port.
        redirect_uris: ['http://127.0.0.1/callback'],
        token_endpoint_auth_method: 'none',
      },
    ],
    jwks: { keys: [jwk] },
    claims: { openid: ['sub'], email: ['email'], groups: ['groups'] },
    // The page reads who logged in from the ID token alone.
    conformIdTokenClaims: false,
    async findAccount(_ctx, id) {
      const person = demoPerson(id);
      if (!person) return undefined;
      return { accountId: id, claims: () => ({ sub: id, email: person.user, groups: [...person.groups] }) };
    },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      deviceFlow: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx) => ({
          scope: 'kubernetes',
          audience: DEMO_AUDIENCE,
          accessTokenTTL: requestedTtl(ctx),
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    // Client-credentials tokens take their lifetime from here, not from the resource server.
    ttl: { ClientCredentials: (ctx) => requestedTtl(ctx) },
    // Who the token is for comes from the minting request (dev issuer only).
    async extraTokenClaims(ctx) {
      const body = (ctx.oidc.body ?? {}) as Record<string, string>;
      const claims: Record<string, unknown> = { email: body['gatehouse_user'], groups: (body['gatehouse_groups'] ?? '').split(',').filter(Boolean) };
      if (body['gatehouse_agent']) {
        claims['agent'] = body['gatehouse_agent'];
        if (body['gatehouse_on_behalf_of']) claims['on_behalf_of'] = body['gatehouse_on_behalf_of'];
        claims['sid'] = randomBytes(8).toString('hex');
      }
      return claims;
    },
  });
  let tokenRequests = 0;
  provider.use(async (ctx, next) => {
    if (ctx.method === 'POST' && ctx.path === '/token') tokenRequests++;
    await next();
  });
  const server: Server = await new Promise((resolve) => {
    const s = provider.listen(port, '127.0.0.1', () => resolve(s));
  });
  const file: IssuerFile = { issuer, clientId: CLIENT_ID, clientSecret };
  writeFileSync(secretFile, JSON.stringify(file) + '\n', { mode: 0o600 });
  return {
    issuer,
    tokenRequests: () => tokenRequests,
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        // Idle keep-alive connections (the gateway's JWKS fetches) would hold close() open.
        server.closeAllConnections();
      }),
  };
}

/** Asks the demo issuer's token endpoint for a token, as `gatehouse demo token` does. */
export async function mintToken(file: IssuerFile, req: TokenRequest): Promise<{ token: string; expiresAt: Date }> {
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: file.clientId,
    client_secret: file.clientSecret,
    scope: 'kubernetes',
    gatehouse_user: req.user,
    gatehouse_groups: req.groups.join(','),
    ttl_seconds: String(req.ttlSeconds ?? 600),
    ...(req.agent ? { gatehouse_agent: req.agent } : {}),
    ...(req.onBehalfOf ? { gatehouse_on_behalf_of: req.onBehalfOf } : {}),
  });
  const res = await fetch(`${file.issuer}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
  const body = (await res.json()) as { access_token?: string; expires_in?: number; error?: string; error_description?: string };
  if (!res.ok || !body.access_token)
    throw new Error(`the demo issuer refused to mint a token: ${body.error ?? res.status} ${body.error_description ?? ''}`.trim());
  return { token: body.access_token, expiresAt: new Date(Date.now() + (body.expires_in ?? 600) * 1000) };
}

/** A token from the issuer of the demo running in `dir` (tests and benchmarks); throws when none runs there. */
export async function mintDemoToken(dir: string, req: TokenRequest): Promise<string> {
  const file = readIssuerFile(dir);
  if ('missing' in file) throw new Error(file.missing);
  return (await mintToken(file, req)).token;
}
