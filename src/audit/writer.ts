import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino } from 'pino';
import type { AuditRecord } from './event.js';

export interface AuditWriter {
  write(event: AuditRecord): void;
  /** Writes out what is buffered; called at shutdown after in-flight requests finish. */
  flush(): void;
}

/**
 * One JSON line per event, appended through pino's asynchronous file
 * destination (sonic-boom). The line is the Kubernetes Event alone: pino's
 * logger would add its own `level`, which the Event already uses.
 */
export function createAuditWriter(file: string): AuditWriter {
  mkdirSync(dirname(file), { recursive: true });
  const dest = pino.destination({ dest: file, sync: false, mkdir: true, minLength: 0 });
  return {
    write: (event) => void dest.write(JSON.stringify(event) + '\n'),
    flush: () => dest.flushSync(),
  };
}

/** For tests: events handed to a callback. */
export function createMemoryAuditWriter(sink: (e: AuditRecord) => void): AuditWriter {
  return { write: sink, flush: () => {} };
}
