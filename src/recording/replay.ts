/**
 * Playing an asciicast back: its output events in order, at the recorded pace
 * divided by `speed`, with idle gaps capped so a session left open for an hour
 * plays in seconds. Pure timing; the caller writes and waits.
 */
export interface Frame {
  /** Seconds to wait before writing. */
  readonly delay: number;
  readonly text: string;
}

export function framesOf(lines: readonly string[], options: { speed: number; idleCap: number }): Frame[] {
  const frames: Frame[] = [];
  let last = 0;
  for (const line of lines.slice(1)) {
    if (!line.trim()) continue;
    let ev: unknown;
    try {
      ev = JSON.parse(line);
    } catch {
      continue;
    }
    if (!Array.isArray(ev) || typeof ev[0] !== 'number' || ev[1] !== 'o' || typeof ev[2] !== 'string') continue;
    const gap = Math.min(Math.max(ev[0] - last, 0), options.idleCap);
    last = ev[0];
    frames.push({ delay: gap / options.speed, text: ev[2] });
  }
  return frames;
}
