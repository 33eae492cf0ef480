/**
 * A throwaway PostgreSQL server (Debian's `postgresql`, installed by
 * scripts/system-deps.sh) on a loopback port, in a folder of its own, with a
 * password (scram-sha-256) like a real deployment. PostgreSQL refuses to run
 * as root, so as root it runs as the `postgres` user the package created.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../testbed/ports.js';

export interface RunningPostgres {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Its data folder (in the system's temp folder), removed by stop(). */
  readonly dir: string;
  stop(): Promise<void>;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!versions.length) throw new Error("PostgreSQL is not installed: scripts/system-deps.sh installs Debian's postgresql");
  return join(root, versions[0]!, 'bin');
}

/** In the system's temp folder: the `postgres` user must reach it, and the project's run folders are 0700. */
export async function startPostgres(): Promise<RunningPostgres> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pg-'));
  const password = randomBytes(16).toString('hex');
  writeFileSync(join(dir, 'pw'), password + '\n');
  const asRoot = process.getuid?.() === 0;
  const ids = asRoot
    ? { uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })) }
    : {};
  if (asRoot) {
    chownSync(dir, ids.uid!, ids.gid!);
    chownSync(join(dir, 'pw'), ids.uid!, ids.gid!);
  }
  chmodSync(dir, 0o700);
  const data = join(dir, 'data');
  execFileSync(join(bin, 'initdb'), ['-D', data, '-U', 'gatehouse', '--auth=scram-sha-256', `--pwfile=${join(dir, 'pw')}`, '-E', 'UTF8', '--no-instructions'], {
    ...ids,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const port = await freePort();
  const server: ChildProcess = spawn(join(bin, 'postgres'), ['-D', data, '-p', String(port), '-h', '127.0.0.1', '-k', dir], {
    ...ids,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  server.stderr!.setEncoding('utf8').on('data', (d: string) => (log = (log + d).slice(-4000)));
  const kill = () => server.kill('SIGKILL');
  process.once('exit', kill);
  const url = `postgres://gatehouse:${password}@127.0.0.1:${port}/postgres`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      break;
    } catch (err) {
      await client.end().catch(() => {});
      if (server.exitCode !== null || Date.now() > deadline) throw new Error(`PostgreSQL did not start: ${(err as Error).message}\n${log}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return {
    url,
    port,
    pid: server.pid!,
    dir,
    async stop() {
      process.off('exit', kill);
      if (server.exitCode !== null) return rmSync(dir, { recursive: true, force: true });
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGINT');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
