/**
 * Objects built from names a request chose (query parameters, body members). Assigning
 * `o['__proto__'] = v` sets o's prototype instead of a member, and JSON leaves a prototype
 * out: the member vanished from what the policy read and from the audit record.
 */

/** Sets `key` as an own, enumerable member, whatever its name. */
export function setMember(target: Record<string, unknown>, key: string, value: unknown): void {
  // Only this one name needs defineProperty: it for every member doubled the cost of every decision (bench/README.md, tenth session).
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}
