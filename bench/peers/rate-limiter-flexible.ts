/**
 * Child process for rate-limiter-flexible 11.4 as its docs recommend for a queue: a
 * RateLimiterRedis (`points` per `duration` seconds, ioredis with `enableOfflineQueue: false`)
 * behind a RateLimiterQueue, and `removeTokens(1)` before each request.
 *
 * Rate r with burst b: its limiter is a fixed window ("enhanced fixed window", counting from the
 * first consume) of `points` per `duration` whole seconds, so the closest setting is r points per
 * 1 s; the burst cannot be set (a window boundary allows up to 2 r within one second).
 * It has no priorities or weights: every class goes through the same FIFO queue of its process.
 */
import { Redis } from 'ioredis';
import { RateLimiterQueue, RateLimiterRedis } from 'rate-limiter-flexible';
import { runChild } from './child.js';

await runChild(async (spec) => {
  const client = new Redis(spec.redis, { enableOfflineQueue: false });
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
  });
  const limiter = new RateLimiterRedis({ storeClient: client, keyPrefix: spec.key, points: Math.round(spec.rate), duration: 1 });
  const queue = new RateLimiterQueue(limiter, { maxQueueSize: 100_000 });
  await limiter.get('warm-up'); // loads nothing, but proves the connection before the start
  return {
    acquire: async () => {
      await queue.removeTokens(1);
    },
    close: async () => {
      await client.quit();
    },
  };
});
