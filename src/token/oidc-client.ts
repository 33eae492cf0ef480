/**
 * The few OpenID Connect client calls `gatehouse login` and `gatehouse token`
 * make: discovery, the authorization code exchange with PKCE, the refresh
 * grant, and the device authorization grant. Plain fetch, no client library:
 * this is on the credential plugin's path.
 */
import { createHash, randomBytes } from 'node:crypto';
import { jwtExpiry, type CachedToken } from './cache.js';

export interface Discovery {
  readonly issuer: string;
  readonly authorization_endpoint: string;
  readonly token_endpoint: string;
  readonly device_authorization_endpoint?: string;
}

export async function discover(issuer: string): Promise<Discovery> {
  const res = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`${issuer} has no OpenID configuration (HTTP ${res.status})`);
  const d = (await res.json()) as Discovery;
  // A configuration that names another issuer could send the code to someone else's endpoints.
  if (d.issuer !== issuer) throw new Error(`${issuer} describes itself as issuer ${JSON.stringify(d.issuer)}`);
  return d;
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

interface TokenAnswer {
  readonly id_token?: string;
  readonly refresh_token?: string;
  readonly expires_in?: number;
  readonly error?: string;
  readonly error_description?: string;
}

export class OidcError extends Error {
  constructor(
    message: string,
    readonly error?: string,
  ) {
    super(message);
  }
}

/** POSTs a grant to the token endpoint; the ID token is the credential (its audience is the client, as the gateway expects). */
export async function tokenGrant(d: Discovery, clientId: string, form: Record<string, string>, clientSecret?: string): Promise<CachedToken> {
  const res = await fetch(d.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ client_id: clientId, ...(clientSecret ? { client_secret: clientSecret } : {}), ...form }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await res.json().catch(() => ({}))) as TokenAnswer;
  if (!res.ok || !body.id_token)
    throw new OidcError(
      `${d.issuer} refused the ${form['grant_type']} grant: ${body.error ?? `HTTP ${res.status}`} ${body.error_description ?? ''}`.trim(),
      body.error,
    );
  const expiresAt = jwtExpiry(body.id_token) ?? Date.now() + (body.expires_in ?? 300) * 1000;
  return { token: body.id_token, expiresAt, ...(body.refresh_token ? { refreshToken: body.refresh_token } : {}), issuer: d.issuer, clientId };
}
