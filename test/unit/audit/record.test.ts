/**
 * The audit Event as a pure function of what the stages found (src/audit/record.ts):
 * every stage and outcome written down exactly, nothing from the request stored raw.
 */
import assert from 'node:assert/strict';
import { requestEvent, type RequestFacts } from '../../../src/audit/record.js';

const BASE: RequestFacts = {
  auditId: 'a-1',
  received: new Date('2026-12-01T10:00:00.000Z'),
  at: new Date('2026-12-01T10:00:00.250Z'),
  stage: 'ResponseComplete',
  uri: '/api/v1/namespaces/dev/secrets/db',
  verb: 'get',
  sourceIP: '127.0.0.1',
  userAgent: 'kubectl/v1.32.4',
  user: { username: 'alice@example.com', groups: ['dev'] },
  impersonated: { username: 'alice@example.com', groups: ['dev'] },
  objectRef: { resource: 'secrets', apiVersion: 'v1', namespace: 'dev', name: 'db' },
  decision: { effect: 'allow', reasons: ['dev reads dev'], mask: ['redact $.data.*'], level: 'Metadata' },
  policyRevision: 'r1',
  approval: null,
  code: 200,
  error: null,
  input: { request: { path: '/api/v1/namespaces/dev/secrets/db' } },
  session: null,
  bytesOut: 120,
};

describe('audit/record: requestEvent', () => {
  it('an allowed, completed request', () => {
    assert.deepEqual(requestEvent(BASE), {
      kind: 'Event',
      apiVersion: 'audit.k8s.io/v1',
      level: 'Metadata',
      auditID: 'a-1',
      stage: 'ResponseComplete',
      requestURI: '/api/v1/namespaces/dev/secrets/db',
      verb: 'get',
      user: { username: 'alice@example.com', groups: ['dev'] },
      impersonatedUser: { username: 'alice@example.com', groups: ['dev'] },
      sourceIPs: ['127.0.0.1'],
      userAgent: 'kubectl/v1.32.4',
      objectRef: { resource: 'secrets', apiVersion: 'v1', namespace: 'dev', name: 'db' },
      responseStatus: { code: 200 },
      requestReceivedTimestamp: '2026-12-01T10:00:00.000Z',
      stageTimestamp: '2026-12-01T10:00:00.250Z',
      annotations: { 'gatehouse.dev/effect': 'allow', 'gatehouse.dev/policy-revision': 'r1' },
      gatehouse: {
        decision: { effect: 'allow', reasons: ['dev reads dev'], mask: ['redact $.data.*'] },
        policyRevision: 'r1',
        input: { request: { path: '/api/v1/namespaces/dev/secrets/db' } },
        durationMs: 250,
        bytesOut: 120,
      },
    });
  });

  it('RequestReceived (audit before action) carries the decision and no response status', () => {
    const e = requestEvent({ ...BASE, stage: 'RequestReceived', code: 0, bytesOut: null });
    assert.equal(e.stage, 'RequestReceived');
    assert.equal(e.responseStatus, undefined);
    assert.deepEqual(e.gatehouse.decision, { effect: 'allow', reasons: ['dev reads dev'], mask: ['redact $.data.*'] });
    assert.equal('bytesOut' in e.gatehouse, false);
  });

  it('a refusal before authentication: anonymous, no decision, the public message to the client and the internal one kept', () => {
    const e = requestEvent({
      ...BASE,
      user: null,
      impersonated: null,
      objectRef: null,
      decision: null,
      policyRevision: null,
      input: null,
      bytesOut: null,
      code: 401,
      error: { code: 'GATEHOUSE_UNAUTHENTICATED', reason: 'Unauthorized', publicMessage: 'the token has expired', message: 'the token has expired (exp 1)' },
    });
    assert.deepEqual(e.user, { username: 'system:anonymous', groups: ['system:unauthenticated'] });
    assert.equal(e.impersonatedUser, undefined);
    assert.deepEqual(e.responseStatus, { code: 401, status: 'Failure', reason: 'Unauthorized', message: 'the token has expired' });
    assert.deepEqual(e.annotations, { 'gatehouse.dev/effect': 'none' });
    assert.deepEqual(e.gatehouse, { error: { code: 'GATEHOUSE_UNAUTHENTICATED', message: 'the token has expired (exp 1)' }, durationMs: 250 });
  });

  it('a deny lists no mask; an approval is named in annotations and in gatehouse', () => {
    assert.deepEqual(requestEvent({ ...BASE, decision: { effect: 'deny', reasons: ['no'], mask: ['redact $.x'], level: 'Metadata' } }).gatehouse.decision, {
      effect: 'deny',
      reasons: ['no'],
      mask: [],
    });
    const e = requestEvent({ ...BASE, approval: { id: 'ap-1', approvedBy: 'carol@example.com' } });
    assert.equal(e.annotations['gatehouse.dev/approval'], 'ap-1');
    assert.equal(e.annotations['gatehouse.dev/approved-by'], 'carol@example.com');
    assert.equal(e.gatehouse.approvalId, 'ap-1');
  });

  it('attack: a credential in the request URI is never written; the URI is capped', () => {
    assert.equal(
      requestEvent({ ...BASE, uri: '/api/v1/namespaces?access_token=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl' }).requestURI,
      '/api/v1/namespaces?access_token=GATEHOUSE+CREDENTIAL+REMOVED',
    );
    assert.equal(requestEvent({ ...BASE, uri: '/' + 'x'.repeat(5000) }).requestURI.length, 2048);
  });
});
