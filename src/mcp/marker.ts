/**
 * How a Kubernetes request made for an MCP tool call says so: a header the MCP
 * endpoint signs with a key that never leaves this process. The policy sees
 * `input.request.mcp` only when the signature holds, so no kubectl caller can
 * make its request look like a tool call (or hide that one is).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const MCP_HEADER = 'x-gatehouse-mcp';

export interface McpFacts {
  readonly tool: string;
  /** The MCP session the call belongs to ('' in stateless mode) and the call's own id. */
  readonly session: string;
  readonly call: string;
  /** The agent's address, for the request's sourceIP (the internal hop has none). */
  readonly sourceIP: string;
}

export interface McpMarker {
  sign(facts: McpFacts): string;
  /** The facts of a header this process signed; null when absent; throws on a forged one. */
  verify(header: string | string[] | undefined): McpFacts | null;
}

export function createMcpMarker(key: Buffer = randomBytes(32)): McpMarker {
  const mac = (payload: string) => createHmac('sha256', key).update(payload).digest();
  return {
    sign(facts) {
      const payload = Buffer.from(JSON.stringify(facts)).toString('base64url');
      return `${payload}.${mac(payload).toString('base64url')}`;
    },
    verify(header) {
      if (header === undefined) return null;
      const value = Array.isArray(header) ? header.join(',') : header;
      const [payload = '', sig = ''] = value.split('.');
      const want = mac(payload);
      const got = Buffer.from(sig, 'base64url');
      if (got.length !== want.length || !timingSafeEqual(got, want)) throw new Error('the MCP marker is not one this gateway signed');
      return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as McpFacts;
    },
  };
}
