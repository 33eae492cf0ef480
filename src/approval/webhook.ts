/**
 * Tells people a request waits for them: a Slack-compatible incoming-webhook
 * POST (`text` plus one `section` block with a link) for each new pending
 * approval. Off the request path: a queue, a timeout per attempt, retries with
 * backoff, and a log line per failure naming only the receiver's host (a
 * webhook URL carries its own secret).
 */
import { request } from 'undici';
import { describe, type Approval } from './approval.js';

export interface WebhookOptions {
  readonly url: string;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly backoffMs: number;
  readonly log: (message: string) => void;
  /** How many notifications may wait; beyond it the oldest is dropped (and logged). */
  readonly maxQueue?: number;
}

export function slackMessage(a: Approval, link: string): Record<string, unknown> {
  const text = `Approval ${a.id} needed from ${a.approverGroups.join(' or ')}: ${describe(a.subject)}${a.subject.reasons.length ? ` — ${a.subject.reasons.join('; ')}` : ''}. Expires ${new Date(a.expiresAt).toISOString()}.`;
  return {
    text: `${text} ${link}`,
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: `${text}\n<${link}|Review approval ${a.id}>` } }],
  };
}

export function createWebhookNotifier(options: WebhookOptions) {
  const host = new URL(options.url).host;
  const queue: { body: string; id: string }[] = [];
  let running = false;
  let closed = false;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

  async function deliver(item: { body: string; id: string }): Promise<void> {
    for (let attempt = 0; attempt <= options.retries; attempt++) {
      try {
        const res = await request(options.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: item.body,
          headersTimeout: options.timeoutMs,
          bodyTimeout: options.timeoutMs,
          signal: AbortSignal.timeout(options.timeoutMs),
        });
        await res.body.dump();
        if (res.statusCode < 300) return;
        options.log(`webhook to ${host} for approval ${item.id}: HTTP ${res.statusCode} (attempt ${attempt + 1} of ${options.retries + 1})`);
      } catch (err) {
        options.log(`webhook to ${host} for approval ${item.id}: ${(err as Error).message} (attempt ${attempt + 1} of ${options.retries + 1})`);
      }
      if (closed) return;
      if (attempt < options.retries) await sleep(options.backoffMs * 2 ** attempt);
    }
    options.log(`webhook to ${host} for approval ${item.id}: gave up`);
  }

  async function drain(): Promise<void> {
    running = true;
    while (queue.length && !closed) await deliver(queue.shift()!);
    running = false;
  }

  return {
    notify(a: Approval, link: string): void {
      if (closed) return;
      if (queue.length >= (options.maxQueue ?? 1000)) options.log(`webhook queue full: dropped the notification for approval ${queue.shift()!.id}`);
      queue.push({ body: JSON.stringify(slackMessage(a, link)), id: a.id });
      if (!running) void drain();
    },
    close(): void {
      closed = true;
    },
  };
}
