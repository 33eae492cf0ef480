/**
 * The redactor as a stage of the proxy: which shape a response has, and the
 * stream of transforms its body passes through on the way to the client.
 */
import { createGunzip, createGzip } from 'node:zlib';
import type { MaskDirective } from './directive.js';
import { Program, type Shape } from './program.js';
import { createRedactStream, type RedactOptions } from './stream.js';

/** The shape of a response by the request's verb; a non-resource request answers one object. */
export function shapeOf(verb: string | null): Shape {
  if (verb === 'watch') return 'watch';
  if (verb === 'list' || verb === 'deletecollection') return 'list';
  return 'object';
}

/** Response types the scanner reads: JSON, JSON watch streams, Tables (all application/json with parameters). */
function isJsonType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

/** Programs are built per distinct (directives, shape); policies return few distinct sets. */
export function createProgramCache(max = 256) {
  const cache = new Map<string, Program>();
  return (mask: readonly MaskDirective[], shape: Shape): Program => {
    const key = shape + '\n' + JSON.stringify(mask);
    let p = cache.get(key);
    if (!p) {
      p = new Program(mask, shape);
      if (cache.size >= max) cache.delete(cache.keys().next().value!);
      cache.set(key, p);
    }
    return p;
  };
}

/** What the redactor cannot read (a type, an encoding), named for the client's Status; undefined when it can. */
export function unreadableAs(contentType: string | undefined, upstreamEncoding: string | undefined): string | undefined {
  const encoding = upstreamEncoding?.toLowerCase();
  const compressed = encoding !== undefined && encoding !== 'identity';
  if (isJsonType(contentType) && (!compressed || encoding === 'gzip')) return undefined;
  return `${contentType ?? 'untyped'}${encoding ? ` (${encoding})` : ''}`;
}

export type MaskedBody = { readonly stages: NodeJS.ReadWriteStream[]; readonly contentEncoding: string | undefined } | { readonly unreadable: string };

/**
 * upstream body → (gunzip) → redactor → (gzip) : the stages a masked response
 * passes through, or why it cannot be read (decided before any byte is sent).
 * Re-compressed only when the client asked and the response is not a stream
 * that must flush event by event.
 */
export function maskedBody(
  program: Program,
  options: RedactOptions,
  contentType: string | undefined,
  upstreamEncoding: string | undefined,
  clientAcceptsGzip: boolean,
  longRunning: boolean,
): MaskedBody {
  const why = unreadableAs(contentType, upstreamEncoding);
  if (why !== undefined) return { unreadable: why };
  const encoding = upstreamEncoding?.toLowerCase();
  const compressed = encoding !== undefined && encoding !== 'identity';
  const stages: NodeJS.ReadWriteStream[] = [];
  if (compressed) stages.push(createGunzip());
  stages.push(createRedactStream(program, options));
  const gzip = clientAcceptsGzip && !longRunning;
  if (gzip) stages.push(createGzip());
  return { stages, contentEncoding: gzip ? 'gzip' : undefined };
}

/** A whole JSON body through the redactor, for what is small and already in memory (approval previews). */
export async function maskBuffer(program: Program, options: RedactOptions, body: Buffer): Promise<Buffer> {
  const stream = createRedactStream(program, options);
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    stream.once('end', resolve);
    stream.once('error', reject);
  });
  stream.end(body);
  await done;
  return Buffer.concat(chunks);
}
