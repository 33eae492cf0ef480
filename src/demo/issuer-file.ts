/**
 * Where a running demo's issuer tells its credential plugins how to mint:
 * `issuer.json` (0600) in the demo folder. Node built-ins only: `gatehouse
 * token --demo` reads it on kubectl's path.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runRoot } from '../paths.js';

export const demoDir = join(runRoot, 'demo');

export interface IssuerFile {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
}

/** The running demo's issuer file (GATEHOUSE_DEMO_DIR, else the project's demo folder), or the message to print. */
export function readIssuerFile(dir: string = process.env['GATEHOUSE_DEMO_DIR'] ?? demoDir): IssuerFile | { readonly missing: string } {
  try {
    return JSON.parse(readFileSync(join(dir, 'issuer.json'), 'utf8')) as IssuerFile;
  } catch {
    return { missing: `no demo issuer in ${dir}: start the demo first (npm start)` };
  }
}
