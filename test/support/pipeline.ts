/**
 * The request pipeline behind a plain HTTP server, with a fixed identity and a
 * scripted policy decision, forwarding to `upstreamUrl`: for tests of what the
 * pipeline sends upstream and returns.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AuditEvent } from '../../src/audit/event.js';
import { createMemoryAuditWriter } from '../../src/audit/writer.js';
import type { Identity } from '../../src/identity/identity.js';
import type { Decision } from '../../src/policy/decision.js';
import { createPipeline } from '../../src/pipeline.js';
import { createForwarder } from '../../src/upstream/forward.js';

export const GATEWAY_TOKEN = 'gateway-secret-token';

export async function startTestPipeline(opts: { upstreamUrl: string; identity: () => Identity; decision: Decision | (() => Decision); audit: AuditEvent[]; maxBodyBytes?: number; maxConnections?: number }): Promise<{ server: Server; port: number }> {
  const { handle } = createPipeline({
    authenticator: { authenticate: async () => opts.identity(), stats: { verified: 0, cached: 0 } },
    engine: { revision: 'test', evaluate: () => (typeof opts.decision === 'function' ? opts.decision() : opts.decision) },
    forwarder: createForwarder({ server: opts.upstreamUrl, tls: { rejectUnauthorized: true } }, { connectTimeoutMs: 1000, headersTimeoutMs: 2000, bodyTimeoutMs: 2000, ...(opts.maxConnections ? { maxConnections: opts.maxConnections } : {}) }),
    upstream: { server: opts.upstreamUrl, tls: { rejectUnauthorized: true }, authorization: () => `Bearer ${GATEWAY_TOKEN}` },
    audit: createMemoryAuditWriter((e) => e.kind === 'Event' && opts.audit.push(e)),
    cluster: 'test',
    limits: { maxBodyBytes: opts.maxBodyBytes ?? 1024, policyBodyBytes: 512 },
    masking: { hashKey: Buffer.from('k'), maxHoldBytes: 4096 },
  });
  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}
