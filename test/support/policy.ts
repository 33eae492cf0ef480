/** A candidate policy for the policy-change tests: a copy of the bundled one, changed in ways they can see. */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../src/paths.js';

const ADMIN_RULE = 'allow contains "group admins may do anything" if is_admin';

/** Edits one file of a policy folder in place. */
export function edit(file: string, change: (text: string) => string): void {
  writeFileSync(file, change(readFileSync(file, 'utf8')));
}

/**
 * Copies policies/gatehouse to `dir` and changes it: admins lose their blanket allow (their reads of
 * Secrets become denials), and Secret values are no longer masked (the mask path points elsewhere).
 */
export function writeCandidate(dir: string): string {
  cpSync(join(projectRoot, 'policies/gatehouse'), dir, { recursive: true });
  edit(join(dir, 'access/access.rego'), (t) => t.replace(ADMIN_RULE, 'allow contains "group admins may do anything" if false'));
  edit(join(dir, 'masking/masking.rego'), (t) => t.replaceAll('"$.data.*"', '"$.dataX.*"'));
  return dir;
}

/** The admin rule badly formatted and never true: `opa fmt`, `opa test` and the fixtures all fail. */
export function breakAdminRule(policyDir: string): void {
  edit(join(policyDir, 'access/access.rego'), (t) => t.replace(ADMIN_RULE, 'allow contains   "group admins may do anything" if false'));
}
