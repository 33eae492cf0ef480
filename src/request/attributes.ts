/**
 * HTTP request → Kubernetes request attributes, following kube-apiserver's
 * RequestInfoFactory (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go)
 * rule by rule, so the policy decides on what the API server will act on.
 *
 * Paths are rejected, not normalized, when they could mean two things: an
 * encoded slash, an empty or dot segment, a malformed escape. Everything else is
 * percent-decoded (Go's server decodes `%73ecrets` to `secrets` before routing),
 * and the path forwarded upstream is the canonical encoding of exactly what the
 * policy saw.
 */
import { GatehouseError } from '../errors.js';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection' | 'proxy';

export interface ResourceAttributes {
  readonly verb: Verb;
  readonly group: string;
  readonly version: string;
  readonly resource: string;
  readonly subresource: string;
  readonly namespace: string;
  readonly name: string;
  /** What follows resource/name/subresource (pods/proxy, services/proxy, nodes/proxy), uninterpreted. */
  readonly trailingPath: string;
}

export interface NonResourceAttributes {
  readonly verb: string;
  readonly path: string;
}

export type Query = Readonly<Record<string, readonly string[]>>;

export type RequestTarget =
  | { readonly kind: 'resource'; readonly attributes: ResourceAttributes; readonly path: string; readonly query: Query; readonly search: string }
  | { readonly kind: 'nonResource'; readonly attributes: NonResourceAttributes; readonly path: string; readonly query: Query; readonly search: string };

const METHOD_VERBS: Readonly<Record<string, Verb>> = { POST: 'create', GET: 'get', HEAD: 'get', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };
const SPECIAL_VERBS = new Set(['proxy', 'watch']);
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

// RFC 3986 pchar minus percent: left as-is when re-encoding a decoded segment.
const PCHAR = /^[A-Za-z0-9\-._~!$&'()*+,;=:@]*$/;

function bad(message: string): GatehouseError {
  return new GatehouseError('GATEHOUSE_BAD_REQUEST', message);
}

/** Splits and decodes a raw request path; throws on anything ambiguous. */
export function decodePath(rawPath: string): string[] {
  if (!rawPath.startsWith('/')) throw bad('the request path must start with "/"');
  if (rawPath === '/') return [];
  const raw = rawPath.slice(1).split('/');
  // kube-apiserver trims one trailing slash ("/api/v1/pods/" is "/api/v1/pods").
  if (raw.length > 1 && raw[raw.length - 1] === '') raw.pop();
  return raw.map((segment) => {
    if (/%2f/i.test(segment)) throw bad('the request path contains an encoded slash (%2F), which proxies and the API server may read differently');
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw bad('the request path contains a malformed percent-escape');
    }
    if (decoded === '') throw bad('the request path contains an empty segment ("//")');
    if (decoded === '.' || decoded === '..') throw bad('the request path contains a dot segment ("." or "..")');

    if (/[\u0000-\u001f\u007f]/.test(decoded)) throw bad('the request path contains a control character');
    return decoded;
  });
}

export function encodePath(segments: readonly string[]): string {
  return '/' + segments.map((s) => (PCHAR.test(s) ? s : encodeURIComponent(s))).join('/');
}

/**
 * Parses a query string the way Go's url.ParseQuery does for well-formed input,
 * and rejects what Go would drop or split differently (';' separators, bad escapes).
 */
export function parseQuery(search: string): { query: Query; canonical: string } {
  const s = search.startsWith('?') ? search.slice(1) : search;
  const query = Object.create(null) as Record<string, string[]>;
  const pairs: [string, string][] = [];
  if (s !== '') {
    for (const part of s.split('&')) {
      if (part === '') continue;
      if (part.includes(';')) throw bad('the query string contains ";", which servers split differently');
      const eq = part.indexOf('=');
      const [k, v] = eq < 0 ? [part, ''] : [part.slice(0, eq), part.slice(eq + 1)];
      let key: string;
      let value: string;
      try {
        key = decodeURIComponent(k.replace(/\+/g, ' '));
        value = decodeURIComponent(v.replace(/\+/g, ' '));
      } catch {
        throw bad('the query string contains a malformed percent-escape');
      }
      (query[key] ??= []).push(value);
      pairs.push([key, value]);
    }
  }
  const canonical = pairs.length === 0 ? '' : '?' + new URLSearchParams(pairs).toString();
  return { query, canonical };
}

