/**
 * The API as the requester sees it, for approval previews: impersonated as
 * them, JSON only, answers bounded, and masked with their own directives, so a
 * preview never shows an approver what the requester could not have read.
 */
import type { Identity } from '../identity/identity.js';
import type { MaskDirective } from '../redact/directive.js';
import { createProgramCache } from '../redact/response.js';
import { redactBuffer, type RedactOptions } from '../redact/stream.js';
import type { UpstreamTarget } from '../upstream/credentials.js';
import type { Forwarder } from '../upstream/forward.js';
import { buildUpstreamHeaders } from '../upstream/headers.js';
import type { AsRequester } from './preview.js';

export interface RequesterView {
  readonly asRequester: AsRequester;
  readonly mask: (body: Buffer) => Promise<Buffer>;
}

export function createRequesterView(deps: {
  readonly forwarder: Forwarder;
  readonly upstream: UpstreamTarget;
  readonly maxBodyBytes: number;
  readonly masking: RedactOptions;
}) {
  const programFor = createProgramCache();
  return function viewOf(identity: Identity, auditId: string, decision: { readonly mask: readonly MaskDirective[] }): RequesterView {
    const asRequester: AsRequester = async ({ method, pathAndQuery, body, contentType }) => {
      const headers = buildUpstreamHeaders({ accept: 'application/json', ...(contentType ? { 'content-type': contentType } : {}) }, identity, deps.upstream, {
        auditId,
        forMasking: true,
      });
      const res = await deps.forwarder.forward({ method, pathAndQuery, headers, body, longRunning: false, signal: AbortSignal.timeout(30_000) });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > deps.maxBodyBytes) {
          res.body.destroy();
          throw new Error(`the preview's answer is larger than limits.maxBodyBytes (${deps.maxBodyBytes})`);
        }
        chunks.push(chunk);
      }
      return { status: res.statusCode, body: Buffer.concat(chunks) };
    };
    // async: a body that cannot be masked is a rejection, as the preview expects.
    const mask = async (body: Buffer) => (decision.mask.length ? redactBuffer(programFor(decision.mask, 'object'), deps.masking, body) : body);
    return { asRequester, mask };
  };
}
