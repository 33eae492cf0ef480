/**
 * Credentials that arrived where they should not (a token in the query string,
 * a JWT in an exec command or a path) must not be written down: an audit
 * record is read by a SIEM, a log pipeline and people, and whoever reads a
 * token can replay it. The gateway never accepts a token from the URL; it only
 * has to make sure that what it records of such a request is harmless.
 */

import { setMember } from '../members.js';

export const CREDENTIAL_MARKER = 'GATEHOUSE+CREDENTIAL+REMOVED';

/**
 * Query parameters that carry credentials by convention: OAuth 2.0 (RFC 6750 §2.3
 * access_token; RFC 6749 client_secret, refresh_token, code), OpenID Connect
 * (id_token), and what scripts and clients invent. Compared case-insensitively.
 */
const CREDENTIAL_PARAMS = new Set([
  'access_token',
  'accesstoken',
  'api_key',
  'apikey',
  'auth',
  'authorization',
  'bearer',
  'client_secret',
  'code',
  'id_token',
  'jwt',
  'password',
  'passwd',
  'refresh_token',
  'secret',
  'session_token',
  'token',
]);

/**
 * A JWS or JWE in compact form: base64url segments separated by dots, the first
 * one a JSON object (`{"` encodes as `eyJ`, `{ "` as `eyA`/`eyAi`…, hence `ey`).
 * Segments of 8+ characters keep dotted Kubernetes names (`a.b.c`) out of it.
 */
const JWT = /ey[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)?/g;

export function isCredentialParam(name: string): boolean {
  return CREDENTIAL_PARAMS.has(name.toLowerCase());
}

/** The name of the first query parameter of a request URI that carries a credential by convention. */
export function credentialParamIn(uri: string): string | undefined {
  const q = uri.indexOf('?');
  if (q < 0) return undefined;
  for (const pair of uri.slice(q + 1).split('&')) {
    const name = decodeLenient(rawName(pair));
    if (isCredentialParam(name)) return name;
  }
  return undefined;
}

/** Any JWT-shaped run inside free text (a command, a path, a whole record line) becomes the marker. */
export function scrubText(text: string): string {
  return text.includes('ey') ? text.replace(JWT, CREDENTIAL_MARKER) : text;
}

/**
 * A request URI as it may be recorded: values of credential parameters become
 * the marker (the name stays, so the record says what was tried), and JWT-shaped
 * runs anywhere in it too. The raw query is rewritten textually, pair by pair,
 * so everything else stays byte for byte what the client sent.
 */
export function scrubUri(uri: string): string {
  const q = uri.indexOf('?');
  if (q < 0) return scrubText(uri);
  const pairs = uri
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const name = rawName(pair);
      // A name with no value carries nothing to scrub.
      return name !== pair && isCredentialParam(decodeLenient(name)) ? `${name}=${CREDENTIAL_MARKER}` : pair;
    });
  return scrubText(`${uri.slice(0, q)}?${pairs.join('&')}`);
}

/** A parsed query (name → values) as it may be recorded, by the same rules as scrubUri. */
export function scrubQuery(query: Readonly<Record<string, readonly string[]>>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  // A parameter named __proto__ is recorded like any other, not made out's prototype.
  for (const [name, values] of Object.entries(query))
    setMember(out, name, isCredentialParam(name) ? values.map(() => CREDENTIAL_MARKER) : values.map(scrubText));
  return out;
}

/** A query pair's name as sent (`name=value`, or a bare `name`). */
function rawName(pair: string): string {
  const eq = pair.indexOf('=');
  return eq < 0 ? pair : pair.slice(0, eq);
}

function decodeLenient(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}
