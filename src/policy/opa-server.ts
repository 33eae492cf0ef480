/**
 * Decisions from an OPA server (`opa run --server`) over HTTP instead of the
 * embedded WASM: what many deployments run today, kept as a configuration
 * choice and as the comparison in bench/. Same contract, same validation:
 * anything but a well-formed decision, or an unreachable server, is a deny.
 */
import { Agent, request } from 'undici';
import { toDecision, type Decision, type MaskPathCheck } from './decision.js';
import { ENTRYPOINT } from './load.js';

export interface AsyncPolicyEngine {
  readonly revision: string;
  evaluate(input: unknown): Promise<Decision>;
  close(): Promise<void>;
}

export function createOpaServerEngine(url: string, maskPathCheck?: MaskPathCheck, timeoutMs = 2000): AsyncPolicyEngine {
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 64 });
  const endpoint = `${url.replace(/\/$/, '')}/v1/data/${ENTRYPOINT}`;
  return {
    revision: `opa-server:${url}`,
    async evaluate(input) {
      try {
        const res = await request(endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ input }),
          dispatcher,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
        const body = (await res.body.json()) as { result?: unknown };
        if (res.statusCode !== 200) return toDecision([{ result: { effect: 'deny', reasons: [`policy error: the OPA server answered ${res.statusCode}`] } }]);
        return toDecision(body.result === undefined ? [] : [{ result: body.result }], maskPathCheck);
      } catch (err) {
        return toDecision([
          { result: { effect: 'deny', reasons: [`policy error: the OPA server is unreachable (${(err as { code?: string }).code ?? 'error'})`] } },
        ]);
      }
    },
    close: () => dispatcher.close(),
  };
}
