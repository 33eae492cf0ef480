/**
 * The identities and the small world the test bed seeds. Tests, the demo and
 * the benchmarks all name these, so they live in one place.
 */

/** Identities in the API server's static token file. */
export const IDENTITIES = [
  { name: 'admin', user: 'testbed-admin', groups: ['system:masters'] },
  // The gateway's own identity: RBAC lets it impersonate and nothing else.
  { name: 'gateway', user: 'gatehouse-gateway', groups: [] },
] as const;
export type TestIdentity = (typeof IDENTITIES)[number];

/** People and agents of the test world, reached through impersonation (and OIDC in the demo). */
export const PEOPLE = {
  alice: { user: 'alice@example.com', groups: ['dev'] },
  bob: { user: 'bob@example.com', groups: ['admins'] },
  carol: { user: 'carol@example.com', groups: ['security'] },
  dave: { user: 'dave@example.com', groups: [] as string[] },
  agent: { user: 'agent:deploy-bot', groups: ['agents'], onBehalfOf: 'alice@example.com' },
} as const;

/** The namespace-scoped resources the seeded roles cover. */
const CORE = ['pods', 'pods/log', 'pods/exec', 'pods/attach', 'pods/portforward', 'configmaps', 'secrets', 'services', 'serviceaccounts', 'serviceaccounts/token', 'events'];
const APPS = ['deployments', 'replicasets', 'statefulsets', 'daemonsets'];

/** The test bed's one node: a stand-in kubelet on loopback (testbed/kubelet) serves its pods' logs. */
export const NODE_NAME = 'testbed-node';

export function nodeStatus(kubeletPort: number) {
  return {
    status: {
      addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
      daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } },
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'stand-in kubelet', lastHeartbeatTime: new Date().toISOString(), lastTransitionTime: new Date().toISOString() }],
    },
  };
}

/** A running pod, as a kubelet would report it: kubectl exec and port-forward check the phase. */
export function podStatus() {
  const now = new Date().toISOString();
  return {
    status: {
      phase: 'Running',
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now }],
      containerStatuses: [{ name: 'web', image: 'registry.example/web:1.0', imageID: '', ready: true, restartCount: 0, started: true, state: { running: { startedAt: now } } }],
    },
  };
}

/** A value that tests grep for: it must never leave the gateway unmasked. */
export function canary(namespace: string, key: string): string {
  return `GATEHOUSE-CANARY-${namespace}-${key}`;
}

function role(name: string, verbs: readonly string[]) {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name },
    rules: [
      { apiGroups: [''], resources: CORE, verbs },
      { apiGroups: ['apps'], resources: APPS, verbs },
    ],
  };
}

function binding(namespace: string | undefined, name: string, roleName: string, group: string) {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: namespace ? 'RoleBinding' : 'ClusterRoleBinding',
    metadata: namespace ? { name, namespace } : { name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: roleName },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: group }],
  };
}

/** The namespaces the test world seeds, each with the same workloads. */
export const NAMESPACES = ['dev', 'prod'] as const;

function workloads(namespace: string) {
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels: { 'gatehouse.dev/env': namespace } } },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'app-config', namespace },
      data: { LOG_LEVEL: 'info', FEATURE_FLAGS: 'search,checkout' },
    },
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db-credentials', namespace },
      type: 'Opaque',
      stringData: { username: 'app', password: canary(namespace, 'db-password') },
    },
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'api-token', namespace },
      type: 'Opaque',
      stringData: { token: canary(namespace, 'api-token') },
    },
    // Bound to the test bed's node directly: no scheduler runs.
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-0', namespace, labels: { app: 'web' } }, spec: { nodeName: NODE_NAME, containers: [{ name: 'web', image: 'registry.example/web:1.0' }] } },
    // No controller-manager runs, so no `default` ServiceAccount appears on its own.
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'ci', namespace } },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace, labels: { app: 'web' } },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: {
            containers: [
              {
                name: 'web',
                image: 'registry.example/web:1.0',
                env: [
                  { name: 'LOG_LEVEL', value: 'info' },
                  { name: 'DB_PASSWORD', value: canary(namespace, 'env-password') },
                ],
              },
            ],
          },
        },
      },
    },
  ];
}

/**
 * RBAC is deliberately wider than the bundled policy (dev may read Secrets in
 * prod, agents may edit prod): the tests must show that the gateway's policy,
 * not RBAC, is what stops or masks a request.
 */
export function worldManifests(): object[] {
  return [
    { apiVersion: 'v1', kind: 'Node', metadata: { name: NODE_NAME, labels: { 'kubernetes.io/hostname': NODE_NAME } } },
    ...NAMESPACES.flatMap(workloads),
    role('testbed:edit', ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection']),
    role('testbed:read', ['get', 'list', 'watch']),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'testbed:impersonator' },
      rules: [
        { apiGroups: [''], resources: ['users', 'groups'], verbs: ['impersonate'] },
        { apiGroups: ['authentication.k8s.io'], resources: ['userextras/gatehouse.dev/agent', 'userextras/gatehouse.dev/on-behalf-of', 'userextras/gatehouse.dev/session'], verbs: ['impersonate'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'testbed:gateway-impersonates' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'testbed:impersonator' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'gatehouse-gateway' }],
    },
    binding('dev', 'dev-edit', 'testbed:edit', 'dev'),
    binding('prod', 'dev-read', 'testbed:read', 'dev'),
    binding('dev', 'agents-edit', 'testbed:edit', 'agents'),
    binding('prod', 'agents-edit', 'testbed:edit', 'agents'),
    binding(undefined, 'security-read', 'testbed:read', 'security'),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'admins-cluster-admin' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'admins' }],
    },
  ];
}
