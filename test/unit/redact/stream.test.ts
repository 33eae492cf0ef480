/**
 * The streaming redactor against the reference (parse + jsonpath-plus +
 * stringify) on random documents, random directive sets and random chunkings,
 * down to one byte at a time; plus the cases that must fail closed.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LAST_APPLIED, Program } from '../../../src/redact/program.js';
import { REDACTED, RedactError, StreamRedactor, redactBuffer } from '../../../src/redact/stream.js';
import { referenceHash, referenceRedact, type Action } from '../../support/redact-reference.js';

const hashKey = Buffer.from('test-hash-key');
const options = { hashKey, maxHoldBytes: 1 << 20 };

/** Feeds `input` in chunks of the given sizes (cycled). */
export function chunked(program: Program, input: Buffer, sizes: readonly number[], opts = options): Buffer {
  const r = new StreamRedactor(program, opts);
  const out: Buffer[] = [];
  let i = 0;
  let k = 0;
  while (i < input.length) {
    const n = Math.max(1, sizes[k++ % sizes.length]!);
    out.push(...r.write(input.subarray(i, i + n)));
    i += n;
  }
  out.push(...r.end());
  return Buffer.concat(out);
}

// Documents: no null (jsonpath-plus filters throw on it), objects always carry a string `name`,
// and `env`/`items` hold arrays of such objects, so every filter below is defined in both engines.
const NAMES = ['PASSWORD', 'token', 'u', 'ab', 'é€😀', 'q"\\uote'];
const leaf = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom(...NAMES), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean());
const { doc } = fc.letrec((tie) => ({
  doc: tie('obj'),
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('obj'), fc.array(tie('value'), { maxLength: 4 })),
  named: fc.record({ name: fc.constantFrom(...NAMES), value: tie('value'), a: tie('value') }, { requiredKeys: ['name'] }),
  obj: fc.record(
    {
      name: fc.constantFrom(...NAMES),
      a: tie('value'),
      b: tie('value'),
      data: fc.dictionary(fc.constantFrom('k1', 'k2', 'tls.crt', 'a'), fc.string({ maxLength: 20 }), { maxKeys: 3 }),
      env: fc.array(tie('named'), { maxLength: 4 }),
      items: fc.array(tie('named'), { maxLength: 4 }),
      spec: tie('obj'),
      value: leaf,
    },
    { requiredKeys: ['name'] },
  ),
}));

/** Path pieces as [ours, jsonpath-plus's]. */
const KEY = fc.constantFrom('a', 'b', 'data', 'env', 'items', 'spec', 'value', 'name', 'k1', 'tls.crt');
const segment: fc.Arbitrary<[string, string]> = fc.oneof(
  KEY.map((k): [string, string] => (k.includes('.') ? [`['${k}']`, `['${k}']`] : [`.${k}`, `.${k}`])),
  KEY.map((k): [string, string] => [`..${k === 'tls.crt' ? 'a' : k}`, `..${k === 'tls.crt' ? 'a' : k}`]),
  fc.constant<[string, string]>(['.*', '.*']),
  fc.constant<[string, string]>(['[*]', '[*]']),
  // jsonpath-plus writes a union of names unquoted.
  fc.constant<[string, string]>(["['a','b']", '[a,b]']),
  fc.constantFrom<[string, string]>(['[0]', '[0]'], ['[1]', '[1]'], ['[0,2]', '[0,2]'], ['[1:3]', '[1:3]'], ['[:2]', '[:2]'], ['[0::2]', '[0::2]']),
  fc.constantFrom<[string, string]>(
    ["[?(@.name == 'PASSWORD')]", "[?(@.name == 'PASSWORD')]"],
    ["[?(@.name != 'u' && !(@.name == 'ab'))]", "[?(@.name != 'u' && !(@.name == 'ab'))]"],
    ["[?(@.name == 'u' || @.name == 'token')]", "[?(@.name == 'u' || @.name == 'token')]"],
    ['.env[?(@.name =~ /PASS|tok/)]', '.env[?(@.name.match(/PASS|tok/))]'],
    ['..items[?(@.name.match(/^[a-z]+$/))]', '..items[?(@.name.match(/^[a-z]+$/))]'],
  ),
);
const directive = fc
  .record({ segments: fc.array(segment, { minLength: 1, maxLength: 4 }), action: fc.constantFrom<Action>('redact', 'hash', 'remove') })
  .map(({ segments, action }) => ({
    path: '$' + segments.map((s) => s[0]).join(''),
    refPath: '$' + segments.map((s) => s[1]).join(''),
    action,
  }));

