/**
 * The HTTP door: an admitted request is recorded (before anything is
 * forwarded), forwarded as the verified caller, its answer streamed back
 * through the masking directives, and recorded again when it ends. Every way
 * out writes exactly one final record; long-running responses (watches,
 * follows) one more when they start.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline as streamPipeline } from 'node:stream/promises';
import type { AuditWriter } from '../audit/writer.js';
import { asGatehouseError, GatehouseError, refusalHeaders, toStatus } from '../errors.js';
import { header, receive, type Admission, type Admit, type Refusal } from '../admission/admit.js';
import { auditEventOf, recordDecision, type Outcome } from '../admission/record.js';
import type { RequestTarget } from '../request/attributes.js';
import { createProgramCache, isCompressed, maskedBody, shapeOf, unreadableAs } from '../redact/response.js';
import { RedactError, redactBuffer, type RedactOptions } from '../redact/stream.js';
import type { UpstreamTarget } from '../upstream/credentials.js';
import { upstreamError, type Forwarder, type UpstreamResponse } from '../upstream/forward.js';
import { buildClientHeaders, buildUpstreamHeaders } from '../upstream/headers.js';
import { CLIENT_GONE } from './gone.js';
import type { StreamQuota } from './quota.js';

export interface HttpDoorDeps {
  readonly admit: Admit;
  readonly forwarder: Forwarder;
  readonly upstream: UpstreamTarget;
  readonly audit: AuditWriter;
  readonly masking: RedactOptions;
  readonly now: () => number;
  /** Watches and follows each user may hold open at once (and sessions, shared with the upgrade door); unbounded without it. */
  readonly quota?: StreamQuota;
}

export function isLongRunning(target: RequestTarget): boolean {
  if (target.kind !== 'resource') return false;
  const a = target.attributes;
  if (a.verb === 'watch' || a.verb === 'proxy') return true;
  const follow = (target.query['follow']?.[0] ?? '').toLowerCase();
  return a.subresource === 'log' && follow !== '' && follow !== 'false' && follow !== '0';
}

/**
 * A body of a known length up to this size is read whole and sent in one write, masked first if the
 * policy says so: a small GET then goes through no stream pipeline (its machinery was 8–10 % of the
 * gateway's CPU under a load of small masked GETs), and a body that cannot be masked is answered with
 * a Status, since none of it has gone out. Bodies this small are not gzipped (kube-apiserver itself
 * compresses only past 128 KiB). Larger bodies, and bodies of unknown length, stream.
 */
const WHOLE_BODY_BYTES = 64 * 1024;

/** The length the upstream declared for its body, when it declared one that is a length. */
function declaredLength(contentLength: string | string[] | undefined): string | undefined {
  return typeof contentLength === 'string' && /^\d+$/.test(contentLength) ? contentLength : undefined;
}

/** The length of a body to read whole, or undefined to stream it. */
function wholeBodySize(length: string | undefined, method: string, longRunning: boolean): number | undefined {
  // A HEAD answer states the length of a body it does not carry.
  if (longRunning || method === 'HEAD' || length === undefined) return undefined;
  const size = Number(length);
  return size <= WHOLE_BODY_BYTES ? size : undefined;
}

/** A body read to its end; more bytes than its length said, or an end before it, fails. */
function readWhole(body: Readable, size: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let read = 0;
    body.on('data', (chunk: Buffer) => {
      read += chunk.length;
      if (read > size) body.destroy(new Error(`the body is longer than its content-length of ${size}`));
      else chunks.push(chunk);
    });
    let ended = false;
    body.once('error', reject);
    body.once('end', () => {
      ended = true;
      if (read === size) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, read));
      else reject(new Error(`the body ended after ${read} of ${size} bytes`));
    });
    // Every body closes after its end; an Error made there for nothing cost ~3 % of a small GET's CPU (its stack trace).
    body.once('close', () => ended || reject(new Error('the body was closed before its end')));
  });
}

// stream.promises.pipeline's overloads do not take a spread of stages.
const runPipeline = streamPipeline as unknown as (...streams: (NodeJS.ReadableStream | NodeJS.WritableStream)[]) => Promise<void>;

/**
 * A body passed on unmasked, as it comes: `pipe` (which keeps to the client's pace) and four
 * listeners. stream.pipeline holds four end-of-stream watchers, an AbortController and their
 * closures besides, and a watch holds all of it for as long as it lives (bench/README.md, eleventh
 * session). Either side's error or the client's going destroys the other. Rejects with CLIENT_GONE
 * when the client ended it first, with the body's error when the API server did, also when the body
 * ended but `cutShort` says why it ended early.
 */
