import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { boundedClasses, createMetrics, OTHER_TENANTS } from '../src/metrics/registry.js';
import { startWaitReporter } from '../src/metrics/reporter.js';
import { mergeWaits, readFleetWaits, staleWaitFields } from '../src/metrics/fleet-waits.js';
import { emptyHistogram, quantileMs, SlidingWaitWindow, waitedOf, WAIT_BUCKETS_MS } from '../src/metrics/wait-histogram.js';
import { createQueues, type SluiceQueues } from '../jobs/queues.js';
import { createThrottler } from '../src/index.js';
import { cleanup, makeThrottler, redisUrl, testNamespace } from './support/helpers.js';

/** The value of one series in exposition text, or undefined. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

describe('wait histograms', () => {
  it('interpolates quantiles inside buckets like histogram_quantile', () => {
    const h = emptyHistogram();
    expect(quantileMs(h, 0.5)).toBeNull();
    h.counts[0] = 50; // <= 5 ms
    h.counts[4] = 50; // 50..100 ms
    expect(quantileMs(h, 0.5)).toBe(5);
    expect(quantileMs(h, 0.75)).toBe(75);
    expect(quantileMs(h, 1)).toBe(100);
    const open = emptyHistogram();
    open.counts[WAIT_BUCKETS_MS.length] = 3;
    expect(quantileMs(open, 0.95)).toBe(WAIT_BUCKETS_MS[WAIT_BUCKETS_MS.length - 1]);
  });

  it('counts as waited only what took longer than 10 ms', () => {
    const w = new SlidingWaitWindow(1000, 3);
    for (const ms of [0, 4, 9, 10, 11, 250, 1e9]) w.record(ms, 10_000);
    expect(waitedOf(w.snapshot(10_000))).toBe(3);
  });

  it('slides: slots older than the window drop out', () => {
    const w = new SlidingWaitWindow(1000, 3);
    w.record(1, 10_000);
    w.record(1, 11_500);
    w.record(1, 12_999);
    expect(w.snapshot(12_999).counts[0]).toBe(3);
    expect(w.snapshot(13_000).counts[0]).toBe(2);
    expect(w.snapshot(15_000).counts[0]).toBe(0);
    w.record(1, 16_000); // reuses the slot of 10_000's
    expect(w.snapshot(16_000).counts[0]).toBe(1);
  });

  it('merges fresh process fields and ignores stale or foreign ones', () => {
    const one = (at: number, n: number) => JSON.stringify({ at, windowMs: 60_000, staleAfterMs: 15_000, counts: WAIT_BUCKETS_MS.map(() => 0).concat(0).map((_, i) => (i === 3 ? n : 0)), sumMs: 20 * n });
    const hash = { 'w|a': one(100_000, 2), 'w|b': one(99_000, 3), 'w|dead': one(50_000, 100), 'w|junk': '{', other: 'x' };
    const m = mergeWaits(hash, 100_500);
    expect(m).toMatchObject({ admitted: 5, waited: 5, processes: 2, windowMs: 60_000 });
    expect(staleWaitFields(hash, 100_500).sort()).toEqual(['w|dead', 'w|junk']);
  });
});

describe('wait reporter', () => {
  afterEach(cleanup);

  it('publishes each process\'s waits; readers merge them fleet-wide; stop() removes them', async () => {
    const namespace = testNamespace();
    const endpoints = { e: { rate: '50/s', burst: 1 } };
    const a = makeThrottler({ namespace, endpoints });
    const b = makeThrottler({ namespace, endpoints });
    const ra = startWaitReporter(a, { intervalMs: 60_000 });
    const rb = startWaitReporter(b, { intervalMs: 60_000 });
    await Promise.all([a.acquire('e'), a.acquire('e'), b.acquire('e'), b.acquire('e'), b.acquire('e')]);
    await ra.flush();
    await rb.flush();
    const hash = await a.redis.hgetall(a.keys.stats('e'));
    expect(Object.keys(hash).sort()).toEqual([`w|${a.owner}`, `w|${b.owner}`].sort());
    expect(await a.redis.pttl(a.keys.stats('e'))).toBeGreaterThan(0); // every key has a TTL
    const waits = (await readFleetWaits(a.redis, a.keys, ['e'])).get('e')!;
    expect(waits).toMatchObject({ admitted: 5, processes: 2 });
    // 50/s with burst 1: the fifth call waits about 80 ms whoever sent it
    expect(waits.p95Ms).toBeGreaterThan(25);
    await rb.stop();
    expect((await readFleetWaits(a.redis, a.keys, ['e'])).get('e')).toMatchObject({ processes: 1 });
    await ra.stop();
    expect(await a.redis.exists(a.keys.stats('e'))).toBe(0);
  });
});

describe('metrics registry', () => {
  let queues: SluiceQueues | undefined;
  const conns: Redis[] = [];
  afterEach(async () => {
    await queues?.close();
    queues = undefined;
    for (const c of conns.splice(0)) await c.quit();
    await cleanup();
  });

  it('exports admissions, waits, refusals, penalties and Redis calls from events, and the fleet from Redis', async () => {
    const throttler = makeThrottler({ endpoints: { 'ep.a': { rate: '1/s', burst: 3, maxQueue: 1 }, 'ep.b': { rate: '10/s' } } });
    const conn = new Redis(redisUrl(), { maxRetriesPerRequest: null });
    conns.push(conn);
    queues = createQueues({ connection: conn, namespace: throttler.keys.namespace });
    await queues.discovery.add('discovery', { kind: 'hashtag', hashtag: 'cats' } as never);
    await queues.harvesting.add('harvesting', { handle: 'x' } as never, { delay: 60_000 });
    const m = createMetrics({ throttler, queues });
    try {
      const before = await m.metrics();
      expect(sample(before, 'sluice_wait_seconds_count{endpoint="ep.a"}')).toBe(0);
      expect(sample(before, 'sluice_tokens{endpoint="ep.a"}')).toBe(3);

      for (let i = 0; i < 3; i++) await throttler.acquire('ep.a', { priority: 'high' });
      // bucket empty: a call that may not wait is refused (timeout)
      await expect(throttler.acquire('ep.a', { maxWaitMs: 0 })).rejects.toThrow(/expected wait/);
      // one queued ticket fills the queue (maxQueue 1); the next is refused queue-full
      const ac = new AbortController();
      const queued = throttler.acquire('ep.a', { tenant: 'acme', priority: 'low', signal: ac.signal }).catch((e: Error) => e);
      await expect.poll(async () => (await throttler.inspect('ep.a')).queued).toBe(1);
      await expect(throttler.acquire('ep.a', { tenant: 'acme' })).rejects.toThrow(/queue is full/);
      await throttler.penalize('ep.b', { retryAfterMs: 10_000 });
      await throttler.configure('ep.b', { rate: '20/s' });

      const text = await m.metrics();
      expect(m.contentType).toMatch(/text\/plain/);
      expect(sample(text, 'sluice_admissions_total{endpoint="ep.a",priority="high",queued="false"}')).toBe(3);
      expect(sample(text, 'sluice_wait_seconds_count{endpoint="ep.a"}')).toBe(3);
      expect(sample(text, 'sluice_wait_seconds_bucket{le="+Inf",endpoint="ep.a"}')).toBe(3);
      expect(sample(text, 'sluice_admission_late_seconds_count{endpoint="ep.a"}')).toBe(3);
      expect(sample(text, 'sluice_refusals_total{endpoint="ep.a",reason="timeout"}')).toBe(1);
      expect(sample(text, 'sluice_refusals_total{endpoint="ep.a",reason="queue-full"}')).toBe(1);
      expect(sample(text, 'sluice_penalties_total{endpoint="ep.b"}')).toBe(1);
      expect(sample(text, 'sluice_redis_call_seconds_count{script="acquire"}')).toBeGreaterThanOrEqual(4);
      expect(sample(text, 'sluice_redis_errors_total{script="acquire"}')).toBe(0);
      // fleet-wide, read from Redis on scrape
      expect(sample(text, 'sluice_redis_up')).toBe(1);
      expect(sample(text, 'sluice_fleet_admitted_total{endpoint="ep.a"}')).toBe(3);
      expect(sample(text, 'sluice_fleet_timeouts_total{endpoint="ep.a"}')).toBe(1);
      expect(sample(text, 'sluice_fleet_queue_full_total{endpoint="ep.a"}')).toBe(1);
      expect(sample(text, 'sluice_fleet_penalties_total{endpoint="ep.b"}')).toBe(1);
      expect(sample(text, 'sluice_queue_depth{endpoint="ep.a"}')).toBe(1);
      expect(sample(text, 'sluice_queue_depth_by_class{endpoint="ep.a",tenant="acme",priority="low"}')).toBe(1);
      expect(sample(text, 'sluice_queue_max{endpoint="ep.a"}')).toBe(1);
      expect(sample(text, 'sluice_tokens{endpoint="ep.a"}')).toBeLessThan(1); // a ticket waits for the next whole token
      expect(sample(text, 'sluice_effective_rate_per_second{endpoint="ep.b"}')).toBe(20);
      expect(sample(text, 'sluice_configured_rate_per_second{endpoint="ep.b"}')).toBe(10);
      expect(sample(text, 'sluice_paused{endpoint="ep.b",cause="penalty"}')).toBe(1);
      expect(sample(text, 'sluice_paused{endpoint="ep.a",cause="penalty"}')).toBe(0);
      expect(sample(text, 'sluice_jobs{queue="discovery",state="waiting"}')).toBe(1);
      expect(sample(text, 'sluice_jobs{queue="harvesting",state="delayed"}')).toBe(1);
      expect(sample(text, 'sluice_workers{queue="harvesting"}')).toBe(0);

      ac.abort();
      await queued;
      const after = await m.metrics();
      expect(sample(after, 'sluice_refusals_total{endpoint="ep.a",reason="aborted"}')).toBe(1);
      // the emptied class disappears rather than staying at a stale value
      expect(after).not.toContain('sluice_queue_depth_by_class{endpoint="ep.a",tenant="acme"');
      expect(sample(after, 'sluice_queue_depth{endpoint="ep.a"}')).toBe(0);
    } finally {
      m.close();
    }
  });

  it('keeps its own registry, and workers can leave the fleet figures to the admin server', async () => {
    const throttler = makeThrottler({ endpoints: { e: { rate: '10/s' } } });
    const m = createMetrics({ throttler, fleet: false });
    try {
      await throttler.acquire('e');
      const text = await m.metrics();
      expect(sample(text, 'sluice_admissions_total{endpoint="e",priority="normal",queued="false"}')).toBe(1);
      expect(text).not.toContain('sluice_fleet_admitted_total');
      expect(text).not.toContain('sluice_tokens');
      const { register } = await import('prom-client');
      expect(register.getSingleMetric('sluice_admissions_total')).toBeUndefined();
      // two registries side by side do not clash
      const again = createMetrics({ throttler });
      again.close();
    } finally {
      m.close();
    }
  });

  it('reports Redis down: sluice_redis_up 0, inspect errors counted, no stale gauges', async () => {
    const throttler = createThrottler({
      namespace: testNamespace(),
      endpoints: { e: { rate: '10/s' } },
      redis: new Redis('redis://127.0.0.1:1', { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true }).on('error', () => undefined),
      logger: pino({ level: 'silent' }),
    });
    const m = createMetrics({ throttler });
    try {
      const text = await m.metrics();
      expect(sample(text, 'sluice_redis_up')).toBe(0);
      expect(sample(text, 'sluice_redis_errors_total{script="inspect"}')).toBeGreaterThanOrEqual(1);
      expect(text).not.toMatch(/^sluice_tokens\{/m);
    } finally {
      m.close();
      (throttler.redis as Redis).disconnect();
    }
  });
});

describe('tenant label of the queue-depth metric', () => {
  afterEach(cleanup);

  it('names the most queued tenants per endpoint and sums the rest under {other}, per priority', () => {
    const classes = [
      { tenant: 'a', priority: 'high', queued: 5 },
      { tenant: 'a', priority: 'low', queued: 5 },
      { tenant: 'b', priority: 'low', queued: 7 },
      { tenant: 'c', priority: 'high', queued: 3 },
      { tenant: 'd', priority: 'high', queued: 2 },
      { tenant: 'd', priority: 'low', queued: 1 },
    ];
    expect(boundedClasses(classes, 6)).toBe(classes);
    const two = boundedClasses(classes, 2);
    expect(two.filter((c) => c.tenant !== OTHER_TENANTS).map((c) => c.tenant).sort()).toEqual(['a', 'a', 'b']);
    expect(two.filter((c) => c.tenant === OTHER_TENANTS)).toEqual([
      { tenant: OTHER_TENANTS, priority: 'high', queued: 5 },
      { tenant: OTHER_TENANTS, priority: 'low', queued: 1 },
    ]);
    expect(two.reduce((n, c) => n + c.queued, 0)).toBe(23);
  });

  it('keeps the exported series bounded with 40 tenants queued', async () => {
    const throttler = makeThrottler({ endpoints: { 'ep.a': { rate: '1/min', burst: 1 } } });
    await throttler.pause('ep.a');
    const ac = new AbortController();
    // tenant tN queues N % 4 + 1 tickets: t3, t7, ... (4 each) lead
    const waiting = Array.from({ length: 40 }, (_, n) => Array.from({ length: (n % 4) + 1 }, () => throttler.acquire('ep.a', { tenant: `t${n}`, signal: ac.signal }).catch(() => undefined))).flat();
    const m = createMetrics({ throttler, maxTenantSeries: 5 });
    try {
      await expect.poll(async () => (await throttler.inspect('ep.a')).queued).toBe(waiting.length);
      const lines = (await m.metrics()).split('\n').filter((l) => l.startsWith('sluice_queue_depth_by_class{'));
      const tenants = lines.map((l) => /tenant="([^"]*)"/.exec(l)![1]);
      expect(tenants).toHaveLength(6);
      expect(tenants).toContain(OTHER_TENANTS);
      for (const t of tenants.filter((x) => x !== OTHER_TENANTS)) expect(Number(t!.slice(1)) % 4).toBe(3);
      expect(lines.reduce((n, l) => n + Number(l.split(' ').pop()), 0)).toBe(waiting.length);
    } finally {
      m.close();
      ac.abort();
      await Promise.all(waiting);
    }
  });
});
