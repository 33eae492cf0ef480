/**
 * The Helm chart (charts/gatehouse), with Helm v3 built from Go modules by
 * scripts/tools.sh: it lints, renders for the default and the HA values, its
 * gatehouse.yaml is one the gateway's own config parser accepts, and the
 * rendered manifests are accepted by the test bed's real kube-apiserver
 * (`kubectl apply --dry-run=server`) in a namespace that enforces the
 * "restricted" Pod Security Standard, with no warning.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/config.js';
import { projectRoot } from '../../src/paths.js';
import { kubectl, run } from '../support/run.js';
import { testbed } from './hooks.js';

const HELM = join(projectRoot, '.tools/helm');
const CHART = join(projectRoot, 'charts/gatehouse');
const NS = 'gatehouse-chart';

interface Manifest {
  kind: string;
  metadata: { name: string };
  [key: string]: unknown;
}

/** The CRDs the HA values use, reduced to their names: the test bed has no cert-manager or Prometheus Operator. */
const CRDS = [
  { group: 'monitoring.coreos.com', kind: 'ServiceMonitor', plural: 'servicemonitors' },
  { group: 'cert-manager.io', kind: 'Certificate', plural: 'certificates' },
].map((c) => ({
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `${c.plural}.${c.group}` },
  spec: {
    group: c.group,
    scope: 'Namespaced',
    names: { kind: c.kind, plural: c.plural, singular: c.kind.toLowerCase(), listKind: `${c.kind}List` },
    versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
  },
}));

