/**
 * Policy evaluation of the bundled policy in process: the compiled WASM via
 * opa-wasm, on the sample inputs of policies/fixtures (DESIGN §7: p50 ≤ 10 µs,
 * p99 ≤ 50 µs). Prints numbers; asserts nothing.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPolicyEngine } from '../src/policy/engine.js';
import { loadPolicySource } from '../src/policy/load.js';
import { projectRoot, toolPath } from '../src/paths.js';
import { percentiles } from './stats.js';

const quick = process.argv.includes('--quick');
const samples = JSON.parse(readFileSync(join(projectRoot, 'policies/fixtures/samples.json'), 'utf8')).samples as { input: unknown }[];
const engine = await createPolicyEngine(await loadPolicySource({ kind: 'rego', dir: join(projectRoot, 'policies/gatehouse'), opa: toolPath('opa') }));
const rounds = quick ? 2_000 : 20_000;
for (let i = 0; i < 2_000; i++) engine.evaluate(samples[i % samples.length]!.input);
const times: number[] = [];
for (let i = 0; i < rounds; i++) {
  const input = samples[i % samples.length]!.input;
  const t = process.hrtime.bigint();
  engine.evaluate(input);
  times.push(Number(process.hrtime.bigint() - t) / 1000);
}
const p = percentiles(times);
console.log(`policy evaluation (bundled policy, ${samples.length} sample inputs, ${rounds} evaluations, input serialization included)`);
console.log(`| p50 µs | p90 µs | p99 µs |\n|---|---|---|\n| ${p['p50']!.toFixed(1)} | ${p['p90']!.toFixed(1)} | ${p['p99']!.toFixed(1)} |`);
