/**
 * The session readers on hand-built frames: WebSocket (RFC 6455, masked and
 * fragmented, k8s binary and base64 channels) and SPDY/3.1 (SYN_STREAM header
 * blocks compressed with one shared zlib context, DATA frames), fed in one
 * piece and one byte at a time. The end-to-end suite runs them behind kubectl.
 */
import assert from 'node:assert/strict';
import { constants, createDeflate } from 'node:zlib';
import { createMemoryAuditWriter } from '../../../src/audit/writer.js';
import { framesOf } from '../../../src/recording/replay.js';
import { openSession } from '../../../src/upgrade/open.js';
import { SessionTap, typedLine } from '../../../src/upgrade/session.js';
import { SPDY3_DICTIONARY } from '../../../src/upgrade/spdy-dictionary.js';
import { parseHeaderBlock, SpdyConnection, SpdyReader } from '../../../src/upgrade/spdy.js';
import { WebSocketReader, type ChannelMessage } from '../../../src/upgrade/websocket.js';
import type { Identity } from '../../../src/identity/identity.js';
import type { SessionStore } from '../../../src/recording/sessions.js';
import { waitFor } from '../../support/wait.js';

function wsFrame(payload: Buffer, opts: { fin?: boolean; opcode?: number; mask?: boolean } = {}): Buffer {
  const { fin = true, opcode = 2, mask = true } = opts;
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0, len]) : Buffer.from([0, 126, len >> 8, len & 255]);
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (!mask) return Buffer.concat([head, payload]);
  head[1]! |= 0x80;
  const key = Buffer.from([1, 2, 3, 4]);
  return Buffer.concat([head, key, Buffer.from(payload.map((b, i) => b ^ key[i & 3]!))]);
}

function feed(reader: { push(c: Buffer): void }, bytes: Buffer, oneByOne: boolean) {
  if (!oneByOne) return reader.push(bytes);
  for (let i = 0; i < bytes.length; i++) reader.push(bytes.subarray(i, i + 1));
}

describe('upgrade/websocket: reading channel frames', () => {
  for (const oneByOne of [false, true]) {
    it(`binary channels, masked, fragmented and long${oneByOne ? ', one byte at a time' : ''}`, () => {
      const got: ChannelMessage[] = [];
      const r = new WebSocketReader(
        false,
        (m) => got.push(m),
        (why) => assert.fail(why),
      );
      const long = Buffer.alloc(300, 'x');
      const bytes = Buffer.concat([
        wsFrame(Buffer.from('\x00ls -l\r')),
        wsFrame(Buffer.from('\x01hel'), { fin: false, mask: false }),
        wsFrame(Buffer.from([0x89]), { opcode: 0x9, mask: false }), // a ping between fragments
        wsFrame(Buffer.from('lo'), { opcode: 0, mask: false }),
        wsFrame(Buffer.concat([Buffer.from([2]), long]), { mask: false }),
      ]);
      feed(r, bytes, oneByOne);
      assert.deepEqual(
        got.map((m) => [m.channel, m.data.toString()]),
        [
          [0, 'ls -l\r'],
          [1, 'hello'],
          [2, long.toString()],
        ],
      );
    });
  }
  it('base64.channel.k8s.io text frames', () => {
    const got: ChannelMessage[] = [];
    new WebSocketReader(
      true,
      (m) => got.push(m),
      (why) => assert.fail(why),
    ).push(wsFrame(Buffer.from('1' + Buffer.from('hi there').toString('base64')), { opcode: 1, mask: false }));
    assert.deepEqual(
      got.map((m) => [m.channel, m.data.toString()]),
      [[1, 'hi there']],
    );
  });
});

async function compressor() {
  const deflate = createDeflate({ dictionary: SPDY3_DICTIONARY });
  return (block: Buffer) =>
    new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      const on = (c: Buffer) => chunks.push(c);
      deflate.on('data', on);
      deflate.write(block);
      deflate.flush(constants.Z_SYNC_FLUSH, () => {
        deflate.off('data', on);
        resolve(Buffer.concat(chunks));
      });
    });
}

function headerBlock(h: Record<string, string>): Buffer {
  const parts = [Buffer.from([0, 0, 0, Object.keys(h).length])];
  for (const [k, v] of Object.entries(h)) {
    for (const s of [k, v]) {
      const b = Buffer.from(s);
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      parts.push(len, b);
    }
  }
  return Buffer.concat(parts);
}

function synStream(id: number, compressed: Buffer): Buffer {
  const f = Buffer.alloc(18);
  f.writeUInt16BE(0x8003, 0); // control, version 3
  f.writeUInt16BE(1, 2); // SYN_STREAM
  f.writeUIntBE(10 + compressed.length, 5, 3);
  f.writeUInt32BE(id, 8);
  return Buffer.concat([f, compressed]);
}

