/**
 * Token attacks against the authenticator. The issuer here is a small local
 * JWKS server with real keys and real signatures (a unit-test fake); the
 * end-to-end suite uses the real OpenID provider of the demo.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type CryptoKey } from 'jose';
import { createOidcAuthenticator, discoverJwksUri, type IssuerConfig } from '../../../src/identity/oidc.js';
import { GatehouseError } from '../../../src/errors.js';
import { extractBearerToken, WS_BEARER_PREFIX } from '../../../src/identity/token.js';

interface Key {
  kid: string;
  priv: CryptoKey;
  pub: JWK;
}

async function newKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, priv: privateKey, pub: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

describe('identity/oidc', () => {
  let server: Server;
  let issuer: string;
  let keys: Key[];
  let jwksFetches = 0;
  let cfg: IssuerConfig;

  before(async () => {
    keys = [await newKey('k1')];
    server = createServer((req, res) => {
      if (req.url === '/jwks') {
        jwksFetches++;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ keys: keys.map((k) => k.pub) }));
      } else if (req.url === '/.well-known/openid-configuration') {
        res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
      } else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    cfg = {
      issuer,
      jwksUri: await discoverJwksUri(issuer),
      audiences: ['gatehouse'],
      usernameClaim: 'email',
      usernamePrefix: '',
      groupsClaim: 'groups',
      groupsPrefix: '',
      algorithms: ['RS256', 'ES256'],
      clockSkewSeconds: 30,
      maxTokenBytes: 8192,
      jwksCooldownSeconds: 0,
      agent: { claim: 'agent', onBehalfOfClaim: 'on_behalf_of', sessionClaim: 'sid', usernamePrefix: 'agent:' },
    };
  });
  after(() => server.close());

  const now = () => Math.floor(Date.now() / 1000);
  function sign(claims: Record<string, unknown>, key = keys[0]!, header: Record<string, unknown> = {}) {
    return new SignJWT({ email: 'alice@example.com', groups: ['dev'], ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: key.kid, ...header })
      .setIssuer((claims['iss'] as string) ?? issuer)
      .setAudience((claims['aud'] as string) ?? 'gatehouse')
      .setIssuedAt()
      .setExpirationTime((claims['exp'] as number) ?? now() + 300)
      .sign(key.priv);
  }
  async function rejects(token: string, message: RegExp) {
    await assert.rejects(
      createOidcAuthenticator([cfg]).authenticate(token),
      (e: GatehouseError) => e.code === 'GATEHOUSE_UNAUTHENTICATED' && e.status === 401 && message.test(e.message) && !e.message.includes(token),
    );
  }
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

  it('accepts a valid token and maps claims', async () => {
    const id = await createOidcAuthenticator([cfg]).authenticate(await sign({}));
    assert.equal(id.username, 'alice@example.com');
    assert.deepEqual(id.groups, ['dev', 'system:authenticated']);
    assert.equal(id.agent, null);
    assert.equal(id.claims['iss'], issuer);
  });

  it('marks an agent and the person it acts for', async () => {
    const id = await createOidcAuthenticator([cfg]).authenticate(
      await sign({ agent: 'deploy-bot', on_behalf_of: 'alice@example.com', sid: 's-1', groups: ['agents'] }),
    );
    assert.equal(id.username, 'agent:deploy-bot');
    assert.deepEqual(id.agent, { name: 'deploy-bot', onBehalfOf: 'alice@example.com', session: 's-1' });
    assert.deepEqual(id.groups, ['agents', 'system:authenticated']);
  });

  const ATTACKS: [string, () => Promise<string>, RegExp][] = [
    ['an expired token', () => sign({ exp: now() - 120 }), /has expired/],
    ['a token not yet valid', () => sign({ nbf: now() + 600 }), /not valid yet/],
    ['a wrong issuer (signed by the right key)', () => sign({ iss: 'http://evil.example' }), /issuer this gateway does not trust/],
    ['a wrong audience', () => sign({ aud: 'kubernetes' }), /not meant for this gateway/],
    [
      'alg none',
      async () => `${b64({ alg: 'none', kid: 'k1' })}.${b64({ iss: issuer, aud: 'gatehouse', exp: now() + 300, email: 'alice@example.com' })}.`,
      /algorithm|could not be verified/,
    ],
    [
      'HS256 signed with the public key as the secret',
      async () => {
        const head = b64({ alg: 'HS256', kid: 'k1' });
        const body = b64({ iss: issuer, aud: 'gatehouse', exp: now() + 300, email: 'mallory@example.com', groups: ['admins'] });
        const mac = createHmac('sha256', JSON.stringify(keys[0]!.pub)).update(`${head}.${body}`).digest('base64url');
        return `${head}.${body}.${mac}`;
      },
      /algorithm this gateway does not accept/,
    ],
    ['a forged signature', async () => (await sign({})).slice(0, -4) + 'AAAA', /signature is invalid|no key/],
    ['a token signed by an unknown key', async () => sign({}, await newKey('k1')), /signature is invalid/],
    ['an oversized token', () => sign({ pad: 'x'.repeat(9000) }), /larger than 8192 bytes/],
    ['a system: username', () => sign({ email: 'system:admin' }), /system: names cannot come from a token/],
    ['a system: group', () => sign({ groups: ['system:masters'] }), /"system:masters" is reserved/],
    ['a username with a newline', () => sign({ email: 'alice\r\nImpersonate-User: admin' }), /not a usable name/],
    ['no username claim', () => sign({ email: undefined }), /no email claim/],
    ['groups that are not strings', () => sign({ groups: [{ name: 'admins' }] }), /must be a list of strings/],
    ['not a JWT at all', async () => 'not-a-jwt', /not a JWT/],
  ];
  for (const [what, make, message] of ATTACKS) it(`refuses ${what}`, async () => rejects(await make(), message));

  it('remembers a verified token only until it expires', async function () {
    this.timeout(10_000);
    const auth = createOidcAuthenticator([{ ...cfg, clockSkewSeconds: 0 }]);
    const token = await sign({ exp: now() + 2 });
    assert.equal((await auth.authenticate(token)).username, 'alice@example.com');
    assert.equal((await auth.authenticate(token)).username, 'alice@example.com', 'served from the cache');
    await new Promise((r) => setTimeout(r, 2100));
    await assert.rejects(auth.authenticate(token), /has expired/);
  });

  it('remembers a verified token at most a minute, then verifies it again', async () => {
    let clock = Date.now();
    const auth = createOidcAuthenticator([cfg], () => clock);
    const token = await sign({});
    await auth.authenticate(token);
    await auth.authenticate(token);
    assert.deepEqual({ ...auth.stats }, { verified: 1, cached: 1, failed: 0 });
    clock += 61_000;
    await auth.authenticate(token);
    assert.deepEqual({ ...auth.stats }, { verified: 2, cached: 1, failed: 0 });
  });

  it('never remembers a failure, and counts each', async () => {
    const auth = createOidcAuthenticator([cfg]);
    const forged = (await sign({})).slice(0, -4) + 'AAAA';
    await assert.rejects(auth.authenticate(forged));
    await assert.rejects(auth.authenticate(forged));
    assert.deepEqual({ ...auth.stats }, { verified: 0, cached: 0, failed: 2 });
  });

  it('refetches the JWKS on an unknown kid after key rotation and accepts the new key', async () => {
    const auth = createOidcAuthenticator([cfg]);
    await auth.authenticate(await sign({}));
    const before = jwksFetches;
    const k2 = await newKey('k2');
    keys = [keys[0]!, k2];
    const id = await auth.authenticate(await sign({ email: 'bob@example.com' }, k2));
    assert.equal(id.username, 'bob@example.com');
    assert.equal(jwksFetches, before + 1);
  });
});

describe('identity/token', () => {
  it('reads Authorization: Bearer', () => assert.equal(extractBearerToken({ authorization: 'Bearer abc.def.ghi' }), 'abc.def.ghi'));
  it('reads the WebSocket bearer subprotocol', () => {
    const p = WS_BEARER_PREFIX + Buffer.from('abc.def.ghi').toString('base64url');
    assert.equal(extractBearerToken({ 'sec-websocket-protocol': `v5.channel.k8s.io, ${p}` }), 'abc.def.ghi');
  });
  it('refuses two different tokens', () => {
    const p = WS_BEARER_PREFIX + Buffer.from('other').toString('base64url');
    assert.throws(() => extractBearerToken({ authorization: 'Bearer abc', 'sec-websocket-protocol': p }), /more than one bearer token/);
  });
  it('refuses Basic auth', () => assert.throws(() => extractBearerToken({ authorization: 'Basic YTpi' }), /must be "Bearer/));
  it('refuses a missing token with a hint', () =>
    assert.throws(
      () => extractBearerToken({}),
      (e: GatehouseError) => e.status === 401 && /gatehouse kubeconfig/.test(e.message),
    ));
});
