/** The gateway's pages: one layout, one stylesheet, the content security policies. */
import type { Identity } from '../identity/identity.js';
import { html, type Html } from './template.js';

export const STYLE = `body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}
header{background:#1f3a5f;color:#fff;padding:.6rem 1.2rem;display:flex;justify-content:space-between;align-items:center}
header a{color:#fff}main{max-width:70rem;margin:1rem auto;padding:0 1rem}
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}
caption{text-align:left;font-weight:600;padding:.4rem 0}.state{font-weight:600}.pending{color:#8a5300}.approved,.used{color:#116b2e}.denied,.expired{color:#a11}
pre.diff{background:#fff;border:1px solid #ccc;padding:.6rem;overflow:auto}.add{color:#116b2e}.del{color:#a11}mark.risky{background:#ffe08a;font-weight:bold}
form.decide{display:flex;gap:.6rem;align-items:end;flex-wrap:wrap;margin:1rem 0}label{display:flex;flex-direction:column}
button{font:inherit;padding:.4rem 1rem;border-radius:4px;border:1px solid #555;cursor:pointer}button.approve{background:#116b2e;color:#fff}button.deny{background:#a11;color:#fff}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}`;

export function page(title: string, who: Identity | undefined, csrf: string | undefined, body: Html, head?: Html): string {
  const account =
    who &&
    html`<form method="post" action="/gatehouse/logout"><span>${who.username}</span> <input type="hidden" name="csrf" value="${csrf ?? ''}"><button type="submit">Log out</button></form>`;
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${title} · Gatehouse</title><link rel="stylesheet" href="/gatehouse/style.css">${head}</head>
<body><header><nav><a href="/gatehouse/approvals"><strong>Gatehouse</strong> approvals</a> · <a href="/gatehouse/sessions">sessions</a></nav>${account}</header><main>${body}</main></body></html>`
    .text;
}

export const CSP = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/** The replay page runs the player (our own origin only); it compiles its terminal emulator from WebAssembly and styles its elements. */
export const PLAYER_CSP =
  "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
