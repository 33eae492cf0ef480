import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project folder; this file runs compiled, from dist/src/. */
export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Run folders (.gatehouse/) are git-ignored and hold everything a run creates. */
export const runRoot = join(projectRoot, '.gatehouse');

/**
 * Resolves a tool that scripts/tools.sh links into .tools/. Looking there first,
 * and not on PATH, keeps the pinned version in use even where another one is installed.
 */
export function toolPath(name: string): string {
  const linked = join(projectRoot, '.tools', name);
  if (existsSync(linked)) return linked;
  throw new ToolMissingError(name);
}

/** The same, for commands people run outside a checkout too: the pinned tool when it is built, else the one on PATH. */
export function toolOrPath(name: string): string {
  const linked = join(projectRoot, '.tools', name);
  return existsSync(linked) ? linked : name;
}

export class ToolMissingError extends Error {
  readonly code = 'GATEHOUSE_TOOL_MISSING';
  constructor(readonly tool: string) {
    super(`${tool} is not installed in ${join(projectRoot, '.tools')}: run \`npm run tools\` (scripts/tools.sh) first`);
  }
}

/** The version in package.json: what the MCP endpoint and the image report. */
export const GATEHOUSE_VERSION = (JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version;
