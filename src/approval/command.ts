/**
 * `gatehouse approvals list | show ID | approve ID [--reason R] | deny ID [--reason R]`:
 * the approver's CLI. It talks to the gateway's approvals API with the
 * credentials of a kubeconfig (the same one the approver uses for kubectl,
 * exec credential plugins included), so an approval is given by a verified person.
 */
import { parseArgs } from 'node:util';
import { connect } from '../client.js';
import type { Approval } from './approval.js';
import { describe } from './approval.js';

const USAGE = `usage: gatehouse approvals <command> [--kubeconfig FILE] [--context NAME]

  list [--state pending|approved|used|denied|expired]   approvals you may see (requested by you, or yours to decide)
  show ID                                                 one approval, with the preview of what it would change
  approve ID [--reason TEXT]                              let the request through (once, unless the policy says otherwise)
  deny ID [--reason TEXT]                                 refuse it; a held request gets the reason
`;

function ago(ms: number): string {
  const s = Math.round((Date.now() - ms) / 1000);
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('')).join('\n') + '\n';
}

function show(a: Approval & { url?: string }): string {
  const lines = [
    `ID:         ${a.id}`,
    `State:      ${a.state}${'decidedBy' in a ? ` by ${a.decidedBy}${a.reason ? ` (${a.reason})` : ''}` : ''}`,
    `Request:    ${describe(a.subject)}`,
    `            ${a.subject.method} ${a.subject.uri}`,
    `Why:        ${a.subject.reasons.join('; ') || '-'}`,
    `Approvers:  ${a.approverGroups.join(', ')}`,
    `Asked:      ${new Date(a.createdAt).toISOString()}`,
    `${a.state === 'approved' ? 'Valid until' : 'Expires:   '} ${new Date(a.expiresAt).toISOString()}`,
    ...(a.url ? [`Web:        ${a.url}`] : []),
    '',
    'Preview:',
    !a.preview ? '  (being prepared)' : a.preview.status === 'ok' ? a.preview.diff.replace(/^/gm, '  ') : `  ${a.preview.message}`,
  ];
  return lines.join('\n').replace(/\s*$/, '\n');
}

export async function runApprovalsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { kubeconfig: { type: 'string' }, context: { type: 'string' }, reason: { type: 'string', default: '' }, state: { type: 'string' }, output: { type: 'string', short: 'o' } },
  });
  const [verb, id] = positionals;
  if (!verb || verb === 'help' || (verb !== 'list' && !id)) {
    process.stderr.write(USAGE);
    return verb === 'help' ? 0 : 2;
  }
  const client = await connect(values.kubeconfig ?? process.env['KUBECONFIG']?.split(':')[0], values.context);
  const json = values.output === 'json';
  switch (verb) {
    case 'list': {
      const list = (await client.call('GET', `/gatehouse/v1/approvals${values.state ? `?state=${encodeURIComponent(values.state)}` : ''}`)) as { items: Approval[] };
      if (json) process.stdout.write(JSON.stringify(list, null, 2) + '\n');
      else if (list.items.length === 0) process.stdout.write('No approvals.\n');
      else process.stdout.write(table([['ID', 'STATE', 'AGE', 'APPROVERS', 'REQUEST'], ...list.items.map((a) => [a.id, a.state, ago(a.createdAt), a.approverGroups.join(','), describe(a.subject)])]));
      return 0;
    }
    case 'show': {
      const a = (await client.call('GET', `/gatehouse/v1/approvals/${encodeURIComponent(id!)}`)) as Approval;
      process.stdout.write(json ? JSON.stringify(a, null, 2) + '\n' : show(a));
      return 0;
    }
    case 'approve':
    case 'deny': {
      const a = (await client.call('POST', `/gatehouse/v1/approvals/${encodeURIComponent(id!)}/${verb}`, { reason: values.reason })) as Approval;
      process.stdout.write(json ? JSON.stringify(a, null, 2) + '\n' : `approval ${a.id} ${a.state === 'approved' ? `approved; valid until ${new Date(a.expiresAt).toISOString()}` : 'denied'}: ${describe(a.subject)}\n`);
      return 0;
    }
    default:
      process.stderr.write(`gatehouse approvals: unknown command '${verb}'\n${USAGE}`);
      return 2;
  }
}
