import assert from 'node:assert/strict';
import { checkMaskPath, compilePath, MaskPathError } from '../../../src/redact/path.js';

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
