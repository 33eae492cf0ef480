import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultDir, down, status, up } from './controlplane.js';

/** `gatehouse testbed up|down|status [--dir DIR]`. */
export async function runTestbedCommand(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { dir: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const dir = resolve(values.dir ?? process.env['GATEHOUSE_TESTBED_DIR'] ?? defaultDir);
  const out = (line: string) => process.stdout.write(line + '\n');
  switch (positionals[0]) {
    case 'up': {
      const started = Date.now();
      const tb = await up({ dir, log: (l) => process.stderr.write(`testbed: ${l}\n`) });
      if (values.json) out(JSON.stringify(tb));
      else {
        out(`kube-apiserver ready at ${tb.server} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        out(`  admin:   kubectl --kubeconfig ${tb.kubeconfigs.admin} get ns`);
        out(`  gateway: ${tb.kubeconfigs.gateway} (may only impersonate)`);
        out(`stop it with: gatehouse testbed down${values.dir ? ` --dir ${dir}` : ''}`);
      }
      return 0;
    }
    case 'down':
      out((await down(dir)) ? `stopped the test bed in ${dir}` : `no test bed in ${dir}`);
      return 0;
    case 'status': {
      const s = await status(dir);
      if (values.json) out(JSON.stringify(s));
      else out(s.running ? `running at ${s.testbed.server} (${s.ready ? 'ready' : 'not ready'}), since ${s.testbed.startedAt}` : `not running (${dir})`);
      return s.running ? 0 : 3;
    }
    default:
      process.stderr.write('usage: gatehouse testbed up|down|status [--dir DIR] [--json]\n');
      return 2;
  }
}
