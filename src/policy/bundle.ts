import { gunzipSync } from 'node:zlib';

/**
 * The files of an OPA bundle (.tar.gz). Bundles are small and read once at
 * start-up, so a minimal ustar reader is enough: regular files only.
 */
export function readBundle(tarGz: Buffer): Map<string, Buffer> {
  const tar = gunzipSync(tarGz);
  const files = new Map<string, Buffer>();
  let offset = 0;
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start: number, length: number) =>
      header
        .subarray(start, start + length)
        .toString('utf8')
        .replace(/\0.*$/s, '');
    const name = field(0, 100);
    const prefix = field(345, 155);
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = String.fromCharCode(header[156]!);
    const path = (prefix ? `${prefix}/${name}` : name).replace(/^\/+/, '');
    offset += 512;
    if (type === '0' || type === '\0') files.set(path, Buffer.from(tar.subarray(offset, offset + size)));
    offset += Math.ceil(size / 512) * 512;
  }
  return files;
}
