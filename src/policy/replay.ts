/**
 * `gatehouse policy replay`: every recorded request decided again by a
 * candidate policy, from the policy input its audit record keeps; what would
 * change is printed (who, what, old → new effect, reasons, masks) with a
 * summary, and the exit code says whether anything changed (0 no, 1 yes,
 * 2 usage or load error) so CI can gate a policy change on it.
 *
 * One decision per request: its ResponseComplete record, or its
 * RequestReceived one when a crash left no other. Records are streamed; what
 * is held is only the requests whose last record has not come yet.
 */
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { decisionFacts } from '../admission/record.js';
import { parseDuration, parseOr } from '../cli-args.js';
import { messageOf } from '../errors.js';
import { readLines } from '../audit/append.js';
import { toolOrPath } from '../paths.js';
import { table } from '../terminal.js';
import type { EmbeddedPolicyEngine } from './engine.js';
import { compareDecisions, type ChangeKind, type KeptDecision } from './compare.js';
import { loadPolicySource, type CompiledPolicy } from './load.js';

const USAGE = `usage: gatehouse policy replay --policy DIR|BUNDLE --audit FILE… [--since 24h] [-o table|json] [--opa PATH]

  --policy   the candidate: a folder of Rego (compiled with OPA), a bundle (.tar.gz) or a policy.wasm
  --audit    audit files the gateway wrote (audit.file); several may be given
  --since    only requests received in this window (s, m, h, d): 90m, 24h, 7d
Exit 0: no decision would change. 1: some would. 2: usage, or the policy or a file cannot be loaded.
`;

interface Recorded {
  readonly auditID?: string;
  readonly verb?: string;
  readonly requestURI?: string;
  readonly requestReceivedTimestamp?: string;
  readonly user?: { readonly username?: string };
  readonly objectRef?: { readonly resource?: string; readonly subresource?: string; readonly namespace?: string; readonly name?: string };
  readonly gatehouse?: { readonly decision?: KeptDecision; readonly input?: unknown };
}

export interface Change {
  readonly auditID: string;
  readonly time: string;
  readonly user: string;
  readonly agent: string | null;
  readonly onBehalfOf: string | null;
  readonly verb: string;
  readonly resource: string;
  readonly namespace: string;
  readonly name: string;
  readonly kind: ChangeKind;
  readonly old: KeptDecision;
  readonly new: KeptDecision;
  readonly maskAdded: readonly string[];
  readonly maskRemoved: readonly string[];
  /** The body was kept only as a digest (a Secret, or Metadata-level audit): decided without it, as recorded. */
  readonly bodyDigestOnly: boolean;
}

export interface Tally {
  replayed: number;
  skipped: number;
  changed: number;
  bodyDigestOnly: number;
  byKind: Record<string, number>;
}

export type ReplaySummary = Readonly<Tally>;

export const emptyTally = (): Tally => ({ replayed: 0, skipped: 0, changed: 0, bodyDigestOnly: 0, byKind: {} });

export function addTally(into: Tally, t: Tally): void {
  into.replayed += t.replayed;
  into.skipped += t.skipped;
  into.changed += t.changed;
  into.bodyDigestOnly += t.bodyDigestOnly;
  for (const [k, n] of Object.entries(t.byKind)) into.byKind[k] = (into.byKind[k] ?? 0) + n;
}

/**
 * Which lines to decide, one per request: a ResponseComplete record as it comes, and at the end the
 * RequestReceived records no ResponseComplete followed (a crash). Only the prefix of a line is read
 * here (the gateway writes kind, apiVersion, level, auditID and stage first); what is held is the
 * requests still open at this point of the file.
 */
