/**
 * `gatehouse approvals list | show ID | approve ID [--reason R] | deny ID [--reason R]`:
 * the approver's CLI. It talks to the gateway's approvals API with the
 * credentials of a kubeconfig (the same one the approver uses for kubectl,
 * exec credential plugins included), so an approval is given by a verified person.
 */
import { parseArgs } from 'node:util';
import { connect } from '../client.js';
import { forTerminal, table, visible } from '../terminal.js';
import { parseDuration } from '../cli-args.js';
import type { Approval, Grant } from './approval.js';
import { describe, describeGrant } from './approval.js';

const USAGE = `usage: gatehouse approvals <command> [--kubeconfig FILE] [--context NAME]

  list [--state pending|approved|used|denied|expired]   approvals you may see (requested by you, or yours to decide)
  show ID                                                 one approval, with the preview of what it would change
  approve ID [--reason TEXT] [--for 30m [--scope NAME,…]]
                                                          let the request through (once, unless the policy says otherwise);
                                                          --for: and grant the requester the same verb on the same kind in the
                                                          same namespace (--scope: only these objects) for that long, if the
                                                          policy allows a grant that long
  deny ID [--reason TEXT]                                 refuse it; a held request gets the reason
`;

function ago(ms: number): string {
  const s = Math.round((Date.now() - ms) / 1000);
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

/** The diff, indented; a line that shows a field the approval is about is marked `!` in the margin. */
function previewLines(diff: string, highlight: readonly number[]): string[] {
  const marked = new Set(highlight);
  return diff
    .replace(/\n$/, '')
    .split('\n')
    .map((l, i) => `${marked.has(i) ? '! ' : '  '}${visible(l)}`);
}

function show(a: Approval & { url?: string }): string {
  // Each field from the request, the token or the object is one visible line; the diff's own
  // newlines are its structure, so each of its lines is made visible on its own.
  const lines = [
    `ID:         ${visible(a.id)}`,
    `State:      ${a.state}${'decidedBy' in a ? ` by ${visible(a.decidedBy)}${a.reason ? ` (${visible(a.reason)})` : ''}` : ''}`,
    `Request:    ${visible(describe(a.subject))}`,
    `            ${visible(a.subject.method)} ${visible(a.subject.uri)}`,
    `Why:        ${visible(a.subject.reasons.join('; ')) || '-'}`,
    ...(a.subject.fields.length ? [`Fields:     ${visible(a.subject.fields.join(', '))}   (marked ! in the preview)`] : []),
    `Approvers:  ${visible(a.approverGroups.join(', '))}`,
    `Asked:      ${new Date(a.createdAt).toISOString()}`,
    `${a.state === 'approved' ? 'Valid until' : 'Expires:   '} ${new Date(a.expiresAt).toISOString()}`,
    ...(a.url ? [`Web:        ${visible(a.url)}`] : []),
    '',
    'Preview:',
    ...(!a.preview
      ? ['  (being prepared)']
      : a.preview.status === 'ok'
        ? previewLines(a.preview.diff, a.preview.highlight ?? [])
        : [`  ${visible(a.preview.message)}`]),
  ];
  return lines.join('\n').replace(/\s*$/, '\n');
}

/** JSON.stringify escapes C0 controls but not DEL, C1 or bidi overrides: the last check is at the edge. */
function print(text: string): void {
  process.stdout.write(forTerminal(text));
}

export async function runApprovalsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      reason: { type: 'string', default: '' },
      for: { type: 'string' },
      scope: { type: 'string' },
      state: { type: 'string' },
      output: { type: 'string', short: 'o' },
    },
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
      const list = (await client.call('GET', `/gatehouse/v1/approvals${values.state ? `?state=${encodeURIComponent(values.state)}` : ''}`)) as {
        items: Approval[];
      };
      if (json) print(JSON.stringify(list, null, 2) + '\n');
      else if (list.items.length === 0) print('No approvals.\n');
      else
        print(
          table(
            [
              ['ID', 'STATE', 'AGE', 'APPROVERS', 'REQUEST'],
              ...list.items.map((a) => [a.id, a.state, ago(a.createdAt), a.approverGroups.join(','), describe(a.subject)]),
            ],
            3,
          ),
        );
      return 0;
    }
    case 'show': {
      const a = (await client.call('GET', `/gatehouse/v1/approvals/${encodeURIComponent(id!)}`)) as Approval;
      print(json ? JSON.stringify(a, null, 2) + '\n' : show(a));
      return 0;
    }
    case 'approve':
    case 'deny': {
      if ((values.for !== undefined || values.scope !== undefined) && verb !== 'approve') {
        process.stderr.write('gatehouse approvals: --for and --scope come with approve\n');
        return 2;
      }
      if (values.scope !== undefined && values.for === undefined) {
        process.stderr.write('gatehouse approvals: --scope narrows a grant: give its time with --for\n');
        return 2;
      }
      const grant =
        values.for === undefined
          ? undefined
          : { seconds: Math.round(parseDuration(values.for, '--for') / 1000), ...(values.scope ? { names: values.scope.split(',') } : {}) };
      const a = (await client.call('POST', `/gatehouse/v1/approvals/${encodeURIComponent(id!)}/${verb}`, {
        reason: values.reason,
        ...(grant ? { grant } : {}),
      })) as Approval & { grant?: Grant };
      print(
        json
          ? JSON.stringify(a, null, 2) + '\n'
          : `approval ${visible(a.id)} ${a.state === 'approved' ? `approved; valid until ${new Date(a.expiresAt).toISOString()}` : 'denied'}: ${visible(describe(a.subject))}\n` +
              (a.grant ? `grant ${visible(a.grant.id)} until ${new Date(a.grant.expiresAt).toISOString()}: ${visible(describeGrant(a.grant))}\n` : ''),
      );
      return 0;
    }
    default:
      process.stderr.write(`gatehouse approvals: unknown command '${verb}'\n${USAGE}`);
      return 2;
  }
}

