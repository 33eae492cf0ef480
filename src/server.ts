/**
 * Wires the stages into an HTTPS server and nothing else. Everything that can be
 * wrong with the configuration or the policy is found here, at start-up.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMcpMarker } from './mcp/marker.js';
import { createCallSeal } from './mcp/parked.js';
import { createInternalClient } from './mcp/kube.js';
import type { McpEndpointDeps } from './mcp/endpoint.js';
import { MCP_PATH, RESOURCE_METADATA_PATH } from './mcp/paths.js';
import { GATEHOUSE_VERSION } from './paths.js';
import { checkMaskPath } from './redact/path.js';
import type { AddressInfo, Socket } from 'node:net';
import { createListener } from './doors/listener.js';
import { pino } from 'pino';
import { createAuditWriter, createStdoutAuditWriter, teeAuditWriters, type AuditWriter, type CheckpointOptions } from './audit/writer.js';
import { createMetrics, serveMetrics } from './metrics.js';
import { createAuditShipper } from './audit/webhook.js';
import { startPolicy, type LocalSource } from './policy/reload.js';
import { verificationKey } from './policy/signature.js';
import type { PolicyEngine } from './policy/engine.js';
import type { Config } from './config.js';
import { createOidcAuthenticator, discoverJwksUri } from './identity/oidc.js';
import { createPolicyEngine } from './policy/engine.js';
import { loadPolicySource } from './policy/load.js';
import { createShadow, type Shadow } from './policy/shadow.js';
import { createOpaServerEngine } from './policy/opa-server.js';
import { createAdmitter } from './admission/admit.js';
import { createRequesterView } from './approval/requester-view.js';
import { createHttpDoor } from './doors/http.js';
import { createUpgradeDoor } from './doors/upgrade.js';
import { selfSignedTls } from './tls.js';
import { loadUpstream } from './upstream/credentials.js';
import { createForwarder } from './upstream/forward.js';
import { API_PREFIX, createApprovalsApi, GRANTS_PREFIX } from './approval/api.js';
import { createApprovalService, type ApprovalService } from './approval/service.js';
import { SCHEMA, type ApprovalStore } from './approval/store.js';
import { createPostgresSessionStore, SESSION_SCHEMA } from './recording/postgres-sessions.js';
import { createWeb, WEB_PREFIX } from './web/app.js';
import { createFrontDoor, type Handler, type UpgradeHandler } from './doors/front.js';
import { createStreamQuota } from './doors/quota.js';
import { sealKey } from './web/seal.js';
import { ConfigError, messageOf } from './errors.js';
import { createWebhookNotifier } from './approval/webhook.js';
import { extractBearerToken } from './identity/token.js';
import type { IncomingMessage } from 'node:http';
import { createFileSessionStore, type SessionStore } from './recording/sessions.js';
import { authorizeSessions, createSessionsApi, SESSIONS_PREFIX } from './recording/api.js';

export interface Gateway {
  readonly url: string;
  /** PEM of the CA that signed the gateway's certificate, for kubeconfigs. */
  readonly caPem: string | undefined;
  /** The revision serving now. */
  readonly policyRevision: string;
  /** Where Prometheus scrapes, when `metrics` is configured. */
  readonly metricsUrl: string | undefined;
  /** Loads the policy again (SIGHUP); the old one keeps serving if the new one fails. */
  reloadPolicy(): Promise<'swapped' | 'unchanged' | 'failed'>;
  /** Stops accepting, lets in-flight requests finish (up to the grace period), flushes the audit log. */
  close(): Promise<void>;
}

export interface GatewayOptions {
  readonly audit?: AuditWriter;
  readonly log?: pino.Logger;
}

