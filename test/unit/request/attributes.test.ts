import assert from 'node:assert/strict';
import { exactNameFromFieldSelector, parseTarget } from '../../../src/request/attributes.js';
import { GatehouseError } from '../../../src/errors.js';

type Row = [
  method: string,
  url: string,
  expected: Partial<{
    verb: string;
    group: string;
    version: string;
    resource: string;
    subresource: string;
    namespace: string;
    name: string;
    trailingPath: string;
  }>,
];

// Each row is one rule of kube-apiserver's RequestInfoFactory.
const RESOURCE: Row[] = [
  ['GET', '/api/v1/namespaces', { verb: 'list', resource: 'namespaces', namespace: '', name: '' }],
  ['GET', '/api/v1/namespaces/dev', { verb: 'get', resource: 'namespaces', namespace: 'dev', name: 'dev' }],
  ['PUT', '/api/v1/namespaces/dev/status', { verb: 'update', resource: 'namespaces', name: 'dev', subresource: 'status', namespace: 'dev' }],
  ['PUT', '/api/v1/namespaces/dev/finalize', { verb: 'update', resource: 'namespaces', name: 'dev', subresource: 'finalize' }],
  ['GET', '/api/v1/pods', { verb: 'list', resource: 'pods', namespace: '' }],
  ['GET', '/api/v1/namespaces/dev/pods', { verb: 'list', resource: 'pods', namespace: 'dev' }],
  ['HEAD', '/api/v1/namespaces/dev/pods/web', { verb: 'get', name: 'web' }],
  ['GET', '/api/v1/namespaces/dev/pods?watch=1', { verb: 'watch', resource: 'pods' }],
  ['GET', '/api/v1/namespaces/dev/pods?watch=true', { verb: 'watch' }],
  ['GET', '/api/v1/namespaces/dev/pods?watch=', { verb: 'watch' }],
  ['GET', '/api/v1/namespaces/dev/pods?watch=false', { verb: 'list' }],
  ['GET', '/api/v1/namespaces/dev/pods?watch=FALSE', { verb: 'list' }],
  ['GET', '/api/v1/namespaces/dev/pods?watch=0', { verb: 'list' }],
  ['GET', '/api/v1/namespaces/dev/pods?watch=0&watch=1', { verb: 'list' }],
  ['GET', '/api/v1/namespaces/dev/secrets?fieldSelector=metadata.name%3Ddb', { verb: 'list', name: 'db' }],
  ['GET', '/api/v1/namespaces/dev/secrets?fieldSelector=metadata.name%3D%3Ddb&watch=1', { verb: 'watch', name: 'db' }],
  ['GET', '/api/v1/namespaces/dev/secrets?fieldSelector=type%3DOpaque,metadata.name%3Ddb', { verb: 'list', name: 'db' }],
  ['GET', '/api/v1/namespaces/dev/secrets?fieldSelector=metadata.name!%3Ddb', { verb: 'list', name: '' }],
  ['GET', '/api/v1/namespaces/dev/secrets?fieldSelector=metadata.name%3D..', { verb: 'list', name: '' }],
  ['POST', '/api/v1/namespaces/dev/configmaps', { verb: 'create', resource: 'configmaps', name: '' }],
  ['PUT', '/api/v1/namespaces/dev/configmaps/app', { verb: 'update', name: 'app' }],
  ['PATCH', '/api/v1/namespaces/dev/configmaps/app', { verb: 'patch', name: 'app' }],
  ['DELETE', '/api/v1/namespaces/dev/configmaps/app', { verb: 'delete', name: 'app' }],
  ['DELETE', '/api/v1/namespaces/dev/configmaps', { verb: 'deletecollection', name: '' }],
  [
    'GET',
    '/apis/apps/v1/namespaces/prod/deployments/web',
    { verb: 'get', group: 'apps', version: 'v1', resource: 'deployments', namespace: 'prod', name: 'web' },
  ],
  ['PUT', '/apis/apps/v1/namespaces/prod/deployments/web/scale', { verb: 'update', resource: 'deployments', subresource: 'scale' }],
  ['GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles', { verb: 'list', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' }],
  ['POST', '/api/v1/namespaces/dev/pods/web/exec?command=sh', { verb: 'create', resource: 'pods', name: 'web', subresource: 'exec' }],
  ['GET', '/api/v1/namespaces/dev/pods/web/exec?command=sh', { verb: 'get', subresource: 'exec' }],
  ['GET', '/api/v1/namespaces/dev/pods/web/log', { verb: 'get', subresource: 'log' }],
  ['POST', '/api/v1/namespaces/dev/serviceaccounts/default/token', { verb: 'create', resource: 'serviceaccounts', subresource: 'token' }],
  // Legacy path verbs.
  ['GET', '/api/v1/watch/namespaces/dev/pods', { verb: 'watch', resource: 'pods', namespace: 'dev' }],
  ['GET', '/api/v1/watch/namespaces/dev/pods/web', { verb: 'watch', name: 'web' }],
  ['GET', '/api/v1/watch/pods', { verb: 'watch', resource: 'pods', namespace: '' }],
  ['GET', '/api/v1/proxy/namespaces/dev/pods/web/a/b', { verb: 'proxy', resource: 'pods', name: 'web', subresource: '', trailingPath: '/a/b' }],
  ['GET', '/api/v1/proxy/nodes/n1/metrics', { verb: 'proxy', resource: 'nodes', name: 'n1', trailingPath: '/metrics' }],
  // Subresource proxies: everything after the subresource is passed, uninterpreted.
  ['GET', '/api/v1/nodes/n1/proxy/configz', { verb: 'get', resource: 'nodes', name: 'n1', subresource: 'proxy', trailingPath: '/configz' }],
  [
    'POST',
    '/api/v1/namespaces/dev/services/web:80/proxy/admin/reset',
    { verb: 'create', resource: 'services', name: 'web:80', subresource: 'proxy', trailingPath: '/admin/reset' },
  ],
  // Percent-decoded before parsing, as Go's server does.
  ['GET', '/api/v1/namespaces/dev/%73ecrets', { verb: 'list', resource: 'secrets', namespace: 'dev' }],
  ['GET', '/api/v1/namespaces/dev/secrets/', { verb: 'list', resource: 'secrets' }],
];

describe('request/attributes: RequestInfo rules', () => {
  for (const [method, url, expected] of RESOURCE) {
    it(`${method} ${url}`, () => {
      const [path, search = ''] = url.split('?') as [string, string?];
      const t = parseTarget(method, path, search ? '?' + search : '');
      assert.equal(t.kind, 'resource');
      const a = t.attributes as unknown as Record<string, string>;
      for (const [k, v] of Object.entries(expected)) assert.equal(a[k], v, `${k} of ${method} ${url}`);
    });
  }

  const NON_RESOURCE: [string, string, string][] = [
    ['GET', '/healthz', '/healthz'],
    ['GET', '/api', '/api'],
    ['GET', '/api/v1', '/api/v1'],
    ['GET', '/apis/apps', '/apis/apps'],
    ['GET', '/apis/apps/v1', '/apis/apps/v1'],
    ['GET', '/version', '/version'],
    ['GET', '/openapi/v3/apis/apps/v1', '/openapi/v3/apis/apps/v1'],
    ['POST', '/metrics', '/metrics'],
  ];
  for (const [method, path, expectedPath] of NON_RESOURCE) {
    it(`${method} ${path} is a non-resource request`, () => {
      const t = parseTarget(method, path, '');
      assert.deepEqual(t.kind === 'nonResource' && t.attributes, { verb: method.toLowerCase(), path: expectedPath });
    });
  }

  it('the path the policy sees is the path forwarded', () => {
    const t = parseTarget('GET', '/api/v1/namespaces/dev/%73ecrets/db', '?fieldSelector=a%3Db&x=1+2');
    assert.equal(t.path, '/api/v1/namespaces/dev/secrets/db');
    assert.equal(t.search, '?fieldSelector=a%3Db&x=1+2');
    assert.deepEqual({ ...t.query }, { fieldSelector: ['a=b'], x: ['1 2'] });
  });

  it('legacy watch without a kind is refused like kube-apiserver does', () => {
    assert.throws(
      () => parseTarget('GET', '/api/v1/watch', ''),
      (e: GatehouseError) => e.code === 'GATEHOUSE_BAD_REQUEST',
    );
  });
});

describe('request/attributes: ambiguous requests are rejected', () => {
  const REJECT: [string, string, string, RegExp][] = [
    ['GET', '/api/v1/namespaces/dev/secrets%2Fdb', '', /encoded slash/],
    ['GET', '/api/v1/namespaces/dev/secrets%2fdb', '', /encoded slash/],
    ['GET', '/api/v1/namespaces/dev%2F..%2Fprod/secrets', '', /encoded slash/],
    ['GET', '/api/v1//namespaces/dev/secrets', '', /empty segment/],
    ['GET', '/api/v1/namespaces/dev/./secrets', '', /dot segment/],
    ['GET', '/api/v1/namespaces/dev/../prod/secrets', '', /dot segment/],
    ['GET', '/api/v1/namespaces/dev/%2e%2e/prod', '', /dot segment/],
    ['GET', '/api/v1/namespaces/dev/secrets/%zz', '', /malformed percent-escape/],
    ['GET', '/api/v1/namespaces/dev/secrets/a%00b', '', /control character/],
    ['GET', '/api/v1/namespaces/dev/secrets', '?watch=1;watch=0', /";"/],
    ['GET', '/api/v1/namespaces/dev/secrets', '?a=%zz', /malformed percent-escape/],
    ['GET', 'api/v1/pods', '', /must start with/],
  ];
  for (const [method, path, search, message] of REJECT) {
    it(`${path}${search}`, () => {
      assert.throws(
        () => parseTarget(method, path, search),
        (e: GatehouseError) => e.code === 'GATEHOUSE_BAD_REQUEST' && e.status === 400 && message.test(e.message),
      );
    });
  }
  for (const method of ['OPTIONS', 'TRACE', 'CONNECT', 'PROPFIND']) {
    it(`method ${method}`, () => {
      assert.throws(
        () => parseTarget(method, '/api/v1/pods', ''),
        (e: GatehouseError) => e.code === 'GATEHOUSE_METHOD_NOT_ALLOWED' && e.status === 405,
      );
    });
  }
});

describe('request/attributes: field selectors', () => {
  const ROWS: [string, string | undefined][] = [
    ['metadata.name=a', 'a'],
    ['metadata.name==a', 'a'],
    ['metadata.name!=a', undefined],
    ['metadata.namespace=x,metadata.name=b', 'b'],
    ['metadata.name=a\\,b', 'a,b'],
    ['spec.nodeName=n', undefined],
    ['garbage', undefined],
  ];
  for (const [selector, name] of ROWS) it(selector, () => assert.equal(exactNameFromFieldSelector(selector), name));
});
