import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

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
