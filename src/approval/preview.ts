/**
 * What a write would do, for the approver (issue: "preview for writes"): a
 * server-side dry run of the same request as the requester, and the object as
 * it is now, both masked as the requester's policy masks them, as a diff. The
 * approver sees no more than the requester could.
 */
import { stringify } from 'yaml';
import { parseFieldPath, type FieldPath } from '../policy/field-path.js';
import type { Preview } from './approval.js';
import { unifiedDiff } from './diff.js';
import { diffLinesShowing, linesShowing } from './highlight.js';

export interface Answer {
  readonly status: number;
  readonly body: Buffer;
}

export interface AsRequester {
  (req: { readonly method: string; readonly pathAndQuery: string; readonly body?: Buffer; readonly contentType?: string }): Promise<Answer>;
}

/** The API server's answers about a write, unmasked: the dry run, and the object as it was (none for a create without a name). */
export interface WriteAnswers {
  readonly current: Answer | null;
  readonly dryRun: Answer;
}

export interface PreviewRequest {
  readonly verb: string;
  readonly method: string;
  /** Path without query. */
  readonly path: string;
  readonly search: string;
  readonly body: Buffer | undefined;
  readonly contentType: string | undefined;
}

const WRITES = new Set(['create', 'update', 'patch', 'delete']);
/** Fields that change on every write and only hide what matters. */
const NOISE = ['managedFields', 'resourceVersion', 'generation'];

function parseObject(body: Buffer): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(body.toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function render(obj: Record<string, unknown> | undefined): string {
  if (!obj) return '';
  const meta = obj['metadata'];
  if (typeof meta === 'object' && meta !== null) {
    const m = Object.fromEntries(Object.entries(meta).filter(([k]) => !NOISE.includes(k)));
    obj = { ...obj, metadata: m };
  }
  return stringify(obj, { lineWidth: 0 });
}

function withDryRun(search: string): string {
  return search ? `${search}&dryRun=All` : '?dryRun=All';
}

/** The object's own path: the request's for update/patch/delete, the collection's plus the body's name for create. */
function objectPath(req: PreviewRequest): string | undefined {
  if (req.verb !== 'create') return req.path;
  const name = (parseObject(req.body ?? Buffer.alloc(0))?.['metadata'] as Record<string, unknown> | undefined)?.['name'];
  return typeof name === 'string' && name ? `${req.path}/${encodeURIComponent(name)}` : undefined;
}

/**
 * The body of the dry run. A DELETE's body is DeleteOptions, and the API server
 * takes the options from the body over the query: kubectl sends one, so a
 * `?dryRun=All` alone would really delete (found by the approvals e2e test).
 * The dry run is put in the body too, and a body that cannot carry it is not sent.
 */
export function dryRunBody(req: PreviewRequest): Buffer | undefined | Error {
  if (req.verb !== 'delete' || !req.body || req.body.length === 0) return req.body;
  const options = parseObject(req.body);
  if (!options) return new Error('the delete options are not a JSON object, so a dry run cannot be made safely');
  return Buffer.from(JSON.stringify({ ...options, dryRun: ['All'] }));
}

/**
 * The same write as a server-side dry run, as the requester, and the object as
 * it is now, read at the same time. Used by the preview, and by the policy
 * stage when a policy asks to inspect the object a write would produce.
 */
export async function dryRunWrite(req: PreviewRequest, asRequester: AsRequester): Promise<WriteAnswers | Error> {
  const body = dryRunBody(req);
  if (body instanceof Error) return body;
  const path = objectPath(req);
  const [current, dryRun] = await Promise.all([
    path ? asRequester({ method: 'GET', pathAndQuery: path }) : null,
    asRequester({
      method: req.method,
      pathAndQuery: req.path + withDryRun(req.search),
      ...(body ? { body } : {}),
      ...(req.contentType ? { contentType: req.contentType } : {}),
    }),
  ]);
  return { current, dryRun };
}

export async function previewWrite(
  req: PreviewRequest,
  asRequester: AsRequester,
  mask: (body: Buffer) => Promise<Buffer>,
  fields: readonly string[] = [],
): Promise<Preview> {
  if (!WRITES.has(req.verb)) return { status: 'none', message: `${req.verb} changes no object; nothing to preview` };
  const answers = await dryRunWrite(req, asRequester);
  if (answers instanceof Error) return { status: 'unavailable', message: answers.message };
  return previewOf(req, answers, mask, fields);
}

/** The approver's diff of a write's answers, masked as the requester's policy masks them, the approval's fields highlighted. */
export async function previewOf(
  req: PreviewRequest,
  answers: WriteAnswers,
  mask: (body: Buffer) => Promise<Buffer>,
  fields: readonly string[],
): Promise<Preview> {
  const { current, dryRun } = answers;
  if (dryRun.status >= 300) {
    const status = parseObject(dryRun.body);
    return {
      status: 'unavailable',
      message: `the dry run was refused (${dryRun.status}): ${typeof status?.['message'] === 'string' ? status['message'] : 'no message'}`,
    };
  }
  const before = current?.status === 200 ? parseObject(await mask(current.body)) : undefined;
  // A delete's dry run answers with the object as it is or a Status; either way it is gone afterwards,
  // unless finalizers keep it (then the answer carries a deletionTimestamp).
  const answered = parseObject(await mask(dryRun.body));
  const after =
    req.verb === 'delete' && (answered?.['kind'] === 'Status' || !(answered?.['metadata'] as Record<string, unknown> | undefined)?.['deletionTimestamp'])
      ? undefined
      : answered;
  const afterText = render(after);
  const diff = unifiedDiff(render(before), afterText, { before: before ? 'current' : '(does not exist)', after: after ? 'after (dry run)' : '(deleted)' });
  if (!diff) return { status: 'ok', diff: '(no change)\n', dryRunCode: dryRun.status };
  const paths = fields.map(parseFieldPath).filter((p): p is FieldPath => p !== undefined);
  const highlight = diffLinesShowing(diff, linesShowing(afterText, paths));
  return { status: 'ok', diff, dryRunCode: dryRun.status, ...(highlight.length ? { highlight } : {}) };
}
