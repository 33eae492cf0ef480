/**
 * Risk-based approvals end to end: kubectl 1.32 as alice (group dev) → Gatehouse
 * (bundled policy, SQLite approvals) → kube-apiserver v1.35.4. Every way kubectl
 * writes a privileged workload — create, apply (new and changed), patch
 * (strategic, merge, JSON), replace, set, run, debug — is judged on the object
 * the API server would store (a dry run as alice), refused with the approval
 * security must give, and leaves the cluster as it was.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEvent, AuditRecord } from '../../src/audit/event.js';
import { createMemoryAuditWriter } from '../../src/audit/writer.js';
import { startDemo, type RunningDemo } from '../../src/demo/demo.js';
import { runRoot } from '../../src/paths.js';
import { approvalsCli } from '../support/approvals.js';
import { kubectl, type Ran } from '../support/run.js';
import { waitFor } from '../support/wait.js';
import { testbed } from './hooks.js';

const NS = 'dev';
const LABEL = 'gatehouse-test=risky';
const APPROVAL = /approval (ap-[a-z0-9]+) by a member of security is pending/;
const WHY = 'pod specs with privileges or host access need approval from group security';

interface PodSpec {
  containers: { name: string; image: string; securityContext?: Record<string, unknown> }[];
  [field: string]: unknown;
}

function deployment(name: string, spec: Partial<PodSpec> = {}) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS, labels: { 'gatehouse-test': 'risky' } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }], ...spec } },
    },
  };
}

describe('risky workloads (kubectl → Gatehouse → kube-apiserver v1.35.4): privileged pod specs need security, judged on the resulting object', function () {
  this.timeout(120_000);
  let demo: RunningDemo;
  const audit: AuditRecord[] = [];
  const dir = join(runRoot, `test-${process.pid}`, 'risky');

  const admin = (args: string[], input?: string) => kubectl(testbed().kubeconfigs.admin, args, input);
  const alice = (args: string[], input?: string) => kubectl(demo.kubeconfigs.alice, ['-n', NS, ...args], input);
  const file = (name: string, obj: object) => {
    const path = join(dir, `${name}.json`);
    writeFileSync(path, JSON.stringify(obj));
    return path;
  };
  const state = async (name: string) => {
    const r = await admin(['get', 'deployment', name, '-n', NS, '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const d = JSON.parse(r.stdout) as { metadata: { resourceVersion: string }; spec: { template: { spec: unknown } } };
    return { resourceVersion: d.metadata.resourceVersion, podSpec: d.spec.template.spec };
  };
  const absent = async (kind: string, name: string) => assert.match((await admin(['get', kind, name, '-n', NS])).stderr, /NotFound/, `${kind}/${name} exists`);

  /** Refused with an approval for security whose reason names the field; returns the approval's id. */
  function heldForSecurity(r: Ran, finding: string | RegExp): string {
    assert.equal(r.code, 1, `kubectl succeeded: ${r.stdout}`);
    assert.match(r.stderr, /this request needs approval: approval ap-/);
    const reason = typeof finding === 'string' ? `${WHY}: ${finding}` : finding;
    assert.ok(typeof reason === 'string' ? r.stderr.includes(reason) : reason.test(r.stderr), `the reason names the field:\n${r.stderr}`);
    return APPROVAL.exec(r.stderr)![1]!;
  }

  before(async function () {
    this.timeout(120_000);
    mkdirSync(dir, { recursive: true });
    await admin(['delete', 'deployments,pods', '-n', NS, '-l', LABEL, '--ignore-not-found', '--wait=false']);
    demo = await startDemo({ dir, testbed: testbed(), audit: createMemoryAuditWriter((e) => audit.push(e)) });
    // Made by the admin straight at the API server: one plain, one already privileged.
    assert.equal((await admin(['apply', '-f', '-'], JSON.stringify(deployment('risky-web')))).code, 0);
    const privileged = deployment('risky-priv', { containers: [{ name: 'app', image: 'registry.invalid/app:1', securityContext: { privileged: true } }] });
    assert.equal((await admin(['apply', '-f', '-'], JSON.stringify(privileged))).code, 0);
  });
  after(async () => {
    await demo?.stop();
    await admin(['delete', 'deployments,pods', '-n', NS, '-l', LABEL, '--ignore-not-found', '--wait=false']);
    await admin(['delete', 'pods', 'risky-run', 'risky-debug', '-n', NS, '--ignore-not-found', '--wait=false']);
  });

  it('create -f of a privileged Deployment is refused for security, naming container and field; once approved, exactly that write goes through', async () => {
    const path = file(
      'risky-new',
      deployment('risky-new', { containers: [{ name: 'app', image: 'registry.invalid/app:1', securityContext: { privileged: true } }] }),
    );
    const first = await alice(['create', '-f', path]);
    const id = heldForSecurity(first, 'container "app" sets securityContext.privileged: true');
    await absent('deployment', 'risky-new');

    // The approver sees the object's name, the reason, the field, and the field highlighted in the preview.
    const shown = await waitFor('the preview', async () => {
      const r = await approvalsCli(demo.kubeconfigs.security, ['show', id]);
      return !/being prepared/.test(r.stdout) && r;
    });
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /Request: +alice@example\.com: create deployments\.apps risky-new in dev/);
    assert.match(shown.stdout, /Fields: +\$\.spec\.template\.spec\.containers\[0\]\.securityContext\.privileged/);
    assert.match(shown.stdout, /^! \+ +privileged: true$/m);
    const listed = await approvalsCli(demo.kubeconfigs.security, ['list', '--state', 'pending']);
    assert.match(listed.stdout, new RegExp(`${id} .*create deployments\\.apps risky-new in dev`));

    assert.equal((await approvalsCli(demo.kubeconfigs.security, ['approve', id])).code, 0);
    const again = await alice(['create', '-f', path]);
    assert.equal(again.code, 0, again.stderr);
    const created = await admin(['get', 'deployment', 'risky-new', '-n', NS, '-o', 'jsonpath={.spec.template.spec.containers[0].securityContext.privileged}']);
    assert.equal(created.stdout, 'true');
    const record = audit.find((e): e is AuditEvent => e.kind === 'Event' && e.stage === 'ResponseComplete' && e.gatehouse.approvalId === id);
    assert.equal(record?.responseStatus?.code, 201);
    // The same create again: its dry run meets the object, and kubectl prints the API server's own Status.
    const third = await alice(['create', '-f', path]);
    assert.equal(third.code, 1);
    assert.match(third.stderr, /Error from server \(AlreadyExists\): .*deployments\.apps "risky-new" already exists/);
  });

  it('apply of a new Pod, and every way of changing an existing Deployment into a privileged one, is refused; nothing changes', async () => {
    const before = await state('risky-web');
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'risky-pod', namespace: NS, labels: { 'gatehouse-test': 'risky' } },
      spec: { hostNetwork: true, containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
    };
    heldForSecurity(await alice(['apply', '-f', file('risky-pod', pod)]), 'the pod sets hostNetwork: true');
    await absent('pod', 'risky-pod');

    const withHostPath = deployment('risky-web', { volumes: [{ name: 'docker', hostPath: { path: '/var/run/docker.sock' } }] });
    heldForSecurity(
      await alice(['apply', '-f', file('risky-web-apply', withHostPath)]),
      `volume "docker" mounts the node's path /var/run/docker.sock (hostPath)`,
    );

    const strategic = { spec: { template: { spec: { containers: [{ name: 'app', securityContext: { privileged: true } }] } } } };
    heldForSecurity(
      await alice(['patch', 'deployment', 'risky-web', '-p', JSON.stringify(strategic)]),
      'container "app" sets securityContext.privileged: true',
    );
    heldForSecurity(
      await alice(['patch', 'deployment', 'risky-web', '--type=merge', '-p', '{"spec":{"template":{"spec":{"hostPID":true}}}}']),
      'the pod sets hostPID: true',
    );
    // The runtime grants "CAP_SYS_ADMIN" as SYS_ADMIN: the prefix does not hide it.
    const json = [{ op: 'add', path: '/spec/template/spec/containers/0/securityContext', value: { capabilities: { add: ['CAP_SYS_ADMIN'] } } }];
    heldForSecurity(
      await alice(['patch', 'deployment', 'risky-web', '--type=json', '-p', JSON.stringify(json)]),
      'container "app" adds capability CAP_SYS_ADMIN (securityContext.capabilities.add), beyond the Kubernetes baseline',
    );

    const current = JSON.parse((await admin(['get', 'deployment', 'risky-web', '-n', NS, '-o', 'json'])).stdout) as ReturnType<typeof deployment>;
    (current.spec.template.spec as Record<string, unknown>)['hostIPC'] = true;
    heldForSecurity(await alice(['replace', '-f', file('risky-web-replace', current)]), 'the pod sets hostIPC: true');

    assert.deepEqual(await state('risky-web'), before, 'a refused write, or its dry run, changed the Deployment');
  });

  it('set image on an already privileged Deployment changes what runs privileged: refused; a change that keeps its pod spec passes', async () => {
    const before = await state('risky-priv');
    heldForSecurity(
      await alice(['set', 'image', 'deployment/risky-priv', 'app=registry.invalid/app:2']),
      'container "app" sets securityContext.privileged: true',
    );
    assert.deepEqual(await state('risky-priv'), before);
    const labelled = await alice(['label', 'deployment', 'risky-priv', 'reviewed=yes']);
    assert.equal(labelled.code, 0, labelled.stderr);
    const restarted = await alice(['rollout', 'restart', 'deployment/risky-priv']);
    assert.equal(restarted.code, 0, restarted.stderr);
  });

  it('an unprivileged change to the same Deployment goes through', async () => {
    const r = await alice(['set', 'image', 'deployment/risky-web', 'app=registry.invalid/app:2']);
    assert.equal(r.code, 0, r.stderr);
    const image = await admin(['get', 'deployment', 'risky-web', '-n', NS, '-o', 'jsonpath={.spec.template.spec.containers[0].image}']);
    assert.equal(image.stdout, 'registry.invalid/app:2');
    const record = audit.findLast(
      (e): e is AuditEvent => e.kind === 'Event' && e.stage === 'ResponseComplete' && e.verb === 'patch' && e.objectRef?.name === 'risky-web',
    );
    assert.equal(record?.gatehouse.decision?.effect, 'allow');
    // At Metadata level the inspected objects are not kept; that they were inspected is.
    assert.equal((record?.gatehouse.input as { request: { object: unknown } }).request.object, null);
  });

  it('run --privileged and debug --profile=sysadmin are refused; an ephemeral debug container is for admins, and for them needs security', async () => {
    heldForSecurity(
      await alice(['run', 'risky-run', '--image=registry.invalid/app:1', '--privileged', '--restart=Never']),
      'container "risky-run" sets securityContext.privileged: true',
    );
    await absent('pod', 'risky-run');
    heldForSecurity(
      await alice(['debug', 'pod/web-0', '--copy-to=risky-debug', '--image=registry.invalid/debug:1', '--profile=sysadmin', '--container=debugger']),
      'container "debugger" sets securityContext.privileged: true',
    );
    await absent('pod', 'risky-debug');

    const ephemeral = ['debug', 'pod/web-0', '--image=registry.invalid/debug:1', '--profile=sysadmin', '--container=dbg'];
    const denied = await alice(ephemeral);
    assert.match(denied.stderr, /ephemeral containers bypass the pod's spec and are for admins only/);
    const asAdmin = await kubectl(demo.kubeconfigs.admin, ['-n', NS, ...ephemeral]);
    heldForSecurity(asAdmin, 'ephemeral container "dbg" sets securityContext.privileged: true');
    const pod = JSON.parse((await admin(['get', 'pod', 'web-0', '-n', NS, '-o', 'json'])).stdout) as { spec: { ephemeralContainers?: unknown[] } };
    assert.equal(pod.spec.ephemeralContainers, undefined, 'the dry run added an ephemeral container');
  });
});
