/** A policy that cannot be compiled, fetched, verified or loaded: at start-up it stops the gateway, on reload the old policy keeps serving. */
export class PolicyLoadError extends Error {
  readonly code = 'GATEHOUSE_POLICY_LOAD';
}
