/**
 * Request bodies as the gateway reads them, from real node:http and node:http2
 * servers: a body is read whole however its bytes arrive, a request without one
 * reads as none, and a body over the limit is refused.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { connect as connectH2, createServer as createH2Server } from 'node:http2';
import { connect, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { readBody } from '../../../src/request/body.js';

const MAX = 1024;

type Read = { body: string | undefined } | { error: string };

/**
 * Read as the request arrives, and once more a turn later, as the gateway does (after the identity
 * and policy steps): by then Node has parsed whatever came with the headers.
 */
async function readOver(http1: (port: number) => Promise<void>): Promise<Read> {
  const now = await readOnce(http1, (f) => f());
  const later = await readOnce(http1, (f) => setImmediate(f));
  assert.deepEqual(later, now, 'read at once and a turn later');
  return now;
}

async function readOnce(http1: (port: number) => Promise<void>, when: (f: () => void) => void): Promise<Read> {
  let settle!: (r: Read) => void;
  const got = new Promise<Read>((resolve) => (settle = resolve));
  const server = createServer((req, res) => {
    // Answered only once read: an answer sent first would make Node throw the body away.
    when(() => {
      void readBody(req, MAX)
        .then(
          (b) => settle({ body: b?.toString() }),
          (err: unknown) => settle({ error: (err as Error).message }),
        )
        .finally(() => res.end());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await http1((server.address() as AddressInfo).port);
    return await got;
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

/** Sends raw HTTP/1.1 in the pieces given, with a pause between them. */
const raw =
  (...pieces: string[]) =>
  (port: number) =>
    new Promise<void>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        void (async () => {
          for (const p of pieces) {
            socket.write(p);
            await sleep(30);
          }
          resolve();
        })();
      });
      socket.on('error', reject);
      socket.on('data', () => {});
    });

describe('request bodies', () => {
  it('a GET with no body reads as none', async () => {
    assert.deepEqual(await readOver(raw('GET /api HTTP/1.1\r\nHost: x\r\n\r\n')), { body: undefined });
  });

  it('a body in the same packet as its headers is read whole', async () => {
    assert.deepEqual(await readOver(raw('POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n{"a":"bcd"}')), { body: '{"a":"bcd"}' });
  });

  it('a body that arrives after its headers, in pieces, is read whole', async () => {
    assert.deepEqual(await readOver(raw('POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n', '{"a":', '"bcd"}')), { body: '{"a":"bcd"}' });
  });

  it('a chunked body is read whole', async () => {
    assert.deepEqual(await readOver(raw('POST /api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n', '6\r\n"bcd"}\r\n0\r\n\r\n')), {
      body: '{"a":"bcd"}',
    });
  });

  it('a body over the limit is refused, declared or not', async () => {
    assert.deepEqual(await readOver(raw(`POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: ${MAX + 1}\r\n\r\n`)), {
      error: `the request body is larger than the gateway's limit of ${MAX} bytes`,
    });
    const big = 'x'.repeat(MAX + 1);
    assert.deepEqual(
      await readOver(raw(`POST /api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${big.length.toString(16)}\r\n${big}\r\n0\r\n\r\n`)),
      {
        error: `the request body is larger than the gateway's limit of ${MAX} bytes`,
      },
    );
  });

  it('over HTTP/2, a body is read whole and a GET reads as none', async () => {
    const reads: Read[] = [];
    const server = createH2Server((req, res) => {
      readBody(req as unknown as IncomingMessage, MAX).then(
        (b) => reads.push({ body: b?.toString() }),
        (err: unknown) => reads.push({ error: (err as Error).message }),
      );
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = connectH2(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      const send = (method: string, body?: string) =>
        new Promise<void>((resolve, reject) => {
          const s = client.request({ ':method': method, ':path': '/api' }, { endStream: body === undefined });
          s.on('response', () => {});
          s.on('error', reject);
          s.on('close', resolve);
          s.resume();
          if (body !== undefined) {
            s.write(body.slice(0, 3));
            setTimeout(() => s.end(body.slice(3)), 30);
          }
        });
      await send('GET');
      await send('POST', '{"a":"bcd"}');
      await sleep(50);
      assert.deepEqual(reads, [{ body: undefined }, { body: '{"a":"bcd"}' }]);
    } finally {
      client.close();
      server.close();
    }
  });
});
