/**
 * The CLI's way to the gateway's own API (/gatehouse/v1/...): the server, CA
 * and credentials of a kubeconfig — the same one the person uses for kubectl,
 * exec credential plugins included — so every call is made by a verified identity.
 */
import { request, type RequestOptions } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { describeKubeconfigError } from './upstream/kubeconfig-error.js';

export class CliError extends Error {
  readonly code = 'GATEHOUSE_CLI';
}

export interface Client {
  call(method: string, path: string, body?: unknown): Promise<unknown>;
  raw(path: string): Promise<string>;
}

export async function connect(kubeconfig: string | undefined, context: string | undefined): Promise<Client> {
  const kc = new KubeConfig();
  try {
    if (kubeconfig) kc.loadFromFile(kubeconfig);
    else kc.loadFromDefault();
    if (context) kc.setCurrentContext(context);
  } catch (err) {
    // Not the library's message: for a YAML error it quotes the file's lines, the token among them.
    throw new CliError(`cannot read the kubeconfig${kubeconfig ? ` ${kubeconfig}` : ''}: ${describeKubeconfigError(err)}`);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster)
    throw new CliError(
      'the kubeconfig has no current cluster: pass --kubeconfig with a Gatehouse kubeconfig (the demo writes .gatehouse/demo/security.kubeconfig)',
    );
  const server = new URL(cluster.server);
  return {
    /** The raw answer, for what is not JSON (a recording). */
    async raw(path) {
      const options: RequestOptions = { method: 'GET', headers: {} };
      await kc.applyToHTTPSOptions(options);
      return new Promise<string>((resolve, reject) => {
        const req = request(new URL(path, server), options, (res) => {
          let t = '';
          res.setEncoding('utf8').on('data', (d: string) => (t += d));
          res.on('end', () => {
            if ((res.statusCode ?? 0) >= 300) {
              let msg = t;
              try {
                const st = JSON.parse(t) as { reason?: string; message?: string };
                msg = `${st.reason ?? res.statusCode}: ${st.message ?? t}`;
              } catch {
                // Not a Status: show it as it came.
              }
              reject(new CliError(msg));
            } else resolve(t);
          });
          res.on('error', reject);
        });
        req.on('error', (err) => reject(new CliError(`cannot reach the gateway at ${server.origin}: ${err.message}`)));
        req.end();
      });
    },
    async call(method, path, body) {
      const options: RequestOptions = { method, headers: {} };
      // Adds the CA, client certificates and the bearer token (running an exec plugin if configured).
      await kc.applyToHTTPSOptions(options);
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const text = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = request(
          new URL(path, server),
          {
            ...options,
            headers: { ...(options.headers as Record<string, string>), accept: 'application/json', ...(payload ? { 'content-type': 'application/json' } : {}) },
          },
          (res) => {
            let t = '';
            res.setEncoding('utf8').on('data', (d: string) => (t += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text: t }));
            res.on('error', reject);
          },
        );
        req.on('error', (err) => reject(new CliError(`cannot reach the gateway at ${server.origin}: ${err.message}`)));
        req.end(payload);
      });
      let parsed: unknown;
      try {
        parsed = JSON.parse(text.text);
      } catch {
        throw new CliError(
          `the gateway answered ${text.status} with something that is not JSON; is ${server.origin} a Gatehouse gateway with approvals configured?`,
        );
      }
      if (text.status >= 300) {
        const st = parsed as { message?: string; reason?: string };
        throw new CliError(`${st.reason ?? text.status}: ${st.message ?? text.text}`);
      }
      return parsed;
    },
  };
}
