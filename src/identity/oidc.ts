/**
 * OIDC bearer tokens → Identity, with jose. Each check is one guard with one
 * message; the token itself never appears in a message or a log.
 */
import { hash } from 'node:crypto';
import { createRemoteJWKSet, decodeJwt, errors, jwtVerify, type JWTPayload } from 'jose';
import { GatehouseError } from '../errors.js';
import type { Identity } from './identity.js';

export interface AgentClaims {
  /** Claim whose presence marks an agent; its value is the agent's name. */
  readonly claim: string;
  readonly onBehalfOfClaim: string;
  readonly sessionClaim: string;
  readonly usernamePrefix: string;
}

export interface IssuerConfig {
  readonly issuer: string;
  readonly jwksUri?: string;
  readonly audiences: readonly string[];
  readonly usernameClaim: string;
  readonly usernamePrefix: string;
  readonly groupsClaim: string;
  readonly groupsPrefix: string;
  readonly algorithms: readonly string[];
  readonly clockSkewSeconds: number;
  readonly maxTokenBytes: number;
  readonly jwksCooldownSeconds: number;
  readonly agent?: AgentClaims;
}

/** Only asymmetric algorithms: with a public JWKS, HMAC would let anyone sign (CVE-2015-9235 class). */
export const ASYMMETRIC_ALGORITHMS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']);

export interface Authenticator {
  authenticate(token: string): Promise<Identity>;
  /** Signature verifications, cache hits and refused tokens so far (for metrics and tests). */
  readonly stats: { readonly verified: number; readonly cached: number; readonly failed: number };
}

function unauthenticated(message: string): GatehouseError {
  return new GatehouseError('GATEHOUSE_UNAUTHENTICATED', message);
}

/** Why jose refused a token, in words a caller can act on. */
function explain(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'the token has expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return 'the token is not valid yet (nbf)';
    if (err.claim === 'iss') return 'the token was issued by an issuer this gateway does not trust';
    if (err.claim === 'aud') return 'the token is not meant for this gateway (aud)';
    return `the token's ${err.claim} claim is invalid`;
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'the token is signed with an algorithm this gateway does not accept';
  if (err instanceof errors.JWKSNoMatchingKey) return "no key of the issuer matches the token's signature key";
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'the token signature is invalid';
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JOSEError) return `the token could not be verified (${err.code})`;
  return 'the token could not be verified';
}

function claimAt(payload: JWTPayload, path: string): unknown {
  let v: unknown = payload;
  for (const key of path.split('.')) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

// Header values of the upstream request are built from these: printable ASCII only.
const HEADER_SAFE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

function checkName(value: string, what: string): string {
  if (!HEADER_SAFE.test(value) || value.length > 256) throw unauthenticated(`the token's ${what} is not a usable name`);
  if (value.startsWith('system:')) throw unauthenticated(`the token's ${what} "${value}" is reserved: system: names cannot come from a token`);
  return value;
}

/**
 * Verified tokens are remembered briefly: verifying an RS256 token cost ~95 µs
 * per request (measured in this repo; the added-latency goal is 500 µs), and a
 * kubectl session sends the same token many times. An entry lives until the
 * token's exp (plus the allowed skew) but at most CACHE_TTL_MS; with the JWKS
 * itself refreshed every JWKS_MAX_AGE_MS, a key taken out of the JWKS stops
 * being honoured within about two minutes. Keyed by SHA-256: the token itself
 * is not kept. Failures are never cached.
 */
const CACHE_TTL_MS = 60_000;
const CACHE_MAX = 10_000;
const JWKS_MAX_AGE_MS = 60_000;

export function createOidcAuthenticator(issuers: readonly IssuerConfig[], now: () => number = Date.now): Authenticator {
  const verified = new Map<string, { identity: Identity; until: number }>();
  const stats = { verified: 0, cached: 0, failed: 0 };
  const byIssuer = new Map(
    issuers.map((cfg) => {
      if (!cfg.jwksUri) throw new TypeError(`issuer ${cfg.issuer}: resolve jwksUri with discoverJwksUri() before creating the authenticator`);
      const jwksUri = cfg.jwksUri;
      // jose caches keys and refetches when a token names an unknown kid, at most once per cooldown.
      const jwks = createRemoteJWKSet(new URL(jwksUri), {
        cooldownDuration: cfg.jwksCooldownSeconds * 1000,
        cacheMaxAge: JWKS_MAX_AGE_MS,
        timeoutDuration: 5000,
      });
      return [cfg.issuer, { cfg, jwks }] as const;
    }),
  );

  return {
    stats,
    async authenticate(token) {
      try {
        return await verify(token);
      } catch (err) {
        stats.failed++;
        throw err;
      }
    },
  };

  async function verify(token: string): Promise<Identity> {
    const max = Math.max(...issuers.map((i) => i.maxTokenBytes));
    if (Buffer.byteLength(token) > max) throw unauthenticated(`the token is larger than ${max} bytes`);
    const key = hash('sha256', token);
    const hit = verified.get(key);
    if (hit) {
      if (hit.until > now()) {
        stats.cached++;
        return hit.identity;
      }
      verified.delete(key);
    }
    let unverified: JWTPayload;
    try {
      unverified = decodeJwt(token);
    } catch {
      throw unauthenticated('the bearer token is not a JWT');
    }
    // Only to pick the verifier: the iss claim is verified again, exactly, by jwtVerify.
    const entry = typeof unverified.iss === 'string' ? byIssuer.get(unverified.iss) : undefined;
    if (!entry) throw unauthenticated('the token was issued by an issuer this gateway does not trust');
    const { cfg, jwks } = entry;
    if (Buffer.byteLength(token) > cfg.maxTokenBytes) throw unauthenticated(`the token is larger than ${cfg.maxTokenBytes} bytes`);

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: cfg.issuer,
        audience: [...cfg.audiences],
        algorithms: [...cfg.algorithms],
        clockTolerance: cfg.clockSkewSeconds,
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      throw unauthenticated(explain(err));
    }
    stats.verified++;
    const identity = toIdentity(payload, cfg);
    const until = Math.min(now() + CACHE_TTL_MS, ((payload.exp ?? 0) + cfg.clockSkewSeconds) * 1000);
    if (verified.size >= CACHE_MAX) verified.delete(verified.keys().next().value!);
    verified.set(key, { identity, until });
    return identity;
  }
}

