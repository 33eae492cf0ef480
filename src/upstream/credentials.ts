/**
 * The gateway's own cluster credentials, loaded once from a kubeconfig (or the
 * in-cluster service account) with @kubernetes/client-node. They go into the
 * upstream connection and its Authorization header, and nowhere else.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cluster, User } from '@kubernetes/client-node';
import { ConfigError } from '../errors.js';

/** client-node types a user's auth provider as `any`; this is the part read here. */
interface AuthProvider {
  readonly name: string;
  readonly config: Record<string, unknown>;
}

export interface UpstreamTarget {
  readonly server: string;
  readonly tls: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer; readonly rejectUnauthorized: boolean; readonly servername?: string };
  readonly authorization?: () => string;
}

/** Where a pod finds its service account (tests point it elsewhere). */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export type UpstreamSource =
  { readonly kind: 'kubeconfig'; readonly file: string; readonly context?: string } | { readonly kind: 'inCluster'; readonly serviceAccountDir?: string };

/**
 * The projected service-account token, re-read when the kubelet rotates it:
 * the file is checked at most once a second (the kubelet swaps a symlink, so
 * its inode and mtime change), never read per request.
 */
export function rotatingToken(file: string, now: () => number = Date.now): () => string {
  let header = '';
  let stamp = '';
  let checkedAt = -Infinity;
  return () => {
    if (now() - checkedAt >= 1000) {
      checkedAt = now();
      const st = statSync(file);
      const next = `${st.ino}:${st.mtimeMs}:${st.size}`;
      if (next !== stamp) {
        header = `Bearer ${readFileSync(file, 'utf8').trim()}`;
        stamp = next;
      }
    }
    return header;
  };
}

/**
 * In-cluster: exactly what a pod has — KUBERNETES_SERVICE_HOST/PORT, and the
 * service account's token and CA in `dir`. No kubeconfig, no client library.
 */
export function inClusterTarget(dir: string = SERVICE_ACCOUNT_DIR, env: NodeJS.ProcessEnv = process.env): UpstreamTarget {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'];
  if (!host || !port)
    throw new ConfigError('upstream.inCluster', 'KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: this is not a pod (use upstream.kubeconfig)');
  let ca: Buffer;
  try {
    ca = readFileSync(join(dir, 'ca.crt'));
    // Read once now, so a missing token stops start-up instead of the first request.
    statSync(join(dir, 'token'));
  } catch (err) {
    throw new ConfigError(
      'upstream.inCluster',
      `the service account is not mounted at ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  const authorization = rotatingToken(join(dir, 'token'));
  authorization();
  return { server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`, tls: { ca, rejectUnauthorized: true }, authorization };
}

const KUBECONFIG_CHILD = fileURLToPath(new URL('./kubeconfig-child.js', import.meta.url));

/**
 * The current context's cluster and user, read by client-node in a child
 * process (kubeconfig-child.ts): the library stays out of the gateway's memory.
 * Only the child's own error message is passed on, never its output.
 */
function readKubeconfig(file: string, context: string | undefined, option: string): { cluster: Cluster | null; user: User | null } {
  let answer: { cluster: Cluster | null; user: User | null } | { error: string };
  try {
    const out = execFileSync(process.execPath, [KUBECONFIG_CHILD, file, ...(context ? [context] : [])], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      maxBuffer: 64 * 1024 * 1024,
    });
    answer = JSON.parse(out) as typeof answer;
  } catch (err) {
    throw new ConfigError(
      option,
      `cannot load it: the kubeconfig reader failed (${(err as NodeJS.ErrnoException).code ?? (err as { status?: number }).status ?? 'no answer'})`,
    );
  }
  if ('error' in answer) throw new ConfigError(option, `cannot load it: ${answer.error}`);
  return answer;
}

function data(inline: string | undefined, file: string | undefined): Buffer | undefined {
  if (inline) return Buffer.from(inline, 'base64');
  if (file) return readFileSync(file);
  return undefined;
}

/**
 * `as` names the option in messages; `anonymous` allows a user with no
 * credentials (an audit webhook receiver may not ask for any).
 */
export function loadUpstream(source: UpstreamSource, opts: { readonly as?: string; readonly anonymous?: boolean } = {}): UpstreamTarget {
  if (source.kind === 'inCluster') return inClusterTarget(source.serviceAccountDir);
  const option = opts.as ?? 'upstream.kubeconfig';
  const { cluster, user } = readKubeconfig(source.file, source.context, option);
  if (!cluster || !user) throw new ConfigError(option, 'the current context names no cluster or no user: set upstream.context');
  if (user.exec) throw new ConfigError(option, `user ${user.name} uses an exec credential plugin; give the gateway a token or a client certificate`);
  if (user.username || user.password)
    throw new ConfigError(option, `user ${user.name} uses basic auth, which Kubernetes removed; use a token or a client certificate`);

  let authorization: (() => string) | undefined;
  if (user.token) {
    const header = `Bearer ${user.token}`;
    authorization = () => header;
  } else if ((user.authProvider as AuthProvider | undefined)?.name === 'tokenFile') {
    // In-cluster: kubelet rotates the projected token; re-read it once a minute.
    const file = String((user.authProvider as AuthProvider).config['tokenFile']);
    let cached = '';
    let readAt = 0;
    authorization = () => {
      if (Date.now() - readAt > 60_000) {
        cached = `Bearer ${readFileSync(file, 'utf8').trim()}`;
        readAt = Date.now();
      }
      return cached;
    };
  }
  const cert = data(user.certData, user.certFile);
  const key = data(user.keyData, user.keyFile);
  if (!authorization && !(cert && key) && !opts.anonymous) throw new ConfigError(option, `user ${user.name} has neither a token nor a client certificate`);
  const ca = data(cluster.caData, cluster.caFile);
  return {
    server: cluster.server.replace(/\/$/, ''),
    tls: {
      ...(ca ? { ca } : {}),
      ...(cert && key ? { cert, key } : {}),
      rejectUnauthorized: !cluster.skipTLSVerify,
      ...(cluster.tlsServerName ? { servername: cluster.tlsServerName } : {}),
    },
    ...(authorization ? { authorization } : {}),
  };
}
