/**
 * Baseline (b) of the latency benchmark: the least a Node reverse proxy can do.
 * TLS in, undici out, the upstream credentials added, no identity, no policy,
 * no masking, no audit. Not a product: it trusts every caller.
 *   node dist/bench/plain-proxy.js PORT UPSTREAM TOKEN CA_FILE CERT_FILE KEY_FILE
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { pipeline } from 'node:stream/promises';
import { Agent, request } from 'undici';

const [port, upstream, token, ca, cert, key] = process.argv.slice(2) as [string, string, string, string, string, string];
const dispatcher = new Agent({ connect: { ca: readFileSync(ca) }, connections: 256, keepAliveTimeout: 30_000 });
const server = createServer(
  { cert: readFileSync(cert), key: readFileSync(key) },
  (req, res) =>
    void (async () => {
      try {
        const up = await request(upstream + (req.url ?? '/'), {
          method: req.method as 'GET',
          headers: { accept: req.headers.accept ?? 'application/json', authorization: `Bearer ${token}` },
          dispatcher,
          bodyTimeout: 0,
        });
        res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? 'application/json') });
        await pipeline(up.body, res);
      } catch {
        res.destroy();
      }
    })(),
);
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