function relay(body: Readable, res: ServerResponse, cutShort: UpstreamResponse['cutShort']): Promise<void> {
  return new Promise((resolve, reject) => {
    body.on('error', (err) => {
      res.destroy();
      reject(err);
    });
    res.on('error', () => {
      body.destroy();
      reject(CLIENT_GONE);
    });
    // `on`, not `once`, for events that come once: a once wrapper is two more objects a watch holds for its life.
    res.on('finish', resolve);
    res.on('close', () => {
      if (res.writableFinished) return;
      body.destroy();
      reject(CLIENT_GONE);
    });
    body.on('end', () => {
      const cut = cutShort?.();
      if (!cut) {
        res.end();
        return;
      }
      res.destroy();
      reject(cut);
    });
    body.pipe(res, { end: false });
  });
}

/**
 * A body through its masking stages. pipeline rejects with whichever error it saw first, and by
 * then it has destroyed the response either way, so which side ended it is told by the first
 * event: the client's response closing unfinished, or an error of the body or of a stage (an
 * upstream cut, a gzip stream that does not inflate). Rejects like relay.
 */
async function throughStages(body: Readable, stages: NodeJS.ReadWriteStream[], res: ServerResponse, cutShort: UpstreamResponse['cutShort']): Promise<void> {
  let first: 'client' | 'upstream' | undefined;
  const upstreamFailed = () => {
    first ??= 'upstream';
  };
  body.once('error', upstreamFailed);
  // Heard before pipeline's own listener passes the end on: a body cut short fails its first stage instead.
  if (cutShort)
    body.once('end', () => {
      const cut = cutShort();
      if (cut) (stages[0] as unknown as Readable).destroy(cut);
    });
  for (const s of stages) s.once('error', upstreamFailed);
  res.once('close', () => {
    if (!res.writableFinished) first ??= 'client';
  });
  try {
    await runPipeline(body, ...stages, res);
  } catch (err) {
    throw err instanceof RedactError || first !== 'client' ? err : CLIENT_GONE;
  }
}

