/**
 * One exec, attach or port-forward session: its recording (opened before the
 * upgrade, so a recording that cannot be written refuses the session), the
 * taps that read its frames, and the facts its audit record ends with.
 */
import { scrubText } from '../audit/scrub.js';
import type { AuditWriter } from '../audit/writer.js';
import { GatehouseError } from '../errors.js';
import type { Identity } from '../identity/identity.js';
import type { ExecFacts } from '../policy/input.js';
import type { Recorder } from '../recording/asciicast.js';
import { newSessionId, type SessionStore } from '../recording/sessions.js';
import type { ResourceAttributes } from '../request/attributes.js';
import type { Taps } from './relay.js';
import { SessionTap } from './session.js';
import { SpdyConnection, SpdyReader } from './spdy.js';
import { WebSocketReader } from './websocket.js';

export interface SessionAudit {
  readonly id: string;
  readonly kind: 'exec' | 'attach' | 'portforward';
  protocol: string;
  recording: string | null;
  readonly ports: string[];
  exitCode: number | null;
  failure: string | null;
  bytesIn: number;
  bytesOut: number;
  lines: number;
  durationMs: number;
}

export async function openSession(args: {
  store: SessionStore | undefined;
  audit: AuditWriter;
  auditId: string;
  identity: Identity;
  attributes: ResourceAttributes;
  exec: ExecFacts | null;
  kill: () => void;
  now: () => number;
}) {
  const kind = args.attributes.subresource as SessionAudit['kind'];
  // A token in a command line (`curl -H "Authorization: Bearer …"`) is not written to the recording's header.
  const command = (args.exec?.command ?? []).map(scrubText);
  const id = newSessionId();
  const started = args.now();
  let recorder: Recorder | null = null;
  const facts: SessionAudit = {
    id,
    kind,
    protocol: '',
    recording: null,
    ports: [],
    exitCode: null,
    failure: null,
    bytesIn: 0,
    bytesOut: 0,
    lines: 0,
    durationMs: 0,
  };
  // A session the gateway can no longer see is a session it can no longer record: it ends,
  // unless the operator chose otherwise (recording.failOpen), and its record says why.
  const unseen = (reason: string) => {
    facts.failure ??= `recording failed: ${reason}`;
    if (!args.store?.failOpen) args.kill();
  };

  if (kind !== 'portforward') {
    if (!args.store)
      throw new GatehouseError(
        'GATEHOUSE_RECORDING_FAILED',
        'this gateway records every exec and attach session and has no recording folder configured (recording.dir)',
      );
    try {
      recorder = await args.store.open(
        {
          version: 2,
          width: 80,
          height: 24,
          timestamp: Math.floor(started / 1000),
          title: `${kind} ${args.attributes.namespace}/${args.attributes.name}${command.length ? `: ${command.join(' ')}` : ''}`,
          env: { TERM: 'xterm-256color', SHELL: command[0] ?? '' },
          gatehouse: {
            session: id,
            user: args.identity.username,
            agent: args.identity.agent?.name ?? null,
            onBehalfOf: args.identity.agent?.onBehalfOf ?? null,
            namespace: args.attributes.namespace,
            pod: args.attributes.name,
            container: args.exec?.container ?? '',
            command,
            tty: args.exec?.tty ?? false,
            kind,
            auditID: args.auditId,
          },
        },
        (err) => unseen(err.message),
      );
      facts.recording = recorder.location;
    } catch (err) {
      if (!args.store.failOpen)
        throw new GatehouseError(
          'GATEHOUSE_RECORDING_FAILED',
          `the session cannot be recorded, so it is refused: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
      facts.failure = `not recorded: ${(err as Error).message}`;
    }
  }
  const tap = new SessionTap(
    recorder,
    !args.exec?.tty
      ? null
      : (line) =>
          args.audit.write({
            kind: 'SessionCommand',
            apiVersion: 'gatehouse.dev/v1',
            session: id,
            auditID: args.auditId,
            timestamp: new Date(args.now()).toISOString(),
            user: { username: args.identity.username, agent: args.identity.agent?.name ?? null, onBehalfOf: args.identity.agent?.onBehalfOf ?? null },
            namespace: args.attributes.namespace,
            pod: args.attributes.name,
            container: args.exec?.container ?? '',
            line,
          }),
  );

  return {
    facts,
    taps(upgrade: string, protocol: string): Taps {
      facts.protocol = protocol;
      if (kind === 'portforward') {
        // Not recorded byte for byte: how much went each way, and the ports the client's streams name.
        // Over WebSocket, kubectl tunnels the same SPDY frames inside binary messages.
        const connection = new SpdyConnection(unseen);
        connection.onStream = (headers) => {
          const port = headers.get('port');
          if (port && /^\d+$/.test(port) && !facts.ports.includes(port)) facts.ports.push(port);
        };
        const spdy = new SpdyReader(connection, () => {});
        const feed = /^websocket$/i.test(upgrade) ? new WebSocketReader('raw', (m) => spdy.push(m.data), unseen) : spdy;
        return {
          fromClient: (c) => {
            facts.bytesIn += c.length;
            feed.push(c);
          },
          fromServer: (c) => void (facts.bytesOut += c.length),
        };
      }
      // The session waits for a recording that writes behind it (PostgreSQL) rather than outrun it.
      const pressure = recorder?.pressure ? { pressure: recorder.pressure } : {};
      if (/^websocket$/i.test(upgrade)) {
        const base64 = protocol.includes('base64');
        const client = new WebSocketReader(base64, (m) => tap.fromClient(m.channel, m.data), unseen);
        const server = new WebSocketReader(base64, (m) => tap.fromServer(m.channel, m.data), unseen);
        return { fromClient: (c) => client.push(c), fromServer: (c) => server.push(c), ...pressure };
      }
      const connection = new SpdyConnection(unseen);
      const client = new SpdyReader(connection, (m) => tap.fromClient(m.channel, m.data));
      const server = new SpdyReader(connection, (m) => tap.fromServer(m.channel, m.data));
      return { fromClient: (c) => client.push(c), fromServer: (c) => server.push(c), ...pressure };
    },
    ended(): void {
      facts.durationMs = args.now() - started;
      if (kind !== 'portforward') {
        facts.exitCode = tap.facts.exitCode;
        facts.failure ??= tap.facts.failure;
        facts.bytesIn = tap.facts.bytesIn;
        facts.bytesOut = tap.facts.bytesOut;
        facts.lines = tap.facts.lines;
      }
      recorder?.close({ exitCode: facts.exitCode, reason: facts.failure ?? (facts.exitCode === null ? 'connection closed' : 'exited') });
    },
    /** The upgrade did not happen: no session, no recording left behind. */
    discard(): void {
      recorder?.close({ exitCode: null, reason: 'not upgraded' });
      if (recorder) void args.store?.remove(id).catch(() => {});
    },
  };
}
