/**
 * Child process for the naive baseline: the simple token-bucket script of
 * naive-token-bucket.lua (ioredis defineCommand, so EVALSHA), and on a rejection the caller
 * sleeps the retry-after it was given plus jitter (uniform up to the same again) and retries.
 * Time comes from Redis TIME; variant 'client-clock' passes the caller's clock instead, as the
 * script was first published.
 */
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { now, runChild } from './child.js';

const lua = readFileSync(new URL('./naive-token-bucket.lua', import.meta.url), 'utf8');

type Bucket = Redis & { naiveBucket(tokens: string, ts: string, rate: number, capacity: number, requested: number, now: number | ''): Promise<[number, number]> };

await runChild(async (spec) => {
  const redis = new Redis(spec.redis) as Bucket;
  redis.defineCommand('naiveBucket', { numberOfKeys: 2, lua });
  await redis.ping();
  const clientClock = spec.variant === 'client-clock';
  const keys = [`${spec.key}:{b}:tokens`, `${spec.key}:{b}:ts`] as const;
  return {
    acquire: async () => {
      for (;;) {
        const [allowed, retryAfter] = await redis.naiveBucket(keys[0], keys[1], spec.rate, spec.burst, 1, clientClock ? now() : '');
        if (allowed === 1) return;
        await new Promise((r) => setTimeout(r, retryAfter + Math.random() * retryAfter));
      }
    },
    close: async () => {
      await redis.quit();
    },
  };
});
