import { createServer } from 'node:net';

/**
 * A port that was free on 127.0.0.1 a moment ago. The kernel hands out ephemeral
 * ports round-robin, so two runs asking at once get different ones.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