/** Maps verified claims to the identity the policy sees and the API server is asked as. */
export function toIdentity(payload: JWTPayload, cfg: IssuerConfig): Identity {
  const agentName = cfg.agent ? claimAt(payload, cfg.agent.claim) : undefined;
  let username: string;
  let agent: Identity['agent'] = null;
  if (cfg.agent && agentName !== undefined) {
    if (typeof agentName !== 'string' || agentName === '') throw unauthenticated(`the token's ${cfg.agent.claim} claim must be the agent's name`);
    const onBehalfOf = claimAt(payload, cfg.agent.onBehalfOfClaim);
    const session = claimAt(payload, cfg.agent.sessionClaim);
    agent = {
      name: checkName(agentName, 'agent name'),
      onBehalfOf: typeof onBehalfOf === 'string' && onBehalfOf !== '' ? checkName(onBehalfOf, 'on-behalf-of claim') : null,
      session: typeof session === 'string' && session !== '' ? checkName(session, 'session claim') : null,
    };
    username = checkName(cfg.agent.usernamePrefix + agentName, 'agent name');
  } else {
    const claim = claimAt(payload, cfg.usernameClaim);
    if (typeof claim !== 'string' || claim === '') throw unauthenticated(`the token has no ${cfg.usernameClaim} claim to name the user`);
    username = checkName(cfg.usernamePrefix + claim, 'username');
  }
  const rawGroups = claimAt(payload, cfg.groupsClaim);
  const groupList = rawGroups === undefined ? [] : typeof rawGroups === 'string' ? [rawGroups] : rawGroups;
  if (!Array.isArray(groupList) || !groupList.every((g) => typeof g === 'string'))
    throw unauthenticated(`the token's ${cfg.groupsClaim} claim must be a list of strings`);
  const groups = [...new Set(groupList.map((g: string) => checkName(cfg.groupsPrefix + g, 'group')))];
  return {
    username,
    uid: '',
    groups: [...groups, 'system:authenticated'],
    extra: {},
    claims: { ...payload },
    agent,
  };
}

/**
 * The issuer's jwks_uri from its discovery document, fetched once at start-up
 * (OpenID Connect Discovery 1.0 §4). The document must name the issuer exactly.
 */
export async function discoverJwksUri(issuer: string, fetchImpl: typeof fetch = fetch): Promise<string> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  let doc: { issuer?: unknown; jwks_uri?: unknown };
  try {
    const res = await fetchImpl(url, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    doc = (await res.json()) as typeof doc;
  } catch (err) {
    throw new IssuerDiscoveryError(`identity.issuers: cannot read ${url} (${(err as Error).message}): check the issuer URL, or set jwksUri`);
  }
  if (doc.issuer !== issuer)
    throw new IssuerDiscoveryError(
      `identity.issuers: ${url} names issuer ${JSON.stringify(doc.issuer)}, not ${JSON.stringify(issuer)}: the issuer URL must match exactly`,
    );
  if (typeof doc.jwks_uri !== 'string') throw new IssuerDiscoveryError(`identity.issuers: ${url} has no jwks_uri: set jwksUri`);
  return doc.jwks_uri;
}

export class IssuerDiscoveryError extends Error {
  readonly code = 'GATEHOUSE_ISSUER_DISCOVERY';
}
