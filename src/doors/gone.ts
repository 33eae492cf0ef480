/**
 * The reason every request's work is stopped with when its client goes (the
 * upstream request, a wait for an approval). One for all: abort() without a
 * reason makes a DOMException, stack trace included, for every request as its
 * response closes — 3.6 % of the gateway's CPU under a GET load (bench/README.md,
 * eighth session). Nothing that receives it changes it: undici and node:stream
 * wrap or pass it on.
 */
export const CLIENT_GONE = new DOMException('the client went away', 'AbortError');
