/**
 * Conditional masking end to end, on the case it was built for: helm keeps each
 * release in a Secret of type helm.sh/release.v1 and reads it back to upgrade.
 * The bundled policy masks Secret values for people, except helm releases for
 * group deployers in dev (a mask directive with `when`). helm v3.22.0 and
 * kubectl 1.32 through the demo gateway, in front of kube-apiserver v1.35.4.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEvent } from '../../src/audit/event.js';
import { startDemo, type RunningDemo } from '../../src/demo/demo.js';
import { projectRoot, runRoot } from '../../src/paths.js';
import { REDACTED } from '../../src/redact/stream.js';
import { readAudit } from '../support/audit.js';
import { kubectl, run } from '../support/run.js';
import { testbed } from './hooks.js';

const HELM = join(projectRoot, '.tools/helm');

describe('conditional masking: helm releases (helm v3.22.0 → Gatehouse → kube-apiserver v1.35.4)', function () {
  this.timeout(120_000);
  let demo: RunningDemo;
  let chart: string;
  let dana: string;
  const admin = (args: string[]) => kubectl(testbed().kubeconfigs.admin, args);
  const helmAs = (kubeconfig: string, args: string[]) =>
    run(HELM, [...args, '--kubeconfig', kubeconfig], {
      env: {
        ...process.env,
        HELM_CACHE_HOME: join(demo.dir, 'helm/cache'),
        HELM_CONFIG_HOME: join(demo.dir, 'helm/config'),
        HELM_DATA_HOME: join(demo.dir, 'helm/data'),
      },
      timeoutMs: 60_000,
    });
  const greeting = async (ns: string) => (await admin(['get', 'configmap', 'greeting', '-n', ns, '-o', 'jsonpath={.data.text}'])).stdout;

  before(async function () {
    this.timeout(120_000);
    demo = await startDemo({ dir: join(runRoot, `test-${process.pid}`, 'helm-releases'), testbed: testbed() });
    dana = demo.kubeconfigFor('dana', { user: 'dana@example.com', groups: ['dev', 'deployers'] });
    chart = join(demo.dir, 'chart');
    mkdirSync(join(chart, 'templates'), { recursive: true });
    writeFileSync(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: greeting\nversion: 0.1.0\n');
    writeFileSync(join(chart, 'values.yaml'), 'text: hello\n');
    writeFileSync(
      join(chart, 'templates/configmap.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: greeting\ndata:\n  text: {{ .Values.text | quote }}\n',
    );
  });
  after(async () => {
    await demo?.stop();
    for (const ns of ['dev', 'prod']) {
      await admin(['delete', 'secret', '-n', ns, '-l', 'owner=helm,name=greeting', '--ignore-not-found']);
      await admin(['delete', 'configmap', 'greeting', '-n', ns, '--ignore-not-found']);
    }
  });

  it('a deployer installs and upgrades a release in dev: helm reads its release back whole', async () => {
    const install = await helmAs(dana, ['install', 'greeting', chart, '-n', 'dev']);
    assert.equal(install.code, 0, install.stderr);
    const upgrade = await helmAs(dana, ['upgrade', 'greeting', chart, '-n', 'dev', '--set', 'text=upgraded']);
    assert.equal(upgrade.code, 0, upgrade.stderr);
    assert.equal(await greeting('dev'), 'upgraded');
    const history = await helmAs(dana, ['history', 'greeting', '-n', 'dev', '-o', 'json']);
    assert.equal(history.code, 0, history.stderr);
    assert.deepEqual(
      (JSON.parse(history.stdout) as { revision: number; status: string }[]).map((h) => [h.revision, h.status]),
      [
        [1, 'superseded'],
        [2, 'deployed'],
      ],
    );
  });

  it("the same deployer's every other Secret stays masked, in the same list", async () => {
    const r = await kubectl(dana, ['get', 'secrets', '-n', 'dev', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const items = (JSON.parse(r.stdout) as { items: { type: string; metadata: { name: string }; data?: Record<string, string> }[] }).items;
    const releases = items.filter((i) => i.type === 'helm.sh/release.v1');
    const others = items.filter((i) => i.type !== 'helm.sh/release.v1' && i.data);
    assert.equal(releases.length, 2);
    for (const i of releases) assert.notEqual(i.data!['release'], REDACTED);
    assert.ok(others.some((i) => i.metadata.name === 'db-credentials'));
    for (const i of others) for (const v of Object.values(i.data!)) assert.equal(v, REDACTED, i.metadata.name);
    const record = readAudit(join(demo.dir, 'audit.log')).find(
      (e): e is AuditEvent => e.kind === 'Event' && e.stage === 'ResponseComplete' && e.user.username === 'dana@example.com' && e.verb === 'list',
    );
    assert.deepEqual(record?.gatehouse.decision?.mask, ["redact $.data.* when @.type != 'helm.sh/release.v1'", 'redact $.stringData.*']);
  });

  it('a person outside deployers cannot upgrade: helm reads a masked release, and nothing changes', async () => {
    const alice = demo.kubeconfigs.alice;
    const r = await helmAs(alice, ['upgrade', 'greeting', chart, '-n', 'dev', '--set', 'text=alice']);
    assert.notEqual(r.code, 0);
    // helm cannot decode the masked release and sees none: it refuses to upgrade.
    assert.match(r.stderr, /no revision for release "greeting"/);
    assert.equal(await greeting('dev'), 'upgraded');
  });

  it('outside dev, a deployer gets release Secrets masked like any other', async () => {
    assert.equal((await helmAs(testbed().kubeconfigs.admin, ['install', 'greeting', chart, '-n', 'prod'])).code, 0);
    const r = await kubectl(dana, ['get', 'secrets', '-n', 'prod', '-l', 'owner=helm', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const items = (JSON.parse(r.stdout) as { items: { data: Record<string, string> }[] }).items;
    assert.equal(items.length, 1);
    assert.equal(items[0]!.data['release'], REDACTED);
  });
});