export function createPairing() {
  const open = new Map<string, string>();
  const field = (line: string, name: string): string | undefined => {
    const key = `"${name}":"`;
    const at = line.indexOf(key);
    if (at < 0 || at > 256) return undefined;
    const from = at + key.length;
    const to = line.indexOf('"', from);
    return to < 0 ? undefined : line.slice(from, to);
  };
  return {
    /** The line to decide now, if any. */
    line(text: string): string | undefined {
      // Anchors, checkpoints, approval, session and tool-call records are not requests.
      if (!text.startsWith('{"kind":"Event"')) return undefined;
      const stage = field(text, 'stage');
      const id = field(text, 'auditID') ?? '';
      if (stage === 'RequestReceived') {
        open.set(id, text);
        return undefined;
      }
      if (stage !== 'ResponseComplete') return undefined;
      open.delete(id);
      return text;
    },
    /** The requests whose last record never came. */
    leftovers(): string[] {
      const rest = [...open.values()];
      open.clear();
      return rest;
    },
  };
}

/** Where the value starting at `i` ends (JSON text that parsed once: a record the gateway wrote). */
function valueEnd(text: string, i: number): number {
  let depth = 0;
  for (let j = i; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === 0x22) {
      // A string: to its closing quote, one not escaped by an odd run of backslashes.
      let q = text.indexOf('"', j + 1);
      for (;;) {
        let k = q - 1;
        while (text.charCodeAt(k) === 0x5c) k--;
        if ((q - 1 - k) % 2 === 0) break;
        q = text.indexOf('"', q + 1);
      }
      j = q;
      if (depth === 0) return j + 1;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      if (--depth === 0) return j + 1;
    } else if (depth === 0 && (c === 0x2c || c === 0x7d)) return j;
  }
  return -1;
}

/**
 * What a replay needs of a record — the decision kept, when the request came, and the policy input as
 * the JSON text it was written as — read by position, without parsing the rest: the input goes to the
 * engine as it is, instead of being parsed here and serialized again (most of a record's bytes, and of
 * a replay's cost). In the JSON text of a record, a quote not escaped is structure, never a string's
 * content, so a key found by its quoted name is the key. Undefined when the line is not shaped so.
 */
export function splitInput(line: string): { decision: KeptDecision; receivedAt: string; input: string } | undefined {
  const g = line.indexOf('"gatehouse":{"decision":');
  if (g < 0) return undefined;
  const dStart = g + '"gatehouse":{"decision":'.length;
  const dEnd = valueEnd(line, dStart);
  const k = dEnd < 0 ? -1 : line.indexOf('"input":', dEnd);
  if (k < 0) return undefined;
  const start = k + '"input":'.length;
  const end = valueEnd(line, start);
  const t = line.indexOf('"requestReceivedTimestamp":"');
  if (end < 0 || t < 0 || t > g) return undefined;
  const tStart = t + '"requestReceivedTimestamp":"'.length;
  try {
    return {
      decision: JSON.parse(line.slice(dStart, dEnd)) as KeptDecision,
      receivedAt: line.slice(tStart, line.indexOf('"', tStart)),
      input: line.slice(start, end),
    };
  } catch {
    return undefined;
  }
}

/** Decides one request's line again; its change, if any, is handed to onChange and counted. */
export function createDecider(engine: Pick<EmbeddedPolicyEngine, 'evaluateJson'>, tally: Tally, onChange: (c: Change) => void, since?: number) {
  return function decide(text: string): void {
    let split = splitInput(text);
    if (!split) {
      try {
        const r = JSON.parse(text) as Recorded;
        const d = r.gatehouse?.decision;
        split = d && { decision: d, receivedAt: r.requestReceivedTimestamp ?? '', input: JSON.stringify(r.gatehouse.input ?? null) };
      } catch {
        split = undefined;
      }
      if (!split || split.input === 'null') {
        tally.skipped++;
        return;
      }
    }
    const kept = split.decision;
    if (since !== undefined && Date.parse(split.receivedAt) < since) return;
    tally.replayed++;
    // storableInput's marker of a body dropped for its digest.
    const bodyDigestOnly = split.input.includes('"bodyDigest":{"sha256":');
    if (bodyDigestOnly) tally.bodyDigestOnly++;
    const now = decisionFacts(engine.evaluateJson(split.input));
    const diff = compareDecisions(kept, now);
    if (!diff) return;
    // Rare: only a changed decision needs the rest of the record.
    const r = JSON.parse(text) as Recorded;
    const input = r.gatehouse?.input as { user?: { agent?: { name?: string; onBehalfOf?: string | null } | null } } | undefined;
    tally.changed++;
    const label = diff.kind === 'effect' ? `${kept.effect} → ${now.effect}` : diff.kind;
    tally.byKind[label] = (tally.byKind[label] ?? 0) + 1;
    const o = r.objectRef;
    onChange({
      auditID: r.auditID ?? '',
      time: r.requestReceivedTimestamp ?? '',
      user: r.user?.username ?? '',
      agent: input?.user?.agent?.name ?? null,
      onBehalfOf: input?.user?.agent?.onBehalfOf ?? null,
      verb: r.verb ?? '',
      resource: o?.resource ? (o.subresource ? `${o.resource}/${o.subresource}` : o.resource) : (r.requestURI ?? ''),
      namespace: o?.namespace ?? '',
      name: o?.name ?? '',
      kind: diff.kind,
      old: kept,
      new: { effect: now.effect, reasons: now.reasons, mask: now.mask, ...(now.fields ? { fields: now.fields } : {}) },
      maskAdded: diff.maskAdded,
      maskRemoved: diff.maskRemoved,
      bodyDigestOnly,
    });
  };
}

