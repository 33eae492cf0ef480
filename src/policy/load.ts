import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { readBundle } from './bundle.js';
import { PolicyLoadError } from './errors.js';
import { analyseFootprint, type Footprint } from './footprint.js';
import { verifyBundle, type Verification } from './signature.js';

const run = promisify(execFile);

export const ENTRYPOINT = 'gatehouse/decision';

/** Where the policy comes from: Rego compiled at start-up, or a prebuilt artefact. */
export type PolicySource =
  | { readonly kind: 'rego'; readonly dir: string; readonly opa: string; readonly data?: string }
  /** Decisions over HTTP from `opa run --server` (see opa-server.ts); nothing is compiled here. */
  | { readonly kind: 'opaServer'; readonly url: string }
  | { readonly kind: 'wasm'; readonly file: string; readonly data?: string }
  /** `file` is a path or an http(s) URL; `pollSeconds` re-reads it (with If-None-Match for URLs); signed when a key is set. */
  | { readonly kind: 'bundle'; readonly file: string; readonly pollSeconds?: number; readonly verificationKeyFile?: string };

export interface CompiledPolicy {
  readonly wasm: Buffer;
  readonly data: unknown;
  /** A short content hash: audit records name the policy that decided. */
  readonly revision: string;
  /** What of the input the policy reads (policy/footprint.ts); absent when not known (prebuilt WASM, bundles). */
  readonly footprint?: Footprint;
}

export { PolicyLoadError };

function regoFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...regoFiles(p));
    else if (entry.name.endsWith('.rego') && !entry.name.endsWith('_test.rego')) out.push(p);
  }
  return out.sort();
}

function readData(file: string | undefined): unknown {
  if (file === undefined) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new PolicyLoadError(`policy data ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/** The policy in an `opa build -t wasm` bundle, its signature verified first when a key is given. */
export async function fromBundle(tarGz: Buffer, origin: string, verification?: Verification): Promise<{ wasm: Buffer; data: unknown }> {
  let files: Map<string, Buffer>;
  try {
    files = readBundle(tarGz);
  } catch (err) {
    throw new PolicyLoadError(`the policy bundle ${origin} is not a .tar.gz: ${(err as Error).message}`);
  }
  if (verification) await verifyBundle(files, verification, origin);
  const wasm = files.get('policy.wasm');
  if (!wasm) throw new PolicyLoadError(`${origin} holds no policy.wasm: build it with \`opa build -t wasm -e ${ENTRYPOINT}\``);
  const data = files.get('data.json');
  return { wasm, data: data ? JSON.parse(data.toString('utf8')) : undefined };
}

/**
 * Compiles (or reads) the policy once, at start-up. A policy that does not
 * compile stops the gateway with OPA's own message.
 */
export async function loadPolicySource(source: Exclude<PolicySource, { kind: 'opaServer' }>, verification?: Verification): Promise<CompiledPolicy> {
  let wasm: Buffer;
  let data: unknown;
  let footprint: Footprint | undefined;
  switch (source.kind) {
    case 'rego': {
      const files = regoFiles(source.dir);
      if (files.length === 0) throw new PolicyLoadError(`no .rego files in ${source.dir}`);
      const out = mkdtempSync(join(tmpdir(), 'gatehouse-policy-'));
      try {
        // One snapshot of the sources for the build and the analysis: a file saved meanwhile cannot give a
        // footprint of other Rego than the WASM's (a wrong footprint would hide input the policy reads).
        const copy = join(out, 'src');
        const names = files.map((f) => relative(source.dir, f));
        for (const name of names) {
          mkdirSync(dirname(join(copy, name)), { recursive: true });
          writeFileSync(join(copy, name), readFileSync(join(source.dir, name)));
        }
        const bundle = join(out, 'bundle.tar.gz');
        const analysed = analyseFootprint(source.opa, names, copy, `data.${ENTRYPOINT.replaceAll('/', '.')}`);
        try {
          await run(source.opa, ['build', '-t', 'wasm', '-e', ENTRYPOINT, '-o', bundle, ...names], { cwd: copy });
        } catch (err) {
          // opa build prints compile errors on stdout.
          const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
          const why = `${stdout}\n${stderr}`.trim() || (err as Error).message;
          throw new PolicyLoadError(`the policy in ${source.dir} does not compile:\n${why.replaceAll(copy + '/', '')}`);
        } finally {
          footprint = await analysed;
        }
        ({ wasm } = await fromBundle(readFileSync(bundle), bundle));
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
      data = readData(source.data);
      break;
    }
    case 'wasm':
      wasm = readFileSync(source.file);
      data = readData(source.data);
      break;
    case 'bundle':
      ({ wasm, data } = await fromBundle(readFileSync(source.file), source.file, verification));
      break;
  }
  return compiled(wasm, data, footprint);
}

export function compiled(wasm: Buffer, data: unknown, footprint?: Footprint): CompiledPolicy {
  const revision = createHash('sha256')
    .update(wasm)
    .update(JSON.stringify(data ?? null))
    .digest('hex')
    .slice(0, 12);
  return { wasm, data, revision, ...(footprint === undefined ? {} : { footprint }) };
}

/** For messages: the policy files relative to the folder they came from. */
export function describeSource(source: PolicySource): string {
  if (source.kind === 'opaServer') return `the OPA server at ${source.url}`;
  return source.kind === 'rego'
    ? `Rego in ${source.dir} (${regoFiles(source.dir)
        .map((f) => relative(source.dir, f))
        .join(', ')})`
    : `${source.kind} ${source.file}`;
}

export function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
