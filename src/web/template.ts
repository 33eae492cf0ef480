/**
 * HTML built from a tagged template that escapes every interpolated value,
 * unless the value is itself markup made by this helper. Text from a request,
 * a token or an object (a name, a command, a reason, a diff line) can then
 * only ever land in a page as text: forgetting to escape is not possible.
 *
 *   html`<td>${approval.subject.name}</td>`           escaped
 *   html`<tbody>${rows.map((r) => html`<tr>…</tr>`)}</tbody>`   markup, joined
 */

/** Markup that is safe to put in a page as it is: only `html` and `trusted` make one. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

export type Interpolation = Html | string | number | null | undefined | false | readonly Interpolation[];

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function render(v: Interpolation): string {
  if (v instanceof Html) return v.text;
  if (v === null || v === undefined || v === false) return '';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return escapeHtml(v);
  return v.map(render).join('');
}

export function html(strings: TemplateStringsArray, ...values: Interpolation[]): Html {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return new Html(out);
}

/** The gateway's own constant markup (a <head> fragment it ships), never text from outside. */
export function trusted(markup: string): Html {
  return new Html(markup);
}
