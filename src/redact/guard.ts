/**
 * The round-trip guard: a write that carries a mask marker back (`kubectl get
 * -o yaml` of a masked Secret, edited and replaced) would overwrite the real
 * value with the marker. Markers are never real data, so any write holding one
 * is refused.
 */
import { HASH_PREFIX, REDACTED } from './stream.js';

const MARKERS = [Buffer.from(REDACTED), Buffer.from(HASH_PREFIX)];

export function carriesMaskMarker(body: Buffer): boolean {
  return MARKERS.some((m) => body.includes(m));
}
