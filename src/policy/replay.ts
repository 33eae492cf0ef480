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
import { createReadStream, existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { decisionFacts } from '../admission/record.js';
import { messageOf } from '../errors.js';
import { projectRoot } from '../paths.js';
import { checkMaskPath } from '../redact/path.js';
import { visible } from '../terminal.js';
import { createPolicyEngine, type EmbeddedPolicyEngine } from './engine.js';
import { loadPolicySource } from './load.js';

const USAGE = `usage: gatehouse policy replay --policy DIR|BUNDLE --audit FILE… [--since 24h] [-o table|json] [--opa PATH]

  --policy   the candidate: a folder of Rego (compiled with OPA), a bundle (.tar.gz) or a policy.wasm
  --audit    audit files the gateway wrote (audit.file); several may be given
  --since    only requests received in this window (s, m, h, d): 90m, 24h, 7d
Exit 0: no decision would change. 1: some would. 2: usage, or the policy or a file cannot be loaded.
`;

/** The decision as an audit record keeps it. */
interface KeptDecision {
  readonly effect: string;
  readonly reasons: readonly string[];
  readonly mask: readonly string[];
  readonly fields?: readonly string[];
}

interface Recorded {
  readonly auditID?: string;
  readonly kind?: string;
  readonly stage?: string;
  readonly verb?: string;
  readonly requestURI?: string;
  readonly requestReceivedTimestamp?: string;
  readonly user?: { readonly username?: string };
  readonly objectRef?: { readonly resource?: string; readonly subresource?: string; readonly namespace?: string; readonly name?: string };
  readonly gatehouse?: { readonly decision?: KeptDecision; readonly input?: unknown };
}

export type ChangeKind = 'effect' | 'mask' | 'reasons';

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

export interface ReplaySummary {
  readonly replayed: number;
  readonly skipped: number;
  readonly changed: number;
  /** `allow → deny`, `mask`, `reasons` … with their counts. */
  readonly byKind: Readonly<Record<string, number>>;
  readonly bodyDigestOnly: number;
}

const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** What differs between the recorded decision and the candidate's, if anything. */
export function compareDecisions(old: KeptDecision, now: KeptDecision): { kind: ChangeKind; maskAdded: string[]; maskRemoved: string[] } | null {
  const maskAdded = now.mask.filter((m) => !old.mask.includes(m));
  const maskRemoved = old.mask.filter((m) => !now.mask.includes(m));
  if (old.effect !== now.effect) return { kind: 'effect', maskAdded, maskRemoved };
  if (maskAdded.length || maskRemoved.length || !same(old.mask, now.mask)) return { kind: 'mask', maskAdded, maskRemoved };
  if (!same([...old.reasons].sort(), [...now.reasons].sort()) || !same(old.fields ?? [], now.fields ?? [])) return { kind: 'reasons', maskAdded, maskRemoved };
  return null;
}

export interface Replayer {
  /** One line of an audit file. */
  line(text: string): void;
  /** The requests whose last record never came (a crash), then the summary. */
  end(): ReplaySummary;
}

export function createReplayer(engine: Pick<EmbeddedPolicyEngine, 'evaluate'>, onChange: (c: Change) => void, since?: number): Replayer {
  let replayed = 0;
  let skipped = 0;
  let changed = 0;
  let digestOnly = 0;
  const byKind: Record<string, number> = {};
  /** RequestReceived records waiting for their ResponseComplete. */
  const open = new Map<string, Recorded>();

  function replay(r: Recorded): void {
    const kept = r.gatehouse?.decision;
    const input = r.gatehouse?.input as
      { user?: { agent?: { name?: string; onBehalfOf?: string | null } | null }; request?: { bodyDigest?: unknown } } | undefined;
    if (!kept || !input) {
      skipped++;
      return;
    }
    if (since !== undefined && Date.parse(r.requestReceivedTimestamp ?? '') < since) return;
    replayed++;
    const bodyDigestOnly = input.request?.bodyDigest != null;
    if (bodyDigestOnly) digestOnly++;
    const now = decisionFacts(engine.evaluate(input));
    const diff = compareDecisions(kept, now);
    if (!diff) return;
    changed++;
    const label = diff.kind === 'effect' ? `${kept.effect} → ${now.effect}` : diff.kind;
    byKind[label] = (byKind[label] ?? 0) + 1;
    const o = r.objectRef;
    onChange({
      auditID: r.auditID ?? '',
      time: r.requestReceivedTimestamp ?? '',
      user: r.user?.username ?? '',
      agent: input.user?.agent?.name ?? null,
      onBehalfOf: input.user?.agent?.onBehalfOf ?? null,
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
  }

  return {
    line(text) {
      // Cheap filter first: anchors, checkpoints, approval, session and tool-call records are not requests.
      if (!text.startsWith('{"kind":"Event"')) return;
      let r: Recorded;
      try {
        r = JSON.parse(text) as Recorded;
      } catch {
        skipped++;
        return;
      }
      const id = r.auditID ?? '';
      if (r.stage === 'RequestReceived') {
        open.set(id, r);
        return;
      }
      if (r.stage !== 'ResponseComplete') return;
      open.delete(id);
      replay(r);
    },
    end() {
      for (const r of open.values()) replay(r);
      open.clear();
      return { replayed, skipped, changed, byKind, bodyDigestOnly: digestOnly };
    },
  };
}

/** `90m`, `24h`, `7d`, `30s` → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(text);
  if (!m) throw new Error(`--since ${JSON.stringify(text)} is not a duration like 90m, 24h or 7d`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

export async function loadCandidate(policy: string, opa?: string): Promise<EmbeddedPolicyEngine> {
  const isDir = statSync(policy).isDirectory();
  const source = isDir
    ? { kind: 'rego' as const, dir: resolve(policy), opa: opa ?? (existsSync(`${projectRoot}/.tools/opa`) ? `${projectRoot}/.tools/opa` : 'opa') }
    : policy.endsWith('.wasm')
      ? { kind: 'wasm' as const, file: policy }
      : { kind: 'bundle' as const, file: policy };
  return createPolicyEngine(await loadPolicySource(source), checkMaskPath);
}

function table(changes: readonly Change[]): string {
  const rows = [
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
  ].map((r) => r.map(visible));
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 2))).join('')).join('\n') + '\n';
}

export async function runReplayCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        policy: { type: 'string' },
        audit: { type: 'string', multiple: true },
        since: { type: 'string' },
        output: { type: 'string', short: 'o', default: 'table' },
        opa: { type: 'string' },
      },
    }));
    if (!values.policy || !values.audit?.length || !['table', 'json'].includes(values.output)) throw new Error('--policy and --audit are required');
  } catch (err) {
    process.stderr.write(`gatehouse policy replay: ${messageOf(err)}\n${USAGE}`);
    return 2;
  }
  let since: number | undefined;
  let engine: EmbeddedPolicyEngine;
  try {
    since = values.since === undefined ? undefined : Date.now() - parseDuration(values.since);
    engine = await loadCandidate(values.policy, values.opa);
  } catch (err) {
    process.stderr.write(`gatehouse policy replay: ${messageOf(err)}\n`);
    return 2;
  }
  const changes: Change[] = [];
  const replayer = createReplayer(engine, (c) => changes.push(c), since);
  const started = process.hrtime.bigint();
  for (const file of values.audit) {
    try {
      for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) replayer.line(line);
    } catch (err) {
      process.stderr.write(`gatehouse policy replay: cannot read ${file}: ${messageOf(err)}\n`);
      return 2;
    }
  }
  const summary = replayer.end();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (values.output === 'json') process.stdout.write(JSON.stringify({ summary, changes }, null, 2) + '\n');
  else {
    if (changes.length) process.stdout.write(table(changes) + '\n');
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
