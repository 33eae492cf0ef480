/**
 * Attack: request-controlled text (an exec command, a name, a reason) carries
 * terminal escape sequences and rewrites the approver's screen before they
 * approve. Every C0 and C1 control character is printed visibly.
 */
import assert from 'node:assert/strict';
import { forTerminal, visible } from '../../src/terminal.js';

const CONTROLS = [...Array.from({ length: 0x20 }, (_, i) => i), 0x7f, ...Array.from({ length: 0x20 }, (_, i) => 0x80 + i)].map((c) => String.fromCharCode(c));

describe('terminal: untrusted text is shown, never obeyed', () => {
  it('visible: every C0 and C1 control character and DEL becomes a \\uXXXX escape', () => {
    for (const c of CONTROLS) {
      const shown = visible(`a${c}b`);
      assert.equal(shown, `a\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}b`);
      assert.doesNotMatch(shown, /[\u0000-\u001f\u007f-\u009f]/);
    }
  });

  it('visible: a title rewrite and a screen clear are printed as text', () => {
    assert.equal(visible('sh -c \u001b]0;approved\u0007\u001b[2Jrm -rf /'), 'sh -c \\u001b]0;approved\\u0007\\u001b[2Jrm -rf /');
  });

  it('visible: bidi overrides (Trojan Source) are shown', () => assert.equal(visible('a\u202eb\u2066c'), 'a\\u202eb\\u2066c'));

  it('forTerminal keeps the newlines between lines, nothing else', () => {
    for (const c of CONTROLS.filter((c) => c !== '\n')) assert.doesNotMatch(forTerminal(`x${c}\ny`), /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    assert.equal(forTerminal('one\ntwo\n'), 'one\ntwo\n');
  });

  it('forTerminal keeps JSON valid', () => {
    const value = { command: CONTROLS.join('') };
    assert.deepEqual(JSON.parse(forTerminal(JSON.stringify(value))), value);
  });
});