function dataFrame(id: number, data: string): Buffer {
  const f = Buffer.alloc(8);
  f.writeUInt32BE(id, 0);
  f.writeUIntBE(Buffer.byteLength(data), 5, 3);
  return Buffer.concat([f, Buffer.from(data)]);
}

describe('upgrade/spdy: reading SPDY/3.1 streams', () => {
  it('parses a header block', () => {
    assert.deepEqual(
      [...parseHeaderBlock(headerBlock({ streamType: 'stdout', port: '80' }))],
      [
        ['streamtype', 'stdout'],
        ['port', '80'],
      ],
    );
  });

  for (const oneByOne of [false, true]) {
    it(`learns stream types from the client's SYN_STREAMs and reads both directions in order${oneByOne ? ', one byte at a time' : ''}`, async () => {
      const compress = await compressor();
      const client: Buffer[] = [];
      for (const [id, type] of [
        [1, 'error'],
        [3, 'stdin'],
        [5, 'stdout'],
        [7, 'resize'],
      ] as const)
        client.push(synStream(id, await compress(headerBlock({ streamType: type }))));
      client.push(dataFrame(3, 'whoami\r'), dataFrame(7, '{"Width":100,"Height":30}'));
      const got: [string, number, string][] = [];
      const connection = new SpdyConnection((why) => assert.fail(why));
      const ports: string[] = [];
      connection.onStream = (h) => ports.push(h.get('streamtype') ?? '');
      const fromClient = new SpdyReader(connection, (m) => got.push(['client', m.channel, m.data.toString()]));
      const fromServer = new SpdyReader(connection, (m) => got.push(['server', m.channel, m.data.toString()]));
      feed(fromClient, Buffer.concat(client), oneByOne);
      feed(fromServer, Buffer.concat([dataFrame(5, 'root\r\n'), dataFrame(1, '{"status":"Success"}')]), oneByOne);
      // The readers inflate SPDY headers asynchronously: wait for all four frames.
      await waitFor('four SPDY streams and four messages', () => ports.length === 4 && got.length === 4);
      assert.deepEqual(ports, ['error', 'stdin', 'stdout', 'resize']);
      assert.deepEqual(got, [
        ['client', 0, 'whoami\r'],
        ['client', 4, '{"Width":100,"Height":30}'],
        ['server', 1, 'root\r\n'],
        ['server', 3, '{"status":"Success"}'],
      ]);
    });
  }
});

describe('upgrade/session: what the streams mean', () => {
  it('typed lines: backspace applied, escape sequences and control characters dropped', () => {
    assert.equal(typedLine('ls -l\x7f\x7fa'), 'ls a');
    assert.equal(typedLine('echo \x1b[Ahi\x03'), 'echo hi');
  });

  it('exit codes from the error channel; lines only on a terminal', () => {
    const lines: string[] = [];
    const tap = new SessionTap(null, (l) => lines.push(l));
    tap.fromClient(0, Buffer.from('whoami\recho a'));
    tap.fromClient(0, Buffer.from('b\r\r'));
    tap.fromServer(
      3,
      Buffer.from(
        '{"status":"Failure","reason":"NonZeroExitCode","message":"command terminated with non-zero exit code","details":{"causes":[{"reason":"ExitCode","message":"42"}]}}',
      ),
    );
    assert.deepEqual(lines, ['whoami', 'echo ab']);
    assert.equal(tap.facts.exitCode, 42);
    const piped = new SessionTap(null, null);
    piped.fromClient(0, Buffer.from('secret data\n'));
    assert.equal(piped.facts.lines, 0);
    assert.equal(piped.facts.bytesIn, 12);
  });
});

describe('recording/replay', () => {
  it('plays output at the recorded pace over speed, idle gaps capped', () => {
    const cast = ['{"version":2}', '[0.5,"o","a"]', '[0.6,"i","x"]', '[100.5,"o","b"]', '[101,"r","80x24"]', '[101.5,"o","c"]'];
    assert.deepEqual(framesOf(cast, { speed: 2, idleCap: 2 }), [
      { delay: 0.25, text: 'a' },
      { delay: 1, text: 'b' },
      { delay: 0.5, text: 'c' },
    ]);
  });
});

