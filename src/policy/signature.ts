/**
 * OPA's bundle signature format, verified (so `opa build --signing-key` is
 * the authoring tool): `.signatures.json` holds exactly one JWT, signed with
 * the configured public key, whose `files` list names every other file of the
 * bundle with its digest. A file the list does not name, a listed file the
 * bundle lacks, a digest that differs, a scope that differs: the bundle is
 * refused. JSON files (`data.json`, `.manifest`, `patch.json`) are hashed the
 * way OPA hashes them — parsed, keys sorted, numbers as written — so the
 * digest does not depend on whitespace.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { jwtVerify } from 'jose';
import { PolicyLoadError } from './errors.js';

const SIGNATURES = '.signatures.json';
const STRUCTURED = new Set(['data.json', '.manifest', 'patch.json', SIGNATURES]);
const HASHES: Readonly<Record<string, string>> = { 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' };
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

export interface Verification {
  readonly key: KeyObject;
  /** The key's file, for messages. */
  readonly keyFile: string;
  /** OPA's `scope` claim; absent means the bundle's must be absent too. */
  readonly scope?: string;
}

export function verificationKey(pem: string | Buffer, keyFile: string): Verification {
  try {
    return { key: createPublicKey(pem), keyFile };
  } catch (err) {
    throw new PolicyLoadError(`policy.verificationKeyFile ${keyFile} is not a PEM public key: ${(err as Error).message}`);
  }
}

/** Throws a PolicyLoadError naming the bundle and what is wrong with its signature. */
export async function verifyBundle(files: ReadonlyMap<string, Buffer>, v: Verification, origin: string): Promise<void> {
  const fail = (why: string): never => {
    throw new PolicyLoadError(`the policy bundle ${origin} is refused: ${why}`);
  };
  const raw = files.get(SIGNATURES) ?? fail(`it is not signed (no ${SIGNATURES}; build it with opa build --signing-key)`);
  let signatures: unknown;
  try {
    signatures = (JSON.parse(raw.toString('utf8')) as { signatures?: unknown }).signatures;
  } catch {
    fail(`${SIGNATURES} is not JSON`);
  }
  if (!Array.isArray(signatures) || signatures.length !== 1 || typeof signatures[0] !== 'string') fail(`${SIGNATURES} must hold exactly one JWT`);
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify((signatures as string[])[0]!, v.key, { algorithms: ALGORITHMS }));
  } catch (err) {
    return fail(`its signature does not verify with ${v.keyFile} (${(err as Error).message})`);
  }
  const scope = payload['scope'] ?? '';
  if (scope !== (v.scope ?? '')) fail(`its signature's scope ${JSON.stringify(scope)} is not ${JSON.stringify(v.scope ?? '')}`);
  if (!Array.isArray(payload['files'])) fail('its signature lists no files');
  const listed = new Map<string, { hash: string; algorithm: string }>();
  for (const f of payload['files'] as { name?: unknown; hash?: unknown; algorithm?: unknown }[]) {
    if (typeof f.name !== 'string' || typeof f.hash !== 'string' || typeof f.algorithm !== 'string')
      fail('its signature lists a file without name, hash and algorithm');
    listed.set((f.name as string).replace(/^\/+/, ''), { hash: (f.hash as string).toLowerCase(), algorithm: f.algorithm as string });
  }
  for (const [name, content] of files) {
    if (name === SIGNATURES) continue;
    const entry = listed.get(name) ?? fail(`${name} is in the bundle but not in its signature`);
    const algorithm = HASHES[entry.algorithm] ?? fail(`${name}: hash algorithm ${entry.algorithm} is not accepted (SHA-256, SHA-384, SHA-512)`);
    const base = name.split('/').at(-1)!;
    const digest = createHash(algorithm)
      .update(STRUCTURED.has(base) ? canonicalJson(content, name, fail) : content)
      .digest('hex');
    if (digest !== entry.hash) fail(`${name} was changed after signing (digest ${digest}, signed ${entry.hash})`);
    listed.delete(name);
  }
  if (listed.size > 0) fail(`its signature names ${[...listed.keys()].join(', ')}, which the bundle lacks`);
}

/**
 * JSON as OPA hashes it: objects with keys in byte order, no whitespace,
 * numbers exactly as written, strings escaped as Go's encoder escapes them.
 */
export function canonicalJson(bytes: Buffer, name: string, fail: (why: string) => never): string {
  const text = bytes.toString('utf8');
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const bad = (): never => fail(`${name} is not valid JSON (at offset ${i})`);
  const str = (): string => {
    const start = i;
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) bad();
    i++;
    try {
      return JSON.parse(text.slice(start, i)) as string;
    } catch {
      return bad();
    }
  };
  const encode = (s: string) =>
    JSON.stringify(s)
      .replace(/\u2028/g, '\\u2028')
      .replace(/\u2029/g, '\\u2029');
  const value = (): string => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const members = new Map<string, string>();
      ws();
      if (text[i] === '}') i++;
      else
        for (;;) {
          ws();
          if (text[i] !== '"') bad();
          const key = str();
          ws();
          if (text[i++] !== ':') bad();
          members.set(key, value());
          ws();
          if (text[i] === ',') i++;
          else if (text[i++] === '}') break;
          else bad();
        }
      const keys = [...members.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      return `{${keys.map((k) => `${encode(k)}:${members.get(k)!}`).join(',')}}`;
    }
    if (c === '[') {
      i++;
      const items: string[] = [];
      ws();
      if (text[i] === ']') i++;
      else
        for (;;) {
          items.push(value());
          ws();
          if (text[i] === ',') i++;
          else if (text[i++] === ']') break;
          else bad();
        }
      return `[${items.join(',')}]`;
    }
    if (c === '"') return encode(str());
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
    if (!m) return bad();
    i += m[0].length;
    return m[0];
  };
  const out = value();
  ws();
  if (i !== text.length) bad();
  return out;
}
