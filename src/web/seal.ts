/**
 * Sealed cookies: AES-256-GCM over JSON, the cookie's purpose as associated
 * data (a login cookie cannot pass for a session), an expiry inside. Any
 * replica holding the same key reads what another wrote, so the pages need no
 * sticky sessions and no shared session store.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

export type Purpose = 'session' | 'login';

/** What a sealed cookie holds: a JSON object with an expiry (the caller knows the rest of its shape). */
export interface Sealed {
  readonly expiresAt: number;
}

/** A 256-bit key from any key material (a file of random bytes shared by the replicas). */
export function sealKey(material: Buffer): Buffer {
  return createHash('sha256').update('gatehouse web cookie v1\0').update(material).digest();
}

export function seal(key: Buffer, purpose: Purpose, value: Sealed): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(purpose));
  const body = Buffer.concat([c.update(JSON.stringify(value), 'utf8'), c.final()]);
  return Buffer.concat([iv, body, c.getAuthTag()]).toString('base64url');
}

/** The value, or undefined when the cookie is not ours, was changed, is of another purpose, or has expired. */
export function unseal(key: Buffer, purpose: Purpose, cookie: string, now: number): Sealed | undefined {
  const raw = Buffer.from(cookie, 'base64url');
  if (raw.length < 12 + 16 + 2) return undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    d.setAAD(Buffer.from(purpose));
    d.setAuthTag(raw.subarray(raw.length - 16));
    const value = JSON.parse(Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]).toString('utf8')) as Sealed;
    return typeof value.expiresAt === 'number' && value.expiresAt > now ? value : undefined;
  } catch {
    return undefined;
  }
}
