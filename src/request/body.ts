import type { IncomingMessage } from 'node:http';
import { parse as parseYaml } from 'yaml';
import { GatehouseError } from '../errors.js';

/**
 * Reads a request body up to `max` bytes. Kubernetes objects are small (etcd
 * refuses values over 1.5 MiB), so bounded buffering lets the policy read the
 * exact bytes that are then forwarded.
 */
export async function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > max) throw tooLarge(max);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw tooLarge(max);
    chunks.push(chunk);
  }
  return size === 0 ? undefined : Buffer.concat(chunks, size);
}

function tooLarge(max: number): GatehouseError {
  return new GatehouseError('GATEHOUSE_BODY_TOO_LARGE', `the request body is larger than the gateway's limit of ${max} bytes`);
}

export type PolicyBody = { readonly body: unknown; readonly bodyTooLarge: boolean };

/**
 * The body as the policy sees it: parsed JSON (or YAML for server-side apply),
 * null when too large for the policy input. A body that claims to be JSON and
 * is not is refused here, so policy and API server never disagree about it.
 */
export function bodyForPolicy(raw: Buffer | undefined, contentType: string | undefined, limit: number): PolicyBody {
  if (!raw) return { body: null, bodyTooLarge: false };
  if (raw.length > limit) return { body: null, bodyTooLarge: true };
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const text = raw.toString('utf8');
  if (type === 'application/apply-patch+yaml') {
    try {
      return { body: parseYaml(text, { maxAliasCount: 0 }), bodyTooLarge: false };
    } catch (err) {
      throw new GatehouseError('GATEHOUSE_BAD_REQUEST', `the apply patch is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  if (type === 'application/json' || type.endsWith('+json') || type === '') {
    try {
      return { body: JSON.parse(text), bodyTooLarge: false };
    } catch (err) {
      throw new GatehouseError('GATEHOUSE_BAD_REQUEST', `the request body is not valid JSON: ${(err as Error).message}`);
    }
  }
  // Protobuf and CBOR bodies cannot be read here; the policy sees null and the content type.
  return { body: null, bodyTooLarge: false };
}
