import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditRecord } from '../../../src/audit/event.js';
import { createAuditWriter } from '../../../src/audit/writer.js';

describe('audit.stdout: one JSON line per record, whole, through a pipe a slow reader holds', () => {
  it('delivers every record intact to a reader that starts late', async () => {
    const writer = new URL('../../../src/audit/writer.js', import.meta.url).href;
    const script = `import(${JSON.stringify(writer)}).then(({ createStdoutAuditWriter }) => { const w = createStdoutAuditWriter(); for (let i = 0; i < 3000; i++) w.commit({ kind: 'Event', auditID: 'e' + i, pad: 'x'.repeat(500) }); w.flush(); })`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    // Let the pipe fill (64 KiB) before reading: the writer must wait, not drop or cut a line.
    child.stdout.pause();
    await new Promise((r) => setTimeout(r, 300));
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stdout.resume();
    const code = await new Promise((r) => child.once('close', r));
    assert.equal(code, 0);
    const lines = out.trimEnd().split('\n');
    assert.equal(lines.length, 3000);
    lines.forEach((l, i) => assert.equal((JSON.parse(l) as { auditID: string }).auditID, `e${i}`));
  });
});

describe('audit.file: a record cut in two by a crash does not spoil the next one', () => {
  it('keeps the fragment on a line of its own, says so, and starts the first new record on a fresh line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-'));
    try {
      const file = join(dir, 'audit.log');
      const before = createAuditWriter(file);
      before.commit({ kind: 'Event', auditID: 'a' } as unknown as AuditRecord);
      // What SIGKILL between two pages of one write(2) leaves behind.
      appendFileSync(file, '{"kind":"Event","auditID":"b","requestURI":"/api/v1/na');
      const said: string[] = [];
      const after = createAuditWriter(file, undefined, (m) => said.push(m));
      after.commit({ kind: 'Event', auditID: 'c' } as unknown as AuditRecord);
      // Each record's own line (anchors and the chain's links left out of the comparison).
      const lines = readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => !l.startsWith('{"kind":"AuditAnchor"'))
        .map((l) => l.replace(/,"chain":\{[^}]*\}\}$/, '}'));
      assert.deepEqual(lines, [
        '{"kind":"Event","auditID":"a"}',
        '{"kind":"Event","auditID":"b","requestURI":"/api/v1/na',
        '{"kind":"Event","auditID":"c"}',
        '',
      ]);
      assert.equal(said.length, 1);
      assert.match(said[0]!, /ended in an unfinished record \(54 bytes/);
      // A file that ends cleanly is left as it is.
      createAuditWriter(file, undefined, (m) => said.push(m)).commit({ kind: 'Event', auditID: 'd' } as unknown as AuditRecord);
      assert.equal(said.length, 1);
      assert.equal(readFileSync(file, 'utf8').split('\n').length, 8);

      // A fragment longer than one read from the end, cut inside a character: counted, and kept, to the byte.
      const long = Buffer.concat([Buffer.from('{"kind":"Event","pad":"' + 'x'.repeat(100 * 1024)), Buffer.from('é').subarray(0, 1)]);
      appendFileSync(file, long);
      createAuditWriter(file, undefined, (m) => said.push(m)).commit({ kind: 'Event', auditID: 'e' } as unknown as AuditRecord);
      assert.match(said[1]!, new RegExp(`ended in an unfinished record \\(${long.length} bytes`));
      const bytes = readFileSync(file);
      const at = bytes.indexOf(long);
      assert.ok(at > 0 && bytes[at + long.length] === 0x0a, 'the fragment on its own line, byte for byte');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
