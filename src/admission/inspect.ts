/**
 * Inspecting a write for the policy (`inspect: ["object"]` in its answer):
 * the same write as a server-side dry run as the requester, so the policy's
 * second answer judges the object as the API server would store it (after
 * defaulting and mutating admission), not the patch that asked for it.
 * Fails closed: a refused dry run refuses the request with the API server's
 * own Status, and nothing is written.
 */
import { GatehouseError, messageOf, relayedStatusOf } from '../errors.js';
import { dryRunWrite, type Answer, type AsRequester, type PreviewRequest, type WriteAnswers } from '../approval/preview.js';

export interface Inspection {
  /** The dry run's answer: the object as it would be stored. */
  readonly object: Readonly<Record<string, unknown>>;
  /** The object as it was; null for a create, or when the requester may not read it. */
  readonly oldObject: Readonly<Record<string, unknown>> | null;
  /** The raw answers, reused for the approval's preview. */
  readonly answers: WriteAnswers;
}

function objectIn(answer: Answer, what: string, maxBytes: number): Record<string, unknown> {
  if (answer.body.length > maxBytes) {
    throw new GatehouseError(
      'GATEHOUSE_BODY_TOO_LARGE',
      `${what} is ${answer.body.length} bytes, more than the policy may read (limits.policyBodyBytes: ${maxBytes}), so the policy cannot judge this write`,
    );
  }
  let v: unknown;
  try {
    v = JSON.parse(answer.body.toString('utf8'));
  } catch {
    v = undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new GatehouseError('GATEHOUSE_UPSTREAM_UNAVAILABLE', `${what} is not a JSON object, so the policy cannot judge this write`);
  }
  return v as Record<string, unknown>;
}

export async function inspectWrite(req: PreviewRequest, asRequester: AsRequester, limits: { readonly policyBodyBytes: number }): Promise<Inspection> {
  let answers: WriteAnswers | Error;
  try {
    answers = await dryRunWrite(req, asRequester);
  } catch (err) {
    throw new GatehouseError(
      'GATEHOUSE_UPSTREAM_UNAVAILABLE',
      `the policy judges this write on its result, and the dry run that shows it failed: ${messageOf(err)}`,
      {
        cause: err,
      },
    );
  }
  if (answers instanceof Error) throw new GatehouseError('GATEHOUSE_BAD_REQUEST', answers.message);
  const { dryRun, current } = answers;
  if (dryRun.status >= 300) {
    const relayed = relayedStatusOf(dryRun.status, dryRun.body);
    if (relayed) throw new GatehouseError('GATEHOUSE_UPSTREAM_REFUSED', relayed.message, { relayed });
    throw new GatehouseError(
      'GATEHOUSE_UPSTREAM_REFUSED',
      `the policy judges this write on its result, and the API server answered its dry run with ${dryRun.status}`,
    );
  }
  const object = objectIn(dryRun, 'the object this write would produce', limits.policyBodyBytes);
  const oldObject = req.verb !== 'create' && current?.status === 200 ? objectIn(current, 'the object as it is', limits.policyBodyBytes) : null;
  return { object, oldObject, answers };
}
