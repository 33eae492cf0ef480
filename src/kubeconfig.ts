import { stringify } from 'yaml';

/** How a kubeconfig user authenticates: a static bearer token or an exec credential plugin. */
export type KubeconfigAuth =
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'exec'; readonly command: string; readonly args: readonly string[]; readonly env?: Readonly<Record<string, string>> };

export interface KubeconfigSpec {
  readonly name: string;
  readonly server: string;
  /** PEM of the CA that signed the server's certificate. */
  readonly caPem: string;
  readonly user: string;
  readonly auth: KubeconfigAuth;
  readonly namespace?: string;
}

/** Renders a single-context kubeconfig that stock kubectl and client libraries accept. */
export function renderKubeconfig(spec: KubeconfigSpec): string {
  const user =
    spec.auth.kind === 'token'
      ? { token: spec.auth.token }
      : {
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1',
            command: spec.auth.command,
            args: [...spec.auth.args],
            env: Object.entries(spec.auth.env ?? {}).map(([name, value]) => ({ name, value })),
            interactiveMode: 'Never',
            provideClusterInfo: false,
          },
        };
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: spec.name, cluster: { server: spec.server, 'certificate-authority-data': Buffer.from(spec.caPem).toString('base64') } }],
    users: [{ name: spec.user, user }],
    contexts: [{ name: spec.name, context: { cluster: spec.name, user: spec.user, ...(spec.namespace ? { namespace: spec.namespace } : {}) } }],
    'current-context': spec.name,
    preferences: {},
  });
}
