/**
 * gatehouse.yaml, validated once at start-up. Every problem names the option
 * and what to do about it; nothing here is re-checked per request. Relative
 * paths are resolved against the config file's folder.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from './errors.js';
import { ASYMMETRIC_ALGORITHMS, type IssuerConfig } from './identity/oidc.js';
import type { PolicySource } from './policy/load.js';
import type { UpstreamSource } from './upstream/credentials.js';
import { toolPath } from './paths.js';

export type TlsConfig =
  | { readonly kind: 'files'; readonly cert: string; readonly key: string }
  | { readonly kind: 'selfSigned'; readonly dir: string; readonly hosts: readonly string[] };

export interface Config {
  readonly listen: {
    readonly host: string;
    readonly port: number;
    readonly tls: TlsConfig;
    /** Offer HTTP/2 to clients (ALPN h2, beside HTTP/1.1, which upgrades for exec/attach/port-forward need). */
    readonly http2: boolean;
    /** Each HTTP/2 client is pinged this often, and its connection closed (its watches let go upstream) if the answer takes longer than pingTimeoutSeconds. */
    readonly pingIntervalSeconds: number;
    readonly pingTimeoutSeconds: number;
  };
  readonly upstream: UpstreamSource & {
    readonly connectTimeoutSeconds: number;
    readonly headersTimeoutSeconds: number;
    readonly requestTimeoutSeconds: number;
    /** Offer HTTP/2 to the API server (ALPN; HTTP/1.1 if it declines): watches share a few connections instead of one each. */
    readonly http2: boolean;
    /** Each HTTP/2 connection to the API server is pinged this often, and taken for dead (its watches cut) if the answer takes longer than pingTimeoutSeconds. */
    readonly pingIntervalSeconds: number;
    readonly pingTimeoutSeconds: number;
  };
  readonly identity: { readonly issuers: readonly IssuerConfig[] };
  readonly policy: PolicySource;
  /** A candidate policy evaluated beside the live one on every request (policy.shadow): differences are recorded, never enforced. */
  readonly shadow?: Exclude<PolicySource, { kind: 'opaServer' }>;
  /** Where records go: a file (the record of truth when set), stdout (one JSON line each, for a log shipper), or both. */
  readonly audit: {
    readonly file?: string;
    readonly stdout: boolean;
    readonly webhook?: AuditWebhookConfig;
    /** Keyed checkpoints of the file's hash chain (`gatehouse audit verify --key`). */
    readonly checkpoint?: { readonly keyFile: string; readonly everySeconds: number };
  };
  /** Prometheus metrics on a listener of their own (plain HTTP); absent: not served. */
  readonly metrics?: { readonly host: string; readonly port: number };
  /** exec/attach recordings; a session that cannot be recorded is refused unless failOpen. */
  readonly recording: { readonly keep: { readonly kind: 'files'; readonly dir: string } | { readonly kind: 'postgres' }; readonly failOpen: boolean };
  /** The replicas' shared database: approvals and recordings both live there when it is set. */
  readonly store?: { readonly postgres: { readonly url: string } };
  /** Keyed hashing and hold-back bounds of the response redactor. */
  readonly masking: { readonly hashKeyFile?: string; readonly maxHoldBytes: number };
  readonly limits: {
    readonly maxBodyBytes: number;
    readonly policyBodyBytes: number;
    readonly shutdownGraceSeconds: number;
    /** Watches, follows and exec/attach/port-forward sessions one user may hold open at once on a replica. */
    readonly maxLongRunningPerUser: number;
  };
  readonly cluster: string;
  /** Absent: requests the policy sends to `approve` are refused. */
  readonly approvals?: ApprovalsConfig;
}

/** kube-apiserver's audit webhook shape: EventList batches to the server of a kubeconfig, spooled on disk. */
export interface AuditWebhookConfig {
  readonly kubeconfig: string;
  readonly bufferDir: string;
  readonly bufferMaxBytes: number;
  readonly batchMaxSize: number;
  readonly timeoutSeconds: number;
  readonly backoffSeconds: number;
}