const GRANTS_USAGE = `usage: gatehouse grants <command> [--kubeconfig FILE] [--context NAME]

  list          the grants you may see: yours, and those your groups may revoke
  revoke ID     end a grant now, on every replica
`;

/** `gatehouse grants list | revoke ID`. */
export async function runGrantsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { kubeconfig: { type: 'string' }, context: { type: 'string' }, output: { type: 'string', short: 'o' } },
  });
  const [verb, id] = positionals;
  if ((verb !== 'list' && verb !== 'revoke') || (verb === 'revoke' && !id)) {
    process.stderr.write(GRANTS_USAGE);
    return verb === 'help' ? 0 : 2;
  }
  const client = await connect(values.kubeconfig ?? process.env['KUBECONFIG']?.split(':')[0], values.context);
  const json = values.output === 'json';
  if (verb === 'revoke') {
    const g = (await client.call('POST', `/gatehouse/v1/grants/${encodeURIComponent(id!)}/revoke`)) as Grant;
    print(json ? JSON.stringify(g, null, 2) + '\n' : `grant ${visible(g.id)} revoked: ${visible(describeGrant(g))}\n`);
    return 0;
  }
  const list = (await client.call('GET', '/gatehouse/v1/grants')) as { items: Grant[] };
  if (json) print(JSON.stringify(list, null, 2) + '\n');
  else if (list.items.length === 0) print('No grants.\n');
  else {
    const state = (g: Grant) => (g.revokedAt !== null ? `revoked by ${g.revokedBy ?? '?'}` : g.expiresAt <= Date.now() ? 'expired' : 'active');
    print(
      table(
        [
          ['ID', 'STATE', 'UNTIL', 'GRANTED BY', 'APPROVAL', 'SCOPE'],
          ...list.items.map((g) => [g.id, state(g), new Date(g.expiresAt).toISOString(), g.grantedBy, g.approvalId, describeGrant(g)]),
        ],
        3,
      ),
    );
  }
  return 0;
}
