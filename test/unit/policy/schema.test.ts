/**
 * Attack (on ourselves): a typo in a policy fails open. `input.resourceAttribute.verb`
 * (a missing `s`) in a deny rule is undefined, so the rule never matches and
 * what it meant to deny is allowed. With the input's JSON schema, `opa check
 * --strict --schema` (run by the README's test command) makes it a compile error.
 * The schema must also accept every input the gateway really builds.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Identity } from '../../../src/identity/identity.js';
import { projectRoot, toolPath } from '../../../src/paths.js';
import { buildInput } from '../../../src/policy/input.js';
import { parseTarget } from '../../../src/request/attributes.js';

const SCHEMA = join(projectRoot, 'policies/schema/input.json');
const opa = (args: string[], input?: string) => spawnSync(toolPath('opa'), args, { encoding: 'utf8', ...(input ? { input } : {}) });

describe('policies/schema/input.json', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'gatehouse-schema-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('attack: a misspelt input field in a deny rule is a compile error, not a rule that never matches', () => {
    writeFileSync(join(dir, 'typo.rego'), 'package gatehouse.access\n\ndeny contains "no deletes" if {\n\tinput.resourceAttribute.verb == "delete"\n}\n');
    const without = opa(['check', '--strict', dir]);
    assert.equal(without.status, 0, 'without the schema, OPA accepts the typo: this is the hole');
    const checked = opa(['check', '--strict', '--schema', SCHEMA, dir]);
    assert.equal(checked.status, 1);
    assert.match(checked.stdout + checked.stderr, /rego_type_error: undefined ref: input\.resourceAttribute\.verb/);
  });

  it('the bundled policies and their tests check against it', () => {
    const r = opa(['check', '--strict', '--schema', SCHEMA, join(projectRoot, 'policies')]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it('accepts every input the gateway builds, and every sample the policy tests use', () => {
    const alice: Identity = {
      username: 'alice@example.com',
      uid: 'u-1',
      groups: ['dev', 'system:authenticated'],
      extra: { scopes: ['a'] },
      claims: { iss: 'https://issuer', email: 'alice@example.com' },
      agent: null,
    };
    const bot: Identity = { ...alice, username: 'agent:bot', agent: { name: 'bot', session: null, onBehalfOf: 'alice@example.com' } };
    const build = (identity: Identity, method: string, path: string, search = '', headers: Record<string, string> = {}, body: unknown = null) =>
      buildInput({
        identity,
        target: parseTarget(method, path, search),
        id: 'id',
        method,
        headers,
        sourceIP: '127.0.0.1',
        body: { body, bodyTooLarge: false },
        nowNs: 1764000000000000000,
        cluster: 'demo',
      });
    const built = [
      build(alice, 'GET', '/api/v1/namespaces/dev/secrets/db', '', { 'user-agent': 'kubectl/v1.32.4' }),
      build(bot, 'POST', '/apis/apps/v1/namespaces/prod/deployments', '?dryRun=All', { 'content-type': 'application/json' }, { kind: 'Deployment' }),
      build(alice, 'GET', '/api/v1/namespaces/dev/pods/web-0/exec', '?command=sh&container=web&stdin=true&tty=true'),
      build(alice, 'POST', '/api/v1/namespaces/dev/pods/web-0/portforward', '?ports=8080'),
      build(alice, 'GET', '/version'),
      build(alice, 'GET', '/api/v1/namespaces/dev/configmaps', '', { 'impersonate-user': 'bob', 'impersonate-extra-scopes': 'x' }),
    ];
    const samples = (JSON.parse(readFileSync(join(projectRoot, 'policies/fixtures/samples.json'), 'utf8')) as { samples: { name: string; input: unknown }[] })
      .samples;
    const docs = [...built.map((input, i) => ({ name: `built #${i}`, input })), ...samples];
    const r = opa(
      ['eval', '--format', 'json', '--stdin-input', '[d.name | some d in input.docs; not json.match_schema(d.input, input.schema)[0]]'],
      JSON.stringify({ docs, schema: JSON.parse(readFileSync(SCHEMA, 'utf8')) }),
    );
    assert.equal(r.status, 0, r.stderr);
    const failing = (JSON.parse(r.stdout) as { result: { expressions: { value: string[] }[] }[] }).result[0]!.expressions[0]!.value;
    assert.deepEqual(failing, [], 'inputs that do not match the schema');
  });
});
