import assert from 'node:assert/strict';
import { checkMaskPath, compilePath, compileWhen, MaskPathError } from '../../../src/redact/path.js';

describe('redact/path: the supported subset compiles', () => {
  for (const path of [
    '$',
    '$.data',
    '$.data.*',
    "$['data']['tls.crt']",
    "$.data['a','b']",
    '$.items[0]',
    '$.items[0,2]',
    '$.items[*]',
    '$.items[1:3]',
    '$.items[:2]',
    '$.items[0::2]',
    '$..env',
    '$..*',
    '$..[0]',
    "$..env[?(@.name == 'PASSWORD')].value",
    '$..env[?(@.name =~ /PASSWORD|TOKEN/i)].value',
    '$..env[?(@.name.match(/PASSWORD/))].value',
    "$.items[?(@.kind == 'Secret' && !(@.metadata.name == 'public') || @.type != 'x')]",
    "$.items[?(@['metadata']['name'] === 'a')]",
    '$.items[?(@.replicas >= 2)]',
    '$.status.token',
  ]) {
    it(path, () => assert.doesNotThrow(() => compilePath(path)));
  }
  it('caches by text', () => assert.equal(compilePath('$.data.*'), compilePath('$.data.*')));
});

describe('redact/path: everything else is refused with the construct named', () => {
  const BAD: [string, RegExp][] = [
    ['data.*', /must start with "\$"/],
    ['$.items[-1]', /negative indices are not supported/],
    ['$.items[-2:]', /negative indices are not supported/],
    ['$.items[0::0]', /step of 0/],
    ['$.data^', /parent operator "\^"/],
    ['$.data.*~', /property-name operator "~"/],
    ['$.@root', /"@" names/],
    ['$.items[(@.length-1)]', /script expressions/],
    ['$.items[?(@root.x == 1)]', /"@root" is not supported/],
    ['$.items[?(@parent.x == 1)]', /"@parent" is not supported/],
    ['$.items[?($.kind == "x")]', /"\$" inside a filter/],
    ['$.items[?(@.name.toLowerCase() == "x")]', /function calls \(toLowerCase\(\)\)/],
    ['$.items[?(@.name =~ "x")]', /regular expression\/ is expected/],
    ['$.items[?(@.name =~ /(/)]', /invalid regular expression/],
    ['$.items[?(@.name == 1', /"\)" expected/],
    ['$.items[0', /"\]" expected/],
    ['$.length()', /function calls/],
  ];
  for (const [path, message] of BAD) {
    it(path, () => {
      assert.throws(
        () => compilePath(path),
        (e: MaskPathError) => e instanceof MaskPathError && message.test(e.message) && e.message.includes(JSON.stringify(path)),
      );
      assert.match(checkMaskPath(path)!, message);
    });
  }
});

describe("redact/path: a directive's when is one filter expression over the object", () => {
  it('compiles, reads the members it names, and tests the object itself', () => {
    const w = compileWhen("@.type != 'helm.sh/release.v1' && @.metadata.labels.tier == 'db'");
    assert.deepEqual([...w.reads!], ['type', 'metadata']);
    assert.equal(w.test({ type: 'Opaque', metadata: { labels: { tier: 'db' } } }), true);
    assert.equal(w.test({ type: 'helm.sh/release.v1', metadata: { labels: { tier: 'db' } } }), false);
    assert.equal(checkMaskPath('$.data.*', "@.type == 'x'"), undefined);
  });

  const BAD: [string, string, RegExp][] = [
    ['$', "@.type == 'x'", /must select inside the object/],
    ['$.data.*', "$.type == 'x'", /"\$" inside a filter/],
    ['$.data.*', '@.type =~ "x"', /regular expression\/ is expected/],
    ['$.data.*', '', /unsupported filter expression/],
    ['$.data[-1]', "@.type == 'x'", /negative indices/],
  ];
  it('attack: a when that closes its filter and appends path steps does not compile', () => {
    assert.match(checkMaskPath('$.data.*', "@.type == 'x')].b[?(@.c")!, /unexpected "\)"/);
  });

  for (const [path, when, message] of BAD) {
    it(`refused: ${path} when ${when}`, () => assert.match(checkMaskPath(path, when)!, message));
  }
});
