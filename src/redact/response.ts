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

/** Whether a body in this content-encoding is compressed (none and `identity` are not). */
export function isCompressed(encoding: string | undefined): boolean {
  return encoding !== undefined && encoding.toLowerCase() !== 'identity';
}

/** What the redactor cannot read (a type, an encoding), named for the client's Status; undefined when it can. */
export function unreadableAs(contentType: string | undefined, upstreamEncoding: string | undefined): string | undefined {
  const encoding = upstreamEncoding?.toLowerCase();
  if (isJsonType(contentType) && (!isCompressed(encoding) || encoding === 'gzip')) return undefined;
  return `${contentType ?? 'untyped'}${encoding ? ` (${encoding})` : ''}`;
}

export interface MaskedBody {
  readonly stages: NodeJS.ReadWriteStream[];
  readonly contentEncoding: string | undefined;
}

/**
 * upstream body → (gunzip) → redactor → (gzip) : the stages a masked response
 * passes through, for a body the redactor can read (`unreadableAs` said so,
 * before any byte was sent). Re-compressed only when the client asked and the
 * response is not a stream that must flush event by event.
 */
export function maskedBody(
  program: Program,
  options: RedactOptions,
  upstreamEncoding: string | undefined,
  clientAcceptsGzip: boolean,
  longRunning: boolean,
): MaskedBody {
  const stages: NodeJS.ReadWriteStream[] = [];
  if (isCompressed(upstreamEncoding)) stages.push(createGunzip());
  stages.push(createRedactStream(program, options));
  const gzip = clientAcceptsGzip && !longRunning;
  if (gzip) stages.push(createGzip());
  return { stages, contentEncoding: gzip ? 'gzip' : undefined };
}
