import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createFrontDoor, pathOf, type Handler, type UpgradeHandler } from '../../../src/doors/front.js';

describe('doors/front: health, readiness, and which handler a path goes to', () => {
  let server: Server;
  let base: string;
  let routes: { kubernetes: Handler; gatehouse: Handler; upgrade: UpgradeHandler } | undefined;
  let draining = false;
  let upstreamUp = true;
  let readyCalls = 0;
  let clock = 0;
  const errors: string[] = [];
  let front: ReturnType<typeof createFrontDoor>;

  before(async () => {
    front = createFrontDoor({
      routes: () => routes,
      ownPrefixes: ['/gatehouse/', '/.well-known/oauth-protected-resource'],
      upstreamReady: async () => {
        readyCalls++;
        return upstreamUp;
      },
      draining: () => draining,
      onError: (err) => errors.push(err.message),
      now: () => clock,
    });
    server = createServer(front.handle);
    server.on('upgrade', front.upgrade);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  const get = async (path: string, method = 'GET') => {
    const r = await fetch(base + path, { method });
    return { status: r.status, body: await r.text(), type: r.headers.get('content-type') };
  };
  const noUpgrade: UpgradeHandler = async (_req, socket) => void socket.destroy();
  const answer =
    (who: string): Handler =>
    async (req, res) =>
      void res.end(`${who} ${req.url}`);

  it('answers /healthz itself, and 503 "starting" for everything else until the routes are set', async () => {
    assert.deepEqual(await get('/healthz'), { status: 200, body: 'ok', type: 'text/plain; charset=utf-8' });
    assert.deepEqual(await get('/api/v1/pods'), { status: 503, body: 'starting', type: 'text/plain; charset=utf-8' });
  });

  it("sends the gateway's own prefixes to its handler and every other path to the Kubernetes one, query or absolute-form alike", async () => {
    routes = { kubernetes: answer('kube'), gatehouse: answer('own'), upgrade: noUpgrade };
    const CASES: [string, string][] = [
      ['/api/v1/namespaces/dev/pods?watch=1', 'kube /api/v1/namespaces/dev/pods?watch=1'],
      ['/gatehouse/approvals', 'own /gatehouse/approvals'],
      ['/.well-known/oauth-protected-resource/gatehouse/mcp', 'own /.well-known/oauth-protected-resource/gatehouse/mcp'],
      ['/gatehousex', 'kube /gatehousex'],
      ['/healthz/x', 'kube /healthz/x'],
    ];
    for (const [path, body] of CASES) assert.equal((await get(path)).body, body, path);
    // POST /healthz is a Kubernetes path like any other: only GET is the gateway's.
    assert.equal((await get('/healthz', 'POST')).body, 'kube /healthz');
    assert.deepEqual(
      ['/a/b?c=d', 'https://gw.example:6443/gatehouse/x?y', '/', undefined, 'not a url'].map((u) => pathOf(u)),
      ['/a/b', '/gatehouse/x', '/', '/', 'not a url'],
    );
  });

  it('/readyz asks the upstream at most every two seconds, and says why it is not ready', async () => {
    clock = 10_000;
    readyCalls = 0;
    assert.equal((await get('/readyz')).status, 200);
    upstreamUp = false;
    assert.equal((await get('/readyz')).status, 200, 'still the cached answer');
    assert.equal(readyCalls, 1);
    clock += 2001;
    assert.deepEqual(await get('/readyz'), { status: 503, body: 'the Kubernetes API server is not reachable', type: 'text/plain; charset=utf-8' });
    draining = true;
    clock += 2001;
    assert.deepEqual(await get('/readyz'), { status: 503, body: 'shutting down', type: 'text/plain; charset=utf-8' });
    assert.equal(readyCalls, 2, 'a draining gateway does not ask the upstream');
    draining = false;
    upstreamUp = true;
  });

  it('counts a request while its handler runs', async () => {
    let release!: () => void;
    const running = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    routes = {
      gatehouse: answer('own'),
      upgrade: noUpgrade,
      kubernetes: async (_req, res) => {
        entered();
        await running;
        res.end('done');
      },
    };
    const pending = get('/api/v1/pods?watch=1');
    await inside;
    assert.equal(front.inFlight(), 1);
    release();
    assert.equal((await pending).body, 'done');
    assert.equal(front.inFlight(), 0);
  });

  it('a handler that throws: logged, and a bare 500 that says nothing of the error; after the headers, the connection is cut', async () => {
    routes = {
      upgrade: noUpgrade,
      gatehouse: async () => {
        throw new Error('secret detail');
      },
      kubernetes: async (_req, res) => {
        res.writeHead(200);
        res.write('partial');
        throw new Error('late');
      },
    };
    assert.deepEqual(await get('/gatehouse/x'), { status: 500, body: 'Internal Server Error', type: 'text/plain; charset=utf-8' });
    await assert.rejects(get('/api/v1/pods'));
    assert.deepEqual(errors, ['secret detail', 'late']);
    assert.equal(front.inFlight(), 0);
  });

  it('upgrades: closed before the routes exist and while draining; counted while their door runs', async () => {
    const { port } = server.address() as AddressInfo;
    // What the client reads before the connection closes.
    const upgradeRequest = () =>
      new Promise<string>((resolve) => {
        let got = '';
        const s = connect(port, '127.0.0.1', () =>
          s.write('GET /api/v1/namespaces/dev/pods/p/exec HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'),
        );
        s.setEncoding('utf8').on('data', (d: string) => (got += d));
        s.on('close', () => resolve(got));
      });
    let calls = 0;
    let release!: () => void;
    const running = new Promise<void>((r) => (release = r));
    const upgrade: UpgradeHandler = async (_req, socket) => {
      calls++;
      socket.write('HTTP/1.1 101 Switching Protocols\r\n\r\n');
      await running;
      socket.end();
    };
    routes = undefined;
    assert.equal(await upgradeRequest(), '');
    routes = { kubernetes: answer('kube'), gatehouse: answer('own'), upgrade };
    const open = upgradeRequest();
    while (calls === 0) await new Promise((r) => setImmediate(r));
    assert.equal(front.inFlight(), 1);
    release();
    assert.match(await open, /^HTTP\/1\.1 101/);
    assert.equal(front.inFlight(), 0);
    draining = true;
    assert.equal(await upgradeRequest(), '');
    draining = false;
    assert.equal(calls, 1, 'the upgrade door saw only the one taken');
  });
});
