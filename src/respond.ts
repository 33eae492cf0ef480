/** JSON answers of the gateway's own APIs: a body, or the Kubernetes Status of an error. */
import type { ServerResponse } from 'node:http';
import { asGatehouseError, toStatus } from './errors.js';

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

export function sendStatus(res: ServerResponse, err: unknown): void {
  const e = asGatehouseError(err);
  sendJson(res, e.status, toStatus(e));
}
