/**
 * The README's quick start, runnable: `REDIS_URL=redis://127.0.0.1:6379 npx tsx docs/examples/quickstart.ts`.
 * Twelve callers share an endpoint limited to 5/s with a burst of 2: high-priority callers get
 * three turns for every low-priority one while both wait.
 */
import { createThrottler, QueueFullError, ThrottleTimeoutError } from 'sluice';

export async function quickstart(redis = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', namespace = 'quickstart'): Promise<string[]> {
  const throttler = createThrottler({
    redis,
    namespace, // every key of this throttler shares the hash tag {quickstart}
    endpoints: {
      'tiktok.profile': { rate: '5/s', burst: 2 },
      'tiktok.search': { rate: '10/min', burst: 20 },
    },
    priorities: { high: 3, low: 1 },
    defaultPriority: 'low',
  });
  const order: string[] = [];
  try {
    await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const priority = i % 2 === 0 ? 'high' : 'low';
        try {
          const admission = await throttler.acquire('tiktok.profile', { priority, tenant: 'acme', maxWaitMs: 30_000 });
          order.push(`${priority} after ${Math.round(admission.waitedMs)} ms`);
          // ... send the request to TikTok here ...
        } catch (err) {
          if (err instanceof ThrottleTimeoutError || err instanceof QueueFullError) order.push(`${priority}: ${err.message}`);
          else throw err;
        }
      }),
    );
  } finally {
    await throttler.close();
  }
  return order;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const line of await quickstart()) console.log(line);
}
