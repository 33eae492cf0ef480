/** The TypeScript SDK's MCP client against a gateway whose CA Node does not trust by default (the demo's). */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { fetch as undiciFetch, type Agent } from 'undici';

/** Connected over Streamable HTTP with a bearer token; `dispatcher` trusts the gateway's CA. */
export async function connectMcp(endpoint: string, token: string, dispatcher: Agent, name = 'gatehouse-test'): Promise<Client> {
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(endpoint), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
      // undici's fetch with that agent, its answer handed over as a standard Response.
      fetch: async (url, init) => {
        const r = await undiciFetch(url, { ...(init as object), dispatcher });
        return new Response(r.body as ReadableStream | null, { status: r.status, headers: Object.fromEntries(r.headers) });
      },
    }),
  );
  return client;
}
