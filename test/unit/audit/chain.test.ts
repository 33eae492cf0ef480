/**
 * The audit file's hash chain and keyed checkpoints, tampered with each way:
 * `gatehouse audit verify` names the first broken line, and exits 0 only when
 * the whole chain holds.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChain, sha256 } from '../../../src/audit/chain.js';
import { verifyFile } from '../../../src/audit/command.js';
import type { AuditRecord } from '../../../src/audit/event.js';
import { createAuditWriter } from '../../../src/audit/writer.js';
import { projectRoot } from '../../../src/paths.js';
import { waitFor } from '../../support/wait.js';

const KEY = Buffer.alloc(32, 1);
const record = (i: number) =>
  ({ kind: 'Event', auditID: `e${i}`, verb: 'get', requestURI: `/api/v1/namespaces/dev/configmaps/c${i}` }) as unknown as AuditRecord;

describe('audit chain: gatehouse audit verify finds each kind of tampering', () => {
  let dir: string;
  let file: string;
  /** A file as a stopped gateway leaves it: anchor, 10 records (a checkpoint every 4), a shutdown checkpoint. */
  let lines: string[];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-chain-'));
    file = join(dir, 'audit.log');
    const w = createAuditWriter(file, undefined, undefined, { key: KEY, everyMs: 3600_000 });
    for (let i = 1; i <= 10; i++) w.commit(record(i));
    w.flush();
    lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const write = (ls: string[], tail = '\n') => {
    const f = join(dir, `t-${Math.random().toString(36).slice(2)}.log`);
    writeFileSync(f, ls.join('\n') + tail);
    return f;
  };
  const verify = (f: string, live = false) => verifyFile(f, { key: KEY, live });

  it('an untouched file holds: anchor, records and a verified shutdown checkpoint', async () => {
    assert.equal(lines.length, 12);
    assert.match(lines[0]!, /^\{"kind":"AuditAnchor",.*"reason":"new file","checkpointed":true,"chain":\{"seq":0,"prev":""\}\}$/);
    assert.match(lines[11]!, /"kind":"AuditCheckpoint".*"final":true/);
    const r = await verify(file);
    assert.equal(r.problem, null, r.problem?.what);
    assert.equal(r.checkpoints, 1);
  });

  it('an edited record: the line named', async () => {
    const ls = [...lines];
    ls[4] = ls[4]!.replace('"verb":"get"', '"verb":"list"');
    assert.deepEqual((await verify(write(ls))).problem, { line: 5, what: 'line 5 was edited: line 6 recorded another hash for it' });
  });

  it('a deleted record', async () => {
    const ls = lines.filter((_, i) => i !== 4);
    assert.deepEqual((await verify(write(ls))).problem, { line: 5, what: '1 record(s) deleted before line 5 (the sequence jumps from 3 to 5)' });
  });

  it('an inserted copy of a record, and a forged record linked to the line before it', async () => {
    const copy = [...lines.slice(0, 5), lines[4]!, ...lines.slice(5)];
    assert.deepEqual((await verify(write(copy))).problem, { line: 6, what: 'line 6 was inserted: a copy of line 5' });
    // A record built to fit: the right sequence number and the hash of the line before it.
    const forged = createChain({ seq: 4, prev: sha256(lines[3]!) }).link(JSON.stringify(record(99)));
    const ls = [...lines.slice(0, 4), forged, ...lines.slice(4)];
    assert.deepEqual((await verify(write(ls))).problem, { line: 5, what: 'line 5 was inserted: it takes the place of sequence number 4 in the chain' });
  });

  it('two records swapped', async () => {
    const ls = [...lines];
    [ls[4], ls[5]] = [ls[5]!, ls[4]!];
    assert.deepEqual((await verify(write(ls))).problem, { line: 5, what: 'lines 5 and 6 are out of order: reordered' });
  });

  it('a cut tail: whole lines, or in the middle of one', async () => {
    assert.match((await verify(write(lines.slice(0, 9)))).problem!.what, /does not end with a shutdown checkpoint: lines after the anchor may have been cut/);
    const cut = [...lines.slice(0, 11), lines[11]!.slice(0, 30)];
    assert.deepEqual((await verify(write(cut, ''))).problem, { line: 12, what: 'line 12 is unfinished: the tail of the file was cut' });
    assert.equal((await verify(write(lines.slice(0, 9)), true)).problem, null, '--live: a running gateway has not sealed its file yet');
  });

  it('a chain rewritten from an edit on: only the keyed checkpoint shows it', async () => {
    const ls = [...lines];
    ls[4] = JSON.stringify({ ...(JSON.parse(ls[4]!) as object), verb: 'list' });
    let prev = sha256(ls[4]);
    for (let i = 5; i < ls.length; i++) {
      const o = JSON.parse(ls[i]!) as { chain: { seq: number; prev: string } };
      o.chain.prev = prev;
      ls[i] = JSON.stringify(o);
      prev = sha256(ls[i]!);
    }
    const f = write(ls);
    assert.equal((await verifyFile(f, {})).problem, null, 'without the key, a rewritten chain holds');
    assert.match((await verify(f)).problem!.what, /^line 12: the checkpoint does not verify with this key/);
  });

  it('a restart after a crash that cut a record: the chain goes on through the fragment, and says so', async () => {
    const f = join(dir, 'crash.log');
    createAuditWriter(f).commit(record(1));
    appendFileSync(f, '{"kind":"Event","auditID":"e2","requ');
    const w = createAuditWriter(f, undefined, undefined, { key: KEY, everyMs: 3600_000 });
    w.commit(record(3));
    w.flush();
    const r = await verify(f);
    assert.equal(r.problem, null, r.problem?.what);
    assert.ok(
      r.notes.some((n) => /line 3: a record cut short by a crash; the gateway restarted after it \(line 4\)/.test(n)),
      r.notes.join('\n'),
    );
  });

  it('checkpoints are written while records come in, not while the file is idle; a wrong key fails the first', async () => {
    const f = join(dir, 'periodic.log');
    const w = createAuditWriter(f, undefined, undefined, { key: KEY, everyMs: 20 });
    const count = () =>
      readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"kind":"AuditCheckpoint"')).length;
    w.commit(record(1));
    await waitFor('a periodic checkpoint', () => count() === 1);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(count(), 1, 'nothing new, no checkpoint');
    w.commit(record(2));
    await waitFor('a second one', () => count() === 2);
    w.flush();
    const r = await verify(f);
    assert.equal(r.problem, null, r.problem?.what);
    assert.equal(r.checkpoints, 3);
    assert.deepEqual((await verifyFile(f, { key: Buffer.alloc(32, 2) })).problem?.line, 3);
  });

  it('the CLI: exit 0 when the chain holds, 1 when it does not, 2 on a usage error', () => {
    const cli = join(projectRoot, 'bin/gatehouse.js');
    const keyFile = join(dir, 'checkpoint.key');
    writeFileSync(keyFile, KEY);
    const ok = spawnSync(process.execPath, [cli, 'audit', 'verify', file, '--key', keyFile], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /the chain holds \(12 lines, 1 checkpoint\(s\) verified\)/);
    const ls = lines.filter((_, i) => i !== 4);
    const bad = spawnSync(process.execPath, [cli, 'audit', 'verify', write(ls), '--key', keyFile], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, /BROKEN at line 5: 1 record\(s\) deleted before line 5/);
    assert.equal(spawnSync(process.execPath, [cli, 'audit', 'verify'], { encoding: 'utf8' }).status, 2);
  });
});