export interface Replayer {
  /** One line of an audit file. */
  line(text: string): void;
  /** The requests whose last record never came (a crash), then the summary. */
  end(): ReplaySummary;
}

/** Pairing and deciding in one thread (tests, small files). */
export function createReplayer(engine: Pick<EmbeddedPolicyEngine, 'evaluateJson'>, onChange: (c: Change) => void, since?: number): Replayer {
  const tally = emptyTally();
  const pairing = createPairing();
  const decide = createDecider(engine, tally, onChange, since);
  return {
    line(text) {
      const next = pairing.line(text);
      if (next !== undefined) decide(next);
    },
    end() {
      pairing.leftovers().forEach(decide);
      return tally;
    },
  };
}

function sourceOf(policy: string, opa?: string) {
  return statSync(policy).isDirectory()
    ? { kind: 'rego' as const, dir: resolve(policy), opa: opa ?? toolOrPath('opa') }
    : policy.endsWith('.wasm')
      ? { kind: 'wasm' as const, file: policy }
      : { kind: 'bundle' as const, file: policy };
}

/**
 * Replays the files on `jobs` worker threads: this thread pairs records (a cheap scan of each line's
 * prefix) and hands batches out, at most two waiting per worker; the workers parse and decide.
 * Changes come back in file order.
 */
export async function replayFiles(
  compiledPolicy: CompiledPolicy,
  files: readonly string[],
  options: { since?: number; jobs?: number } = {},
): Promise<{ summary: ReplaySummary; changes: Change[] }> {
  const jobs = Math.max(1, options.jobs ?? availableParallelism());
  const BATCH = 512;
  const workers = await Promise.all(
    Array.from({ length: jobs }, async () => {
      const w = new Worker(new URL('./replay-worker.js', import.meta.url), {
        workerData: { wasm: compiledPolicy.wasm, data: compiledPolicy.data, since: options.since },
      });
      await new Promise<void>((ok, fail) => {
        w.once('message', () => ok());
        w.once('error', fail);
      });
      return { w, inFlight: 0 };
    }),
  );
  const tally = emptyTally();
  const results = new Map<number, Change[]>();
  let seq = 0;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  for (const slot of workers) {
    slot.w.on('message', (m: { seq: number; tally: Tally; changes: Change[] }) => {
      slot.inFlight--;
      addTally(tally, m.tally);
      if (m.changes.length) results.set(m.seq, m.changes);
      wake?.();
    });
    slot.w.on('error', (err) => {
      failure = err;
      wake?.();
    });
  }
  const idle = () => new Promise<void>((r) => (wake = r));
  async function send(lines: string[]): Promise<void> {
    for (;;) {
      if (failure) throw failure;
      const slot = workers.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
      if (slot.inFlight < 2) {
        slot.inFlight++;
        slot.w.postMessage({ seq: seq++, lines });
        return;
      }
      await idle();
    }
  }
  try {
    const pairing = createPairing();
    let batch: string[] = [];
    for (const file of files) {
      for await (const line of readLines(file)) {
        const next = pairing.line(line);
        if (next === undefined) continue;
        batch.push(next);
        if (batch.length === BATCH) {
          await send(batch);
          batch = [];
        }
      }
    }
    batch.push(...pairing.leftovers());
    if (batch.length) await send(batch);
    while (workers.some((s) => s.inFlight > 0)) {
      if (failure) throw failure;
      await idle();
    }
  } finally {
    await Promise.all(workers.map((s) => s.w.terminate()));
  }
  const changes = [...results.entries()].sort((a, b) => a[0] - b[0]).flatMap(([, c]) => c);
  return { summary: tally, changes };
}

