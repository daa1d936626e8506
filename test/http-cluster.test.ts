import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createHttpLimiter, listBlocked, type LimitRequest } from '../src/http/index.js';
import { useLocalCluster } from './support/cluster.js';
import { testNamespace } from './support/helpers.js';

const local = useLocalCluster();

const request = (ip: string): LimitRequest => ({ method: 'GET', route: '/x', ip, header: () => undefined, raw: null });

describe('sluice/http on a local 3-master Redis Cluster', () => {
  it('each limited key in its own slot: keys spread over every master, limits exact, blocks listed', async () => {
    const namespace = testNamespace('http-cl');
    const limiter = createHttpLimiter({
      redis: { cluster: local.cluster.urls },
      namespace,
      logger: pino({ level: 'silent' }),
      timeoutMs: 10_000,
      policies: { api: { algorithm: 'sliding-window', rate: '5/hour', quota: { day: 100 }, block: { after: 3, within: '1 min', for: '1 min' } } },
    });
    try {
      for (let i = 0; i < 60; i++) expect((await limiter.decide(request(`198.51.100.${i}`))).allowed).toBe(true);
      const perNode = await Promise.all(local.direct.map(async (r) => (await r.scan('0', 'MATCH', `sluice:{${namespace}:h*`, 'COUNT', 10_000))[1].length));
      expect(perNode.reduce((a, b) => a + b, 0)).toBe(60);
      for (const n of perNode) expect(n).toBeGreaterThan(5);

      const hot = await Promise.all(Array.from({ length: 12 }, () => limiter.decide(request('203.0.113.1'))));
      expect(hot.filter((d) => d.allowed)).toHaveLength(5);
      // 7 refusals: the third blocked the key, and the block is listed in the index's own slot
      expect(hot.some((d) => d.refusal?.code === 'BLOCKED')).toBe(true);
      const listed = await (async () => {
        for (let i = 0; i < 50; i++) {
          const l = await listBlocked(limiter.redis, namespace);
          if (l.length) return l;
          await new Promise((r) => setTimeout(r, 20));
        }
        return [];
      })();
      expect(listed).toEqual([{ policy: 'api', key: 'ip:203.0.113.1', until: expect.any(Number) }]);
    } finally {
      await limiter.close();
    }
  });
});
