/**
 * Prometheus metrics (prom-client), served on a listener of their own: every
 * path of the main listener belongs to the Kubernetes API, `/metrics` included.
 *
 * Requests are counted from the audit records as they are written (one tap on
 * the writer, for every door), so the metrics and the audit cannot disagree on
 * what happened. Labels are bounded: verbs and effects are closed sets,
 * resources outside Kubernetes' built-in ones are `other` (a caller picks the
 * path, and must not pick the number of time series), and no label ever holds a
 * user, an object name or a path.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AuditRecord } from './audit/event.js';
import type { AuditWriter } from './audit/writer.js';
import type { Decision } from './policy/decision.js';

const VERBS = new Set(['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection', 'proxy', 'head', 'options', 'post', 'put']);

/** Kubernetes' built-in resources, and the gateway's own: anything else is `other`. */
const RESOURCES = new Set(
  (
    'bindings componentstatuses configmaps endpoints events limitranges namespaces nodes persistentvolumeclaims persistentvolumes pods ' +
    'podtemplates replicationcontrollers resourcequotas secrets serviceaccounts services mutatingwebhookconfigurations ' +
    'validatingwebhookconfigurations validatingadmissionpolicies validatingadmissionpolicybindings customresourcedefinitions apiservices ' +
    'controllerrevisions daemonsets deployments replicasets statefulsets selfsubjectreviews tokenreviews localsubjectaccessreviews ' +
    'selfsubjectaccessreviews selfsubjectrulesreviews subjectaccessreviews horizontalpodautoscalers cronjobs jobs certificatesigningrequests ' +
    'leases endpointslices flowschemas prioritylevelconfigurations ingressclasses ingresses networkpolicies runtimeclasses poddisruptionbudgets ' +
    'clusterrolebindings clusterroles rolebindings roles priorityclasses csidrivers csinodes csistoragecapacities storageclasses ' +
    'volumeattachments sessions'
  ).split(' '),
);

const SESSION_SUBRESOURCES = new Set(['exec', 'attach', 'portforward']);