function changeTable(changes: readonly Change[]): string {
  return table(
    [
      ['TIME', 'WHO', 'VERB', 'RESOURCE', 'NAMESPACE/NAME', 'CHANGE', 'REASONS (old → new)'],
      ...changes.map((c) => [
        c.time.replace(/\.\d+Z$/, 'Z'),
        c.agent ? `${c.user} (for ${c.onBehalfOf ?? '?'})` : c.user,
        c.verb,
        c.resource,
        c.namespace ? `${c.namespace}/${c.name}` : c.name,
        (c.kind === 'effect' ? `${c.old.effect} → ${c.new.effect}` : c.kind) +
          (c.maskAdded.length ? ` +mask ${c.maskAdded.join(', ')}` : '') +
          (c.maskRemoved.length ? ` -mask ${c.maskRemoved.join(', ')}` : '') +
          (c.bodyDigestOnly ? ' [body: digest only]' : ''),
        `${c.old.reasons.join('; ') || '-'} → ${c.new.reasons.join('; ') || '-'}`,
      ]),
    ],
    2,
  );
}

export async function runReplayCommand(argv: string[]): Promise<number> {
  const parsed = parseOr('policy replay', USAGE, {
    args: argv,
    options: {
      policy: { type: 'string' },
      audit: { type: 'string', multiple: true },
      since: { type: 'string' },
      output: { type: 'string', short: 'o', default: 'table' },
      opa: { type: 'string' },
    },
  });
  if (!parsed) return 2;
  const { values } = parsed;
  if (!values.policy || !values.audit?.length || !['table', 'json'].includes(values.output)) {
    process.stderr.write(`gatehouse policy replay: --policy and --audit are required\n${USAGE}`);
    return 2;
  }
  let since: number | undefined;
  let compiledPolicy: CompiledPolicy;
  try {
    since = values.since === undefined ? undefined : Date.now() - parseDuration(values.since);
    compiledPolicy = await loadPolicySource(sourceOf(values.policy, values.opa));
  } catch (err) {
    process.stderr.write(`gatehouse policy replay: ${messageOf(err)}\n`);
    return 2;
  }
  const started = process.hrtime.bigint();
  let summary: ReplaySummary;
  let changes: Change[];
  try {
    ({ summary, changes } = await replayFiles(compiledPolicy, values.audit, { ...(since !== undefined ? { since } : {}) }));
  } catch (err) {
    process.stderr.write(`gatehouse policy replay: ${messageOf(err)}\n`);
    return 2;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (values.output === 'json') process.stdout.write(JSON.stringify({ summary, changes }, null, 2) + '\n');
  else {
    if (changes.length) process.stdout.write(changeTable(changes) + '\n');
    const kinds = Object.entries(summary.byKind)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${n} ${k}`);
    process.stdout.write(
      `${summary.replayed} requests replayed in ${seconds.toFixed(1)} s; ${summary.changed ? `${summary.changed} would change: ${kinds.join(', ')}` : 'no decision would change'}` +
        (summary.bodyDigestOnly ? `; ${summary.bodyDigestOnly} decided without their body (kept only as a digest)` : '') +
        (summary.skipped ? `; ${summary.skipped} records without a decision or input skipped` : '') +
        '\n',
    );
  }
  return summary.changed ? 1 : 0;
}
