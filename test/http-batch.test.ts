import { afterEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import type { HttpLimiter, LimitRequest } from '../src/http/index.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../workers/embedded/redis-server.js';
import { newRedis } from './support/helpers.js';
import { closeAll, fastifyServer, get, limiterFor } from './support/http.js';

/**
 * The limiter coalesces the checks of one event-loop turn into one call of lua/httpLimit-n.lua:
 * proven by counts (script calls in INFO commandstats, admissions), not by timings.
 */

let server: EmbeddedRedis | undefined;
afterEach(async () => {
  await closeAll();
  await server?.stop();
  server = undefined;
});

const request = (ip: string): LimitRequest => ({ method: 'GET', route: '/x', ip, header: () => undefined, raw: null });

/** EVAL and EVALSHA calls the server has run so far. */
async function scriptCalls(redis: Redis): Promise<number> {
  let n = 0;
  for (const m of (await redis.info('commandstats')).matchAll(/^cmdstat_(?:eval|evalsha):calls=(\d+)/gm)) n += Number(m[1]);
  return n;
}

/** `count` checks of one policy on one client address, all started in the same turn. */
function burst(limiter: HttpLimiter, policy: string, ip: string, count: number) {
  return Array.from({ length: count }, () => limiter.decide(request(ip), { policy }));
}

describe('checks of one event-loop turn share one script call', () => {
  it('mixed algorithms, quotas and blocks in one call: each key decided in order, exactly its limit admitted', async () => {
    const limiter = limiterFor({
      policies: {
        tb: { algorithm: 'token-bucket', rate: '5/min', burst: 5 },
        gcra: { algorithm: 'gcra', rate: '5/min', burst: 5 },
        sw: { algorithm: 'sliding-window', rate: '5/min' },
        fw: { algorithm: 'fixed-window', rate: '5/min' },
        quota: { rate: '100/min', quota: { day: 3 } },
        block: { rate: '1/min', block: { after: 2, within: '1 min', for: '1 hour' } },
      },
      policy: 'tb',
    });
    const redis = newRedis();
    try {
      // the first call on a connection loads the script (EVAL): out of the count
      expect((await limiter.decide(request('192.0.2.99'))).allowed).toBe(true);
      const before = await scriptCalls(redis);

      const turn = {
        tb: burst(limiter, 'tb', '192.0.2.1', 12),
        gcra: burst(limiter, 'gcra', '192.0.2.1', 12),
        sw: burst(limiter, 'sw', '192.0.2.1', 12),
        fw: burst(limiter, 'fw', '192.0.2.1', 12),
        quota: burst(limiter, 'quota', '192.0.2.1', 5),
        block: burst(limiter, 'block', '192.0.2.1', 6),
        // keys of their own: each the first request of its key
        spread: Array.from({ length: 20 }, (_, i) => limiter.decide(request(`198.51.100.${i}`), { policy: 'tb' })),
      };
      const requests = Object.values(turn).reduce((n, list) => n + list.length, 0);
      const verdicts = Object.fromEntries(await Promise.all(Object.entries(turn).map(async ([name, list]) => [name, (await Promise.all(list)).map((d) => d.reply?.verdict)] as const)));

      for (const name of ['tb', 'gcra', 'sw', 'fw']) {
        // in the order the requests came: the first five admitted, the rest refused by the rate
        expect(verdicts[name], name).toEqual([...Array<string>(5).fill('admitted'), ...Array<string>(7).fill('limited')]);
      }
      expect(verdicts.quota).toEqual(['admitted', 'admitted', 'admitted', 'quota-day', 'quota-day']);
      // one admitted, two refusals block the key: the second refusal starts the block
      expect(verdicts.block).toEqual(['admitted', 'limited', 'blocked', 'blocked', 'blocked', 'blocked']);
      expect(verdicts.spread).toEqual(Array<string>(20).fill('admitted'));

      // 79 checks, one script call (the batch limit is 100)
      const calls = (await scriptCalls(redis)) - before;
      expect(requests).toBe(79);
      expect(calls).toBe(1);
    } finally {
      await redis.quit();
    }
  });

  it('one hot key over HTTP: N concurrent requests admit exactly L, at most one script call each', async () => {
    const limiter = limiterFor({ policies: { api: { algorithm: 'gcra', rate: '10/hour', burst: 10 } } });
    const { url } = await fastifyServer(limiter);
    const redis = newRedis();
    try {
      expect((await get(`${url}/api/items`)).status).toBe(200);
      const before = await scriptCalls(redis);
      const answers = await Promise.all(Array.from({ length: 60 }, () => get(`${url}/api/items`)));
      const calls = (await scriptCalls(redis)) - before;
      expect(answers.filter((a) => a.status === 200)).toHaveLength(9);
      expect(answers.filter((a) => a.status === 429)).toHaveLength(51);
      // each request at most one call; how many share one depends on how the sockets' reads fall
      // into turns (a client in the same process sends them about one per turn)
      expect(calls).toBeLessThanOrEqual(60);
      expect(calls).toBeGreaterThanOrEqual(1);
    } finally {
      await redis.quit();
    }
  });

  it('checks gathered before close() are still decided: close sends them before the connection goes', async () => {
    const limiter = limiterFor({ policies: { api: { rate: '5/min' } } });
    const pending = [limiter.decide(request('192.0.2.1')), limiter.decide(request('192.0.2.1'))];
    const closing = limiter.close();
    const decided = await Promise.all(pending);
    await closing;
    expect(decided.map((d) => d.reply?.verdict)).toEqual(['admitted', 'admitted']);
  });

  it('a key that cannot be decided fails alone; the other checks of its call are decided', async () => {
    const limiter = limiterFor({ policies: { api: { rate: '5/min', failure: 'closed' } } });
    const redis = newRedis();
    try {
      // a string where the limiter keeps a hash: HMGET answers WRONGTYPE for that key only
      await redis.set(limiter.keys.state('api', 'ip:192.0.2.66'), 'not a hash', 'EX', 60);
      const [bad, good] = await Promise.all([limiter.decide(request('192.0.2.66')), limiter.decide(request('192.0.2.67'))]);
      expect(bad.status).toBe(503);
      expect(bad.refusal?.code).toBe('REDIS_UNAVAILABLE');
      expect(good.allowed).toBe(true);
      expect(good.reply?.verdict).toBe('admitted');
    } finally {
      await redis.quit();
    }
  });

  it('a call that fails gives each of its checks the failure policy of its own route', async () => {
    server = await startEmbeddedRedis();
    const limiter = limiterFor({
      redis: server.url,
      timeoutMs: 300,
      breakerMs: 500,
      policies: { api: { rate: '100/min' }, public: { rate: '100/min', failure: 'open' } },
      policy: 'api',
    });
    expect((await limiter.decide(request('192.0.2.1'))).allowed).toBe(true);
    await server.stop();
    server = undefined;
    const [closed, open, closed2] = await Promise.all([
      limiter.decide(request('192.0.2.1'), { policy: 'api' }),
      limiter.decide(request('192.0.2.2'), { policy: 'public' }),
      limiter.decide(request('192.0.2.3'), { policy: 'api' }),
    ]);
    expect([closed.status, open.status, closed2.status]).toEqual([503, 200, 503]);
    expect(open.allowed).toBe(true);
    expect(open.reply).toBeUndefined();
  });
});
