/**
 * `gatehouse sessions list [--user U] [--pod [NS/]POD] [--since DURATION] | play ID [--speed N] | export ID`:
 * find and replay exec/attach sessions through the gateway's API (the policy
 * decides who may), with the credentials of a kubeconfig.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { CliError, connect } from '../client.js';
import { forTerminal, table } from '../terminal.js';
import { framesOf } from './replay.js';
import type { SessionSummary } from './sessions.js';

const USAGE = `usage: gatehouse sessions <command> [--kubeconfig FILE] [--context NAME]

  list [--user USER] [--pod [NS/]POD] [--since 1h|30m|2d]   recorded exec and attach sessions, newest first
  play ID [--speed N] [--idle-cap SECONDS]                  replay a session in this terminal
  export ID                                                 the asciicast v2 file, on stdout
`;

function sinceSeconds(v: string): number {
  const m = /^(\d+)([smhd])$/.exec(v);
  if (!m) throw new CliError(`--since ${v}: use a duration like 30m, 2h or 7d`);
  return Math.floor(Date.now() / 1000) - Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

export async function runSessionsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      user: { type: 'string' },
      pod: { type: 'string' },
      since: { type: 'string' },
      speed: { type: 'string', default: '1' },
      'idle-cap': { type: 'string', default: '2' },
      output: { type: 'string', short: 'o' },
    },
  });
  const [verb, id] = positionals;
  if (!verb || verb === 'help' || (verb !== 'list' && !id)) {
    process.stderr.write(USAGE);
    return verb === 'help' ? 0 : 2;
  }
  const client = await connect(values.kubeconfig ?? process.env['KUBECONFIG']?.split(':')[0], values.context);
  switch (verb) {
    case 'list': {
      const q = new URLSearchParams();
      if (values.user) q.set('user', values.user);
      if (values.pod) q.set('pod', values.pod);
      if (values.since) q.set('since', String(sinceSeconds(values.since)));
      const list = (await client.call('GET', `/gatehouse/v1/sessions${q.size ? `?${q.toString()}` : ''}`)) as { items: SessionSummary[] };
      if (values.output === 'json') process.stdout.write(forTerminal(JSON.stringify(list, null, 2) + '\n'));
      else if (!list.items.length) process.stdout.write('No sessions.\n');
      else {
        const rows = [
          ['ID', 'STARTED', 'USER', 'POD', 'COMMAND', 'EXIT', 'DURATION'],
          ...list.items.map((s) => {
            const g = s.header.gatehouse;
            return [
              s.id,
              new Date(s.header.timestamp * 1000).toISOString().replace(/\.\d+Z$/, 'Z'),
              g.agent ? `${g.agent} (for ${g.onBehalfOf ?? '-'})` : g.user,
              `${g.namespace}/${g.pod}`,
              `${g.kind}${g.tty ? ' -it' : ''} ${g.command.join(' ')}`.slice(0, 40),
              s.end ? String(s.end.exitCode ?? s.end.reason) : 'running',
              `${s.durationSeconds.toFixed(1)}s`,
            ];
          }),
        ];
        // User names, pods and commands came from requests and tokens.
        process.stdout.write(forTerminal(table(rows, 2)));
      }
      return 0;
    }
    case 'export':
      process.stdout.write(await client.raw(`/gatehouse/v1/sessions/${encodeURIComponent(id!)}/cast`));
      return 0;
    // The recording is what the session's terminal showed, escape sequences and all: replaying it
    // raw is what `play` is for. `list` and `show` are what an approver reads to decide.
    case 'play': {
      const speed = Number(values.speed);
      const idleCap = Number(values['idle-cap']);
      if (!(speed > 0) || !(idleCap > 0)) throw new CliError('--speed and --idle-cap must be positive numbers');
      const cast = await client.raw(`/gatehouse/v1/sessions/${encodeURIComponent(id!)}/cast`);
      for (const f of framesOf(cast.split('\n'), { speed, idleCap })) {
        if (f.delay > 0) await sleep(f.delay * 1000);
        process.stdout.write(f.text);
      }
      return 0;
    }
    default:
      process.stderr.write(`gatehouse sessions: unknown command '${verb}'\n${USAGE}`);
      return 2;
  }
}
