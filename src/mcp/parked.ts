/**
 * A tool call left waiting on an approval, kept so that `approvals_wait` — on
 * this replica or another — can run it once the approval is given. Its
 * arguments may carry a manifest's Secret data, so what the store keeps is
 * sealed (AES-256-GCM, a key derived from the replicas' shared masking key)
 * and bound to the approval and the user: a row moved to another approval or
 * another user does not open.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

export interface ParkedCall {
  readonly tool: string;
  readonly args: unknown;
}

export interface CallSeal {
  seal(approvalId: string, username: string, call: ParkedCall): string;
  /** Throws when the sealed text was not made by this key for this approval and user. */
  open(approvalId: string, username: string, sealed: string): ParkedCall;
}

export function createCallSeal(sharedKey: Buffer): CallSeal {
  const key = Buffer.from(hkdfSync('sha256', sharedKey, Buffer.alloc(0), 'gatehouse/mcp parked call', 32));
  const aad = (approvalId: string, username: string) => Buffer.from(`${approvalId}\u0000${username}`);
  return {
    seal(approvalId, username, call) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', key, iv).setAAD(aad(approvalId, username));
      const body = Buffer.concat([c.update(JSON.stringify(call)), c.final()]);
      return Buffer.concat([iv, c.getAuthTag(), body]).toString('base64');
    },
    open(approvalId, username, sealed) {
      const raw = Buffer.from(sealed, 'base64');
      const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12)).setAAD(aad(approvalId, username));
      d.setAuthTag(raw.subarray(12, 28));
      try {
        return JSON.parse(Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8')) as ParkedCall;
      } catch {
        throw new Error(
          `the call kept for approval ${approvalId} does not open with this gateway's key (masking.hashKeyFile must be the same on every replica)`,
        );
      }
    },
  };
}