export function createHttpDoor(deps: HttpDoorDeps) {
  const programFor = createProgramCache();
  const at = () => new Date(deps.now());
  const ended = (code: number, error: GatehouseError | null, bytesOut: number | null = null): Outcome => ({
    stage: 'ResponseComplete',
    at: at(),
    code,
    error,
    session: null,
    bytesOut,
  });

  /** A refusal, or a failure before any byte went out, as a Status; after that, a cut connection. */
  function answer(res: ServerResponse, auditId: string, err: GatehouseError): void {
    if (res.headersSent) {
      // The status line is gone; cutting the connection is the only honest signal left.
      res.destroy();
      return;
    }
    res.writeHead(err.status, {
      'content-type': 'application/json',
      'audit-id': auditId,
      'cache-control': 'no-store',
      ...refusalHeaders(err),
    });
    res.end(JSON.stringify(toStatus(err)));
  }

  function refuse(res: ServerResponse, a: Admission | Refusal, error: GatehouseError): void {
    deps.audit.write(auditEventOf(a, ended(error.status, error)));
    answer(res, a.received.auditId, error);
  }

  /**
   * A streamed body passed on, through its masking stages if there are any; returns how it ended,
   * never throws. A function of its own, with only what it needs as parameters: V8 keeps every local
   * of a waiting async function, used again or not, and a watch waits here for as long as it lives
   * (act's would be the request's headers both ways and the upstream's answer; bench/README.md,
   * thirteenth session).
   */
  async function passOn(
    status: number,
    body: Readable,
    cutShort: UpstreamResponse['cutShort'],
    stages: NodeJS.ReadWriteStream[],
    res: ServerResponse,
    auditId: string,
  ): Promise<Outcome> {
    let bytesOut = 0;
    (stages.at(-1) ?? body).on('data', (chunk: Buffer) => (bytesOut += chunk.length));
    try {
      await (stages.length === 0 ? relay(body, res, cutShort) : throughStages(body, stages, res, cutShort));
      return ended(status, null, bytesOut);
    } catch (err) {
      // The client went away: that ends a watch normally.
      if (err === CLIENT_GONE) return ended(status, null, bytesOut);
      const code = (err as { code?: unknown }).code;
      // The status line went out: the client sees a cut connection, and the record says why.
      const e =
        err instanceof RedactError
          ? new GatehouseError('GATEHOUSE_MASKING_FAILED', `the response could not be masked, so it was cut off: ${err.message}`, { cause: err })
          : new GatehouseError(
              'GATEHOUSE_UPSTREAM_UNAVAILABLE',
              `the Kubernetes API server's response broke off after ${bytesOut} bytes had been passed on (${typeof code === 'string' ? code : 'unknown'})`,
              { cause: err },
            );
      answer(res, auditId, e);
      return ended(e.status, e, bytesOut);
    }
  }

  /** Forwards an admitted request and answers with what comes back; returns how it ended, never throws. */
  async function act(a: Admission, res: ServerResponse, signal: AbortSignal): Promise<Outcome> {
    try {
      const masking = a.decision.mask.length > 0;
      const headers = buildUpstreamHeaders(a.received.headers, a.identity, deps.upstream, { auditId: a.received.auditId, forMasking: masking });
      const longRunning = isLongRunning(a.target);
      if (longRunning && deps.quota) {
        const place = deps.quota.take(a.identity.username);
        if (place instanceof GatehouseError) throw place;
        // Given back when the response closes, however it ends (`on`: giving back twice is harmless, and a once wrapper is two more objects a watch holds).
        res.on('close', place);
      }
      const upstream = await deps.forwarder.forward({
        method: a.received.method,
        pathAndQuery: a.target.path + a.target.search,
        headers,
        body: a.body,
        longRunning,
        signal,
      });
      const clientHeaders = buildClientHeaders(upstream.headers, a.received.auditId);
      const program = masking ? programFor(a.decision.mask, shapeOf(a.target.kind === 'resource' ? a.target.attributes.verb : null)) : undefined;
      const contentType = header(upstream.headers['content-type']);
      const encoding = header(upstream.headers['content-encoding']);
      if (program) {
        const unreadable = unreadableAs(contentType, encoding);
        if (unreadable !== undefined) {
          // Decided before any byte is sent, so the client gets a Status, not unmasked bytes.
          upstream.body.destroy();
          throw new GatehouseError('GATEHOUSE_MASKING_FAILED', `the policy masks this response, but it is ${unreadable}, which Gatehouse cannot read`);
        }
      }
      const length = declaredLength(upstream.headers['content-length']);
      const size = wholeBodySize(length, a.received.method, longRunning);
      if (size !== undefined && !(program && isCompressed(encoding))) {
        let body: Buffer;
        try {
          body = await readWhole(upstream.body, size);
        } catch (err) {
          if (signal.aborted || res.destroyed) return ended(upstream.statusCode, null, 0);
          throw upstreamError(err);
        }
        if (program) {
          try {
            body = redactBuffer(program, deps.masking, body);
          } catch (err) {
            if (!(err instanceof RedactError)) throw err;
            // Nothing has been sent: the client gets a Status, not a cut connection.
            throw new GatehouseError('GATEHOUSE_MASKING_FAILED', `the response could not be masked: ${err.message}`, { cause: err });
          }
        }
        clientHeaders['content-length'] = String(body.length);
        res.writeHead(upstream.statusCode, clientHeaders);
        res.end(body);
        return ended(upstream.statusCode, null, body.length);
      }
      let stages: NodeJS.ReadWriteStream[] = [];
      if (program) {
        const masked = maskedBody(program, deps.masking, encoding, /\bgzip\b/i.test(header(a.received.headers['accept-encoding']) ?? ''), longRunning);
        stages = masked.stages;
        delete clientHeaders['content-encoding'];
        if (masked.contentEncoding) clientHeaders['content-encoding'] = masked.contentEncoding;
      }
      // A body passed on as it came keeps its length: the client reads it sized, not in chunks, and a
      // body cut short is seen as cut.
      if (stages.length === 0 && length !== undefined) clientHeaders['content-length'] = length;
      res.writeHead(upstream.statusCode, clientHeaders);
      if (longRunning) {
        // Node sends queued headers with the first body byte; a quiet watch has none for a while,
        // and its client must learn at once that the watch started (kube-apiserver flushes too).
        res.flushHeaders();
        deps.audit.write(auditEventOf(a, { stage: 'ResponseStarted', at: at(), code: upstream.statusCode, error: null, session: null, bytesOut: null }));
      }
      // Not awaited: act's frame is let go, and the watch holds passOn's alone.
      // eslint-disable-next-line @typescript-eslint/return-await -- passOn never throws, so this try has nothing to catch from it
      return passOn(upstream.statusCode, upstream.body, upstream.cutShort, stages, res, a.received.auditId);
    } catch (err) {
      const e = asGatehouseError(err);
      answer(res, a.received.auditId, e);
      return ended(e.status, e, 0);
    }
  }

  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const abort = new AbortController();
    // On every close, finished or not: the abort is also what lets undici swallow the error of an
    // upstream body a refusal destroyed unread (without it, that error is uncaught).
    res.on('close', () => abort.abort(CLIENT_GONE));
    const received = receive(req, deps.now);
    const admission = await deps.admit(received, req, abort.signal, 'http');
    if (!admission.admitted) return refuse(res, admission, admission.error);
    const unrecorded = recordDecision(deps.audit, admission, at());
    if (unrecorded) return refuse(res, admission, unrecorded);
    deps.audit.write(auditEventOf(admission, await act(admission, res, abort.signal)));
  };
}
