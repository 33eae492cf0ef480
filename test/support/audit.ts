/** The records of an audit file, as the tests read them back. */
import { readFileSync } from 'node:fs';
import type { AuditRecord } from '../../src/audit/event.js';

export function readAudit(file: string): AuditRecord[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditRecord);
}
