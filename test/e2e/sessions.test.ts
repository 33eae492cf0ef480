/**
 * exec, attach, cp and port-forward end to end: kubectl 1.32 → Gatehouse →
 * kube-apiserver v1.35.4 → the test bed's kubelet (testbed/kubelet, the
 * kubelet's own streaming library, commands run on this host), over WebSocket
 * (kubectl's default) and over SPDY/3.1 (KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false,
 * KUBECTL_PORT_FORWARD_WEBSOCKETS=false). Interactive sessions are driven through
 * a pseudo-terminal by util-linux `script`. Recordings are replayed with the
 * CLI and in headless Chromium.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { AuditEvent, AuditRecord, SessionCommandEvent } from '../../src/audit/event.js';
import { createMemoryAuditWriter } from '../../src/audit/writer.js';
import { startDemo, type RunningDemo } from '../../src/demo/demo.js';
import { projectRoot, runRoot } from '../../src/paths.js';
import { freePort } from '../../src/testbed/ports.js';
import { approvalsCli, pendingFor } from '../support/approvals.js';
import { launchChromium, logInThroughDemoIssuer, testOutput } from '../support/browser.js';
import { run, type Ran } from '../support/run.js';
import { waitFor } from '../support/wait.js';
import { testbed } from './hooks.js';

const TRANSPORTS = {
  websocket: {},
  spdy: { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false', KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' },
} as const;

describe('sessions: exec, attach, cp, port-forward (kubectl 1.32 → Gatehouse → kube-apiserver v1.35.4 → test bed kubelet)', function () {
  this.timeout(90_000);
  let demo: RunningDemo;
  const audit: AuditRecord[] = [];
  const dir = join(runRoot, `test-${process.pid}`, 'sessions');

  before(async function () {
    this.timeout(120_000);
    demo = await startDemo({ dir, testbed: testbed(), audit: createMemoryAuditWriter((e) => audit.push(e)) });
  });
  after(async () => demo?.stop());

  const kubectlAs = (who: keyof RunningDemo['kubeconfigs'], transport: keyof typeof TRANSPORTS, args: string[], timeoutMs = 30_000) =>
    run('kubectl', ['--kubeconfig', demo.kubeconfigs[who], ...args], { env: { ...process.env, ...TRANSPORTS[transport] }, timeoutMs });
  const sessionRecords = () => audit.filter((e): e is AuditEvent => e.kind === 'Event' && e.stage === 'ResponseComplete' && e.gatehouse.session !== undefined);
  const castEvents = (file: string) =>
    readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => JSON.parse(l) as [number, string, string]);

  for (const transport of Object.keys(TRANSPORTS) as (keyof typeof TRANSPORTS)[]) {
    describe(`over ${transport}`, () => {
      it('exec runs a command: its output, its stderr, its exit code, recorded and audited', async () => {
        const marker = randomBytes(4).toString('hex');
        const r = await kubectlAs('alice', transport, ['exec', 'web-0', '-n', 'dev', '--', 'sh', '-c', `echo out-${marker}; echo err-${marker} >&2; exit 3`]);
        assert.equal(r.code, 3, r.stderr);
        assert.equal(r.stdout, `out-${marker}\n`);
        assert.match(r.stderr, new RegExp(`err-${marker}`));
        // kubectl may exit before the gateway has seen both sockets close and written the record.
        const rec = await waitFor('the ResponseComplete record of the session', () => sessionRecords().find((e) => e.requestURI.includes(marker)));
        const s = rec.gatehouse.session as { exitCode: number; protocol: string; recording: string; bytesOut: number };
        assert.equal(s.exitCode, 3);
        assert.equal(rec.verb, transport === 'websocket' ? 'get' : 'create');
        assert.match(s.protocol, transport === 'websocket' ? /^v5\.channel\.k8s\.io$/ : /^v4\.channel\.k8s\.io$/);
        const output = castEvents(s.recording)
          .filter((e) => e[1] === 'o')
          .map((e) => e[2])
          .join('');
        assert.match(output, new RegExp(`out-${marker}\\n`));
        assert.match(output, new RegExp(`err-${marker}\\n`));
        assert.equal(castEvents(s.recording).at(-1)![2], 'exit {"exitCode":3,"reason":"exited"}');
      });

      it('an interactive shell through a pseudo-terminal: typed lines are commands in the audit, the recording replays what the client saw', async () => {
        const word = `typed-${transport}`;
        const env = { ...process.env, ...TRANSPORTS[transport] };
        const child = spawn('script', ['-qec', `kubectl --kubeconfig ${demo.kubeconfigs.alice} exec -it web-0 -n dev -- sh`, '/dev/null'], {
          env,
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        let seen = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (seen += d));
        const exited = new Promise<number | null>((r) => child.on('close', r));
        const screenShows = (re: RegExp) => waitFor(`${re} on the terminal`, () => re.test(seen));
        await screenShows(/# $/m);
        child.stdin.write(`echo ${word}-$((6*7))\r`);
        await screenShows(new RegExp(`${word}-42`));
        child.stdin.write('exit 5\r');
        assert.equal(await exited, 5);
        const rec = await waitFor('the session record', () =>
          sessionRecords().find(
            (e) =>
              (e.gatehouse.session as { recording: string }).recording &&
              readFileSync((e.gatehouse.session as { recording: string }).recording, 'utf8').includes(`${word}-42`),
          ),
        );
        const session = rec.gatehouse.session as { id: string; recording: string; exitCode: number };
        assert.equal(session.exitCode, 5);
        const output = castEvents(session.recording)
          .filter((e) => e[1] === 'o')
          .map((e) => e[2])
          .join('');
        assert.ok(seen.includes(output), `the client saw every recorded byte:\n${JSON.stringify(seen)}\n${JSON.stringify(output)}`);
        const header = JSON.parse(readFileSync(session.recording, 'utf8').split('\n')[0]!);
        assert.equal(header.gatehouse.tty, true);
        assert.equal(header.gatehouse.user, 'alice@example.com');
        const lines = audit.filter((e): e is SessionCommandEvent => e.kind === 'SessionCommand' && e.session === session.id).map((e) => e.line);
        assert.deepEqual(lines, [`echo ${word}-$((6*7))`, 'exit 5']);
      });

      it('cp copies a file into the pod and back out', async () => {
        const content = `copied over ${transport} ${randomBytes(8).toString('hex')}\n`;
        const local = join(dir, `in-${transport}.txt`);
        writeFileSync(local, content);
        const inPod = `/tmp/gatehouse-e2e-${process.pid}-${transport}.txt`;
        const put = await kubectlAs('alice', transport, ['cp', local, `dev/web-0:${inPod}`]);
        assert.equal(put.code, 0, put.stderr);
        const back = join(dir, `out-${transport}.txt`);
        const get = await kubectlAs('alice', transport, ['cp', `dev/web-0:${inPod}`, back]);
        assert.equal(get.code, 0, get.stderr);
        assert.equal(readFileSync(back, 'utf8'), content);
      });

      it('attach reaches the container process (the test bed runs cat) and is recorded', async () => {
        const r = await run('kubectl', ['--kubeconfig', demo.kubeconfigs.alice, 'attach', '-i', 'web-0', '-n', 'dev'], {
          env: { ...process.env, ...TRANSPORTS[transport] },
          input: `attached-${transport}\n`,
        });
        assert.match(r.stdout, new RegExp(`attached-${transport}`), r.stderr);
        await waitFor('the attach session to be recorded', () =>
          sessionRecords().find(
            (e) =>
              e.requestURI.includes('/attach') &&
              readFileSync((e.gatehouse.session as { recording: string }).recording, 'utf8').includes(`attached-${transport}`),
          ),
        );
      });

      it('port-forward reaches a port served in the pod; its ports, duration and bytes are audited', async () => {
        const body = `served-${randomBytes(4).toString('hex')}`;
        const target: Server = createServer((_req, res) => res.end(body));
        await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
        const podPort = (target.address() as AddressInfo).port;
        const localPort = await freePort();
        const pf = spawn('kubectl', ['--kubeconfig', demo.kubeconfigs.alice, 'port-forward', 'pod/web-0', '-n', 'dev', `${localPort}:${podPort}`], {
          env: { ...process.env, ...TRANSPORTS[transport] },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        try {
          let out = '';
          pf.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
          await waitFor('port-forward to listen', () => out.includes('Forwarding from'));
          const res = await fetch(`http://127.0.0.1:${localPort}/`);
          assert.equal(await res.text(), body);
        } finally {
          pf.kill('SIGINT');
          await new Promise((r) => pf.on('close', r));
          target.close();
        }
        // This port-forward's record, not the previous transport's: it is written once the session ends,
        // which may be after kubectl has exited.
        const rec = await waitFor(`the record of the port-forward to ${podPort}`, () =>
          sessionRecords().find(
            (e) => e.requestURI.includes('/portforward') && (e.gatehouse.session as { ports?: string[] } | null)?.ports?.includes(String(podPort)),
          ),
        );
        const s = rec.gatehouse.session as { kind: string; bytesIn: number; bytesOut: number; durationMs: number; recording: string | null; ports: string[] };
        assert.equal(s.kind, 'portforward');
        assert.equal(s.recording, null, 'port-forward is not recorded byte for byte');
        assert.ok(s.bytesOut > body.length && s.bytesIn > 0 && s.durationMs > 0, JSON.stringify(s));
        assert.deepEqual(s.ports, [String(podPort)]);
      });
    });
  }

  // After the sessions above: mocha runs a suite's own tests before its child suites.
  describe('recordings', () => {
    it('lists, plays and exports recordings for security; the policy refuses them to others', async () => {
      const cli = (who: 'security' | 'alice', args: string[]) =>
        run(process.execPath, [join(projectRoot, 'bin/gatehouse.js'), 'sessions', ...args, '--kubeconfig', demo.kubeconfigs[who]]);
      const list = await cli('security', ['list', '--user', 'alice@example.com', '--pod', 'dev/web-0', '-o', 'json']);
      assert.equal(list.code, 0, list.stderr);
      const items = JSON.parse(list.stdout).items as { id: string; header: { gatehouse: { tty: boolean } } }[];
      const interactive = items.find((i) => i.header.gatehouse.tty)!;
      assert.ok(interactive);
      const played = await cli('security', ['play', interactive.id, '--speed', '50']);
      assert.equal(played.code, 0, played.stderr);
      assert.match(played.stdout, /typed-(websocket|spdy)-42/);
      const exported = await cli('security', ['export', interactive.id]);
      assert.equal(JSON.parse(exported.stdout.split('\n')[0]!).version, 2);
      const table = await cli('security', ['list', '--since', '1h']);
      assert.match(table.stdout, /^ID +STARTED +USER +POD +COMMAND/);
      const refused = await cli('alice', ['list']);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /Forbidden: Gatehouse denied this request/);
    });

    it('the replay page plays a recording in headless Chromium', async () => {
      const list = JSON.parse(
        (await run(process.execPath, [join(projectRoot, 'bin/gatehouse.js'), 'sessions', 'list', '-o', 'json', '--kubeconfig', demo.kubeconfigs.security]))
          .stdout,
      ) as { items: { id: string; header: { gatehouse: { tty: boolean } } }[] };
      const id = list.items.find((i) => i.header.gatehouse.tty)!.id;
      const browser = await launchChromium();
      try {
        const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1100, height: 700 } });
        const page = await context.newPage();
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await logInThroughDemoIssuer(page, `${demo.gateway.url}/gatehouse/sessions/${id}`, 'carol');
        // The player draws the terminal as text: wait until the typed command's output is on screen.
        // (A locator, not waitForFunction: the page's CSP rightly forbids evaluating strings.)
        await page.locator('#player', { hasText: /typed-(websocket|spdy)-42/ }).waitFor({ timeout: 20_000 });
        await page.screenshot({ path: testOutput('session-replay.png'), fullPage: true });
        assert.deepEqual(errors, []);
      } finally {
        await browser.close();
      }
    });
  });

  it('a denied exec is a Status before any upgrade, and kubectl prints the reason', async () => {
    const before = audit.length;
    const r = await kubectlAs('alice', 'websocket', ['exec', 'web-0', '-n', 'prod', '--', 'id']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Forbidden|forbidden/);
    assert.match(r.stderr, /Gatehouse denied this request: no rule allows this request/);
    const refused = () =>
      audit.slice(before).filter((e): e is AuditEvent => e.kind === 'Event' && e.requestURI.includes('/exec') && e.responseStatus?.code === 403);
    const denied = await waitFor('each attempt (WebSocket, then SPDY) to be decided and audited', () => refused().length >= 1 && refused());
    assert.ok(
      denied.every((e) => e.gatehouse.session === undefined),
      'no session was opened',
    );
  });

  it('a non-101 answer from upstream (a container the pod does not have) is relayed as it came, and the connection closed', async () => {
    for (const transport of Object.keys(TRANSPORTS) as (keyof typeof TRANSPORTS)[]) {
      const before = audit.length;
      const r = await kubectlAs('alice', transport, ['exec', 'web-0', '-n', 'dev', '-c', 'no-such-container', '--', 'true']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /container no-such-container is not valid for pod web-0/);
      const rec = await waitFor('the record of the refused exec', () =>
        audit.slice(before).find((e): e is AuditEvent => e.kind === 'Event' && e.requestURI.includes('/exec') && e.stage === 'ResponseComplete'),
      );
      assert.equal(rec.responseStatus?.code, 400, 'the upstream answer, not a 101');
      assert.equal(rec.stage, 'ResponseComplete');
      assert.equal(rec.gatehouse.session, undefined, 'no session happened');
    }
  });

  it("holds an agent's exec until security approves, then runs it", async () => {
    const held = run('kubectl', ['--kubeconfig', demo.kubeconfigs.agent, 'exec', 'web-0', '-n', 'dev', '--', 'echo', 'approved-exec'], { timeoutMs: 60_000 });
    const pending = await pendingFor(demo.kubeconfigs.security, 'web-0');
    assert.deepEqual(pending.subject.exec?.command, ['echo', 'approved-exec']);
    const ok = await approvalsCli(demo.kubeconfigs.security, ['approve', pending.id]);
    assert.equal(ok.code, 0, ok.stderr);
    const r: Ran = await held;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'approved-exec\n');
  });

  it("attack: escape sequences in an agent's exec command cannot rewrite the approver's terminal (approvals list/show, sessions list)", async () => {
    // OSC 0 retitles the window, CSI 2J clears the screen, CR rewrites the line, C1 CSI (U+009B) is an 8-bit CSI.
    const evil = 'printf ok\u001b]0;approved\u0007\u001b[2J\rhidden\u009b31m';
    // The text rides as $0 of `sh -c true`: shown in every listing, never run.
    const held = run('kubectl', ['--kubeconfig', demo.kubeconfigs.agent, 'exec', 'web-0', '-n', 'dev', '--', 'sh', '-c', 'true', evil], { timeoutMs: 60_000 });
    const pending = await pendingFor(demo.kubeconfigs.security, 'web-0');
    assert.deepEqual(pending.subject.exec?.command, ['sh', '-c', 'true', evil], 'the JSON output still carries the exact command');
    const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
    const list = await approvalsCli(demo.kubeconfigs.security, ['list']);
    const show = await approvalsCli(demo.kubeconfigs.security, ['show', pending.id]);
    for (const out of [list, show]) {
      assert.equal(out.code, 0, out.stderr);
      assert.doesNotMatch(out.stdout, raw, 'no raw control character reaches the terminal');
      assert.match(out.stdout, /true printf ok\\u001b\]0;approved\\u0007\\u001b\[2J\\u000dhidden\\u009b31m/);
    }
    assert.equal((await approvalsCli(demo.kubeconfigs.security, ['approve', pending.id])).code, 0);
    assert.equal((await held).code, 0);
    const sessions = await run(process.execPath, [join(projectRoot, 'bin/gatehouse.js'), 'sessions', 'list', '--kubeconfig', demo.kubeconfigs.security]);
    assert.equal(sessions.code, 0, sessions.stderr);
    assert.doesNotMatch(sessions.stdout, raw);
    assert.match(sessions.stdout, /sh -c true printf ok\\u001b\]0;/);
  });

  describe('when the recording cannot be written', () => {
    let broken: RunningDemo;
    before(async function () {
      this.timeout(60_000);
      broken = await startDemo({
        dir: join(dir, 'broken'),
        testbed: testbed(),
        audit: createMemoryAuditWriter(() => {}),
        recording: { dir: '/dev/null/recordings' },
      });
    });
    after(async () => broken?.stop());

    it('refuses the session before the upgrade (fail closed)', async () => {
      const r = await run('kubectl', ['--kubeconfig', broken.kubeconfigs.alice, 'exec', 'web-0', '-n', 'dev', '--', 'echo', 'should-not-run']);
      assert.notEqual(r.code, 0);
      assert.doesNotMatch(r.stdout, /should-not-run/);
      assert.match(r.stderr, /the session cannot be recorded, so it is refused: ENOTDIR/);
    });
  });
});