describe('Helm chart charts/gatehouse (helm v3.22.0, kube-apiserver v1.35.4)', function () {
  this.timeout(120_000);
  const admin = (args: string[], input?: string) => kubectl(testbed().kubeconfigs.admin, args, input);
  const helm = (args: string[]) => run(HELM, args);
  const template = async (extra: string[] = []) => {
    const r = await helm(['template', 'gh', CHART, '--namespace', NS, '--kube-version', '1.35.4', ...extra]);
    assert.equal(r.code, 0, r.stderr);
    return { text: r.stdout, docs: parseAllDocuments(r.stdout).map((d) => d.toJS() as Manifest) };
  };
  const HA = ['-f', join(CHART, 'ci/ha-values.yaml')];

  before(async () => {
    await admin(['create', 'namespace', NS]);
    // Pods here must meet the "restricted" standard; a server dry run of a Deployment warns when its template does not.
    await admin(['label', 'namespace', NS, 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/warn=restricted', '--overwrite']);
    const crds = await admin(['apply', '-f', '-'], CRDS.map((c) => JSON.stringify(c)).join('\n'));
    assert.equal(crds.code, 0, crds.stderr);
    await admin(['wait', '--for=condition=Established', ...CRDS.map((c) => `crd/${c.metadata.name}`), '--timeout=30s']);
  });
  after(async () => {
    await admin(['delete', 'namespace', NS, '--wait=false', '--ignore-not-found']);
    await admin(['delete', ...CRDS.map((c) => `crd/${c.metadata.name}`), '--ignore-not-found']);
  });

  it('helm lint passes for the default and the HA values', async () => {
    for (const extra of [[], HA]) {
      const r = await helm(['lint', '--strict', CHART, ...extra]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  for (const [name, extra] of [
    ['default', []],
    ['HA', HA],
  ] as const) {
    it(`${name} values: the rendered manifests are accepted by the API server (dry run, restricted Pod Security, no warning)`, async () => {
      const { text } = await template([...extra]);
      const r = await admin(['apply', '--dry-run=server', '-n', NS, '-f', '-'], text);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /Warning|would violate PodSecurity/);
      assert.match(r.stdout, /deployment\.apps\/gh-gatehouse created \(server dry run\)/);
    });

    it(`${name} values: the rendered gatehouse.yaml is a config the gateway accepts`, async () => {
      const { docs } = await template([...extra]);
      const cm = docs.find((d) => d.kind === 'ConfigMap')!;
      const text = (cm['data'] as Record<string, string>)['gatehouse.yaml']!;
      // The mounted files, under a folder of our own: the parser reads secret files (urlFile) as it goes.
      const root = mkdtempSync(join(tmpdir(), 'gatehouse-chart-'));
      try {
        mkdirSync(join(root, 'postgres'), { recursive: true });
        writeFileSync(join(root, 'postgres/url'), 'postgres://gatehouse:pw@db:5432/gatehouse\n');
        const config = parseConfig((parseAllDocuments(text.replaceAll('/etc/gatehouse/', `${root}/`))[0]!.toJS() as unknown) ?? {}, join(root, 'config'));
        assert.deepEqual(config.upstream.kind, 'inCluster');
        assert.equal(config.listen.port, 8443);
        assert.equal(config.limits.shutdownGraceSeconds, 20);
        if (name === 'HA') {
          assert.deepEqual(config.recording.keep, { kind: 'postgres' });
          assert.equal(config.approvals?.store.kind, 'postgres');
          assert.ok(config.approvals?.web, 'the web page is on');
        } else {
          assert.deepEqual(config.recording.keep, { kind: 'files', dir: '/var/lib/gatehouse/recordings' });
          assert.equal(config.approvals?.store.kind, 'sqlite');
        }
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  }

  it('HA values: three replicas that drain before they go, spread, disruption-budgeted, restricted, impersonating only', async () => {
    const { docs } = await template(HA);
    const kinds = docs.map((d) => d.kind).sort();
    assert.deepEqual(kinds, [
      'Certificate',
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'Deployment',
      'PodDisruptionBudget',
      'Secret',
      'Service',
      'ServiceAccount',
      'ServiceMonitor',
    ]);
    const deployment = docs.find((d) => d.kind === 'Deployment') as unknown as {
      spec: {
        replicas: number;
        strategy: { rollingUpdate: { maxUnavailable: number } };
        template: {
          spec: {
            terminationGracePeriodSeconds: number;
            topologySpreadConstraints: unknown[];
            containers: {
              lifecycle: { preStop: { sleep: { seconds: number } } };
              env?: { name: string; value: string }[];
              securityContext: { readOnlyRootFilesystem: boolean; allowPrivilegeEscalation: boolean };
              readinessProbe: { httpGet: { path: string } };
              livenessProbe: { httpGet: { path: string } };
            }[];
          };
        };
      };
    };
    const pod = deployment.spec.template.spec;
    const c = pod.containers[0]!;
    assert.equal(deployment.spec.replicas, 3);
    assert.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0);
    assert.equal(c.lifecycle.preStop.sleep.seconds, 5);
    assert.deepEqual(c.env, [{ name: 'NODE_OPTIONS', value: '--max-semi-space-size=2' }]);
    assert.equal(pod.terminationGracePeriodSeconds, 5 + 20 + 5, 'preStop + drain + margin');
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.equal(pod.topologySpreadConstraints.length, 1);
    const role = docs.find((d) => d.kind === 'ClusterRole') as unknown as { rules: { verbs: string[]; resources: string[] }[] };
    assert.deepEqual([...new Set(role.rules.flatMap((r) => r.verbs))], ['impersonate']);
    assert.deepEqual(
      role.rules.flatMap((r) => r.resources),
      ['users', 'groups', 'userextras/gatehouse.dev/agent', 'userextras/gatehouse.dev/on-behalf-of', 'userextras/gatehouse.dev/session'],
    );
  });

  it('refuses values that cannot work, at render time: replicas without PostgreSQL, values outside the schema', async () => {
    const noPg = await helm(['template', 'gh', CHART, '--kube-version', '1.35.4', '--set', 'replicaCount=3']);
    assert.notEqual(noPg.code, 0);
    assert.match(noPg.stderr, /replicaCount > 1 needs postgres.url or postgres.existingSecret/);
    const badSource = await helm(['template', 'gh', CHART, '--kube-version', '1.35.4', '--set', 'policy.source=git']);
    assert.notEqual(badSource.code, 0);
    assert.match(badSource.stderr, /values don't meet the specifications of the schema/);
    assert.match(badSource.stderr, /'\/policy\/source': value must be one of 'image', 'configMap', 'bundle'/);
    const noIssuer = await helm(['template', 'gh', CHART, '--kube-version', '1.35.4', '--set', 'identity.issuers=null']);
    assert.notEqual(noIssuer.code, 0);
    // Node options that load code (--require, --import take a path) are not what this value is for.
    const loads = await helm(['template', 'gh', CHART, '--kube-version', '1.35.4', '--set', 'nodeOptions=--require /tmp/x.js']);
    assert.notEqual(loads.code, 0);
    assert.match(loads.stderr, /nodeOptions/);
  });
});
