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
  private failed = false;

  /** `raw`: the messages are a byte stream of their own (port-forward tunnels SPDY in them), channel -1. */
  constructor(
    private readonly base64: boolean | 'raw',
    private readonly onMessage: (m: ChannelMessage) => void,
    private readonly onClose: () => void = () => {},
  ) {}

  /** Feeds bytes in wire order; a protocol error stops reading (the relay goes on: the peers judge their own protocol). */
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
        if (big > BigInt(MAX_MESSAGE)) return this.fail();
        len = Number(big);
        off = 10;
      }
      if (len > MAX_MESSAGE) return this.fail();
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
    }
    this.fragments.push(payload);
    if (!fin) return;
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

  private fail(): void {
    this.failed = true;
    this.buf = Buffer.alloc(0);
  }
}