export interface MetricSources {
  /** Requests the server is handling now (all kinds). */
  readonly inflightRequests: () => number;
  readonly heldRequests?: () => number;
  readonly pendingApprovals?: () => Promise<number>;
  readonly tokenVerifications?: () => { readonly verified: number; readonly cached: number; readonly failed: number };
  readonly auditShipping?: () => { readonly pendingBytes: number; readonly dropped: number };
}

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  /** A counter by `result` whose every value is exported from the start, at 0: a rate is defined before the first event. */
  const resultCounter = (name: string, help: string, results: readonly string[]) => {
    const counter = new Counter({ name, help, labelNames: ['result'] as const, registers });
    for (const result of results) counter.inc({ result }, 0);
    return counter;
  };
  const requests = new Counter({
    name: 'gatehouse_requests_total',
    help: 'Requests that ended, by verb, resource (built-in ones; others are "other"), policy effect and the status code the client got.',
    labelNames: ['verb', 'resource', 'effect', 'code'] as const,
    registers,
  });
  const duration = new Histogram({
    name: 'gatehouse_request_duration_seconds',
    help: 'Time from a request received to its answer complete; watches, log follows and sessions are not included (they last as long as the client wants).',
    labelNames: ['verb'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  const upstream = new Histogram({
    name: 'gatehouse_upstream_duration_seconds',
    help: "Time from forwarding a request to the API server's response headers.",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const evaluation = new Histogram({
    name: 'gatehouse_policy_evaluation_duration_seconds',
    help: 'Time of one policy evaluation (embedded WASM, or a call to the OPA server).',
    buckets: [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1],
    registers,
  });
  const decisionCache = resultCounter(
    'gatehouse_policy_decision_cache_total',
    'Embedded decisions by whether the same input (the part the policy reads) was decided before: hit (remembered) or miss (evaluated).',
    ['hit', 'miss'],
  );
  const policyInfo = new Gauge({ name: 'gatehouse_policy_info', help: 'The policy revision serving (value 1).', labelNames: ['revision'] as const, registers });
  const reloads = resultCounter('gatehouse_policy_reloads_total', 'Policy reloads by result: success (swapped in) or failure (the old policy keeps serving).', [
    'success',
    'failure',
  ]);
  const shadowDecisions = new Counter({
    name: 'gatehouse_shadow_decisions_total',
    help: 'Decisions of the shadow policy (policy.shadow) against the live one: same, differs (by change: effect, mask, reasons) or error. Never enforced.',
    labelNames: ['outcome', 'change'] as const,
    registers,
  });
  const masked = new Counter({ name: 'gatehouse_masked_responses_total', help: 'Answers sent through masking directives.', registers });
  const auditErrors = new Counter({ name: 'gatehouse_audit_write_errors_total', help: 'Audit records that could not be written.', registers });
  const connections = new Counter({
    name: 'gatehouse_client_connections_total',
    help: 'TLS connections clients opened, by the protocol ALPN chose (h2, or http/1.1, which exec/attach/port-forward upgrades need).',
    labelNames: ['protocol'] as const,
    registers,
  });
  const open = new Map<string, 'watch' | 'session'>();
  let sources: MetricSources | undefined;
  new Gauge({
    name: 'gatehouse_inflight',
    help: 'Requests being handled now: all of them (request), and of those the watches and log follows (watch) and exec/attach/port-forward sessions (session).',
    labelNames: ['kind'] as const,
    registers,
    collect() {
      let watches = 0;
      for (const kind of open.values()) if (kind === 'watch') watches++;
      this.set({ kind: 'request' }, sources?.inflightRequests() ?? 0);
      this.set({ kind: 'watch' }, watches);
      this.set({ kind: 'session' }, open.size - watches);
    },
  });
  new Gauge({
    name: 'gatehouse_held_requests',
    help: 'Requests held open, and MCP approvals_wait calls, waiting for an approval.',
    registers,
    collect() {
      this.set(sources?.heldRequests?.() ?? 0);
    },
  });
  new Gauge({
    name: 'gatehouse_approvals_pending',
    help: 'Approvals nobody has decided on yet (in the shared store: the same on every replica).',
    registers,
    async collect() {
      this.set((await sources?.pendingApprovals?.()) ?? 0);
    },
  });
  new Counter({
    name: 'gatehouse_token_verifications_total',
    help: 'Bearer tokens checked: verified (signature and claims), cached (verified before, still valid), failed (refused).',
    labelNames: ['result'] as const,
    registers,
    collect() {
      const s = sources?.tokenVerifications?.();
      this.reset();
      if (!s) return;
      this.inc({ result: 'verified' }, s.verified);
      this.inc({ result: 'cached' }, s.cached);
      this.inc({ result: 'failed' }, s.failed);
    },
  });

  new Gauge({
    name: 'gatehouse_audit_webhook_pending_bytes',
    help: 'Audit records spooled for the audit webhook and not yet delivered.',
    registers,
    collect() {
      this.set(sources?.auditShipping?.().pendingBytes ?? 0);
    },
  });
  new Counter({
    name: 'gatehouse_audit_webhook_dropped_total',
    help: 'Audit records the full webhook buffer could not take (the audit file still has them).',
    registers,
    collect() {
      this.reset();
      this.inc(sources?.auditShipping?.().dropped ?? 0);
    },
  });

  function observe(e: AuditRecord): void {
    if (e.kind !== 'Event') return;
    const sub = e.objectRef?.subresource ?? '';
    if (e.stage === 'ResponseStarted') {
      open.set(e.auditID, e.objectRef?.resource === 'pods' && SESSION_SUBRESOURCES.has(sub) ? 'session' : 'watch');
      return;
    }
    if (e.stage !== 'ResponseComplete') return;
    const resource = e.objectRef ? (RESOURCES.has(e.objectRef.resource) ? e.objectRef.resource : 'other') : '';
    const verb = VERBS.has(e.verb) ? e.verb : 'other';
    const code = e.responseStatus?.code ?? 0;
    requests.inc({ verb, resource, effect: e.annotations['gatehouse.dev/effect'] ?? 'none', code: String(code >= 100 && code <= 599 ? code : 0) });
    if (open.delete(e.auditID)) return;
    duration.observe({ verb }, e.gatehouse.durationMs / 1000);
    if (code < 300 && (e.gatehouse.decision?.mask.length ?? 0) > 0) masked.inc();
  }

  return {
    registry,

    /** The audit writer, with every record counted on its way through. */
    tap(writer: AuditWriter): AuditWriter {
      return {
        write(event) {
          observe(event);
          writer.write(event);
        },
        commit(event) {
          try {
            writer.commit(event);
          } catch (err) {
            auditErrors.inc();
            throw err;
          }
          observe(event);
        },
        flush: () => writer.flush(),
      };
    },

    auditWriteFailed: () => auditErrors.inc(),
    clientConnection: (protocol: 'h2' | 'http/1.1') => connections.inc({ protocol }),

    decisionCacheLookup: (hit: boolean) => decisionCache.inc({ result: hit ? 'hit' : 'miss' }),

    /** Times each evaluation; the engine is otherwise untouched. */
    timeEvaluation<I, D extends Decision | Promise<Decision>>(evaluate: (input: I) => D): (input: I) => D {
      return (input) => {
        const end = evaluation.startTimer();
        const out = evaluate(input);
        if (out instanceof Promise) void out.finally(end).catch(() => {});
        else end();
        return out;
      };
    },

    /** The forwarder, with the time to each answer's headers observed. */
    timeUpstream<F extends { readonly forward: (req: never) => Promise<unknown> }>(forwarder: F): F {
      const forward = forwarder.forward;
      return {
        ...forwarder,
        forward: async (req: never) => {
          const end = upstream.startTimer();
          try {
            return await forward(req);
          } finally {
            end();
          }
        },
      };
    },

    shadowDecision(outcome: 'same' | 'differs' | 'error', change = ''): void {
      shadowDecisions.inc({ outcome, change });
    },
    policyLoaded(revision: string, result: 'success' | 'failure' | 'initial'): void {
      if (result !== 'initial') reloads.inc({ result });
      if (result === 'failure') return;
      policyInfo.reset();
      policyInfo.set({ revision }, 1);
    },

    setSources(s: MetricSources): void {
      sources = s;
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Serves the registry at /metrics (plain HTTP: put it on loopback or a private network). */
export async function serveMetrics(metrics: Metrics, host: string, port: number): Promise<{ readonly url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('metrics are at /metrics\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err instanceof Error ? err.message : String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const a = server.address() as AddressInfo;
  return {
    url: `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/metrics`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
