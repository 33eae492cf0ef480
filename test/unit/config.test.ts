import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

const VALID = {
  listen: { address: '127.0.0.1:8443', tls: { cert: 'c.pem', key: 'k.pem' } },
  upstream: { kubeconfig: 'gw.kubeconfig' },
  identity: { issuers: [{ issuer: 'https://login.example.com', audiences: ['gatehouse'] }] },
  policy: { wasm: 'policy.wasm' },
  audit: { file: 'audit.log' },
};

function withChange(path: string, value: unknown): unknown {
  const doc = structuredClone(VALID) as Record<string, unknown>;
  const keys = path.split('.');
  let o = doc;
  for (const k of keys.slice(0, -1)) o = (Array.isArray(o) ? o[Number(k)] : o[k]) as Record<string, unknown>;
  // Reflect.deleteProperty: the key is the path's last segment, not a fixed name.
  if (value === undefined) Reflect.deleteProperty(o, keys.at(-1)!);
  else o[keys.at(-1)!] = value;
  return doc;
}

describe('config', () => {
  it('fills defaults and resolves paths against the config folder', () => {
    const c = parseConfig(VALID, '/etc/gatehouse');
    assert.deepEqual(c.listen, {
      host: '127.0.0.1',
      port: 8443,
      tls: { kind: 'files', cert: '/etc/gatehouse/c.pem', key: '/etc/gatehouse/k.pem' },
      http2: true,
      pingIntervalSeconds: 30,
      pingTimeoutSeconds: 15,
    });
    assert.equal(c.upstream.http2, true, 'HTTP/2 to the API server when it offers it');
    const h1 = parseConfig({ ...VALID, listen: { ...VALID.listen, http2: false }, upstream: { ...VALID.upstream, http2: false } }, '/etc/gatehouse');
    assert.equal(h1.listen.http2, false);
    assert.equal(h1.upstream.http2, false);
    assert.deepEqual([c.upstream.pingIntervalSeconds, c.upstream.pingTimeoutSeconds], [30, 15], "client-go's ping: every 30 s, 15 s for the answer");
    assert.deepEqual(c.policy, { kind: 'wasm', file: '/etc/gatehouse/policy.wasm' });
    assert.equal(c.identity.issuers[0]!.clockSkewSeconds, 30);
    assert.deepEqual(c.identity.issuers[0]!.algorithms, ['RS256', 'ES256']);
    assert.equal(c.limits.maxBodyBytes, 3 * 1024 * 1024);
  });

  it('reads metrics, audit to stdout, and polled, signed bundles', () => {
    const c = parseConfig(
      {
        ...VALID,
        metrics: {},
        audit: { stdout: true },
        recording: { dir: 'rec' },
        policy: { bundle: { url: 'https://bundles.example.com/gatehouse.tar.gz', pollSeconds: 30 }, verificationKeyFile: 'keys/policy.pub.pem' },
      },
      '/etc/gatehouse',
    );
    assert.deepEqual(c.metrics, { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(c.audit, { stdout: true });
    assert.deepEqual(c.policy, {
      kind: 'bundle',
      file: 'https://bundles.example.com/gatehouse.tar.gz',
      pollSeconds: 30,
      verificationKeyFile: '/etc/gatehouse/keys/policy.pub.pem',
    });
    assert.deepEqual(parseConfig({ ...VALID, policy: { bundle: 'b.tar.gz' } }, '/etc/gatehouse').policy, { kind: 'bundle', file: '/etc/gatehouse/b.tar.gz' });
    assert.deepEqual(parseConfig({ ...VALID, metrics: { address: '0.0.0.0:9100' } }, '/').metrics, { host: '0.0.0.0', port: 9100 });
    assert.deepEqual(parseConfig({ ...VALID, audit: { file: 'audit.log', checkpoint: { keyFile: 'keys/audit.key' } } }, '/etc/gatehouse').audit, {
      file: '/etc/gatehouse/audit.log',
      stdout: false,
      checkpoint: { keyFile: '/etc/gatehouse/keys/audit.key', everySeconds: 60 },
    });
  });

  const BAD: [string, unknown, string, RegExp][] = [
    ['no audit destination', withChange('audit', {}), 'audit', /set file \(a JSON-lines file\), stdout: true/],
    [
      'a shadow with two sources',
      { ...VALID, policy: { wasm: 'p.wasm', shadow: { wasm: 'a.wasm', bundle: 'b.tar.gz' } } },
      'policy.shadow',
      /exactly one of dir/,
    ],
    [
      'checkpoints without an audit file',
      { ...VALID, audit: { stdout: true, checkpoint: { keyFile: 'k' } }, recording: { dir: 'r' } },
      'audit.checkpoint',
      /set audit.file/,
    ],
    ['audit to stdout only, with no recording folder', withChange('audit', { stdout: true }), 'recording.dir', /is required when audit.file is not set/],
    ['a metrics address without a port', { ...VALID, metrics: { address: 'localhost' } }, 'metrics.address', /is not host:port/],
    ['a verification key without a bundle', withChange('policy.verificationKeyFile', 'k.pem'), 'policy.verificationKeyFile', /verifies a signed bundle/],
    ['a bundle with both url and file', withChange('policy', { bundle: { url: 'https://x', file: 'b' } }), 'policy.bundle', /exactly one of url/],
    ['a bundle URL that is not http', withChange('policy', { bundle: { url: 'file:///b' } }), 'policy.bundle.url', /must be an http\(s\) URL/],
    ['an unknown top-level option', { ...VALID, lisen: {} }, 'lisen', /unknown option; expected one of listen, upstream/],
    ['a listen address without a port', withChange('listen.address', 'localhost'), 'listen.address', /is not host:port/],
    ['both TLS files and selfSigned', withChange('listen.tls.selfSigned', { dir: 'tls' }), 'listen.tls', /either cert and key, or selfSigned/],
    ['no upstream', withChange('upstream', undefined), 'upstream', /is required/],
    ['an HMAC algorithm', withChange('identity.issuers.0.algorithms', ['HS256']), 'identity.issuers[].algorithms', /"HS256" is not allowed: only asymmetric/],
    ['alg none', withChange('identity.issuers.0.algorithms', ['none']), 'identity.issuers[].algorithms', /"none" is not allowed/],
    ['a plain-http issuer off loopback', withChange('identity.issuers.0.issuer', 'http://login.example.com'), 'identity.issuers[].issuer', /must use https/],
    ['no audiences', withChange('identity.issuers.0.audiences', []), 'identity.issuers[].audiences', /at least one audience/],
    ['two policy sources', withChange('policy.bundle', 'b.tar.gz'), 'policy', /exactly one of dir/],
    [
      'a policy body limit above the body limit',
      { ...VALID, limits: { maxBodyBytes: 2048, policyBodyBytes: 4096 } },
      'limits.policyBodyBytes',
      /between 0 and 2048/,
    ],
    [
      'a skew that is not a number',
      withChange('identity.issuers.0.clockSkewSeconds', '30s'),
      'identity.issuers[0].clockSkewSeconds',
      /must be a number between 0 and 300/,
    ],
    ['approvals without a store', { ...VALID, approvals: {} }, 'approvals.store', /is required/],
    [
      'store.postgres and an approvals store',
      { ...VALID, store: { postgres: { url: 'postgres://db/gh' } }, approvals: { store: { sqlite: 'a.db' } } },
      'approvals.store',
      /store.postgres is set: approvals live there/,
    ],
    [
      'store.postgres and a recording folder',
      { ...VALID, store: { postgres: { url: 'postgres://db/gh' } }, recording: { dir: 'rec' } },
      'recording.dir',
      /store.postgres is set: recordings live there/,
    ],
    ['a store URL that is not PostgreSQL', { ...VALID, store: { postgres: { url: 'mysql://db' } } }, 'store.postgres', /postgres:\/\/ connection URL/],
    [
      'approvals with two stores',
      { ...VALID, approvals: { store: { sqlite: 'a.db', postgres: { url: 'postgres://x' } } } },
      'approvals.store',
      /exactly one of sqlite/,
    ],
    [
      'a postgres URL that is not one',
      { ...VALID, approvals: { store: { postgres: { url: 'mysql://x' } } } },
      'approvals.store.postgres',
      /postgres:\/\/ connection URL/,
    ],
    [
      'an unknown hold mode',
      { ...VALID, approvals: { store: { sqlite: 'a.db' }, mode: { agents: 'wait' } } },
      'approvals.mode.agents',
      /must be hold .* or refuse/,
    ],
    [
      'a web client that is not an audience',
      { ...VALID, approvals: { store: { sqlite: 'a.db' }, web: { clientId: 'other' } } },
      'approvals.web.clientId',
      /must be one of the issuer's audiences \(gatehouse\)/,
    ],
    [
      'a web issuer that is not trusted',
      { ...VALID, approvals: { store: { sqlite: 'a.db' }, web: { issuer: 'https://evil.example', clientId: 'gatehouse' } } },
      'approvals.web.issuer',
      /is not one of identity.issuers/,
    ],
  ];
  it('store.postgres keeps approvals and recordings, and needs no recording folder', () => {
    const c = parseConfig(
      { ...VALID, audit: { stdout: true }, store: { postgres: { url: 'postgres://gatehouse@db:5432/gatehouse' } }, approvals: {} },
      '/etc/gatehouse',
    );
    assert.deepEqual(c.store, { postgres: { url: 'postgres://gatehouse@db:5432/gatehouse' } });
    assert.deepEqual(c.recording, { keep: { kind: 'postgres' }, failOpen: false });
    assert.deepEqual(c.approvals?.store, { kind: 'postgres', url: 'postgres://gatehouse@db:5432/gatehouse' });
    assert.deepEqual(parseConfig(VALID, '/etc/gatehouse').recording, { keep: { kind: 'files', dir: '/etc/gatehouse/recordings' }, failOpen: false });
  });

  it('fills approval defaults: agents hold, people are refused at once', () => {
    const c = parseConfig({ ...VALID, approvals: { store: { sqlite: 'approvals.db' }, web: { clientId: 'gatehouse' } } }, '/etc/gatehouse');
    assert.deepEqual(c.approvals, {
      store: { kind: 'sqlite', file: '/etc/gatehouse/approvals.db' },
      mode: { agents: 'hold', people: 'refuse' },
      holdSeconds: 600,
      maxTtlSeconds: 604800,
      sweepSeconds: 5,
      web: { issuer: 'https://login.example.com', clientId: 'gatehouse', sessionMinutes: 60 },
    });
  });
  for (const [what, doc, option, message] of BAD) {
    it(`refuses ${what}, naming the option`, () => {
      assert.throws(
        () => parseConfig(doc, '/etc/gatehouse'),
        (e: ConfigError) => e.code === 'GATEHOUSE_CONFIG' && e.option === option && message.test(e.message) && e.message.startsWith(`config ${option}: `),
      );
    });
  }
});
