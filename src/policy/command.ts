/**
 * `gatehouse policy test [DIR]`: the policy author's one command — `opa fmt`,
 * `opa check --strict` (with the input schema), `opa test`, and the sample
 * fixtures through the real WASM engine the gateway runs — with one summary
 * and a non-zero exit on any failure. (`policy replay` lives in replay.ts.)
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseOr, unknownSub } from '../cli-args.js';
import { messageOf } from '../errors.js';
import { toolOrPath } from '../paths.js';
import { checkMaskPath } from '../redact/path.js';
import { visible } from '../terminal.js';
import { createPolicyEngine } from './engine.js';
import { checkSample, readSamples } from './fixtures.js';
import { loadPolicySource } from './load.js';
import { runReplayCommand } from './replay.js';

const USAGE = `usage: gatehouse policy <command>

  test [DIR] [--policy DIR] [--schema FILE] [--fixtures FILE] [--opa PATH]
      opa fmt, opa check --strict, opa test on DIR (default: policies), then the fixtures through the
      compiled WASM. --policy: the Rego the gateway loads (default DIR/gatehouse); --schema default
      DIR/schema/input.json, --fixtures default DIR/fixtures/samples.json, when they exist.
  replay --policy DIR|BUNDLE --audit FILE… [--since 24h] [-o table|json]
      re-decide recorded requests with a candidate policy; print what would change
`;

interface Ran {
  readonly code: number;
  readonly output: string;
}

function run(cmd: string, args: readonly string[]): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 127) : 0;
      resolve({ code, output: `${stdout}${stderr}`.trim() || (err ? err.message : '') });
    });
  });
}

interface Step {
  readonly name: string;
  readonly ok: boolean;
  readonly summary: string;
  readonly detail?: string;
  readonly ms: number;
}

async function timed(name: string, body: () => Promise<Omit<Step, 'name' | 'ms'>>): Promise<Step> {
  const t0 = Date.now();
  try {
    return { name, ...(await body()), ms: Date.now() - t0 };
  } catch (err) {
    return { name, ok: false, summary: 'could not run', detail: messageOf(err), ms: Date.now() - t0 };
  }
}

export async function policyTest(o: { dir: string; policy: string; schema?: string; fixtures?: string; opa: string }): Promise<Step[]> {
  const steps: Step[] = [];
  steps.push(
    await timed('opa fmt', async () => {
      const r = await run(o.opa, ['fmt', '--fail', '--list', o.dir]);
      if (r.code === 127) throw new Error(`${o.opa} did not run: ${r.output} (build it with scripts/tools.sh, or pass --opa)`);
      return r.code === 0 ? { ok: true, summary: 'every file formatted' } : { ok: false, summary: 'files need `opa fmt -w`', detail: r.output };
    }),
  );
  steps.push(
    await timed('opa check', async () => {
      const r = await run(o.opa, ['check', '--strict', ...(o.schema ? ['--schema', o.schema] : []), o.dir]);
      const how = o.schema ? `--strict, against ${relative(process.cwd(), o.schema) || o.schema}` : '--strict (no input schema)';
      return r.code === 0 ? { ok: true, summary: how } : { ok: false, summary: `${how}: errors`, detail: r.output };
    }),
  );
  steps.push(
    await timed('opa test', async () => {
      const r = await run(o.opa, ['test', o.dir]);
      const line = (what: string) => new RegExp(`^${what}: .*$`, 'm').exec(r.output)?.[0];
      const tally = (r.code === 0 ? line('PASS') : (line('FAIL') ?? line('ERROR'))) ?? r.output.split('\n').at(-1) ?? '';
      return r.code === 0 ? { ok: true, summary: tally } : { ok: false, summary: tally || 'failed', detail: r.output };
    }),
  );
  if (o.fixtures)
    steps.push(
      await timed('fixtures (WASM)', async () => {
        const samples = readSamples(o.fixtures!);
        const engine = await createPolicyEngine(await loadPolicySource({ kind: 'rego', dir: o.policy, opa: o.opa }), checkMaskPath);
        const failed = samples.flatMap((s) => {
          const d = checkSample((i) => engine.evaluate(i), s);
          return d ? [`${s.name}\n    expected ${JSON.stringify(d.expected)}\n    got      ${JSON.stringify(d.got)}`] : [];
        });
        return failed.length === 0
          ? { ok: true, summary: `${samples.length}/${samples.length} samples decided as expected by the compiled policy` }
          : { ok: false, summary: `${failed.length} of ${samples.length} samples decided otherwise`, detail: failed.join('\n') };
      }),
    );
  return steps;
}

export async function runPolicyCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'replay') return runReplayCommand(rest);
  if (sub !== 'test') return unknownSub('policy', sub, USAGE);
  const parsed = parseOr('policy test', USAGE, {
    args: rest,
    allowPositionals: true,
    options: { policy: { type: 'string' }, schema: { type: 'string' }, fixtures: { type: 'string' }, opa: { type: 'string' } },
  });
  if (!parsed) return 2;
  const { values, positionals } = parsed;
  if (positionals.length > 1) {
    process.stderr.write(USAGE);
    return 2;
  }
  const dir = positionals[0] ?? 'policies';
  if (!existsSync(dir)) {
    process.stderr.write(`gatehouse policy test: ${dir} does not exist\n`);
    return 2;
  }
  const ifThere = (f: string) => (existsSync(f) ? f : undefined);
  const schema = values.schema ?? ifThere(join(dir, 'schema', 'input.json'));
  const fixtures = values.fixtures ?? ifThere(join(dir, 'fixtures', 'samples.json'));
  const steps = await policyTest({
    dir,
    policy: resolve(values.policy ?? (existsSync(join(dir, 'gatehouse')) ? join(dir, 'gatehouse') : dir)),
    ...(schema ? { schema } : {}),
    ...(fixtures ? { fixtures } : {}),
    opa: values.opa ?? toolOrPath('opa'),
  });
  const width = Math.max(...steps.map((s) => s.name.length));
  const lines = steps.flatMap((s) => [
    `  ${s.ok ? '✔' : '✗'} ${s.name.padEnd(width)}  ${visible(s.summary)} (${(s.ms / 1000).toFixed(1)} s)`,
    ...(s.ok || !s.detail
      ? []
      : s.detail
          .split('\n')
          .slice(0, 200)
          .map((l) => `      ${visible(l)}`)),
  ]);
  const failed = steps.filter((s) => !s.ok).length;
  process.stdout.write(
    `gatehouse policy test ${dir}\n${lines.join('\n')}\n${failed ? `${failed} of ${steps.length} checks failed` : `all ${steps.length} checks passed`}\n`,
  );
  return failed ? 1 : 0;
}
