/**
 * Signed bundles, built by the real OPA CLI (`opa build -b -t wasm
 * --signing-key`) with real RSA and EC keys, then tampered with.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { readBundle } from '../../../src/policy/bundle.js';
import { fromBundle, PolicyLoadError } from '../../../src/policy/load.js';
import { canonicalJson, verificationKey } from '../../../src/policy/signature.js';
import { toolPath } from '../../../src/paths.js';

const POLICY = `package gatehouse\n\ndecision := {"effect": "allow", "reasons": [data.reason]}\n`;

/** A ustar archive of the given files, as opa writes them (the reader takes regular files only). */
function tarGz(files: ReadonlyMap<string, Buffer>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, content] of files) {
    const h = Buffer.alloc(512);
    h.write(`/${name}`, 0, 100);
    h.write('0000600\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(content.length.toString(8).padStart(11, '0') + '\0', 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(h, content, Buffer.alloc((512 - (content.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

describe('policy/signature: OPA bundle signatures', function () {
  this.timeout(60_000);
  let dir: string;
  const keys: Record<string, { priv: string; pub: string }> = {};
  const bundles: Record<string, Buffer> = {};

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-sig-'));
    const src = join(dir, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'policy.rego'), POLICY);
    // Whitespace and a number OPA keeps as written: the digest is over the canonical form.
    writeFileSync(join(src, 'data.json'), '{ "reason" : "signed",\n  "limits": {"b": 1.50, "a": [1e3, "\\u2028"]} }\n');
    for (const [name, args] of [
      ['rsa', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']],
      ['ec', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']],
      ['other', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']],
    ] as const) {
      const priv = join(dir, `${name}.pem`);
      const pub = join(dir, `${name}.pub.pem`);
      execFileSync('openssl', [...args, '-out', priv], { stdio: 'ignore' });
      execFileSync('openssl', ['pkey', '-in', priv, '-pubout', '-out', pub], { stdio: 'ignore' });
      keys[name] = { priv, pub };
    }
    const build = (name: string, extra: string[]) => {
      const out = join(dir, `${name}.tar.gz`);
      execFileSync(toolPath('opa'), ['build', '-b', '-t', 'wasm', '-e', 'gatehouse/decision', '-o', out, ...extra, 'src'], { stdio: 'pipe', cwd: dir });
      bundles[name] = readFileSync(out);
    };
    build('rsa', ['--signing-key', keys['rsa']!.priv, '--signing-alg', 'RS256']);
    build('ec', ['--signing-key', keys['ec']!.priv, '--signing-alg', 'ES256']);
    build('unsigned', []);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const verify = (bundle: Buffer, key: string) => fromBundle(bundle, 'policy.tar.gz', verificationKey(readFileSync(keys[key]!.pub), `${key}.pub.pem`));

  it('accepts bundles signed by opa build with RS256 and ES256', async () => {
    const rsa = await verify(bundles['rsa']!, 'rsa');
    assert.deepEqual(rsa.data, { reason: 'signed', limits: { b: 1.5, a: [1000, '\u2028'] } });
    assert.ok(rsa.wasm.length > 1000);
    await verify(bundles['ec']!, 'ec');
  });

  const refused = async (bundle: Buffer, key: string, why: RegExp) => {
    const err = await verify(bundle, key).then(
      () => assert.fail('accepted'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof PolicyLoadError, String(err));
    assert.match(err.message, /^the policy bundle policy\.tar\.gz is refused: /);
    assert.match(err.message, why);
  };

  it('attack: a bundle with one file changed after signing is refused, naming the file', async () => {
    for (const [file, change] of [
      ['data.json', (b: Buffer) => Buffer.from(b.toString().replace('signed', 'forged'))],
      ['policy.wasm', (b: Buffer) => Buffer.concat([b, Buffer.from([0])])],
      ['src/policy.rego', (b: Buffer) => Buffer.from(b.toString() + '\n# hi\n')],
    ] as const) {
      const files = new Map(readBundle(bundles['rsa']!));
      files.set(file, change(files.get(file)!));
      await refused(tarGz(files), 'rsa', new RegExp(`${file.replace('.', '\\.')} was changed after signing`));
    }
  });

  it('attack: an unsigned bundle, a file the signature does not name, a named file removed, another key', async () => {
    await refused(bundles['unsigned']!, 'rsa', /it is not signed/);
    const added = new Map(readBundle(bundles['rsa']!)).set('extra.rego', Buffer.from('package x\n'));
    await refused(tarGz(added), 'rsa', /extra\.rego is in the bundle but not in its signature/);
    const removed = new Map(readBundle(bundles['rsa']!));
    removed.delete('data.json');
    await refused(tarGz(removed), 'rsa', /names data\.json, which the bundle lacks/);
    await refused(bundles['rsa']!, 'other', /does not verify with other\.pub\.pem/);
    await refused(bundles['ec']!, 'rsa', /does not verify/);
  });

  it('hashes JSON as OPA does: keys sorted bytewise, numbers as written, Go string escapes', () => {
    const fail = (why: string): never => assert.fail(why);
    assert.equal(
      canonicalJson(Buffer.from(' {"b": [1.50, 2e3], "a": "x\u2028", "é": null, "z": {}} '), 'f', fail),
      '{"a":"x\\u2028","b":[1.50,2e3],"z":{},"é":null}',
    );
    assert.throws(() => canonicalJson(Buffer.from('{"a": 1,}'), 'data.json', (why) => assert.fail(why)), /data\.json is not valid JSON/);
  });
});
