/**
 * Attack: a credential sent in the URL (a query parameter, a JWT in a path or an
 * exec command) reaches the audit, where whoever reads the log can replay it.
 * Every way a record is built is checked: the URI, the stored policy input, the
 * approval subject, the serialized line.
 */
import assert from 'node:assert/strict';
import { storableInput } from '../../../src/audit/event.js';
import { CREDENTIAL_MARKER, credentialParamIn, scrubQuery, scrubText, scrubUri } from '../../../src/audit/scrub.js';
import { parseQuery } from '../../../src/request/attributes.js';
import { auditLine } from '../../../src/audit/writer.js';
import { subjectOf } from '../../../src/approval/approval.js';
import type { Identity } from '../../../src/identity/identity.js';
import { parseTarget } from '../../../src/request/attributes.js';

// A real-shaped RS256 JWT (header {"alg":"RS256","typ":"JWT"}); the signature is junk.
const JWT = 'eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZUBleGFtcGxlLmNvbSIsImV4cCI6MTc2NDAwMDAwMH0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU';
const ALICE: Identity = { username: 'alice@example.com', uid: '', groups: ['dev'], extra: {}, claims: {}, agent: null };

describe('audit/scrub: credentials in a URL never reach a record', () => {
  const uris: [string, string, string][] = [
    ['access_token (RFC 6750 §2.3)', `/api/v1/namespaces?access_token=${JWT}`, `/api/v1/namespaces?access_token=${CREDENTIAL_MARKER}`],
    ['an opaque token value', '/api/v1/namespaces?token=opaque-secret-123&limit=5', `/api/v1/namespaces?token=${CREDENTIAL_MARKER}&limit=5`],
    ['a name in another case', '/api?ID_TOKEN=abc', `/api?ID_TOKEN=${CREDENTIAL_MARKER}`],
    ['a percent-encoded name', '/api?access%5Ftoken=abc', `/api?access%5Ftoken=${CREDENTIAL_MARKER}`],
    [
      'client_secret and password',
      '/apis?client_secret=s3&password=p4&watch=1',
      `/apis?client_secret=${CREDENTIAL_MARKER}&password=${CREDENTIAL_MARKER}&watch=1`,
    ],
    [
      'a JWT in any other parameter',
      `/api/v1/namespaces/dev/pods/web-0/exec?command=curl&command=-H&command=Bearer%20${JWT}`,
      `/api/v1/namespaces/dev/pods/web-0/exec?command=curl&command=-H&command=Bearer%20${CREDENTIAL_MARKER}`,
    ],
    ['a JWT in the path', `/api/v1/namespaces/${JWT}`, `/api/v1/namespaces/${CREDENTIAL_MARKER}`],
    [
      'ordinary queries untouched',
      '/api/v1/pods?labelSelector=app%3Dweb&fieldSelector=metadata.name%3Dx&limit=500',
      '/api/v1/pods?labelSelector=app%3Dweb&fieldSelector=metadata.name%3Dx&limit=500',
    ],
    ['dotted names untouched', '/apis/apps/v1/namespaces/dev/deployments/eyes.on.the.road', '/apis/apps/v1/namespaces/dev/deployments/eyes.on.the.road'],
  ];
  for (const [what, uri, want] of uris) it(`scrubUri: ${what}`, () => assert.equal(scrubUri(uri), want));

  it('scrubQuery: credential parameters lose every value, JWTs elsewhere are replaced', () => {
    assert.deepEqual(scrubQuery({ access_token: [JWT, 'x'], command: ['sh', `-c`, `echo ${JWT}`], limit: ['5'] }), {
      access_token: [CREDENTIAL_MARKER, CREDENTIAL_MARKER],
      command: ['sh', '-c', `echo ${CREDENTIAL_MARKER}`],
      limit: ['5'],
    });
  });

  it('attack: a query parameter named __proto__ is written down like any other (it once vanished from the record)', () => {
    const { query } = parseQuery(`?__proto__=${JWT}&limit=5`);
    assert.equal(JSON.stringify(scrubQuery(query)), `{"__proto__":["${CREDENTIAL_MARKER}"],"limit":["5"]}`);
  });

  it('credentialParamIn names the first credential parameter, however it is spelt', () => {
    assert.equal(credentialParamIn('/api?limit=1&access_token=x'), 'access_token');
    assert.equal(credentialParamIn('/api?Access%5FToken=x'), 'Access_Token');
    assert.equal(credentialParamIn('/api?token'), 'token');
    assert.equal(credentialParamIn('/api?limit=1&labelSelector=token%3Dx'), undefined);
    assert.equal(credentialParamIn('/api/v1/namespaces'), undefined);
  });

  it('scrubText leaves text without a JWT as it is', () => assert.equal(scrubText('kubectl get pods -o json'), 'kubectl get pods -o json'));

  it('storableInput: the path, the query and an exec command are scrubbed; nothing else changes', () => {
    const input = {
      user: ALICE,
      request: {
        id: 'r',
        path: `/api/v1/namespaces/${JWT}`,
        query: { access_token: [JWT] },
        body: null,
        exec: { command: ['env', JWT], container: 'c', stdin: false, tty: false },
      },
    };
    const stored = storableInput(input, 'Metadata', 'pods/exec', undefined);
    assert.deepEqual(stored, {
      user: ALICE,
      request: {
        id: 'r',
        path: `/api/v1/namespaces/${CREDENTIAL_MARKER}`,
        query: { access_token: [CREDENTIAL_MARKER] },
        body: null,
        exec: { command: ['env', CREDENTIAL_MARKER], container: 'c', stdin: false, tty: false },
      },
    });
  });

  it('the approval subject (stored, shown, and in every ApprovalEvent) carries no credential', () => {
    const target = parseTarget('GET', '/api/v1/namespaces/dev/pods/web-0/exec', `?command=curl&command=${JWT}&access_token=abc`);
    const subject = subjectOf(ALICE, target, 'GET', { command: ['curl', JWT], container: '', stdin: false, tty: false }, [], undefined);
    assert.equal(subject.uri, `/api/v1/namespaces/dev/pods/web-0/exec?command=curl&command=${CREDENTIAL_MARKER}&access_token=${CREDENTIAL_MARKER}`);
    assert.deepEqual(subject.exec?.command, ['curl', CREDENTIAL_MARKER]);
  });

  it('auditLine: a JWT anywhere in any record kind is replaced before the line is written', () => {
    const line = auditLine({
      kind: 'SessionCommand',
      apiVersion: 'gatehouse.dev/v1',
      session: 's',
      auditID: 'a',
      timestamp: 't',
      user: { username: 'u', agent: null, onBehalfOf: null },
      namespace: 'dev',
      pod: 'p',
      container: 'c',
      line: `export TOKEN=${JWT}`,
    });
    assert.ok(!line.includes(JWT));
    assert.equal(JSON.parse(line).line, `export TOKEN=${CREDENTIAL_MARKER}`);
  });
});
