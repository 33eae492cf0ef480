/**
 * Attack: text from a request (an approval's command, a reason, a pod name, a
 * diff line) written into a page as markup. The template escapes every value
 * it is given unless the value is markup the template made itself.
 */
import assert from 'node:assert/strict';
import type { Approval } from '../../../src/approval/approval.js';
import type { Identity } from '../../../src/identity/identity.js';
import { detailPage, listPage } from '../../../src/web/approval-pages.js';
import { page } from '../../../src/web/html.js';
import { html, trusted } from '../../../src/web/template.js';

const EVIL = `<script>alert(1)</script>"'&`;
const ESCAPED = '&#60;script&#62;alert(1)&#60;/script&#62;&#34;&#39;&#38;';

describe('web/template: request text is text in every page', () => {
  it('escapes strings, keeps markup it made, joins lists, drops null/undefined/false', () => {
    assert.equal(html`<td>${EVIL}</td>`.text, `<td>${ESCAPED}</td>`);
    assert.equal(html`<ul>${['a', 'b'].map((x) => html`<li>${x}</li>`)}</ul>`.text, '<ul><li>a</li><li>b</li></ul>');
    assert.equal(html`${null}${undefined}${false}${0}`.text, '0');
    assert.equal(html`${trusted('<b>ours</b>')}`.text, '<b>ours</b>');
    assert.equal(html`<a title="${'" onmouseover="x'}"></a>`.text, '<a title="&#34; onmouseover=&#34;x"></a>');
  });

  it('attack: an approval whose every field is markup renders as text, in the list and in the detail page', () => {
    const who: Identity = { username: EVIL, uid: '', groups: [EVIL], extra: {}, claims: {}, agent: null };
    const a = {
      id: 'ap-abc',
      fingerprint: 'f',
      state: 'pending',
      subject: {
        requester: { username: EVIL, groups: [EVIL], agent: { name: EVIL, onBehalfOf: EVIL } },
        method: 'POST',
        verb: 'create',
        uri: `/api/v1/namespaces/${EVIL}`,
        group: '',
        resource: 'pods',
        subresource: 'exec',
        namespace: EVIL,
        name: EVIL,
        generateName: EVIL,
        exec: { command: ['sh', '-c', EVIL], container: EVIL, stdin: true, tty: true },
        reasons: [EVIL],
        fields: [`$.spec['${EVIL}']`],
        bodySha256: null,
        grant: { maxSeconds: 0, groups: [] },
      },
      approverGroups: [EVIL],
      singleUse: true,
      ttlSeconds: 60,
      createdAt: 0,
      expiresAt: 1,
      preview: { status: 'ok', diff: `--- a\n+++ b\n+${EVIL}\n-${EVIL}\n ${EVIL}\n`, dryRunCode: 200, highlight: [2] },
    } satisfies Approval;
    for (const out of [page('t', who, 'csrf', listPage([a])), page(EVIL, who, EVIL, detailPage(a, { ...who, username: 'carol' }, 'csrf'))]) {
      assert.doesNotMatch(out, /<script>/);
      assert.doesNotMatch(out, /"'&(?!#)/);
      assert.ok(out.includes(ESCAPED));
    }
    // The highlighted line (a field the approval is about) is marked, its text still escaped.
    const detail = detailPage(a, { ...who, username: 'carol' }, 'csrf').toString();
    assert.ok(detail.includes(`<mark class="risky add" title="a field this approval is about">+${ESCAPED}</mark>`), detail);
    assert.ok(detail.includes(`<span class="del">-${ESCAPED}</span>`));
  });
});
