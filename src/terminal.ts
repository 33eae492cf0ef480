/**
 * Text that came from a request or a token (a command, a name, a path, a
 * reason, a user name) is shown to people who decide on it. Printed raw, its
 * control characters would let the requester rewrite the approver's screen:
 * `ESC [2J` clears it, `ESC ]0;…BEL` retitles the window, a CR or a newline
 * forges a line. Every C0 and C1 control and DEL is therefore printed as a
 * visible `\uXXXX` escape, the form JSON uses, so the JSON output stays valid.
 */

// C0 (U+0000–U+001F), DEL (U+007F), C1 (U+0080–U+009F). Bidi overrides and
// isolates (U+202A–U+202E, U+2066–U+2069) reorder what a line seems to say
// (CVE-2021-42574, "Trojan Source"), so they are made visible too.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
// The same set less the newline, for text whose lines are the gateway's own.
const CONTROL_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

const escape = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** One field of untrusted text, shown on one line: every control character visible, newlines included. */
export function visible(text: string): string {
  return text.replace(CONTROL, escape);
}

/**
 * What a command prints, as it reaches the terminal: the newlines the CLI put
 * between its own lines stay, every other control character is made visible.
 * Fields should already have passed through `visible`, so that a newline inside
 * a field cannot forge a line; this is the last check at the edge.
 */
export function forTerminal(text: string): string {
  return text.replace(CONTROL_BUT_NEWLINE, escape);
}

/**
 * Rows as aligned columns, `gap` spaces apart, for the terminal. Every cell may carry request-controlled
 * text: each is made visible before it is padded, so widths count what is shown.
 */
export function table(unsafe: readonly (readonly string[])[], gap: number): string {
  const rows = unsafe.map((r) => r.map(visible));
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + gap))).join('')).join('\n') + '\n';
}
