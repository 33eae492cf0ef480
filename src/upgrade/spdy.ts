/**
 * Reads SPDY/3.1 frames as they pass (the protocol kube-apiserver and kubectl
 * speak when WebSockets are off), to learn what each stream carries. Streams
 * are opened by the client with SYN_STREAM frames whose zlib-compressed header
 * block names the stream's type (`streamtype: stdin|stdout|stderr|error|resize`,
 * or `data|error` plus `port` for port-forward); DATA frames then carry the
 * bytes. One compression context per direction spans all header blocks, so
 * frames are decoded strictly in the order they arrived. Observes only.
 */
import { constants, createInflate, type Inflate } from 'node:zlib';
import { SPDY3_DICTIONARY } from './spdy-dictionary.js';
import { ERROR, RESIZE, STDERR, STDIN, STDOUT } from './session.js';
import type { ChannelMessage } from './websocket.js';

const SYN_STREAM = 1;
// SPDY's length field is 24 bits, so a limit at 16 MiB could never be reached. Both ends of a
// Kubernetes stream copy through 32 KiB buffers (io.Copy into spdystream), so real frames are far
// below 4 MiB; a frame past it is not a Kubernetes stream, and a session the reader cannot follow ends.
const MAX_FRAME = 4 * 1024 * 1024;
const CHANNELS: Readonly<Record<string, number>> = { stdin: STDIN, stdout: STDOUT, stderr: STDERR, error: ERROR, resize: RESIZE };

/** The name/value block of a SYN_STREAM: 32-bit count, then 32-bit-length-prefixed names and values. */
export function parseHeaderBlock(block: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let off = 4;
  const count = block.readUInt32BE(0);
  for (let i = 0; i < count && off < block.length; i++) {
    const nl = block.readUInt32BE(off);
    const name = block.subarray(off + 4, off + 4 + nl).toString('latin1');
    off += 4 + nl;
    const vl = block.readUInt32BE(off);
    out.set(name.toLowerCase(), block.subarray(off + 4, off + 4 + vl).toString('latin1'));
    off += 4 + vl;
  }
  return out;
}

/**
 * What both directions of one connection share: the stream types (the server's
 * DATA frames belong to streams the client opened) and one order of decoding,
 * so a reply is never read before the SYN_STREAM it answers.
 */
export class SpdyConnection {
  readonly streams = new Map<number, number>();
  /** Each stream's headers, as the client opened it (port-forward names its port here). */
  onStream: (headers: Map<string, string>) => void = () => {};
  private queue: Promise<void> = Promise.resolve();
  failed = false;

  /** Told once when either direction gives up: the session is no longer seen (upgrade/open.ts). */
  constructor(private readonly onError: (reason: string) => void) {}

  enqueue(job: () => Promise<void> | void): void {
    this.queue = this.queue.then(job).catch((err: unknown) => this.fail(`a SPDY frame could not be read: ${err instanceof Error ? err.message : String(err)}`));
  }

  fail(reason: string): void {
    if (this.failed) return;
    this.failed = true;
    this.onError(reason);
  }
}

export class SpdyReader {
  private buf: Buffer = Buffer.alloc(0);
  private inflate: Inflate | undefined;
  private failed = false;

  constructor(
    private readonly connection: SpdyConnection,
    private readonly onMessage: (m: ChannelMessage) => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.failed || this.connection.failed) return;
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 8) {
      const length = this.buf.readUIntBE(5, 3);
      if (length > MAX_FRAME) {
        this.failed = true;
        this.buf = Buffer.alloc(0);
        this.connection.fail(`a SPDY frame of ${length} bytes is over the reader's limit of ${MAX_FRAME}`);
        return;
      }
      if (this.buf.length < 8 + length) return;
      const frame = this.buf.subarray(0, 8 + length);
      this.buf = this.buf.subarray(8 + length);
      const control = (frame[0]! & 0x80) !== 0;
      if (control) {
        const type = frame.readUInt16BE(2);
        if (type === SYN_STREAM && length >= 10) {
          const id = frame.readUInt32BE(8) & 0x7fffffff;
          const block = Buffer.from(frame.subarray(18));
          this.connection.enqueue(async () => {
            const headers = parseHeaderBlock(await this.decompress(block));
            this.connection.onStream(headers);
            const type = headers.get('streamtype') ?? '';
            this.connection.streams.set(id, CHANNELS[type] ?? -1);
          });
        }
        continue;
      }
      const id = frame.readUInt32BE(0) & 0x7fffffff;
      const data = Buffer.from(frame.subarray(8));
      if (data.length === 0) continue;
      this.connection.enqueue(() => {
        const channel = this.connection.streams.get(id);
        if (channel !== undefined && channel >= 0) this.onMessage({ channel, data });
      });
    }
  }

  private decompress(block: Buffer): Promise<Buffer> {
    this.inflate ??= createInflate({ dictionary: SPDY3_DICTIONARY });
    const inflate = this.inflate;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const onData = (c: Buffer) => chunks.push(c);
      inflate.on('data', onData);
      inflate.once('error', reject);
      inflate.write(block);
      inflate.flush(constants.Z_SYNC_FLUSH, () => {
        inflate.off('data', onData);
        inflate.off('error', reject);
        resolve(Buffer.concat(chunks));
      });
    });
  }
}
