/**
 * The gateway's own cluster credentials, loaded once from a kubeconfig (or the
 * in-cluster service account) with @kubernetes/client-node. They go into the
 * upstream connection and its Authorization header, and nowhere else.
 */
import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
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

export type UpstreamSource = { readonly kind: 'kubeconfig'; readonly file: string; readonly context?: string } | { readonly kind: 'inCluster' };

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
  const kc = new KubeConfig();
  const option = opts.as ?? (source.kind === 'kubeconfig' ? 'upstream.kubeconfig' : 'upstream.inCluster');
  try {
    if (source.kind === 'kubeconfig') {
      kc.loadFromFile(source.file);
      if (source.context) kc.setCurrentContext(source.context);
    } else kc.loadFromCluster();
  } catch (err) {
    throw new ConfigError(option, `cannot load it: ${(err as Error).message}`);
  }
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
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