describe('redact/stream: equals the reference for every chunking', function () {
  this.timeout(300_000);
  it('random documents × random directives × random chunk sizes (and one byte at a time)', () => {
    fc.assert(
      fc.property(
        doc,
        fc.array(directive, { minLength: 1, maxLength: 3 }),
        fc.array(fc.integer({ min: 1, max: 23 }), { minLength: 1, maxLength: 5 }),
        (d, dirs, sizes) => {
          const input = Buffer.from(JSON.stringify(d));
          const program = new Program(
            dirs.map(({ path, action }) => ({ path, action })),
            'object',
          );
          // The reference reads what was sent (JSON has no -0), not the generator's object.
          const expected = referenceRedact(JSON.parse(input.toString()), dirs, hashKey);
          for (const s of [sizes, [1]]) {
            const out = chunked(program, input, s).toString('utf8');
            assert.deepEqual(JSON.parse(out), expected, `sizes ${s.join(',')} ${dirs.map((x) => x.path).join(' ')}\n${out}`);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('pretty-printed input (whitespace everywhere) gives the same result', () => {
    fc.assert(
      fc.property(doc, fc.array(directive, { minLength: 1, maxLength: 2 }), (d, dirs) => {
        const program = new Program(dirs, 'object');
        const text = JSON.stringify(d, null, 2);
        const out = chunked(program, Buffer.from(text), [7]);
        assert.deepEqual(JSON.parse(out.toString()), referenceRedact(JSON.parse(text), dirs, hashKey));
      }),
      { numRuns: 150 },
    );
  });
});

/** `when` filters as [ours, jsonpath-plus's], over members the generated objects may or may not have. */
const WHEN = fc.constantFrom<[string, string]>(
  ["@.type != 'helm.sh/release.v1'", "@.type != 'helm.sh/release.v1'"],
  ["@.type == 'kubernetes.io/tls'", "@.type == 'kubernetes.io/tls'"],
  ['@.type =~ /^kubernetes\\.io\\//', '@.type && @.type.match(/^kubernetes\\.io\\//)'],
  ["@.name == 'u' || @.type == 'Opaque'", "@.name == 'u' || @.type == 'Opaque'"],
  ["!(@.type == 'Opaque') && @.name != 'ab'", "!(@.type == 'Opaque') && @.name != 'ab'"],
);
const TYPES = ['Opaque', 'helm.sh/release.v1', 'kubernetes.io/tls'] as const;
/** An object with or without a `type`, written before or after the rest (the API server writes a Secret's last). */
const typed = fc
  .tuple(doc, fc.option(fc.constantFrom(...TYPES), { nil: undefined }), fc.boolean())
  .map(([d, type, first]) => (type === undefined ? d : first ? { type, ...(d as object) } : { ...(d as object), type }));
const guarded = fc.tuple(directive, fc.option(WHEN, { nil: undefined })).map(([d, w]) => (w === undefined ? d : { ...d, when: w[0], refWhen: w[1] }));
const ours = (dirs: { path: string; action: Action; when?: string }[]) =>
  dirs.map(({ path, action, when }) => (when === undefined ? { path, action } : { path, action, when }));
const lines = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as unknown);

describe('redact/stream: conditional masking (when) equals the reference', function () {
  this.timeout(300_000);
  const chunks = fc.array(fc.integer({ min: 1, max: 23 }), { minLength: 1, maxLength: 5 });

  it('a get: the directive applies only where its filter holds on the object', () => {
    fc.assert(
      fc.property(typed, fc.array(guarded, { minLength: 1, maxLength: 3 }), chunks, (d, dirs, sizes) => {
        const input = Buffer.from(JSON.stringify(d));
        const expected = referenceRedact(JSON.parse(input.toString()), dirs, hashKey);
        for (const s of [sizes, [1]]) {
          const out = chunked(new Program(ours(dirs), 'object'), input, s).toString();
          assert.deepEqual(JSON.parse(out), expected, `sizes ${s.join(',')} ${JSON.stringify(ours(dirs))}\n${out}`);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('a list, a watch and a Table: each item, event object and row object decides for itself', () => {
    fc.assert(
      fc.property(fc.array(typed, { maxLength: 4 }), fc.array(guarded, { minLength: 1, maxLength: 3 }), chunks, (objs, dirs, sizes) => {
        const each = (o: unknown) => referenceRedact(JSON.parse(JSON.stringify(o)), dirs, hashKey);
        const list = { kind: 'List', metadata: { resourceVersion: '7', type: 'helm.sh/release.v1' }, items: objs };
        const l = chunked(new Program(ours(dirs), 'list'), Buffer.from(JSON.stringify(list)), sizes).toString();
        assert.deepEqual(JSON.parse(l), { ...list, items: objs.map(each) }, l);
        // A watch event's own `type` (ADDED…) is a sibling of the object, never what `when` reads.
        const events = objs.map((o, i) => ({ type: i % 2 ? 'MODIFIED' : 'helm.sh/release.v1', object: o }));
        const w = chunked(new Program(ours(dirs), 'watch'), Buffer.from(events.map((e) => JSON.stringify(e) + '\n').join('')), sizes).toString();
        assert.deepEqual(
          w.trim() ? lines(w) : [],
          events.map((e) => ({ ...e, object: each(e.object) })),
        );
        const table = { kind: 'Table', type: 'x', columnDefinitions: [], rows: objs.map((o) => ({ cells: ['Opaque'], object: o })) };
        // (In a get, directives apply to the Table itself too: see the Kubernetes shapes below.)
        const t = chunked(new Program(ours(dirs), 'list'), Buffer.from(JSON.stringify(table)), sizes).toString();
        assert.deepEqual(JSON.parse(t), { ...table, rows: objs.map((o) => ({ cells: ['Opaque'], object: each(o) })) }, t);
      }),
      { numRuns: 120 },
    );
  });
});

describe('redact/stream: conditional masking holds what it must, and no more', () => {
  const mask = [{ path: '$.data.*', action: 'redact' as const, when: "@.type != 'helm.sh/release.v1'" }];
  const small = { hashKey, maxHoldBytes: 1024 };
  const secret = (type: string, value: string, typeFirst: boolean) => {
    const body = { kind: 'Secret', metadata: { name: 's' }, data: { v: Buffer.from(value).toString('base64') } };
    return typeFirst ? { type, ...body } : { ...body, type };
  };

  it('a type written first decides at once: a large value streams out before the object ends', () => {
    const input = Buffer.from(JSON.stringify({ kind: 'SecretList', items: [secret('helm.sh/release.v1', 'x'.repeat(6000), true)] }));
    const r = new StreamRedactor(new Program(mask, 'list'), small);
    const first = Buffer.concat(r.write(input.subarray(0, 4000))).toString();
    assert.ok(first.length > 3900, 'the release is already flowing');
    const out = JSON.parse(Buffer.concat([Buffer.from(first), ...r.write(input.subarray(4000)), ...r.end()]).toString());
    assert.equal(Buffer.from(out.items[0].data.v, 'base64').toString(), 'x'.repeat(6000));
  });

  it('a type written last (as the API server does) holds the object up to the cap, then fails closed', () => {
    const fits = JSON.stringify({ items: [secret('Opaque', 'ab', false), secret('helm.sh/release.v1', 'cd', false)] });
    const out = JSON.parse(redactBuffer(new Program(mask, 'list'), small, Buffer.from(fits)).toString());
    assert.deepEqual(
      out.items.map((i: { data: { v: string } }) => i.data.v),
      [REDACTED, Buffer.from('cd').toString('base64')],
    );
    const big = Buffer.from(JSON.stringify({ items: [secret('Opaque', 'x'.repeat(6000), false)] }));
    const r = new StreamRedactor(new Program(mask, 'list'), small);
    const sent: Buffer[] = [];
    assert.throws(
      () => {
        for (let i = 0; i < big.length; i += 500) sent.push(...r.write(big.subarray(i, i + 500)));
      },
      (e: RedactError) => e.code === 'GATEHOUSE_REDACT_TOO_LARGE',
    );
    assert.doesNotMatch(Buffer.concat(sent).toString(), new RegExp(Buffer.from('xxxxxx').toString('base64')), 'no byte of the held value left');
  });

  it('a get: the root object is held the same way, and decided on its own type', () => {
    for (const [type, masked] of [
      ['Opaque', true],
      ['helm.sh/release.v1', false],
    ] as const) {
      for (const first of [true, false]) {
        const out = JSON.parse(chunked(new Program(mask, 'object'), Buffer.from(JSON.stringify(secret(type, 'pw', first))), [3]).toString());
        assert.equal(out.data.v === REDACTED, masked, `${type} first=${first}`);
      }
    }
  });

  it("attack: a watch event's own type or a Table row's cells never decide the object's when", () => {
    const opaque = secret('Opaque', 'pw', false);
    const event = JSON.stringify({ type: 'helm.sh/release.v1', object: opaque }) + '\n';
    assert.equal(JSON.parse(redactBuffer(new Program(mask, 'watch'), options, Buffer.from(event)).toString()).object.data.v, REDACTED);
    const table = { kind: 'Table', type: 'helm.sh/release.v1', rows: [{ type: 'helm.sh/release.v1', cells: ['helm.sh/release.v1'], object: opaque }] };
    for (const shape of ['object', 'list'] as const) {
      const out = JSON.parse(redactBuffer(new Program(mask, shape), options, Buffer.from(JSON.stringify(table))).toString());
      assert.equal(out.rows[0].object.data.v, REDACTED, shape);
    }
  });

  it('last-applied-configuration is decided on the type written in it', () => {
    const applied = secret('Opaque', 'pw', false);
    const release = { ...secret('helm.sh/release.v1', 'rel', false), metadata: { name: 's', annotations: { [LAST_APPLIED]: JSON.stringify(applied) } } };
    const out = JSON.parse(redactBuffer(new Program(mask, 'object'), options, Buffer.from(JSON.stringify(release))).toString());
    assert.equal(out.data.v, Buffer.from('rel').toString('base64'));
    assert.equal(JSON.parse(out.metadata.annotations[LAST_APPLIED]).data.v, REDACTED);
  });
});

describe('redact/stream: Kubernetes shapes', () => {
  const secret = (ns: string, v: string) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 's', namespace: ns },
    data: { password: Buffer.from(v).toString('base64') },
  });
  const mask = [{ path: '$.data.*', action: 'redact' as const }];

  it('a list: each item as if it were the object; list metadata passes', () => {
    const list = { kind: 'SecretList', apiVersion: 'v1', metadata: { resourceVersion: '5', continue: 'tok123' }, items: [secret('a', 'x'), secret('b', 'y')] };
    const out = JSON.parse(redactBuffer(new Program(mask, 'list'), options, Buffer.from(JSON.stringify(list))).toString());
    assert.deepEqual(out.metadata, { resourceVersion: '5', continue: 'tok123' });
    assert.deepEqual(
      out.items.map((i: { data: unknown }) => i.data),
      [{ password: REDACTED }, { password: REDACTED }],
    );
  });

  it('a watch stream: every event object masked, ERROR and BOOKMARK pass', () => {
    const events = [
      { type: 'ADDED', object: secret('a', 'x') },
      { type: 'BOOKMARK', object: { kind: 'Secret', apiVersion: 'v1', metadata: { resourceVersion: '9' } } },
      { type: 'ERROR', object: { kind: 'Status', code: 410, message: 'too old' } },
      { type: 'MODIFIED', object: secret('a', 'z') },
    ];
    const input = Buffer.from(events.map((e) => JSON.stringify(e) + '\n').join(''));
    const out = chunked(new Program(mask, 'watch'), input, [5, 1, 40]).toString();
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => l.type),
      ['ADDED', 'BOOKMARK', 'ERROR', 'MODIFIED'],
    );
    assert.equal(lines[0].object.data.password, REDACTED);
    assert.deepEqual(lines[1], events[1]);
    assert.deepEqual(lines[2], events[2]);
    assert.equal(lines[3].object.data.password, REDACTED);
  });

  it('a Table: rows[].object masked (includeObject=Object), in get, list and watch', () => {
    const table = {
      kind: 'Table',
      apiVersion: 'meta.k8s.io/v1',
      columnDefinitions: [{ name: 'Name', type: 'string' }],
      rows: [{ cells: ['s'], object: secret('a', 'x') }],
    };
    for (const shape of ['object', 'list'] as const) {
      const out = JSON.parse(redactBuffer(new Program(mask, shape), options, Buffer.from(JSON.stringify(table))).toString());
      assert.equal(out.rows[0].object.data.password, REDACTED, shape);
      assert.deepEqual(out.rows[0].cells, ['s']);
    }
    const w = redactBuffer(new Program(mask, 'watch'), options, Buffer.from(JSON.stringify({ type: 'ADDED', object: table }) + '\n')).toString();
    assert.equal(JSON.parse(w).object.rows[0].object.data.password, REDACTED);
  });

  it("Table cells of columns named in a directive's columns are redacted, also in later watch events", () => {
    const mask = [{ path: '$.spec.password', action: 'redact' as const, columns: ['Password'] }];
    const table = (defs: boolean, pw: string) => ({
      kind: 'Table',
      apiVersion: 'meta.k8s.io/v1',
      ...(defs ? { columnDefinitions: [{ name: 'Name' }, { name: 'Password' }, { name: 'Age' }] } : {}),
      rows: [{ cells: ['db', pw, '5m'], object: { metadata: { name: 'db' }, spec: { password: pw } } }],
    });
    const out = JSON.parse(redactBuffer(new Program(mask, 'list'), options, Buffer.from(JSON.stringify(table(true, 'hunter2')))).toString());
    assert.deepEqual(out.rows[0].cells, ['db', REDACTED, '5m']);
    assert.equal(out.rows[0].object.spec.password, REDACTED);
    const events = [table(true, 'a1'), table(false, 'b2')].map((t) => JSON.stringify({ type: 'MODIFIED', object: t }) + '\n').join('');
    const lines = chunked(new Program(mask, 'watch'), Buffer.from(events), [3])
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => l.object.rows[0].cells[1]),
      [REDACTED, REDACTED],
    );
    assert.doesNotMatch(JSON.stringify(lines), /a1|b2/);
  });

  it('last-applied-configuration is masked with the same directives', () => {
    const obj = secret('a', 'x');
    const withAnnotation = {
      ...obj,
      metadata: { ...obj.metadata, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify(obj) + '\n' } },
    };
    const out = JSON.parse(redactBuffer(new Program(mask, 'object'), options, Buffer.from(JSON.stringify(withAnnotation))).toString());
    const inner = JSON.parse(out.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']);
    assert.equal(inner.data.password, REDACTED);
    assert.equal(out.data.password, REDACTED);
  });

  it('last-applied-configuration that is not JSON is dropped for the marker', () => {
    const obj = { metadata: { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{not json' } }, data: { a: 'x' } };
    const out = JSON.parse(redactBuffer(new Program(mask, 'object'), options, Buffer.from(JSON.stringify(obj))).toString());
    assert.equal(out.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'], REDACTED);
  });

  it('a redacted Secret value stays valid base64, and hashes are keyed and comparable', () => {
    assert.match(REDACTED, /^[A-Za-z0-9+/]+$/);
    assert.equal(REDACTED.length % 4, 0);
    const program = new Program([{ path: '$.data.*', action: 'hash' }], 'object');
    const out = JSON.parse(redactBuffer(program, options, Buffer.from(JSON.stringify({ data: { a: 'c2VjcmV0', b: 'c2VjcmV0', c: 'b3RoZXI=' } }))).toString());
    assert.equal(out.data.a, out.data.b);
    assert.notEqual(out.data.a, out.data.c);
    assert.equal(out.data.a, referenceHash('c2VjcmV0', hashKey));
    assert.equal(Buffer.from(out.data.a, 'base64').toString('base64'), out.data.a, 'valid base64');
    const other = JSON.parse(redactBuffer(program, { ...options, hashKey: Buffer.from('other') }, Buffer.from('{"data":{"a":"c2VjcmV0"}}')).toString());
    assert.notEqual(other.data.a, out.data.a, 'another key, another hash');
  });

  it('TokenRequest status.token is redacted', () => {
    const tr = { kind: 'TokenRequest', apiVersion: 'authentication.k8s.io/v1', status: { token: 'eyJhbGciOi.secret', expirationTimestamp: 'x' } };
    const out = JSON.parse(
      redactBuffer(new Program([{ path: '$.status.token', action: 'redact' }], 'object'), options, Buffer.from(JSON.stringify(tr))).toString(),
    );
    assert.deepEqual(out.status, { token: REDACTED, expirationTimestamp: 'x' });
  });
});

describe('redact/stream: no masked value leaks, in any form', () => {
  const v = (tag: string) => `LEAK-${tag}-${'s3cr3t'.repeat(3)}é"\\`;
  const secret = (i: number) => ({
    kind: 'Secret',
    metadata: {
      name: `s${i}`,
      annotations: {
        'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({
          data: { p: Buffer.from(v(`la${i}`)).toString('base64') },
          stringData: { q: v(`sd${i}`) },
        }),
      },
    },
    data: { p: Buffer.from(v(`d${i}`)).toString('base64') },
    stringData: { q: v(`sd${i}`) },
  });
  const pod = (i: number) => ({
    kind: 'Pod',
    spec: {
      containers: [
        {
          env: [
            { name: 'DB_PASSWORD', value: v(`env${i}`) },
            { name: 'X', value: 'keep' },
          ],
        },
      ],
    },
  });
  const mask = [
    { path: '$.data.*', action: 'redact' as const },
    { path: '$.stringData.*', action: 'remove' as const },
    { path: '$..env[?(@.name =~ /PASSWORD/)].value', action: 'hash' as const },
  ];
  // [what, shape, input, values that must not appear in any form, what must pass exactly as it came]
  const FIXTURES: [string, 'object' | 'list' | 'watch', string, string[], string[]][] = [
    ['a Secret', 'object', JSON.stringify(secret(0)), [v('d0'), v('sd0'), v('la0')], ['"name":"s0"']],
    [
      'a SecretList',
      'list',
      JSON.stringify({ kind: 'SecretList', items: [secret(1), secret(2)] }),
      [v('d1'), v('d2'), v('sd1'), v('la2')],
      ['"name":"s1"', '"name":"s2"'],
    ],
    [
      'a watch',
      'watch',
      [secret(3), secret(4)].map((o) => JSON.stringify({ type: 'ADDED', object: o }) + '\n').join(''),
      [v('d3'), v('d4'), v('sd4'), v('la3')],
      ['{"type":"ADDED","object":{"kind":"Secret","metadata":{"name":"s3"', '{"type":"ADDED","object":{"kind":"Secret","metadata":{"name":"s4"'],
    ],
    [
      'a Table',
      'list',
      JSON.stringify({ kind: 'Table', rows: [{ cells: ['s5'], object: secret(5) }] }),
      [v('d5'), v('sd5'), v('la5')],
      ['"cells":["s5"]', '"name":"s5"'],
    ],
    ['a PodList', 'list', JSON.stringify({ kind: 'PodList', items: [pod(6), pod(7)] }), [v('env6'), v('env7')], ['{"name":"X","value":"keep"}']],
  ];
  const count = (text: string, part: string) => text.split(part).length - 1;
  for (const [what, shape, input, secrets, kept] of FIXTURES) {
    it(what, () => {
      for (const sizes of [[1], [7], [4096]]) {
        const out = chunked(new Program(mask, shape), Buffer.from(input), sizes).toString();
        for (const secretValue of secrets) {
          for (const form of [
            secretValue,
            Buffer.from(secretValue).toString('base64'),
            JSON.stringify(secretValue).slice(1, -1),
            JSON.stringify(JSON.stringify(secretValue)).slice(1, -1),
          ]) {
            assert.ok(!out.includes(form), `${what}: ${secretValue} leaked as ${form} (chunks of ${sizes[0]})`);
          }
        }
        for (const part of kept) assert.equal(count(out, part), count(input, part), `${what}: ${part} passes unmasked, as often as it came`);
      }
    });
  }
});

describe('redact/stream: chunk boundaries anywhere', () => {
  it('inside escapes, multi-byte UTF-8 and keys that need decoding', () => {
    const d = { 'd\\"at\u00e9': { '\u00e9\u20ac': 'x' }, data: { 'k\\"1': 'v\\"\u00e9\u20ac😀\\\\', k2: 'plain' }, tail: 'é€😀\\"' };
    const program = new Program(
      [
        { path: "$.data['k\\\\\"1']", action: 'redact' },
        { path: "$['d\\\\\"até']['é€']", action: 'hash' },
      ],
      'object',
    );
    const input = Buffer.from(JSON.stringify(d));
    const expected = JSON.parse(redactBuffer(program, options, input).toString());
    assert.equal(expected.data['k\\"1'], REDACTED);
    assert.equal(expected['d\\"até']['é€'], referenceHash('x', hashKey));
    for (let size = 1; size <= 9; size++) assert.deepEqual(JSON.parse(chunked(program, input, [size]).toString()), expected, `chunk size ${size}`);
  });
});

describe('redact/stream: a subtree searched for the names a `..` looks for', () => {
  const program = new Program([{ path: '$..env[0]', action: 'redact' }], 'list');
  const EVERY_SIZE = [1, 2, 3, 5, 8, 13, 64];

  it('attack: a member name written with escapes (\\u0065nv) is found all the same, in any chunking', () => {
    const input = Buffer.from('{"items":[{"spec":{"x":[{"\\u0065nv":["s1"]},{"e\\u006Ev" :["s2"]}],"env":["s3",4]}}]}');
    for (const size of EVERY_SIZE) {
      const out = JSON.parse(chunked(program, input, [size]).toString());
      assert.deepEqual(out, { items: [{ spec: { x: [{ env: [REDACTED] }, { env: [REDACTED] }], env: [REDACTED, 4] } }] }, `chunk size ${size}`);
    }
  });

  it('a value, a longer name or a name cut by chunks is not mistaken for the name', () => {
    const doc = { items: [{ a: 'env', envy: ['x'], ['e'.repeat(40)]: ['y'], b: [{ en: ['z'] }, 'env', ['env']] }] };
    const input = Buffer.from(JSON.stringify(doc));
    for (const size of EVERY_SIZE) assert.deepEqual(JSON.parse(chunked(program, input, [size]).toString()), doc, `chunk size ${size}`);
  });

  const MALFORMED: [string, string][] = [
    ['a missing colon', '{"items":[{"spec":{"a" 1,"env":["s"]}}]}'],
    ['a missing comma', '{"items":[{"spec":{"a":1 "env":["s"]}}]}'],
    ['a trailing comma', '{"items":[{"spec":{"a":[1,],"env":["s"]}}]}'],
    ['a member name that is not a string', '{"items":[{"spec":{a:1,"env":["s"]}}]}'],
    ['mismatched brackets', '{"items":[{"spec":{"a":[1}],"env":["s"]}}]}'],
    ['a bad escape in a name', '{"items":[{"spec":{"\\x":1,"env":["s"]}}]}'],
  ];
  for (const [what, text] of MALFORMED) {
    it(`${what}: an error, and the value under the name is never sent`, () => {
      for (const size of EVERY_SIZE) {
        const r = new StreamRedactor(program, options);
        const sent: Buffer[] = [];
        const input = Buffer.from(text);
        assert.throws(
          () => {
            for (let i = 0; i < input.length; i += size) sent.push(...r.write(input.subarray(i, i + size)));
            sent.push(...r.end());
          },
          (e: RedactError) => e.code === 'GATEHOUSE_REDACT_MALFORMED',
          `chunk size ${size}`,
        );
        assert.doesNotMatch(Buffer.concat(sent).toString(), /"s"/);
      }
    });
  }
});

describe('redact/stream: fails closed', () => {
  const program = new Program([{ path: '$.data.*', action: 'redact' }], 'object');
  const CASES: [string, string, string][] = [
    ['truncated', '{"data":{"a":"secr', 'GATEHOUSE_REDACT_TRUNCATED'],
    ['truncated after a value', '{"data":{"a":"x"}', 'GATEHOUSE_REDACT_TRUNCATED'],
    ['not JSON', 'hello', 'GATEHOUSE_REDACT_MALFORMED'],
    ['a missing colon', '{"data" {"a":"x"}}', 'GATEHOUSE_REDACT_MALFORMED'],
    ['mismatched brackets in a skipped subtree', '{"metadata":{"x":[1}],"data":{"a":"x"}}', 'GATEHOUSE_REDACT_MALFORMED'],
    ['mismatched brackets around a matched value', '{"data":{"a":"x"]]', 'GATEHOUSE_REDACT_MALFORMED'],
    ['garbage between members', '{"data":{"a":"x" "b":"y"}}', 'GATEHOUSE_REDACT_MALFORMED'],
  ];
  for (const [what, input, code] of CASES) {
    it(`${what}: an error, and no byte of the matched value before it`, () => {
      const r = new StreamRedactor(program, options);
      const sent: Buffer[] = [];
      assert.throws(
        () => {
          for (const b of Buffer.from(input)) sent.push(...r.write(Buffer.from([b])));
          sent.push(...r.end());
        },
        (e: RedactError) => e.code === code,
      );
      assert.doesNotMatch(Buffer.concat(sent).toString(), /"a":"x|secr/);
    });
  }

  it('a filter holds its element only until the members it reads have arrived', () => {
    // The API server writes `name` before `value`: the decision comes before the large value does.
    const p = new Program([{ path: "$.items[?(@.name == 'a')].value", action: 'redact' }], 'object');
    const doc = {
      items: [
        { name: 'a', value: 'x'.repeat(5000), tail: 1 },
        { name: 'b', value: 'y'.repeat(5000) },
      ],
    };
    const input = Buffer.from(JSON.stringify(doc));
    const small = { hashKey, maxHoldBytes: 1024 };
    const out = JSON.parse(chunked(p, input, [700], small).toString());
    assert.deepEqual(out, { items: [{ name: 'a', value: REDACTED, tail: 1 }, doc.items[1]] });
    // And the bytes of an element the filter let pass stream out before the element ends.
    const r = new StreamRedactor(p, small);
    const cut = input.indexOf('yyyy') + 2000;
    const first = Buffer.concat(r.write(input.subarray(0, cut))).toString();
    assert.ok(first.endsWith('y'.repeat(100)), 'the unmatched element is already flowing');
    assert.ok(!first.includes('xxxx'), 'the matched value was never sent');
  });

  it('attack: a member the filter reads written twice (a client keeps the last copy) is refused, not decided on the first, in any chunking', () => {
    const filter = new Program([{ path: '$.items[?(@.name =~ /PASSWORD/)].value', action: 'redact' }], 'object');
    const when = new Program([{ path: '$.data.*', action: 'redact', when: "@.type != 'helm.sh/release.v1'" }], 'list');
    const cases: [string, Program, string][] = [
      ['the second copy after the value', filter, '{"items":[{"name":"LOG_LEVEL","value":"czNjcmV0","name":"DB_PASSWORD"}]}'],
      ['the second copy before the value', filter, '{"items":[{"name":"LOG_LEVEL","name":"DB_PASSWORD","value":"czNjcmV0"}]}'],
      ['the second copy written with an escape', filter, '{"items":[{"name":"LOG_LEVEL","value":"czNjcmV0","n\\u0061me":"DB_PASSWORD"}]}'],
      ['the second copy after a large value', filter, `{"items":[{"name":"LOG_LEVEL","pad":"${'p'.repeat(3000)}","value":"czNjcmV0","name":"DB_PASSWORD"}]}`],
      ["a Secret's type written twice (when)", when, '{"items":[{"data":{"v":"czNjcmV0"},"type":"helm.sh/release.v1","type":"Opaque"}]}'],
    ];
    for (const [what, program, input] of cases) {
      for (const sizes of [[input.length], [1], [3], [7, 2], [13], [64], [500]]) {
        assert.throws(
          () => chunked(program, Buffer.from(input), sizes),
          (e: RedactError) => e.code === 'GATEHOUSE_REDACT_MALFORMED' && /written twice/.test(e.message),
          `${what}, chunks of ${sizes.join(',')}`,
        );
      }
      // Cut in two at every byte.
      for (let k = 1; k < input.length; k++) {
        assert.throws(() => chunked(program, Buffer.from(input), [k, input.length]), RedactError, `${what}, cut at ${k}`);
      }
      // Whole in one chunk (a small body is masked whole): nothing of it is sent.
      assert.throws(() => redactBuffer(program, options, Buffer.from(input)), RedactError, what);
    }
    // A member the filter does not read may repeat: every copy is masked as the element's own.
    const twice = JSON.parse(chunked(filter, Buffer.from('{"items":[{"name":"DB_PASSWORD","value":"a","value":"b"}]}'), [5]).toString());
    assert.deepEqual(twice, { items: [{ name: 'DB_PASSWORD', value: REDACTED }] });
  });

  it('a filter that reads the element whole (@) holds it whole, up to the cap', () => {
    const p = new Program([{ path: "$.items[?(@ == 'a')]", action: 'redact' }], 'object');
    assert.throws(
      () => redactBuffer(p, { hashKey, maxHoldBytes: 1024 }, Buffer.from(JSON.stringify({ items: [{ name: 'a', v: 'x'.repeat(5000) }] }))),
      (e: RedactError) => e.code === 'GATEHOUSE_REDACT_TOO_LARGE',
    );
  });

  it('a filter over a value larger than the cap', () => {
    // The member the filter reads comes last, so the whole element must be held.
    const p = new Program([{ path: "$.items[?(@.name == 'a')].value", action: 'redact' }], 'object');
    const big = JSON.stringify({ items: [{ value: 'x'.repeat(5000), name: 'a' }] });
    assert.throws(
      () => redactBuffer(p, { hashKey, maxHoldBytes: 1024 }, Buffer.from(big)),
      (e: RedactError) => e.code === 'GATEHOUSE_REDACT_TOO_LARGE',
    );
  });
});