describe('upgrade/open: a recording that fails mid-session ends the session (fail closed)', () => {
  const alice: Identity = { username: 'alice', uid: '', groups: [], extra: {}, claims: {}, agent: null };
  const attributes = {
    verb: 'get' as const,
    group: '',
    version: 'v1',
    resource: 'pods',
    subresource: 'exec',
    namespace: 'dev',
    name: 'web-0',
    trailingPath: '',
  };
  function failingStore(failOpen: boolean): SessionStore {
    return {
      failOpen,
      open: async (_h: unknown, onError: (e: Error) => void) => ({
        location: '/dev/full',
        output: () => onError(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })),
        input() {},
        resize() {},
        close() {},
      }),
      remove: async () => {},
    } as unknown as SessionStore;
  }
  /** A terminal exec session over `store`; `killed()` says whether the session was closed. */
  async function terminalSession(store: SessionStore) {
    let killed = false;
    const session = await openSession({
      store,
      audit: createMemoryAuditWriter(() => {}),
      auditId: 'a',
      identity: alice,
      attributes,
      exec: { command: ['sh'], container: 'web', stdin: true, tty: true },
      kill: () => (killed = true),
      now: Date.now,
    });
    return { session, killed: () => killed };
  }
  for (const failOpen of [false, true]) {
    it(failOpen ? 'goes on when the operator chose recording.failOpen' : 'closes the connection', async () => {
      const { session: s, killed } = await terminalSession(failingStore(failOpen));
      const taps = s.taps('websocket', 'v5.channel.k8s.io');
      taps.fromServer(wsFrame(Buffer.from('\x01output'), { mask: false }));
      assert.equal(killed(), !failOpen);
      assert.match(s.facts.failure ?? '', /recording failed: ENOSPC/);
    });
  }

  // Attack: a client sends a frame the reader will not read (over its size limit, or not SPDY at
  // all); the reader used to stop silently and the session went on unrecorded.
  const oversized = {
    // A WebSocket frame header announcing a 2^40-byte payload: no bytes of it need follow.
    websocket: Buffer.from([0x82, 0xff, 0, 0, 0x01, 0, 0, 0, 0, 0, 1, 2, 3, 4]),
    // A SPDY DATA frame header announcing 2^24-1 bytes, over the reader's 16 MiB limit.
    spdy: Buffer.from([0, 0, 0, 1, 0, 0xff, 0xff, 0xff]),
  } as const;
  const working: SessionStore = {
    failOpen: false,
    open: async () => ({ location: '/tmp/never-written.cast', output() {}, input() {}, resize() {}, close() {} }),
    remove: async () => {},
  } as unknown as SessionStore;
  for (const transport of ['websocket', 'spdy'] as const) {
    for (const failOpen of [false, true]) {
      it(`attack: an oversized ${transport} frame ends the session unless recording.failOpen (${failOpen ? 'failOpen: goes on' : 'closed'}), and the record says why`, async () => {
        const { session: s, killed } = await terminalSession({ ...working, failOpen });
        const taps = s.taps(transport === 'websocket' ? 'websocket' : 'SPDY/3.1', transport === 'websocket' ? 'v5.channel.k8s.io' : 'v4.channel.k8s.io');
        taps.fromClient(oversized[transport]);
        assert.equal(killed(), !failOpen);
        assert.match(
          s.facts.failure ?? '',
          transport === 'websocket'
            ? /^recording failed: a WebSocket frame of 1099511627776 bytes is over the reader's limit/
            : /^recording failed: a SPDY frame of 16777215 bytes is over the reader's limit/,
        );
      });
    }
  }

  it('attack: a SPDY SYN_STREAM whose header block cannot be inflated ends the session', async () => {
    const { session: s, killed } = await terminalSession(working);
    const taps = s.taps('SPDY/3.1', 'v4.channel.k8s.io');
    const junk = Buffer.from('not zlib at all, not at all');
    const syn = Buffer.alloc(18);
    syn.writeUInt16BE(0x8003, 0);
    syn.writeUInt16BE(1, 2);
    syn.writeUIntBE(10 + junk.length, 5, 3);
    syn.writeUInt32BE(1, 8);
    taps.fromClient(Buffer.concat([syn, junk]));
    await waitFor('the reader to give up', killed);
    assert.match(s.facts.failure ?? '', /^recording failed: a SPDY frame could not be read/);
  });

  it('attack: a fragmented WebSocket message that adds up past the limit ends the session', () => {
    let reason = '';
    const r = new WebSocketReader(
      false,
      () => {},
      (why) => (reason = why),
    );
    const part = Buffer.alloc(60_000);
    // 300 fragments of 60 kB: each frame is small, the message is 18 MB.
    for (let i = 0; i < 300 && !reason; i++) r.push(wsFrame(part.subarray(0, 60_000), { fin: false, opcode: i === 0 ? 2 : 0, mask: false }));
    assert.match(reason, /a fragmented WebSocket message is over the reader's limit/);
  });
});
