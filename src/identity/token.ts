import type { IncomingHttpHeaders } from 'node:http';
import { GatehouseError } from '../errors.js';

/** kubectl and client-go put the bearer token here for WebSocket upgrades (browsers cannot set Authorization). */
export const WS_BEARER_PREFIX = 'base64url.bearer.authorization.k8s.io.';

function unauthenticated(message: string): GatehouseError {
  return new GatehouseError('GATEHOUSE_UNAUTHENTICATED', message);
}

/**
 * The caller's bearer token, from `Authorization: Bearer` or the WebSocket
 * bearer subprotocol. Two different tokens in one request are refused: which
 * one a downstream reads is exactly the kind of ambiguity smuggling needs.
 */
export function extractBearerToken(headers: IncomingHttpHeaders): string {
  const found = new Set<string>();
  const auth = headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer +([^\s]+) *$/i.exec(auth);
    if (!m) throw unauthenticated('the Authorization header must be "Bearer <OIDC token>"');
    found.add(m[1]!);
  }
  const protocols = headers['sec-websocket-protocol'];
  if (protocols !== undefined) {
    for (const p of protocols.split(',').map((s) => s.trim())) {
      if (!p.startsWith(WS_BEARER_PREFIX)) continue;
      const token = Buffer.from(p.slice(WS_BEARER_PREFIX.length), 'base64url').toString('utf8');
      if (token) found.add(token);
    }
  }
  if (found.size === 0) throw unauthenticated('a bearer token is required: configure kubectl with a Gatehouse kubeconfig (gatehouse kubeconfig)');
  if (found.size > 1) throw unauthenticated('the request carries more than one bearer token');
  return [...found][0]!;
}
