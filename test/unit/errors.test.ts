/**
 * A refusal's headers: what kubectl needs to act on a Status. Both doors send the same ones, and a
 * 429's Retry-After is read from the Status it goes with, so the two cannot disagree.
 */
import assert from 'node:assert/strict';
import { GatehouseError, refusalHeaders, relayedStatusOf } from '../../src/errors.js';

describe('errors: the headers of a refusal', () => {
  it('a 401 names the scheme to renew', () => {
    assert.deepEqual(refusalHeaders(new GatehouseError('GATEHOUSE_UNAUTHENTICATED', 'no token')), {
      'www-authenticate': 'Bearer realm="gatehouse"',
    });
  });

  it("a 429 says when to try again, from the Status's retryAfterSeconds: the gateway's own limit, or the API server's relayed", () => {
    const own = new GatehouseError('GATEHOUSE_TOO_MANY_REQUESTS', 'limit', { details: { retryAfterSeconds: 1 } });
    assert.deepEqual(refusalHeaders(own), { 'retry-after': '1' });
    const body = Buffer.from(JSON.stringify({ kind: 'Status', code: 429, reason: 'TooManyRequests', message: 'throttled', details: { retryAfterSeconds: 7 } }));
    const relayed = new GatehouseError('GATEHOUSE_UPSTREAM_REFUSED', 'throttled', { relayed: relayedStatusOf(429, body)! });
    assert.deepEqual(refusalHeaders(relayed), { 'retry-after': '7' });
  });

  it('a 429 without a usable retryAfterSeconds waits one second', () => {
    for (const after of [undefined, 0, -3, 1.5, '5', 2 ** 60]) {
      const e = new GatehouseError('GATEHOUSE_TOO_MANY_REQUESTS', 'limit', after === undefined ? {} : { details: { retryAfterSeconds: after } });
      assert.deepEqual(refusalHeaders(e), { 'retry-after': '1' }, String(after));
    }
  });

  it('other refusals carry no extra header', () => {
    assert.deepEqual(refusalHeaders(new GatehouseError('GATEHOUSE_DENIED', 'no')), {});
  });
});
