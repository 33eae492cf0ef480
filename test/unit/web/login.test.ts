/** web/login: the parts that need no issuer — logging out, and the form check that guards it. */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import type { Identity } from '../../../src/identity/identity.js';
import { createLogin } from '../../../src/web/login.js';
import { seal, sealKey, unseal } from '../../../src/web/seal.js';

const CAROL: Identity = { username: 'carol@example.com', uid: '', groups: ['security'], extra: {}, claims: {}, agent: null };
const CLEARED = '__Host-gatehouse-session=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0';

/** A replica's login pages, its cookie key made from \`fill\`. */
const replica = (fill: number) =>
  createLogin({
    verify: async () => CAROL,
    options: {
      issuer: 'http://127.0.0.1:1/issuer',
      clientId: 'gatehouse',
      sessionMinutes: 5,
      publicUrl: 'https://gateway.example',
      cookieKey: sealKey(Buffer.alloc(32, fill)),
    },
    now: () => 0,
  });

describe('web/login', () => {
  const login = replica(1);
  const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

  it('clears the cookie even when the session is no longer known', () => {
    assert.equal(login.logout(req({}), undefined, new URLSearchParams()), CLEARED);
  });

  it('attack: a logout posted from another site, or without the session CSRF token, is refused', () => {
    const session = { identity: CAROL, csrf: 'token-1', expiresAt: 10 };
    assert.throws(() => login.logout(req({ origin: 'https://evil.example' }), session, new URLSearchParams({ csrf: 'token-1' })), /posted from another site/);
    assert.throws(() => login.logout(req({ origin: 'https://gateway.example' }), session, new URLSearchParams({ csrf: 'nope' })), /the form has expired/);
    assert.equal(login.logout(req({ origin: 'https://gateway.example' }), session, new URLSearchParams({ csrf: 'token-1' })), CLEARED);
  });

  it('a session sealed by one replica is read by another with the same key, and by no other', () => {
    const key = sealKey(Buffer.alloc(32, 1));
    const session = { identity: CAROL, csrf: 'c', expiresAt: 100 };
    const cookie = `__Host-gatehouse-session=${seal(key, 'session', session)}`;
    assert.deepEqual(login.sessionOf(req({ cookie })), session);
    assert.deepEqual(replica(1).sessionOf(req({ cookie })), session, 'another replica with the same key');
    assert.equal(replica(2).sessionOf(req({ cookie })), undefined);
  });

  it('attack: a changed, expired or login-purpose cookie is no session', () => {
    const key = sealKey(Buffer.alloc(32, 1));
    const value = { identity: CAROL, csrf: 'c', expiresAt: 100 };
    const sealed = seal(key, 'session', value);
    const flipped = Buffer.from(sealed, 'base64url');
    flipped[20] = flipped[20]! ^ 1;
    assert.equal(unseal(key, 'session', flipped.toString('base64url'), 0), undefined);
    assert.equal(unseal(key, 'session', sealed, 100), undefined, 'expired');
    assert.equal(unseal(key, 'login', sealed, 0), undefined, 'another purpose');
    const session = { identity: CAROL, csrf: 'c', expiresAt: 100 };
    assert.equal(login.sessionOf(req({ cookie: `__Host-gatehouse-session=${seal(key, 'login', session)}` })), undefined);
  });
});
