/**
 * Tokens kept between kubectl runs, so the credential plugin answers from a
 * file instead of asking the issuer each time: one 0600 file per issuer and
 * client (or per demo identity) under ~/.cache/gatehouse/tokens (0700).
 * Imports only node built-ins: it is on the path of every kubectl call.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface CachedToken {
  /** The ID token (or the demo's access token): what the gateway verifies. */
  readonly token: string;
  /** Milliseconds since the epoch. */
  readonly expiresAt: number;
  readonly refreshToken?: string;
  readonly issuer: string;
  readonly clientId: string;
}

/** Used only while at least this long is left, so kubectl never sends a token that expires on the way. */
export const MIN_VALIDITY_MS = 60_000;

export function cacheDir(): string {
  const explicit = process.env['GATEHOUSE_CACHE_DIR'];
  if (explicit) return explicit;
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg || join(homedir(), '.cache'), 'gatehouse');
}

export function cacheKey(parts: readonly string[]): string {
  return createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 32);
}

function fileOf(key: string): string {
  return join(cacheDir(), 'tokens', `${key}.json`);
}

export function readCached(key: string): CachedToken | undefined {
  try {
    const t = JSON.parse(readFileSync(fileOf(key), 'utf8')) as CachedToken;
    return typeof t.token === 'string' && typeof t.expiresAt === 'number' ? t : undefined;
  } catch {
    return undefined;
  }
}

export function isFresh(t: CachedToken, now = Date.now()): boolean {
  return t.expiresAt - now > MIN_VALIDITY_MS;
}

export function writeCached(key: string, t: CachedToken): void {
  const file = fileOf(key);
  mkdirSync(join(cacheDir(), 'tokens'), { recursive: true, mode: 0o700 });
  // Each written beside and renamed: a kubectl run reading at the same moment sees the old file or the new one.
  const put = (path: string, data: string) => {
    writeFileSync(`${path}.${process.pid}.tmp`, data, { mode: 0o600 });
    renameSync(`${path}.${process.pid}.tmp`, path);
  };
  put(file, JSON.stringify(t));
  // What bin/gatehouse-token serves without starting Node: the answer first, then its expiry, so a
  // reader that sees the new expiry also sees the new answer.
  const base = file.replace(/\.json$/, '');
  put(`${base}.cred`, execCredential(t));
  put(`${base}.exp`, String(Math.floor(t.expiresAt / 1000)));
}

/** A person's login at an issuer, for a client. */
export function loginKey(issuer: string, clientId: string): string {
  return cacheKey(['login', issuer, clientId]);
}

/** A demo identity, as minted by one demo issuer. */
export function demoKey(issuer: string, user: string, groups: string, agent = '', onBehalfOf = ''): string {
  return cacheKey(['demo', issuer, user, groups, agent, onBehalfOf]);
}

/** What kubectl's exec credential plugin protocol expects on stdout. */
export function execCredential(t: CachedToken): string {
  return (
    JSON.stringify({
      apiVersion: 'client.authentication.k8s.io/v1',
      kind: 'ExecCredential',
      status: { token: t.token, expirationTimestamp: new Date(t.expiresAt).toISOString() },
    }) + '\n'
  );
}

/** The `exp` of a JWT, without verifying it (the gateway verifies; this only schedules a refresh). */
export function jwtExpiry(jwt: string): number | undefined {
  try {
    const exp = (JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
