/** A verified caller, as the policy sees it (DESIGN §2, input.user). */
export interface Agent {
  readonly name: string;
  readonly session: string | null;
  /** The person the agent acts for; the policy decides what an agent without one may do. */
  readonly onBehalfOf: string | null;
}

export interface Identity {
  readonly username: string;
  readonly uid: string;
  readonly groups: readonly string[];
  readonly extra: Readonly<Record<string, readonly string[]>>;
  /** The verified token's claims, for policies that need more than username and groups. */
  readonly claims: Readonly<Record<string, unknown>>;
  readonly agent: Agent | null;
}

/** User extras the gateway sends when impersonating; the gateway's RBAC must allow exactly these. */
export const EXTRA_AGENT = 'gatehouse.dev/agent';
export const EXTRA_ON_BEHALF_OF = 'gatehouse.dev/on-behalf-of';
export const EXTRA_SESSION = 'gatehouse.dev/session';