/** Go's Convert_Slice_string_To_bool: absent is false; "false"/"0" (any case) is false; anything else, even "", is true. */
function queryBool(query: Query, key: string): boolean {
  const v = query[key];
  if (!v || v.length === 0) return false;
  const first = v[0]!.toLowerCase();
  return first !== 'false' && first !== '0';
}

/**
 * fields.Selector.RequiresExactMatch("metadata.name"): the value of a
 * `metadata.name=X` or `metadata.name==X` term, honouring the selector's
 * backslash escapes. Undefined when absent or unparseable.
 */
export function exactNameFromFieldSelector(selector: string): string | undefined {
  const terms: string[] = [];
  let current = '';
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i]!;
    if (c === '\\') {
      current += c + (selector[i + 1] ?? '');
      i++;
    } else if (c === ',') {
      terms.push(current);
      current = '';
    } else current += c;
  }
  terms.push(current);
  for (const term of terms) {
    const m = /^([^!=]*?)(==|=|!=)(.*)$/s.exec(term);
    if (!m) return undefined;
    const [, field, op, rawValue] = m;
    if (field !== 'metadata.name' || op === '!=') continue;
    return rawValue!.replace(/\\(.)/g, '$1');
  }
  return undefined;
}

/** path.IsValidPathSegmentName: a name that can stand as one path segment. */
function isValidPathSegmentName(name: string): boolean {
  return name !== '.' && name !== '..' && !name.includes('/') && !name.includes('%');
}

/**
 * The request target of an HTTP request: resource attributes exactly as
 * kube-apiserver derives them, or non-resource attributes.
 */
export function parseTarget(method: string, rawPath: string, search: string): RequestTarget {
  const upper = method.toUpperCase();
  if (!(upper in METHOD_VERBS)) throw new GatehouseError('GATEHOUSE_METHOD_NOT_ALLOWED', `method ${method} is not allowed through the gateway`);
  const segments = decodePath(rawPath);
  const path = encodePath(segments);
  const { query, canonical } = parseQuery(search);
  const nonResource = (): RequestTarget => ({ kind: 'nonResource', attributes: { verb: upper.toLowerCase(), path }, path, query, search: canonical });

  let parts = segments;
  if (parts.length < 3) return nonResource();
  const prefix = parts[0]!;
  if (prefix !== 'api' && prefix !== 'apis') return nonResource();
  parts = parts.slice(1);
  let group = '';
  if (prefix === 'apis') {
    if (parts.length < 3) return nonResource();
    group = parts[0]!;
    parts = parts.slice(1);
  }
  const version = parts[0]!;
  parts = parts.slice(1);

  let verb: Verb;
  if (SPECIAL_VERBS.has(parts[0]!)) {
    if (parts.length < 2) throw bad(`unable to determine kind and namespace from url ${path}`);
    verb = parts[0] as Verb;
    parts = parts.slice(1);
  } else {
    verb = METHOD_VERBS[upper]!;
  }

  let namespace = '';
  if (parts[0] === 'namespaces') {
    if (parts.length > 1) {
      namespace = parts[1]!;
      if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2]!)) parts = parts.slice(2);
    }
  }

  let resource = '';
  let name = '';
  let subresource = '';
  let trailingStart = parts.length;
  if (parts.length >= 3 && verb !== 'proxy') {
    subresource = parts[2]!;
    trailingStart = 3;
  } else if (parts.length >= 3) {
    trailingStart = 2;
  }
  if (parts.length >= 2) name = parts[1]!;
  if (parts.length >= 1) resource = parts[0]!;
  const trailing = parts.slice(trailingStart);

  if (name === '' && verb === 'get') {
    verb = queryBool(query, 'watch') ? 'watch' : 'list';
    const selector = query['fieldSelector']?.[0];
    if (selector !== undefined) {
      const exact = exactNameFromFieldSelector(selector);
      if (exact !== undefined && isValidPathSegmentName(exact)) name = exact;
    }
  }
  if (name === '' && verb === 'delete') verb = 'deletecollection';

  return {
    kind: 'resource',
    attributes: { verb, group, version, resource, subresource, namespace, name, trailingPath: trailing.length ? '/' + trailing.join('/') : '' },
    path,
    query,
    search: canonical,
  };
}
