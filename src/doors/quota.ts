/**
 * Long-running requests (watches, follows, exec/attach/port-forward sessions) each user holds open
 * on this replica. Each holds a stream to the API server and the gateway's buffers for as long as it
 * lives; without a bound, one caller (an agent opening watches in a loop, a leaked informer) could
 * take the memory every other caller's requests need, and the gateway fails closed for everyone.
 */
import { GatehouseError } from '../errors.js';

export interface StreamQuota {
  /** A place for one more long-running request of this user, and how to give it back; a 429 when none is left. */
  take(username: string): (() => void) | GatehouseError;
}

export function createStreamQuota(maxPerUser: number): StreamQuota {
  const held = new Map<string, number>();
  return {
    take(username) {
      const n = held.get(username) ?? 0;
      if (n >= maxPerUser)
        return new GatehouseError(
          'GATEHOUSE_TOO_MANY_REQUESTS',
          `${username} already has ${maxPerUser} watches, follows and sessions open through this gateway (limits.maxLongRunningPerUser); close some and try again`,
          // client-go waits this long before it watches again.
          { details: { retryAfterSeconds: 1 } },
        );
      held.set(username, n + 1);
      let given = false;
      return () => {
        if (given) return;
        given = true;
        const left = held.get(username)! - 1;
        if (left === 0) held.delete(username);
        else held.set(username, left);
      };
    },
  };
}
