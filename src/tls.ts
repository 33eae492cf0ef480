/**
 * A development CA and a serving certificate signed by it, made with the
 * openssl CLI on first start and reused after. The CA certificate is written
 * out so kubeconfigs can trust it; its key never leaves the folder (0600).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';

export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** PEM of the CA clients should trust. */
  readonly caPem: string;
}

export function selfSignedTls(dir: string, hosts: readonly string[]): TlsMaterial {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const f = (n: string) => join(dir, n);
  const hostsFile = f('hosts');
  const wanted = [...hosts].sort().join(',');
  if (!existsSync(f('server.crt')) || !existsSync(hostsFile) || readFileSync(hostsFile, 'utf8') !== wanted) {
    const ssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    // A new P-256 key, unencrypted, written to `keyout`: the CA's and the server's alike.
    const newKey = (keyout: string) => ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyout];
    ssl([
      'req',
      '-x509',
      ...newKey(f('ca.key')),
      '-out',
      f('ca.crt'),
      '-days',
      '365',
      '-subj',
      '/CN=gatehouse-dev-ca',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    const san = hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
    ssl(['req', ...newKey(f('server.key')), '-out', f('server.csr'), '-subj', '/CN=gatehouse']);
    writeFileSync(f('server.ext'), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n`);
    ssl([
      'x509',
      '-req',
      '-in',
      f('server.csr'),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f('server.crt'),
      '-days',
      '90',
      '-extfile',
      f('server.ext'),
    ]);
    writeFileSync(hostsFile, wanted);
  }
  return { cert: readFileSync(f('server.crt')), key: readFileSync(f('server.key')), caPem: readFileSync(f('ca.crt'), 'utf8') };
}