export async function startGateway(config: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const log = options.log ?? pino({ name: 'gatehouse' }, pino.destination(2));
  /** A key file of the config: at least 32 bytes, or start-up stops naming the option. */
  const readKeyFile = (option: string, file: string): Buffer => {
    const material = readFileSync(file);
    if (material.length < 32) throw new ConfigError(option, `${file} holds ${material.length} bytes; give it at least 32 random bytes`);
    return material;
  };
  const cookieKeyOf = (file: string | undefined): Buffer => {
    if (file) return sealKey(readKeyFile('approvals.web.cookieKeyFile', file));
    log.warn('approvals.web.cookieKeyFile is not set: web logins last until this gateway restarts and are not shared with other replicas');
    return sealKey(randomBytes(32));
  };
  const issuers = await Promise.all(config.identity.issuers.map(async (i) => (i.jwksUri ? i : { ...i, jwksUri: await discoverJwksUri(i.issuer) })));
  const authenticator = createOidcAuthenticator(issuers);
  // A mask path the redactor cannot compile makes the decision a deny.
  const metrics = createMetrics();
  const timed = (e: PolicyEngine): PolicyEngine => ({ revision: e.revision, evaluate: metrics.timeEvaluation((input: unknown) => e.evaluate(input)) });
  // A shadow that does not load is said in the log and left out: it may never stop the gateway.
  let shadow: Shadow | undefined;
  if (config.shadow) {
    try {
      const engine = await createPolicyEngine(await loadPolicySource(config.shadow), checkMaskPath);
      shadow = createShadow(engine, (outcome, change) => metrics.shadowDecision(outcome, change));
      log.info({ revision: engine.revision }, 'shadow policy loaded: its decisions are recorded, never enforced');
    } catch (err) {
      log.error({ err: { message: messageOf(err) } }, 'the shadow policy did not load; requests are decided without it');
    }
  }
  const remote = config.policy.kind === 'opaServer' ? createOpaServerEngine(config.policy.url, checkMaskPath) : undefined;
  const local: LocalSource | undefined = config.policy.kind === 'opaServer' ? undefined : config.policy;
  const keyFile = local?.kind === 'bundle' ? local.verificationKeyFile : undefined;
  const policy = local
    ? await startPolicy(local, {
        build: async (compiledPolicy) => {
          const built = await createPolicyEngine(compiledPolicy, checkMaskPath, { onCacheLookup: metrics.decisionCacheLookup });
          // Said once per revision: an operator comparing evaluation times across policies needs to know.
          log.info({ revision: built.revision, decisionCache: built.cache.on ? 'on' : `off: ${built.cache.why}` }, 'policy engine ready');
          return timed(built);
        },
        ...(keyFile ? { verification: verificationKey(readFileSync(keyFile), keyFile) } : {}),
        onReload: (result, revision, trigger, error) => {
          if (result === 'failed') log.error({ trigger, revision, err: { message: error?.message } }, 'the policy did not reload; the old one keeps serving');
          else if (result === 'swapped') log.info({ trigger, revision }, 'policy reloaded');
          // A poll that finds nothing new happens every pollSeconds: not worth a line.
          else if (!trigger.startsWith('poll')) log.info({ trigger, revision }, 'policy reload: unchanged');
          if (result !== 'unchanged') metrics.policyLoaded(revision, result === 'swapped' ? 'success' : 'failure');
        },
      })
    : undefined;
  const engine = policy?.engine ?? timed(remote!);
  metrics.policyLoaded(engine.revision, 'initial');
  const hashKey = config.masking.hashKeyFile ? readFileSync(config.masking.hashKeyFile) : randomBytes(32);
  if (!config.masking.hashKeyFile) log.warn('masking.hashKeyFile is not set: hashed values are comparable only until the gateway restarts');
  const upstream = loadUpstream(config.upstream);
  const forwarder = metrics.timeUpstream(
    createForwarder(upstream, {
      connectTimeoutMs: config.upstream.connectTimeoutSeconds * 1000,
      headersTimeoutMs: config.upstream.headersTimeoutSeconds * 1000,
      bodyTimeoutMs: config.upstream.requestTimeoutSeconds * 1000,
      http2: config.upstream.http2,
      ping: { intervalMs: config.upstream.pingIntervalSeconds * 1000, timeoutMs: config.upstream.pingTimeoutSeconds * 1000 },
    }),
  );
  const checkpointsOf = (c: Config['audit']['checkpoint']): CheckpointOptions | undefined => {
    if (!c) {
      if (config.audit.file)
        log.warn('audit.checkpoint is not set: the audit file is hash-chained, but without keyed checkpoints an editor can rewrite the chain');
      return undefined;
    }
    return { key: readKeyFile('audit.checkpoint.keyFile', c.keyFile), everyMs: c.everySeconds * 1000 };
  };
  const auditFailed = (err: Error) => {
    metrics.auditWriteFailed();
    log.error({ err: { message: err.message, code: (err as NodeJS.ErrnoException).code } }, 'audit records could not be written');
  };
  const w = config.audit.webhook;
  const shipper = w
    ? createAuditShipper({
        target: loadUpstream({ kind: 'kubeconfig', file: w.kubeconfig }, { as: 'audit.webhook.kubeconfig', anonymous: true }),
        bufferDir: w.bufferDir,
        bufferMaxBytes: w.bufferMaxBytes,
        batchMaxSize: w.batchMaxSize,
        timeoutMs: w.timeoutSeconds * 1000,
        backoffMs: w.backoffSeconds * 1000,
        log: (m) => log.warn(m),
      })
    : undefined;
  const audit = metrics.tap(
    options.audit ??
      teeAuditWriters([
        ...(config.audit.file ? [createAuditWriter(config.audit.file, auditFailed, (m) => log.warn(m), checkpointsOf(config.audit.checkpoint))] : []),
        ...(config.audit.stdout ? [createStdoutAuditWriter(auditFailed)] : []),
        ...(shipper ? [shipper] : []),
      ]),
  );
  const tls =
    config.listen.tls.kind === 'files'
      ? { cert: readFileSync(config.listen.tls.cert), key: readFileSync(config.listen.tls.key), caPem: undefined }
      : selfSignedTls(config.listen.tls.dir, config.listen.tls.hosts);

  // The stores are opened before serving: a database that cannot be reached stops start-up.
  const ac = config.approvals;
  const pgUrl = config.store?.postgres.url ?? (ac?.store.kind === 'postgres' ? ac.store.url : undefined);
  // Each store's driver is loaded only when configured (pg and better-sqlite3 are resident once imported).
  const db = pgUrl
    ? await (await import('./store/postgres.js')).openPostgres({ connectionString: pgUrl, schema: [...SCHEMA, ...SESSION_SCHEMA], onError: (m) => log.warn(m) })
    : undefined;
  const store: ApprovalStore | undefined = !ac
    ? undefined
    : ac.store.kind === 'sqlite'
      ? (await import('./approval/sqlite-store.js')).openSqliteStore(ac.store.file)
      : await (await import('./approval/postgres-store.js')).openPostgresStore({ db: db!, onError: (m) => log.warn(m) });
  const keep = config.recording.keep;
  const sessions: SessionStore =
    keep.kind === 'files'
      ? createFileSessionStore({ dir: keep.dir, failOpen: config.recording.failOpen })
      : createPostgresSessionStore({ db: db!, failOpen: config.recording.failOpen });

  // Assigned once the server listens: the approval links need its URL. Until then, 503.
  let routes: { readonly kubernetes: Handler; readonly gatehouse: Handler; readonly upgrade: UpgradeHandler } | undefined = undefined;
  let draining = false;
  // Every path but /healthz, /readyz and /gatehouse/ belongs to the Kubernetes API.
  const front = createFrontDoor({
    routes: () => routes,
    ownPrefixes: [WEB_PREFIX, RESOURCE_METADATA_PATH],
    upstreamReady: () => forwarder.ready(),
    draining: () => draining,
    onError: (err) => log.error({ err: { message: err.message, code: (err as { code?: string }).code } }, 'request error'),
  });
  const listener = createListener({
    cert: tls.cert,
    key: tls.key,
    http2: config.listen.http2,
    ping: { intervalMs: config.listen.pingIntervalSeconds * 1000, timeoutMs: config.listen.pingTimeoutSeconds * 1000 },
    onRequest: front.handle,
    onUpgrade: front.upgrade,
    onConnection: (protocol) => metrics.clientConnection(protocol),
  });
  const server = listener.server;
  // Every open connection, of the listener and of the internal socket: shutdown cuts what outlives the drain.
  const sockets = new Set<Socket>();
  const track = (listener: { on(event: 'connection', f: (s: Socket) => void): unknown }) =>
    listener.on('connection', (s: Socket) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
  track(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, () => resolve());
  }).catch(async (err: unknown) => {
    await store?.close();
    await db?.close();
    throw err;
  });
  const { port } = server.address() as AddressInfo;
  const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  const url = `https://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;

  const bearer = (req: IncomingMessage) => authenticator.authenticate(extractBearerToken(req.headers));
  const sessionsApi = createSessionsApi({ store: sessions, engine, cluster: config.cluster, authenticate: bearer, audit });
  let approvalsApi: ReturnType<typeof createApprovalsApi> | undefined;
  let web: ReturnType<typeof createWeb> | undefined;
  let approvals: ApprovalService | undefined;
  let webhook: ReturnType<typeof createWebhookNotifier> | undefined;
  if (ac && store) {
    const publicUrl = ac.publicUrl ?? url;
    const w = ac.webhook;
    webhook = w
      ? createWebhookNotifier({
          url: w.url,
          timeoutMs: w.timeoutSeconds * 1000,
          retries: w.retries,
          backoffMs: w.backoffSeconds * 1000,
          log: (m) => log.warn(m),
        })
      : undefined;
    const service = createApprovalService({
      store,
      audit,
      settings: { mode: ac.mode, holdSeconds: ac.holdSeconds, maxTtlSeconds: ac.maxTtlSeconds, publicUrl, sweepSeconds: ac.sweepSeconds },
      ...(webhook ? { announce: (a) => webhook!.notify(a, service.approvalUrl(a.id)) } : {}),
      log: (m) => log.warn(m),
    });
    approvals = service;
    approvalsApi = createApprovalsApi({ store, service, authenticate: bearer });
    web = ac.web
      ? createWeb({
          store,
          service,
          verify: (t) => authenticator.authenticate(t),
          options: { ...ac.web, publicUrl, cookieKey: cookieKeyOf(ac.web.cookieKeyFile) },
          sessions: {
            store: sessions,
            audit,
            authorize: (who, verb, name, req, read) => authorizeSessions(engine, config.cluster, who, verb, name, req, read),
          },
        })
      : undefined;
  }
  // MCP tool calls reach this same pipeline over an internal socket only this process can open.
  const marker = createMcpMarker();
  const internalDir = mkdtempSync(join(tmpdir(), 'gatehouse-internal-'));
  chmodSync(internalDir, 0o700);
  const internalSocket = join(internalDir, 'api.sock');
  const internalServer = createHttpServer(front.handle);
  // pods_exec over MCP: the same door, reached over the internal socket.
  internalServer.on('upgrade', front.upgrade);
  track(internalServer);
  await new Promise<void>((resolve, reject) => {
    internalServer.once('error', reject);
    internalServer.listen(internalSocket, () => resolve());
  });
  const internal = createInternalClient(internalSocket, marker);
  const mcpDeps: McpEndpointDeps = {
    authenticate: (t) => authenticator.authenticate(t),
    issuers: issuers.map((i) => i.issuer),
    publicUrl: ac?.publicUrl ?? url,
    internal,
    audit,
    ...(approvals && store ? { approvals: { store, service: approvals, seal: createCallSeal(hashKey) } } : {}),
    log: (m) => log.warn(m),
    version: GATEHOUSE_VERSION,
  };
  // The MCP SDK and zod are ~30 MiB resident: loaded with the first MCP request, not by every gateway.
  let mcpEndpoint: ReturnType<typeof loadMcp> | undefined;
  const loadMcp = async () => (await import('./mcp/endpoint.js')).createMcpEndpoint(mcpDeps);
  const mcp = () => (mcpEndpoint ??= loadMcp());
  const gatehouse: Handler = async (req, res) => {
    const u = new URL(req.url ?? '/', 'https://gatehouse.invalid');
    if (u.pathname === MCP_PATH) return (await mcp()).handle(req, res);
    if (u.pathname === RESOURCE_METADATA_PATH || u.pathname === RESOURCE_METADATA_PATH + MCP_PATH) return (await mcp()).metadata(res);
    const under = (prefix: string) => u.pathname === prefix || u.pathname.startsWith(prefix + '/');
    if (under(SESSIONS_PREFIX)) return sessionsApi(req, res, u.pathname, u.searchParams);
    if (approvalsApi && (under(API_PREFIX) || under(GRANTS_PREFIX))) return approvalsApi(req, res, u.pathname, u.searchParams);
    if (web) return web(req, res, u.pathname, u);
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('the web pages are not configured (approvals.web); use the CLI: gatehouse approvals list, gatehouse sessions list\n');
  };
  const masking = { hashKey, maxHoldBytes: config.masking.maxHoldBytes };
  const now = Date.now;
  // One admission for both doors: identity → request → policy → (approval).
  const admit = createAdmitter({
    authenticator,
    engine,
    cluster: config.cluster,
    limits: config.limits,
    ...(approvals ? { approvals } : {}),
    requesterView: createRequesterView({ forwarder, upstream, maxBodyBytes: config.limits.maxBodyBytes, masking }),
    now,
    mcpMarker: marker,
    ...(shadow ? { shadow } : {}),
  });
  // One count per user for both doors: a watch and an exec session hold the same kind of thing.
  const quota = createStreamQuota(config.limits.maxLongRunningPerUser);
  const handle = createHttpDoor({ admit, forwarder, upstream, audit, masking, now, quota });
  const upgrade = createUpgradeDoor({
    admit,
    upstream,
    quota,
    timeouts: { connectTimeoutMs: config.upstream.connectTimeoutSeconds * 1000, headersTimeoutMs: config.upstream.headersTimeoutSeconds * 1000 },
    audit,
    sessions,
    now,
  });
  routes = { kubernetes: handle, gatehouse, upgrade };
  metrics.setSources({
    inflightRequests: front.inFlight,
    ...(approvals ? { heldRequests: () => approvals.held() } : {}),
    ...(store ? { pendingApprovals: () => store.countPending() } : {}),
    tokenVerifications: () => authenticator.stats,
    ...(shipper ? { auditShipping: () => ({ pendingBytes: shipper.pendingBytes(), dropped: shipper.dropped() }) } : {}),
  });
  const metricsServer = config.metrics ? await serveMetrics(metrics, config.metrics.host, config.metrics.port) : undefined;
  log.info(
    { url, metrics: metricsServer?.url, policyRevision: engine.revision, issuers: issuers.map((i) => i.issuer), upstream: upstream.server },
    'gatehouse is serving',
  );

  return {
    url,
    caPem: tls.caPem,
    get policyRevision() {
      return engine.revision;
    },
    metricsUrl: metricsServer?.url,
    reloadPolicy: () => policy?.reload('reload requested (SIGHUP)') ?? Promise.resolve('unchanged'),
    async close() {
      draining = true;
      policy?.close();
      // Held requests get their 503 now, not at the end of the grace period.
      await approvals?.close();
      webhook?.close();
      const closed = new Promise<void>((r) => server.once('close', () => r()));
      listener.drain();
      const deadline = Date.now() + config.limits.shutdownGraceSeconds * 1000;
      while (front.inFlight() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      // Watches never end on their own: past the grace period they are cut (and audited as such).
      for (const s of sockets) s.destroy();
      await closed;
      await new Promise((r) => setImmediate(r));
      // Tool calls' connections are in `sockets` too (cut above); nothing of them may keep the close waiting.
      await internal.destroy();
      await new Promise((r) => internalServer.close(r));
      rmSync(internalDir, { recursive: true, force: true });
      await forwarder.close();
      await remote?.close();
      await store?.close();
      await sessions.close();
      await db?.close();
      await metricsServer?.close();
      audit.flush();
      await shipper?.close();
    },
  };
}
