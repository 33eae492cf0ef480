/**
 * `gatehouse audit verify FILE… [--key FILE] [--live] [-o text|json]`: checks
 * each audit file's hash chain and keyed checkpoints (verify.ts). Exit 0 only
 * when every file's chain holds; 1 when one does not; 2 on a usage error or a
 * file that cannot be read.
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { parseOr, unknownSub } from '../cli-args.js';
import { messageOf } from '../errors.js';
import { visible } from '../terminal.js';
import { readLines } from './append.js';
import { createVerifier, type VerifyReport } from './verify.js';

const USAGE = `usage: gatehouse audit verify FILE… [--key FILE] [--live] [-o text|json]

  FILE          an audit file the gateway wrote (audit.file); each is its own chain
  --key FILE    the checkpoint key (audit.checkpoint.keyFile): checkpoints are checked with it
  --live        the file of a running gateway: its end need not be a shutdown checkpoint
Exit 0: every chain holds. 1: a line was edited, inserted, deleted or moved, the tail was cut, or a checkpoint does not verify. 2: usage.
`;

function endsWithNewline(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return true;
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, size - 1);
    return b[0] === 0x0a;
  } finally {
    closeSync(fd);
  }
}

export async function verifyFile(file: string, options: { key?: Buffer; live?: boolean }): Promise<VerifyReport> {
  const verifier = createVerifier(options);
  const ends = endsWithNewline(file);
  for await (const line of readLines(file)) verifier.line(line);
  return verifier.end(ends);
}

export async function runAuditCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'verify') return unknownSub('audit', sub, USAGE);
  const parsed = parseOr('audit verify', USAGE, {
    args: rest,
    allowPositionals: true,
    options: { key: { type: 'string' }, live: { type: 'boolean' }, output: { type: 'string', short: 'o', default: 'text' } },
  });
  if (!parsed) return 2;
  const { values, positionals } = parsed;
  if (!positionals.length || !['text', 'json'].includes(values.output)) {
    process.stderr.write(USAGE);
    return 2;
  }
  let key: Buffer | undefined;
  try {
    key = values.key === undefined ? undefined : readFileSync(values.key);
  } catch (err) {
    process.stderr.write(`gatehouse audit verify: cannot read the key: ${messageOf(err)}\n`);
    return 2;
  }
  const results: { file: string; report: VerifyReport }[] = [];
  for (const file of positionals) {
    try {
      results.push({ file, report: await verifyFile(file, { ...(key ? { key } : {}), live: values.live ?? false }) });
    } catch (err) {
      process.stderr.write(`gatehouse audit verify: cannot read ${file}: ${messageOf(err)}\n`);
      return 2;
    }
  }
  if (values.output === 'json') process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  else
    for (const { file, report: r } of results) {
      const head = r.problem
        ? `${visible(file)}: BROKEN at line ${r.problem.line}: ${r.problem.what}`
        : `${visible(file)}: the chain holds (${r.lines} lines, ${r.checkpoints} checkpoint(s)${key ? ' verified' : ''})`;
      process.stdout.write([head, ...r.notes.map((n) => `  note: ${n}`)].join('\n') + '\n');
    }
  return results.some((r) => r.report.problem) ? 1 : 0;
}
