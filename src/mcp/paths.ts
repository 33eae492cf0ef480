/** Where the MCP endpoint answers; server.ts routes here before loading the endpoint (and the SDK) on first use. */
export const MCP_PATH = '/gatehouse/mcp';
export const RESOURCE_METADATA_PATH = '/.well-known/oauth-protected-resource';
