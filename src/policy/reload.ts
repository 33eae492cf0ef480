/**
 * Policy is swapped, never mutated (DESIGN §9): a new revision is compiled
 * (or fetched, and its signature verified) and loaded beside the running one,
 * then swapped in with one assignment. A request pins the engine it started
 * with, so its decisions come from one revision however long it runs; watches
 * and sessions are never cut. A revision that does not compile, verify or load
 * never replaces a good one.
 *
 * Triggers: `reload()` (SIGHUP), a change in a Rego folder (watched,
 * debounced), and a bundle re-read every `pollSeconds` — over HTTP with
 * If-None-Match, like OPA's bundle service, so an unchanged bundle costs a 304.
 */
import { createHash } from 'node:crypto';
import { watch, readFileSync, type FSWatcher } from 'node:fs';
import { request } from 'undici';
import type { PolicyEngine } from './engine.js';
import { PolicyLoadError } from './errors.js';
import { compiled, fromBundle, loadPolicySource, type CompiledPolicy, type PolicySource } from './load.js';
import type { Verification } from './signature.js';

export type LocalSource = Exclude<PolicySource, { kind: 'opaServer' }>;
export type ReloadResult = 'swapped' | 'unchanged' | 'failed';

export interface PolicyReloader {
  /** The serving policy: each call goes to the revision current at that moment; `pin()` holds one. */
  readonly engine: PolicyEngine;
  /** Loads the source again and swaps in a new revision if it differs and loads. Never throws. */
  reload(trigger: string): Promise<ReloadResult>;
  close(): void;
}

const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

export function isUrl(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

/** Reads a bundle from a file or URL; undefined when it has not changed since `etag`. */
async function readBundleBytes(location: string, etag: string | undefined): Promise<{ bytes: Buffer; etag: string } | undefined> {
  if (!isUrl(location)) {
    const bytes = readFileSync(location);
    const digest = createHash('sha256').update(bytes).digest('hex');
    return digest === etag ? undefined : { bytes, etag: digest };
  }
  const res = await request(location, {
    headers: { accept: 'application/gzip, application/octet-stream', ...(etag ? { 'if-none-match': etag } : {}) },
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
  if (res.statusCode === 304) {
    await res.body.dump();
    return undefined;
  }
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new PolicyLoadError(`the policy bundle ${location} answered HTTP ${res.statusCode}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BUNDLE_BYTES) {
      res.body.destroy();
      throw new PolicyLoadError(`the policy bundle ${location} is larger than ${MAX_BUNDLE_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  const bytes = Buffer.concat(chunks);
  const tag = res.headers['etag'];
  return { bytes, etag: typeof tag === 'string' ? tag : createHash('sha256').update(bytes).digest('hex') };
}

/**
 * Loads the policy once (throwing a PolicyLoadError: start-up stops) and
 * returns the reloader serving it.
 */
export async function startPolicy(
  source: LocalSource,
  opts: {
    readonly build: (policy: CompiledPolicy) => Promise<PolicyEngine>;
    readonly verification?: Verification;
    /** Every reload's outcome, with OPA's (or the fetch's) message when it failed. */
    readonly onReload?: (result: ReloadResult, revision: string, trigger: string, error?: Error) => void;
    readonly debounceMs?: number;
  },
): Promise<PolicyReloader> {
  let etag: string | undefined;

  async function load(): Promise<CompiledPolicy | undefined> {
    if (source.kind !== 'bundle') return loadPolicySource(source, opts.verification);
    const read = await readBundleBytes(source.file, etag);
    if (!read) return undefined;
    const { wasm, data } = await fromBundle(read.bytes, source.file, opts.verification);
    etag = read.etag;
    return compiled(wasm, data);
  }

  const first = await load();
  let current = await opts.build(first!);

  async function reloadOnce(trigger: string): Promise<ReloadResult> {
    let result: ReloadResult = 'unchanged';
    try {
      const next = await load();
      if (next && next.revision !== current.revision) {
        current = await opts.build(next);
        result = 'swapped';
      }
      opts.onReload?.(result, current.revision, trigger);
    } catch (err) {
      result = 'failed';
      opts.onReload?.(result, current.revision, trigger, err instanceof Error ? err : new Error(String(err)));
    }
    return result;
  }

  // One reload at a time; triggers that arrive meanwhile are folded into one more.
  let running: Promise<ReloadResult> | undefined;
  let queued: Promise<ReloadResult> | undefined;
  function reload(trigger: string): Promise<ReloadResult> {
    if (!running) {
      running = reloadOnce(trigger).finally(() => (running = undefined));
      return running;
    }
    queued ??= running.then(() => {
      queued = undefined;
      return reload(trigger);
    });
    return queued;
  }

  const stops: (() => void)[] = [];
  if (source.kind === 'rego') {
    let timer: NodeJS.Timeout | undefined;
    const watcher: FSWatcher = watch(source.dir, { recursive: true }, (_event, name) => {
      // Editors write temporary files beside the real one; only policy files matter.
      if (name && !/\.(rego|json)$/.test(name)) return;
      clearTimeout(timer);
      timer = setTimeout(() => void reload(`change in ${source.dir}`), opts.debounceMs ?? 300);
    });
    stops.push(() => {
      clearTimeout(timer);
      watcher.close();
    });
  }
  if (source.kind === 'bundle' && source.pollSeconds) {
    const poll = setInterval(() => void reload(`poll of ${source.file}`), source.pollSeconds * 1000);
    poll.unref();
    stops.push(() => clearInterval(poll));
  }

  return {
    engine: {
      get revision() {
        return current.revision;
      },
      evaluate: (input) => current.evaluate(input),
      pin: () => current,
    },
    reload,
    close: () => stops.forEach((s) => s()),
  };
}
