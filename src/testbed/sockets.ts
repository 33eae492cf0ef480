/**
 * TCP connections a process holds open to a port, from /proc (Linux): its
 * socket descriptors' inodes matched against /proc/net/tcp{,6}. For tests and
 * benchmarks that check how many connections the gateway keeps upstream.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

const ESTABLISHED = '01';

export function connectionsTo(pid: number, port: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  let n = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      if (parseInt(f[2]!.split(':')[1]!, 16) === port && f[3] === ESTABLISHED && inodes.has(f[9]!)) n++;
    }
  }
  return n;
}