export interface ApprovalsConfig {
  readonly store: { readonly kind: 'sqlite'; readonly file: string } | { readonly kind: 'postgres'; readonly url: string };
  readonly mode: { readonly agents: 'hold' | 'refuse'; readonly people: 'hold' | 'refuse' };
  readonly holdSeconds: number;
  /** Caps the policy's ttlSeconds: how long anyone may take to decide, and how long an approval stays usable. */
  readonly maxTtlSeconds: number;
  /** The gateway's URL as approvers reach it; defaults to the listen address. */
  readonly publicUrl?: string;
  readonly sweepSeconds: number;
  readonly webhook?: { readonly url: string; readonly timeoutSeconds: number; readonly retries: number; readonly backoffSeconds: number };
  /** The approver web page's OIDC client (authorization code + PKCE). Absent: no web page, the CLI still works. */
  readonly web?: {
    readonly issuer: string;
    readonly clientId: string;
    readonly clientSecret?: string;
    readonly sessionMinutes: number;
    /** Key material of the sealed login cookies, shared by the replicas; absent: random per start. */
    readonly cookieKeyFile?: string;
  };
}

type Obj = Record<string, unknown>;

class Reader {
  constructor(
    private readonly base: string,
    private readonly obj: Obj,
    private readonly at: string,
  ) {}

  private name(key: string) {
    return this.at ? `${this.at}.${key}` : key;
  }

