/**
 * Reads WebSocket frames (RFC 6455 §5.2) as they pass, to learn what flows on
 * Kubernetes' channel protocol (v4/v5.channel.k8s.io: the first byte of each
 * binary message is the channel; base64.channel.k8s.io: the first character,
 * the rest base64). Observes only: the bytes themselves are relayed untouched.
 */

export interface ChannelMessage {
  readonly channel: number;
  readonly data: Buffer;
}

const MAX_MESSAGE = 16 * 1024 * 1024;

export class WebSocketReader {
  private buf: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private fragmentOpcode = 0;
  private fragmentBytes = 0;
  private failed = false;

  /**
   * `raw`: the messages are a byte stream of their own (port-forward tunnels SPDY in them), channel -1.
   * `onError` is told once when the reader gives up: from then on the session is no longer seen,
   * which the session treats as a recording failure (upgrade/open.ts).
   */
  constructor(
    private readonly base64: boolean | 'raw',
    private readonly onMessage: (m: ChannelMessage) => void,
    private readonly onError: (reason: string) => void,
    private readonly onClose: () => void = () => {},
  ) {}

  /** Feeds bytes in wire order; a frame it cannot read stops reading and is reported through onError. */
  push(chunk: Buffer): void {
    if (this.failed) return;
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.buf.length < 2) return;
      const b0 = this.buf[0]!;
      const b1 = this.buf[1]!;
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      const masked = (b1 & 0x80) !== 0;
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        const big = this.buf.readBigUInt64BE(2);
        if (big > BigInt(MAX_MESSAGE)) return this.fail(`a WebSocket frame of ${big} bytes is over the reader's limit of ${MAX_MESSAGE}`);
        len = Number(big);
        off = 10;
      }
      if (len > MAX_MESSAGE) return this.fail(`a WebSocket frame of ${len} bytes is over the reader's limit of ${MAX_MESSAGE}`);
      const maskAt = off;
      if (masked) off += 4;
      if (this.buf.length < off + len) return;
      let payload = this.buf.subarray(off, off + len);
      if (masked) {
        const mask = this.buf.subarray(maskAt, maskAt + 4);
        const out = Buffer.allocUnsafe(len);
        for (let i = 0; i < len; i++) out[i] = payload[i]! ^ mask[i & 3]!;
        payload = out;
      } else payload = Buffer.from(payload);
      this.buf = this.buf.subarray(off + len);
      this.frame(fin, opcode, payload);
    }
  }

  private frame(fin: boolean, opcode: number, payload: Buffer): void {
    if (opcode === 0x8) return this.onClose();
    if (opcode >= 0x8) return; // ping, pong
    if (opcode !== 0) {
      this.fragmentOpcode = opcode;
      this.fragments = [];
      this.fragmentBytes = 0;
    }
    this.fragments.push(payload);
    this.fragmentBytes += payload.length;
    // Fragments add up to one message: the limit is on the message, not on each frame.
    if (this.fragmentBytes > MAX_MESSAGE) return this.fail(`a fragmented WebSocket message is over the reader's limit of ${MAX_MESSAGE} bytes`);
    if (!fin) return;
    this.fragmentBytes = 0;
    const message = this.fragments.length === 1 ? this.fragments[0]! : Buffer.concat(this.fragments);
    this.fragments = [];
    if (message.length === 0) return;
    if (this.base64 === 'raw') {
      this.onMessage({ channel: -1, data: message });
    } else if (this.base64 || this.fragmentOpcode === 0x1) {
      const channel = message[0]! - 0x30;
      this.onMessage({ channel, data: Buffer.from(message.subarray(1).toString('latin1'), 'base64') });
    } else {
      this.onMessage({ channel: message[0]!, data: message.subarray(1) });
    }
  }

  private fail(reason: string): void {
    this.failed = true;
    this.buf = Buffer.alloc(0);
    this.fragments = [];
    this.onError(reason);
  }
}
