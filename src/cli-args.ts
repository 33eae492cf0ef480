/** What the offline CLI commands (audit, policy) share: their arguments parsed, or a usage error (exit 2) said once. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { messageOf } from './errors.js';

/** The parsed arguments; undefined after writing the problem and the usage to stderr (the caller exits 2). */
export function parseOr<T extends ParseArgsConfig>(command: string, usage: string, config: T): ReturnType<typeof parseArgs<T>> | undefined {
  try {
    return parseArgs(config);
  } catch (err) {
    process.stderr.write(`gatehouse ${command}: ${messageOf(err)}\n${usage}`);
    return undefined;
  }
}

/** A sub-command that is not `expected`: the usage (asked for, or after naming the unknown one); exit 2. */
export function unknownSub(command: string, sub: string | undefined, usage: string): number {
  process.stderr.write(sub === undefined || sub === 'help' || sub === '--help' ? usage : `gatehouse ${command}: unknown command '${sub}'\n${usage}`);
  return 2;
}

/** `90m`, `24h`, `7d`, `30s` → milliseconds; the error names the option it came with. */
export function parseDuration(text: string, option = '--since'): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(text);
  if (!m) throw new Error(`${option} ${JSON.stringify(text)} is not a duration like 90m, 24h or 7d`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}
