/**
 * The HTTP door behind a plain HTTP server, with a fixed identity and a
 * scripted policy decision, forwarding to `upstreamUrl`: for tests of what the
 * gateway sends upstream and returns.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdmitter } from '../../src/admission/admit.js';
import { createRequesterView } from '../../src/approval/requester-view.js';
import type { AuditEvent } from '../../src/audit/event.js';
import { createMemoryAuditWriter } from '../../src/audit/writer.js';
import { createHttpDoor } from '../../src/doors/http.js';
import type { StreamQuota } from '../../src/doors/quota.js';
import type { Identity } from '../../src/identity/identity.js';
import type { Decision } from '../../src/policy/decision.js';
import type { PolicyInput } from '../../src/policy/input.js';
import { createForwarder } from '../../src/upstream/forward.js';
import { waitFor } from './wait.js';

export const GATEWAY_TOKEN = 'gateway-secret-token';

/** A plain HTTP server on a free local port, standing in for the API server. */
export async function startTestUpstream(handler: RequestListener): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** A request's final record, once written: startTestPipeline's audit holds every record but RequestReceived. */
export function completedRecord(audit: readonly AuditEvent[], before: number): Promise<AuditEvent> {
  return waitFor('the request to be recorded complete', () => audit.slice(before).find((e) => e.stage === 'ResponseComplete'), 5000);
}

/** Closes servers and the connections they hold: a held response (a watch) must not keep the run alive. */
export function closeServers(...servers: Server[]): void {
  for (const s of servers) s.closeAllConnections();
  for (const s of servers) s.close();
}

export async function startTestPipeline(opts: {
  upstreamUrl: string;
  identity: () => Identity;
  /** The policy: a fixed decision, or a function of the input (inspected writes are asked twice). */
  decision: Decision | ((input: PolicyInput) => Decision);
  audit: AuditEvent[];
  maxBodyBytes?: number;
  policyBodyBytes?: number;
  maxConnections?: number;
  /** An https upstream's CA: watches then go over HTTP/2 when it offers h2. */
  upstreamCa?: Buffer;
  /** How often HTTP/2 connections to the upstream are pinged, and how long an answer may take. */
  upstreamPing?: { intervalMs: number; timeoutMs: number };
  /** Watches and follows each user may hold open at once. */
  quota?: StreamQuota;
}): Promise<{ server: Server; port: number }> {
  const tls = { rejectUnauthorized: true, ...(opts.upstreamCa ? { ca: opts.upstreamCa } : {}) };
  const forwarder = createForwarder(
    { server: opts.upstreamUrl, tls },
    {
      connectTimeoutMs: 1000,
      headersTimeoutMs: 2000,
      bodyTimeoutMs: 2000,
      http2: opts.upstreamCa !== undefined,
      ...(opts.maxConnections ? { maxConnections: opts.maxConnections } : {}),
      ...(opts.upstreamPing ? { ping: opts.upstreamPing } : {}),
    },
  );
  const upstream = { server: opts.upstreamUrl, tls, authorization: () => `Bearer ${GATEWAY_TOKEN}` };
  const masking = { hashKey: Buffer.from('k'), maxHoldBytes: 4096 };
  const maxBodyBytes = opts.maxBodyBytes ?? 1024;
  const admit = createAdmitter({
    authenticator: { authenticate: async () => opts.identity(), stats: { verified: 0, cached: 0, failed: 0 } },
    engine: { revision: 'test', evaluate: (input) => (typeof opts.decision === 'function' ? opts.decision(input as PolicyInput) : opts.decision) },
    cluster: 'test',
    limits: { maxBodyBytes, policyBodyBytes: opts.policyBodyBytes ?? 512 },
    requesterView: createRequesterView({ forwarder, upstream, maxBodyBytes, masking }),
    now: Date.now,
  });
  // Only the final record of each request: the tests read what a request ended as.
  const audit = createMemoryAuditWriter((e) => e.kind === 'Event' && e.stage !== 'RequestReceived' && opts.audit.push(e));
  const handle = createHttpDoor({ admit, forwarder, upstream, audit, masking, now: Date.now, ...(opts.quota ? { quota: opts.quota } : {}) });
  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}