  keys(allowed: readonly string[]): void {
    for (const k of Object.keys(this.obj)) {
      if (!allowed.includes(k)) throw new ConfigError(this.name(k), `unknown option; expected one of ${allowed.join(', ')}`);
    }
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  isMapping(key: string): boolean {
    const v = this.obj[key];
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  }

  section(key: string, required = true): Reader {
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (required) throw new ConfigError(this.name(key), 'is required');
      return new Reader(this.base, {}, this.name(key));
    }
    if (typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(this.name(key), 'must be a mapping');
    return new Reader(this.base, v as Obj, this.name(key));
  }

  list(key: string): Reader[] {
    const v = this.obj[key];
    if (!Array.isArray(v) || v.length === 0) throw new ConfigError(this.name(key), 'must be a non-empty list');
    return v.map((item, i) => {
      if (typeof item !== 'object' || item === null) throw new ConfigError(`${this.name(key)}[${i}]`, 'must be a mapping');
      return new Reader(this.base, item as Obj, `${this.name(key)}[${i}]`);
    });
  }

  str(key: string, fallback?: string): string {
    const v = this.obj[key] ?? fallback;
    if (typeof v !== 'string') throw new ConfigError(this.name(key), fallback === undefined && v === undefined ? 'is required' : 'must be a string');
    return v;
  }

  optStr(key: string): string | undefined {
    return this.has(key) ? this.str(key) : undefined;
  }

  strings(key: string, fallback?: readonly string[]): string[] {
    const v = this.obj[key] ?? fallback;
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new ConfigError(this.name(key), 'must be a list of strings');
    return [...v];
  }

  num(key: string, fallback: number, min: number, max: number): number {
    const v = this.obj[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new ConfigError(this.name(key), `must be a number between ${min} and ${max}`);
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.obj[key] ?? fallback;
    if (typeof v !== 'boolean') throw new ConfigError(this.name(key), 'must be true or false');
    return v;
  }

  path(key: string): string {
    const p = this.str(key);
    return isAbsolute(p) ? p : resolve(this.base, p);
  }

  optPath(key: string): string | undefined {
    return this.has(key) ? this.path(key) : undefined;
  }
}

function hostPort(option: string, address: string, example: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(address);
  if (!m || Number(m[2]) > 65535) throw new ConfigError(option, `"${address}" is not host:port (for example ${example})`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

function parseMetrics(r: Reader): NonNullable<Config['metrics']> {
  r.keys(['address']);
  // Loopback unless asked: the numbers say who is busy and what is refused.
  return hostPort('metrics.address', r.str('address', '127.0.0.1:9464'), '127.0.0.1:9464 or 0.0.0.0:9464');
}

function parseListen(r: Reader): Config['listen'] {
  r.keys(['address', 'tls', 'http2', 'pingIntervalSeconds', 'pingTimeoutSeconds']);
  const http2 = r.bool('http2', true);
  const pings = pingSeconds(r);
  const { host, port } = hostPort('listen.address', r.str('address', '127.0.0.1:8443'), '127.0.0.1:8443 or 0.0.0.0:8443');
  const tls = r.section('tls');
  tls.keys(['cert', 'key', 'selfSigned']);
  let parsed: TlsConfig;
  if (tls.has('selfSigned')) {
    if (tls.has('cert') || tls.has('key')) throw new ConfigError('listen.tls', 'set either cert and key, or selfSigned, not both');
    const ss = tls.section('selfSigned');
    ss.keys(['dir', 'hosts']);
    parsed = { kind: 'selfSigned', dir: ss.path('dir'), hosts: ss.strings('hosts', ['127.0.0.1', 'localhost']) };
  } else {
    if (!tls.has('cert') || !tls.has('key'))
      throw new ConfigError('listen.tls', 'set cert and key (PEM files), or selfSigned: {dir: ...} for a development certificate');
    parsed = { kind: 'files', cert: tls.path('cert'), key: tls.path('key') };
  }
  return { host, port, tls: parsed, http2, ...pings };
}

/** How often an HTTP/2 peer is pinged and how long its answer may take: client-go's 30 s and 15 s unless set. */
function pingSeconds(r: Reader): { pingIntervalSeconds: number; pingTimeoutSeconds: number } {
  return { pingIntervalSeconds: r.num('pingIntervalSeconds', 30, 0.1, 3600), pingTimeoutSeconds: r.num('pingTimeoutSeconds', 15, 0.1, 600) };
}

function parseIssuer(r: Reader): IssuerConfig {
  r.keys([
    'issuer',
    'jwksUri',
    'audiences',
    'usernameClaim',
    'usernamePrefix',
    'groupsClaim',
    'groupsPrefix',
    'algorithms',
    'clockSkewSeconds',
    'maxTokenBytes',
    'jwksCooldownSeconds',
    'agent',
  ]);
  const issuer = r.str('issuer');
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new ConfigError('identity.issuers[].issuer', `"${issuer}" is not a URL`);
  }
  if (url.protocol !== 'https:' && !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
    throw new ConfigError('identity.issuers[].issuer', `"${issuer}" must use https (plain http is accepted only on loopback, for development)`);
  }
  const audiences = r.strings('audiences');
  if (audiences.length === 0) throw new ConfigError('identity.issuers[].audiences', 'must name at least one audience: the client ID tokens are issued for');
  const algorithms = r.strings('algorithms', ['RS256', 'ES256']);
  for (const alg of algorithms) {
    if (!ASYMMETRIC_ALGORITHMS.has(alg))
      throw new ConfigError(
        'identity.issuers[].algorithms',
        `"${alg}" is not allowed: only asymmetric algorithms (${[...ASYMMETRIC_ALGORITHMS].join(', ')}) can be verified with a public JWKS`,
      );
  }
  let agent: IssuerConfig['agent'];
  if (r.has('agent')) {
    const a = r.section('agent');
    a.keys(['claim', 'onBehalfOfClaim', 'sessionClaim', 'usernamePrefix']);
    agent = {
      claim: a.str('claim', 'agent'),
      onBehalfOfClaim: a.str('onBehalfOfClaim', 'on_behalf_of'),
      sessionClaim: a.str('sessionClaim', 'sid'),
      usernamePrefix: a.str('usernamePrefix', 'agent:'),
    };
  }
  const jwksUri = r.optStr('jwksUri');
  return {
    issuer,
    ...(jwksUri ? { jwksUri } : {}),
    audiences,
    usernameClaim: r.str('usernameClaim', 'email'),
    usernamePrefix: r.str('usernamePrefix', ''),
    groupsClaim: r.str('groupsClaim', 'groups'),
    groupsPrefix: r.str('groupsPrefix', ''),
    algorithms,
    clockSkewSeconds: r.num('clockSkewSeconds', 30, 0, 300),
    maxTokenBytes: r.num('maxTokenBytes', 16384, 512, 1 << 20),
    jwksCooldownSeconds: r.num('jwksCooldownSeconds', 30, 0, 3600),
    ...(agent ? { agent } : {}),
  };
}

/** policy.shadow: a folder of Rego, a policy.wasm or a bundle file, loaded once at start-up. */
function parseShadow(r: Reader): Exclude<PolicySource, { kind: 'opaServer' }> {
  r.keys(['dir', 'wasm', 'bundle', 'opa']);
  const set = ['dir', 'wasm', 'bundle'].filter((k) => r.has(k));
  if (set.length !== 1) throw new ConfigError('policy.shadow', 'set exactly one of dir (Rego), wasm (policy.wasm) or bundle (a .tar.gz file)');
  if (r.has('dir')) return { kind: 'rego', dir: r.path('dir'), opa: r.has('opa') ? r.path('opa') : toolPath('opa') };
  if (r.has('wasm')) return { kind: 'wasm', file: r.path('wasm') };
  return { kind: 'bundle', file: r.path('bundle') };
}

function parsePolicy(r: Reader): PolicySource {
  r.keys(['dir', 'wasm', 'bundle', 'data', 'opa', 'opaServer', 'verificationKeyFile', 'shadow']);
  if (r.has('verificationKeyFile') && !r.has('bundle'))
    throw new ConfigError('policy.verificationKeyFile', 'verifies a signed bundle: set policy.bundle (opa build -t wasm --signing-key …)');
  const set = ['dir', 'wasm', 'bundle', 'opaServer'].filter((k) => r.has(k));
  if (set.length !== 1)
    throw new ConfigError(
      'policy',
      'set exactly one of dir (Rego compiled at start-up), wasm (prebuilt policy.wasm), bundle (opa build output .tar.gz) or opaServer (URL of `opa run --server`)',
    );
  if (r.has('opaServer')) {
    const url = r.str('opaServer');
    if (!/^https?:\/\//.test(url)) throw new ConfigError('policy.opaServer', `"${url}" must be an http(s) URL, e.g. http://127.0.0.1:8181`);
    return { kind: 'opaServer', url };
  }
  const data = r.optPath('data');
  if (r.has('dir')) {
    const opa = r.has('opa') ? r.path('opa') : toolPath('opa');
    return { kind: 'rego', dir: r.path('dir'), opa, ...(data ? { data } : {}) };
  }
  if (r.has('wasm')) return { kind: 'wasm', file: r.path('wasm'), ...(data ? { data } : {}) };
  if (data) throw new ConfigError('policy.data', 'a bundle carries its own data.json; remove policy.data');
  const verificationKeyFile = r.optPath('verificationKeyFile');
  const signed = verificationKeyFile ? { verificationKeyFile } : {};
  if (!r.isMapping('bundle')) return { kind: 'bundle', file: r.path('bundle'), ...signed };
  // bundle: {url: https://…, pollSeconds: 60} or {file: …, pollSeconds: 10}
  const b = r.section('bundle');
  b.keys(['url', 'file', 'pollSeconds']);
  if (b.has('url') === b.has('file')) throw new ConfigError('policy.bundle', 'set exactly one of url (served over http(s), polled with If-None-Match) or file');
  const url = b.optStr('url');
  if (url !== undefined && !/^https?:\/\//.test(url)) throw new ConfigError('policy.bundle.url', `"${url}" must be an http(s) URL`);
  return { kind: 'bundle', file: url ?? b.path('file'), pollSeconds: b.num('pollSeconds', 60, 1, 86_400), ...signed };
}

function parseUpstream(r: Reader): Config['upstream'] {
  r.keys([
    'kubeconfig',
    'context',
    'inCluster',
    'connectTimeoutSeconds',
    'headersTimeoutSeconds',
    'requestTimeoutSeconds',
    'http2',
    'pingIntervalSeconds',
    'pingTimeoutSeconds',
  ]);
  const timeouts = {
    http2: r.bool('http2', true),
    ...pingSeconds(r),
    connectTimeoutSeconds: r.num('connectTimeoutSeconds', 5, 0.1, 120),
    headersTimeoutSeconds: r.num('headersTimeoutSeconds', 60, 1, 3600),
    requestTimeoutSeconds: r.num('requestTimeoutSeconds', 300, 1, 86400),
  };
  // inCluster: true, or {serviceAccountDir: …} where the service account is mounted elsewhere.
  if (r.isMapping('inCluster') || r.bool('inCluster', false)) {
    if (r.has('kubeconfig')) throw new ConfigError('upstream', 'set either kubeconfig or inCluster: true, not both');
    if (!r.isMapping('inCluster')) return { kind: 'inCluster', ...timeouts };
    const ic = r.section('inCluster');
    ic.keys(['serviceAccountDir']);
    return { kind: 'inCluster', serviceAccountDir: ic.path('serviceAccountDir'), ...timeouts };
  }
  if (!r.has('kubeconfig')) throw new ConfigError('upstream.kubeconfig', "is required: the gateway's own kubeconfig (or set inCluster: true)");
  const context = r.optStr('context');
  return { kind: 'kubeconfig', file: r.path('kubeconfig'), ...(context ? { context } : {}), ...timeouts };
}

function secret(r: Reader, key: string, option: string): string | undefined {
  // Secrets come from a file, so the config itself can be shared and logged.
  if (r.has(key) && r.has(`${key}File`)) throw new ConfigError(option, `set ${key} or ${key}File, not both`);
  if (r.has(`${key}File`)) {
    const file = r.path(`${key}File`);
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(`${option}File`, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return r.optStr(key);
}

function parseMode(r: Reader, key: string, fallback: 'hold' | 'refuse'): 'hold' | 'refuse' {
  const v = r.str(key, fallback);
  if (v !== 'hold' && v !== 'refuse')
    throw new ConfigError(
      `approvals.mode.${key}`,
      `must be hold (the request waits for the decision) or refuse (403 at once, with how to get approval), not "${v}"`,
    );
  return v;
}

function parsePostgres(r: Reader, option: string): { url: string } {
  r.keys(['url', 'urlFile']);
  const url = secret(r, 'url', `${option}.url`);
  if (!url || !/^postgres(ql)?:\/\//.test(url)) throw new ConfigError(option, 'set url or urlFile to a postgres:// connection URL');
  return { url };
}

function parseApprovals(r: Reader, issuers: readonly IssuerConfig[], shared: Config['store']): ApprovalsConfig {
  r.keys(['store', 'mode', 'holdSeconds', 'maxTtlSeconds', 'publicUrl', 'sweepSeconds', 'webhook', 'web']);
  let parsedStore: ApprovalsConfig['store'];
  if (shared) {
    if (r.has('store')) throw new ConfigError('approvals.store', 'store.postgres is set: approvals live there; remove approvals.store');
    parsedStore = { kind: 'postgres', url: shared.postgres.url };
  } else {
    const store = r.section('store');
    store.keys(['sqlite', 'postgres']);
    if (store.has('sqlite') === store.has('postgres'))
      throw new ConfigError(
        'approvals.store',
        'set exactly one of sqlite: FILE (one gateway) or postgres: {url or urlFile} (several replicas; or store.postgres for approvals and recordings)',
      );
    parsedStore = store.has('sqlite')
      ? { kind: 'sqlite', file: store.path('sqlite') }
      : { kind: 'postgres', ...parsePostgres(store.section('postgres'), 'approvals.store.postgres') };
  }
  const mode = r.section('mode', false);
  mode.keys(['agents', 'people']);
  const publicUrl = r.optStr('publicUrl')?.replace(/\/+$/, '');
  if (publicUrl !== undefined && !/^https?:\/\//.test(publicUrl)) throw new ConfigError('approvals.publicUrl', `"${publicUrl}" must be an http(s) URL`);
  let webhook: ApprovalsConfig['webhook'];
  if (r.has('webhook')) {
    const w = r.section('webhook');
    w.keys(['url', 'urlFile', 'timeoutSeconds', 'retries', 'backoffSeconds']);
    const url = secret(w, 'url', 'approvals.webhook.url');
    if (!url || !/^https?:\/\//.test(url)) throw new ConfigError('approvals.webhook', 'set url or urlFile to the http(s) URL that receives the POST');
    webhook = {
      url,
      timeoutSeconds: w.num('timeoutSeconds', 5, 0.1, 60),
      retries: w.num('retries', 3, 0, 10),
      backoffSeconds: w.num('backoffSeconds', 1, 0, 60),
    };
  }
  let web: ApprovalsConfig['web'];
  if (r.has('web')) {
    const w = r.section('web');
    w.keys(['issuer', 'clientId', 'clientSecret', 'clientSecretFile', 'sessionMinutes', 'cookieKeyFile']);
    const issuer = w.str('issuer', issuers[0]?.issuer);
    const configured = issuers.find((i) => i.issuer === issuer);
    if (!configured)
      throw new ConfigError('approvals.web.issuer', `"${issuer}" is not one of identity.issuers; the web login's ID token is verified like any bearer token`);
    const clientId = w.str('clientId');
    if (!configured.audiences.includes(clientId))
      throw new ConfigError(
        'approvals.web.clientId',
        `"${clientId}" must be one of the issuer's audiences (${configured.audiences.join(', ')}): the ID token's audience is the client ID`,
      );
    const clientSecret = secret(w, 'clientSecret', 'approvals.web.clientSecret');
    const cookieKeyFile = w.optPath('cookieKeyFile');
    web = {
      issuer,
      clientId,
      ...(clientSecret ? { clientSecret } : {}),
      sessionMinutes: w.num('sessionMinutes', 60, 1, 24 * 60),
      ...(cookieKeyFile ? { cookieKeyFile } : {}),
    };
  }
  return {
    store: parsedStore,
    mode: { agents: parseMode(mode, 'agents', 'hold'), people: parseMode(mode, 'people', 'refuse') },
    holdSeconds: r.num('holdSeconds', 600, 1, 24 * 3600),
    maxTtlSeconds: r.num('maxTtlSeconds', 7 * 24 * 3600, 1, 7 * 24 * 3600),
    ...(publicUrl ? { publicUrl } : {}),
    sweepSeconds: r.num('sweepSeconds', 5, 0.1, 3600),
    ...(webhook ? { webhook } : {}),
    ...(web ? { web } : {}),
  };
}

export function parseConfig(doc: unknown, base: string): Config {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ConfigError('(top level)', 'the config must be a YAML mapping');
  const r = new Reader(base, doc as Obj, '');
  r.keys(['listen', 'upstream', 'identity', 'policy', 'audit', 'limits', 'cluster', 'masking', 'approvals', 'recording', 'metrics', 'store']);
  let store: Config['store'];
  if (r.has('store')) {
    const sr = r.section('store');
    sr.keys(['postgres']);
    store = { postgres: parsePostgres(sr.section('postgres'), 'store.postgres') };
  }
  const recording = r.section('recording', false);
  recording.keys(['dir', 'failOpen']);
  const masking = r.section('masking', false);
  masking.keys(['hashKeyFile', 'maxHoldBytes']);
  const hashKeyFile = masking.optPath('hashKeyFile');
  const identity = r.section('identity');
  identity.keys(['issuers']);
  const limits = r.section('limits', false);
  limits.keys(['maxBodyBytes', 'policyBodyBytes', 'shutdownGraceSeconds', 'maxLongRunningPerUser']);
  const maxBodyBytes = limits.num('maxBodyBytes', 3 * 1024 * 1024, 1024, 64 * 1024 * 1024);
  const policyBodyBytes = limits.num('policyBodyBytes', 1024 * 1024, 0, maxBodyBytes);
  const audit = r.section('audit');
  audit.keys(['file', 'stdout', 'webhook', 'checkpoint']);
  const auditFile = audit.optPath('file');
  let checkpoint: { keyFile: string; everySeconds: number } | undefined;
  if (audit.has('checkpoint')) {
    const c = audit.section('checkpoint');
    c.keys(['keyFile', 'everySeconds']);
    if (!auditFile) throw new ConfigError('audit.checkpoint', 'checkpoints seal the audit file: set audit.file');
    checkpoint = { keyFile: c.path('keyFile'), everySeconds: c.num('everySeconds', 60, 1, 86_400) };
  }
  let webhook: AuditWebhookConfig | undefined;
  if (audit.has('webhook')) {
    const w = audit.section('webhook');
    w.keys(['kubeconfig', 'bufferDir', 'bufferMaxBytes', 'batchMaxSize', 'timeoutSeconds', 'backoffSeconds']);
    if (!w.has('bufferDir') && !auditFile) throw new ConfigError('audit.webhook.bufferDir', 'is required when audit.file is not set');
    webhook = {
      kubeconfig: w.path('kubeconfig'),
      bufferDir: w.has('bufferDir') ? w.path('bufferDir') : join(dirname(auditFile!), 'audit-webhook'),
      bufferMaxBytes: w.num('bufferMaxBytes', 256 * 1024 * 1024, 64 * 1024, 64 * 1024 * 1024 * 1024),
      batchMaxSize: w.num('batchMaxSize', 400, 1, 10_000),
      timeoutSeconds: w.num('timeoutSeconds', 30, 1, 600),
      backoffSeconds: w.num('backoffSeconds', 1, 0.01, 60),
    };
  }
  const auditStdout = audit.bool('stdout', false);
  if (!auditFile && !auditStdout && !audit.has('webhook'))
    throw new ConfigError('audit', 'set file (a JSON-lines file), stdout: true (for a log shipper), webhook (an audit webhook receiver), or several');
  if (store && recording.has('dir'))
    throw new ConfigError('recording.dir', 'store.postgres is set: recordings live there, where every replica can play them; remove recording.dir');
  if (!store && !auditFile && !recording.has('dir'))
    throw new ConfigError('recording.dir', 'is required when audit.file is not set (recordings are kept beside the audit file by default)');
  const issuers = identity.list('issuers').map(parseIssuer);
  return {
    listen: parseListen(r.section('listen', false)),
    upstream: parseUpstream(r.section('upstream')),
    identity: { issuers },
    policy: parsePolicy(r.section('policy')),
    ...(r.section('policy').has('shadow') ? { shadow: parseShadow(r.section('policy').section('shadow')) } : {}),
    audit: { ...(auditFile ? { file: auditFile } : {}), stdout: auditStdout, ...(webhook ? { webhook } : {}), ...(checkpoint ? { checkpoint } : {}) },
    ...(r.has('metrics') ? { metrics: parseMetrics(r.section('metrics')) } : {}),
    recording: {
      keep: store ? { kind: 'postgres' } : { kind: 'files', dir: recording.has('dir') ? recording.path('dir') : join(dirname(auditFile!), 'recordings') },
      failOpen: recording.bool('failOpen', false),
    },
    ...(store ? { store } : {}),
    masking: { ...(hashKeyFile ? { hashKeyFile } : {}), maxHoldBytes: masking.num('maxHoldBytes', 4 * 1024 * 1024, 1024, 256 * 1024 * 1024) },
    limits: {
      maxBodyBytes,
      policyBodyBytes,
      shutdownGraceSeconds: limits.num('shutdownGraceSeconds', 20, 0, 600),
      // A busy controller holds a few hundred watches (one per kind it follows); kube-apiserver lets one HTTP/2 connection carry 1000.
      maxLongRunningPerUser: limits.num('maxLongRunningPerUser', 1000, 1, 1_000_000),
    },
    cluster: r.str('cluster', 'default'),
    ...(r.has('approvals') ? { approvals: parseApprovals(r.section('approvals'), issuers, store) } : {}),
  };
}

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('--config', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError('--config', `${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  return parseConfig(doc, dirname(resolve(file)));
}
