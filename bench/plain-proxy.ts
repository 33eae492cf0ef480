/**
 * Baseline (b) of the latency benchmark: the least a Node reverse proxy can do.
 * TLS in, undici out, the upstream credentials added, no identity, no policy,
 * no masking, no audit. Not a product: it trusts every caller.
 *   node dist/bench/plain-proxy.js PORT UPSTREAM TOKEN CA_FILE CERT_FILE KEY_FILE [USER [GROUP…]]
 * Given a USER, every request impersonates that user and groups, as the gateway's
 * do: the API server then authorizes the impersonation of each request, which is
 * work it does for any impersonating proxy, not the gateway's own.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { pipeline } from 'node:stream/promises';
import { Agent, request } from 'undici';

const [port, upstream, token, ca, cert, key, user, ...groups] = process.argv.slice(2) as [string, string, string, string, string, string, string?, ...string[]];
const impersonation: Record<string, string | string[]> = user ? { 'impersonate-user': user, ...(groups.length ? { 'impersonate-group': groups } : {}) } : {};
const dispatcher = new Agent({ connect: { ca: readFileSync(ca) }, connections: 256, keepAliveTimeout: 30_000 });
const server = createServer(
  { cert: readFileSync(cert), key: readFileSync(key) },
  (req, res) =>
    void (async () => {
      try {
        const up = await request(upstream + (req.url ?? '/'), {
          method: req.method as 'GET',
          headers: { accept: req.headers.accept ?? 'application/json', authorization: `Bearer ${token}`, ...impersonation },
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
