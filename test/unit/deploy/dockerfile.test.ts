/**
 * The image cannot be built here (no registry is reachable), so what can be
 * checked is: the Dockerfile parses into known instructions, its stages and
 * their references hang together, the runtime stage runs as a non-root user
 * without a shell, and everything it copies from the build context exists and
 * is not excluded by .dockerignore.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../../src/paths.js';

const INSTRUCTIONS = new Set(['FROM', 'ARG', 'ENV', 'RUN', 'COPY', 'WORKDIR', 'USER', 'EXPOSE', 'ENTRYPOINT', 'CMD', 'LABEL']);

interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  readonly steps: { readonly op: string; readonly args: string }[];
}

function parse(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [op = '', ...rest] = line.split(/\s+/);
    assert.ok(INSTRUCTIONS.has(op.toUpperCase()), `unknown instruction: ${line}`);
    const args = rest.join(' ');
    if (op.toUpperCase() === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      assert.ok(m, `FROM ${args}`);
      stages.push({ image: m[1]!, name: m[2], steps: [] });
    } else if (stages.length) stages.at(-1)!.steps.push({ op: op.toUpperCase(), args });
  }
  return stages;
}

describe('Dockerfile', () => {
  const text = readFileSync(join(projectRoot, 'Dockerfile'), 'utf8');
  const stages = parse(text);
  const runtime = stages.at(-1)!;

  it('has a build stage for OPA, one for the TypeScript build, and a runtime stage that copies from them', () => {
    assert.deepEqual(
      stages.map((s) => s.name),
      ['opa', 'build', undefined],
    );
    const from = runtime.steps.filter((s) => s.op === 'COPY' && s.args.startsWith('--from=')).map((s) => /--from=(\S+)/.exec(s.args)![1]);
    for (const ref of from)
      assert.ok(
        stages.some((s) => s.name === ref),
        `COPY --from=${ref} names no stage`,
      );
    assert.ok(from.includes('opa') && from.includes('build'));
  });

  it('runs as a non-root user, with no shell and no RUN in the runtime stage, and exposes the API and metrics ports', () => {
    const user = runtime.steps.filter((s) => s.op === 'USER').at(-1)?.args ?? 'root';
    const [uid] = user.split(':');
    assert.notEqual(uid, 'root');
    assert.notEqual(uid, '0');
    assert.ok(/^\d+$/.test(uid!), 'a numeric user, so runAsNonRoot can check it');
    assert.equal(runtime.steps.filter((s) => s.op === 'RUN').length, 0);
    assert.match(runtime.image, /distroless/);
    const entrypoint = runtime.steps.find((s) => s.op === 'ENTRYPOINT')!.args;
    assert.ok(entrypoint.startsWith('['), 'exec form: no shell to run it');
    assert.deepEqual(runtime.steps.find((s) => s.op === 'EXPOSE')!.args.split(' '), ['8443', '9464']);
  });

  it('copies only files that exist and that .dockerignore lets into the context', () => {
    const ignore = readFileSync(join(projectRoot, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    assert.equal(ignore[0], '*', 'everything is excluded unless listed');
    const allowed = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    const copied = stages
      .flatMap((s) => s.steps)
      .filter((s) => s.op === 'COPY' && !s.args.startsWith('--from='))
      .flatMap((s) => s.args.split(/\s+/).slice(0, -1));
    assert.ok(copied.length >= 6);
    for (const src of copied) {
      assert.ok(existsSync(join(projectRoot, src)), `${src} does not exist`);
      assert.ok(
        allowed.some((a) => src === a || src.startsWith(`${a}/`)),
        `${src} is excluded by .dockerignore`,
      );
    }
  });
});
