/**
 * The floor of relaying TLS with node:tls on this machine: a process that only reads one TLS stream
 * and writes what it read to another (no frame reader, no recording, no policy), and the CPU it
 * spends per MB. An exec session through the gateway is relayed this way (kubectl ⇄ gateway ⇄ API
 * server, TLS on each hop), so no gateway built on node:tls spends less than this per MB; the exec
 * benchmark (bench/sessions.ts) sets it against the machine's CPU per MB of a direct exec.
 *
 * The source and the sink (TLS servers) run in the calling process, the relay in a process of its
 * own, so its CPU is its own.
 */
import { execFile } from 'node:child_process';
import { connect, createServer, type Server } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { selfSignedTls, type TlsMaterial } from '../src/tls.js';
import { percentiles } from './stats.js';

export interface RelayFloor {
  /** The relay process's CPU (user + system) per MB relayed, ms. */
  readonly cpuMsPerMB: number;
  readonly MBps: number;
}

const CHUNK = 64 * 1024;

/** The median of `runs` relays of `mb` MB each (a child process each). */
export async function measureRelayFloor(tlsDir: string, mb: number, runs = 3): Promise<RelayFloor> {
  const tls = selfSignedTls(tlsDir, ['localhost', '127.0.0.1']);
  const all: RelayFloor[] = [];
  for (let i = 0; i < runs; i++) all.push(await relayOnce(tls, mb));
  const median = (by: (r: RelayFloor) => number) => percentiles(all.map(by), [50])['p50']!;
  return { cpuMsPerMB: median((r) => r.cpuMsPerMB), MBps: median((r) => r.MBps) };
}

/** Relays `mb` MB from a TLS source to a TLS sink through a child process; the child's CPU and the time. */
async function relayOnce({ cert, key }: TlsMaterial, mb: number): Promise<RelayFloor> {
  const bytes = mb * 1024 * 1024;
  const chunk = Buffer.alloc(CHUNK, '0123456789abcdef\n');
  const source = createServer({ cert, key }, (s) => {
    let left = bytes;
    const go = (): void => {
      while (left > 0) {
        left -= CHUNK;
        if (!s.write(chunk)) return void s.once('drain', go);
      }
      s.end();
    };
    go();
  });
  let received = 0;
  const sink = createServer({ cert, key }, (s) => {
    s.on('data', (d: Buffer) => (received += d.length));
    s.on('end', () => s.end());
  });
  const listen = (s: Server) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));
  try {
    const ports = [await listen(source), await listen(sink)];
    const started = process.hrtime.bigint();
    const { stdout } = await promisify(execFile)(process.execPath, [fileURLToPath(import.meta.url), 'relay', ...ports.map(String)]);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const { cpuMs, relayed } = JSON.parse(stdout) as { cpuMs: number; relayed: number };
    if (relayed !== bytes || received !== bytes) throw new Error(`the TLS relay passed ${relayed} and the sink got ${received} bytes, not ${bytes}`);
    return { cpuMsPerMB: cpuMs / mb, MBps: mb / (ms / 1000) };
  } finally {
    source.close();
    sink.close();
  }
}

/** The child: connect to both, relay with backpressure, print its CPU. */
function relay(sourcePort: number, sinkPort: number): void {
  const cpu = process.cpuUsage();
  // The servers are this benchmark's own, on loopback, with a throwaway certificate.
  const options = { host: '127.0.0.1', rejectUnauthorized: false };
  const from = connect({ ...options, port: sourcePort });
  const to = connect({ ...options, port: sinkPort });
  let relayed = 0;
  from.on('data', (d: Buffer) => {
    relayed += d.length;
    if (!to.write(d)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  from.on('end', () => {
    to.end();
    to.on('close', () => {
      const used = process.cpuUsage(cpu);
      process.stdout.write(JSON.stringify({ cpuMs: (used.user + used.system) / 1000, relayed }));
    });
  });
}

if (process.argv[2] === 'relay') relay(Number(process.argv[3]), Number(process.argv[4]));
