/**
 * The connection Sluice opens checks, once ready, that Redis will not evict its keys: under an
 * evicting maxmemory-policy a bucket can vanish (and refill: a burst upstream) or a queue can be
 * dropped. Real redis-servers started with each policy; the verdict is read from the log.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startEmbeddedRedis, type EmbeddedRedis } from '../workers/embedded/redis-server.js';
import { cleanup, logSink, makeThrottler, until } from './support/helpers.js';

const servers: EmbeddedRedis[] = [];
afterEach(async () => {
  await cleanup();
  for (const s of servers.splice(0)) await s.stop();
});

async function throttlerOn(args: string[]) {
  const server = await startEmbeddedRedis({ args });
  servers.push(server);
  const { logger, lines } = logSink();
  makeThrottler({ redis: server.url, endpoints: { e: { rate: '1/s' } }, logger });
  const verdict = await until('the eviction check', async () => lines.find((l) => /maxmemory-policy/.test(String(l.msg))), 10_000);
  return { verdict, lines, server };
}

describe('maxmemory-policy at start-up', () => {
  for (const policy of ['allkeys-lru', 'allkeys-random', 'volatile-lru', 'volatile-ttl']) {
    it(`warns loudly under ${policy}`, async () => {
      const { verdict, server } = await throttlerOn(['--maxmemory-policy', policy]);
      expect(verdict.level).toBe(40);
      expect(verdict).toMatchObject({ maxmemoryPolicy: policy, server: `127.0.0.1:${server.port}`, component: 'throttler' });
      expect(String(verdict.msg)).toMatch(/EVICT.*noeviction/s);
    });
  }

  it('says nothing above debug under noeviction', async () => {
    const { verdict, lines } = await throttlerOn(['--maxmemory-policy', 'noeviction']);
    expect(verdict).toMatchObject({ level: 20, maxmemoryPolicy: 'noeviction' });
    expect(lines.filter((l) => (l.level as number) >= 40)).toEqual([]);
  });

  it('tolerates a server where CONFIG is disabled: a debug line says it could not check', async () => {
    const { verdict, lines } = await throttlerOn(['--rename-command', 'CONFIG', '']);
    expect(verdict.level).toBe(20);
    expect(String(verdict.msg)).toMatch(/could not read maxmemory-policy/);
    expect(lines.filter((l) => (l.level as number) >= 40)).toEqual([]);
  });
});
