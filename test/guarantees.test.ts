import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { startEmbeddedRedis } from '../workers/embedded/redis-server.js';
import { CostAboveBurstError, InvalidConfigError, ThrottlerClosedError, ThrottleTimeoutError, type Admission } from '../src/index.js';
import { cleanup, logSink, makeThrottler, newRedis, redisUrl, testNamespace, until } from './support/helpers.js';

/**
 * Issue 12's promises of the throttle core, one describe per promise. Every bound is checked on
 * Redis time (slots, pausedUntil) or on what Redis holds, never on how fast this machine is.
 */
afterEach(cleanup);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Settles within `ms` or reports that it still waits: a liveness check, not a timing claim. */
async function settles<T>(p: Promise<T>, ms: number): Promise<{ value?: T; error?: unknown } | 'still waiting'> {
  return Promise.race([
    p.then((value) => ({ value }), (error: unknown) => ({ error })),
    sleep(ms).then(() => 'still waiting' as const),
  ]);
}

/** A TCP proxy to the test Redis that can be cut (Redis keeps its state, unlike a killed server). */
async function cuttableProxy(target: string): Promise<{ url: string; cut(): void; restore(): Promise<void>; close(): Promise<void> }> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let listenPort = 0;
  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        const upstream = netConnect(Number(port), hostname);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('error', () => undefined);
          s.on('close', () => sockets.delete(s));
        }
        client.pipe(upstream).pipe(client);
      });
      server.listen(listenPort, '127.0.0.1', () => {
        listenPort = (server!.address() as { port: number }).port;
        resolve();
      });
    });
  const cut = () => {
    server?.close();
    for (const s of sockets) s.destroy();
  };
  await listen();
  return { url: `redis://127.0.0.1:${listenPort}`, cut, restore: listen, close: async () => cut() };
}

describe('Retry-After is a floor nothing can shorten', () => {
  it('penalize 3 s, then raise the rate x10 and reset the overrides: no admission before the pause ends', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '10/s', burst: 2 } } });
    await t.acquire('e');
    const { pausedUntil } = await t.penalize('e', { retryAfterMs: 3_000 });
    await t.configure('e', { rate: '100/s' });
    const during = Array.from({ length: 4 }, () => t.acquire('e'));
    await sleep(500); // long enough for a debt at 100/s (3 s x 10/s = 30 tokens) to be paid off
    await t.resetOverrides('e');
    const after = Array.from({ length: 2 }, () => t.acquire('e'));
    const admissions = await Promise.all([...during, ...after]);
    for (const a of admissions) expect(a.slot).toBeGreaterThanOrEqual(pausedUntil);
    expect((await t.inspect('e')).pausedUntil).toBeNull();
  });

  it('adaptive mode raises nothing while paused, even after many quiet periods', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '20/s', burst: 1, adaptive: { quietMs: 100 } } } });
    await t.acquire('e');
    const { pausedUntil } = await t.penalize('e', { retryAfterMs: 2_000 });
    const cut = (await t.inspect('e')).effective.ratePerSec;
    const admissions = await Promise.all(Array.from({ length: 3 }, () => t.acquire('e')));
    for (const a of admissions) expect(a.slot).toBeGreaterThanOrEqual(pausedUntil);
    const s = await t.inspect('e');
    // the first raise may only come a quiet period after the pause ended
    if (s.adaptive?.lastRaiseAt) expect(s.adaptive.lastRaiseAt).toBeGreaterThanOrEqual(pausedUntil + 100);
    expect(cut).toBeLessThan(20);
  });

  it("the 'local' failure policy honours a penalty it heard of when Redis goes away", async () => {
    const server = await startEmbeddedRedis();
    try {
      const t = makeThrottler({ redis: server.url, endpoints: { e: { rate: '20/s', burst: 1 } }, failurePolicy: 'local', leaseMs: 10_000 });
      await t.acquire('e');
      // the heartbeat has counted this process: it holds a leased share
      await until('the heartbeat', async () => (await (t.redis as Redis).zscore(t.keys.live(), t.owner)) !== null);
      const before = Date.now();
      const { pausedUntil } = await t.penalize('e', { retryAfterMs: 2_000 });
      await server.stop();
      const admissions: (Admission & { at: number })[] = await Promise.all(Array.from({ length: 3 }, () => t.acquire('e').then((a) => ({ ...a, at: Date.now() }))));
      for (const a of admissions) {
        expect(a.degraded).toBe('local');
        expect(a.at).toBeGreaterThanOrEqual(before + 2_000);
        expect(a.slot).toBeGreaterThanOrEqual(pausedUntil);
      }
    } finally {
      await server.stop();
    }
  });

  it("the 'local' failure policy does not admit through an operator's pause without end", async () => {
    const server = await startEmbeddedRedis();
    try {
      const t = makeThrottler({ redis: server.url, endpoints: { e: { rate: '20/s', burst: 1 } }, failurePolicy: 'local', leaseMs: 10_000 });
      await t.acquire('e');
      await until('the heartbeat', async () => (await (t.redis as Redis).zscore(t.keys.live(), t.owner)) !== null);
      await t.pause('e');
      await expect(t.acquire('e', { maxWaitMs: 300 })).rejects.toThrow(); // learns of the pause
      await server.stop();
      const outcome = await settles(t.acquire('e', { maxWaitMs: 1_500 }), 5_000);
      expect(outcome).not.toBe('still waiting');
      expect((outcome as { error?: unknown }).error).toBeDefined();
    } finally {
      await server.stop();
    }
  });
});

describe("the 'local' failure policy gives back what it admitted without Redis", () => {
  it('a queued ticket whose caller was admitted locally is cancelled in Redis when Redis answers again', async () => {
    const proxy = await cuttableProxy(redisUrl());
    try {
      // the tenant's budget holds its ticket in the queue; without Redis the budget is not kept
      // (the stated weaker guarantee), so the caller goes on its leased share of the endpoint
      const t = makeThrottler({ redis: proxy.url, endpoints: { e: { rate: '20/s', burst: 1 } }, tenants: { acme: { rate: '1/min', burst: 1 } }, failurePolicy: 'local' });
      const observer = makeThrottler({ endpoints: { e: { rate: '20/s', burst: 1 } }, namespace: t.keys.namespace });
      await t.acquire('e', { tenant: 'acme' });
      await until('the heartbeat', async () => (await (observer.redis as Redis).zscore(t.keys.live(), t.owner)) !== null);
      const waiting = t.acquire('e', { tenant: 'acme' });
      await until('the ticket queued', async () => (await observer.inspect('e')).queued === 1);
      proxy.cut();
      const admission = await waiting;
      expect(admission.degraded).toBe('local');
      expect(await (observer.redis as Redis).zcard(t.keys.queue('e'))).toBe(1); // Redis still holds it
      await proxy.restore();
      // the queue itself, not a counter: the ticket is gone from it
      // (well before its owner's lease, 30 s, would have let anyone drop it)
      await until('the ticket given back', async () => (await (observer.redis as Redis).zcard(t.keys.queue('e'))) === 0, 10_000);
    } finally {
      await proxy.close();
    }
  });
});

describe('no waiter hangs', () => {
  it('a ticket dropped because its owner\'s lease lapsed reaches its owner, who queues again and is served', async () => {
    const { logger, lines } = logSink();
    const t1 = makeThrottler({ endpoints: { e: { rate: '1/min', burst: 1 } }, logger, leaseMs: 1_000 });
    const t2 = makeThrottler({ endpoints: { e: { rate: '1/min', burst: 1 } }, namespace: t1.keys.namespace });
    await t1.acquire('e');
    const waiting = t1.acquire('e');
    await until('the ticket queued', async () => (await t2.inspect('e')).queued === 1);
    // the lease lapses (as after an event-loop stall longer than leaseMs); anyone's call drops the
    // ticket. Promote asks only once the ticket is older than 2/3 of the lease (until then the lease
    // it renewed when it queued certainly holds): 667 ms here. The DEL and t2's call leave in one
    // event-loop turn on one connection; a heartbeat of t1 already on its way may still renew the
    // lease in between, so the lapse is repeated until a call of t2 meets it. (The ZREM plays the
    // lapse: a lease past its expiry and one trimmed away read the same.)
    await sleep(700);
    await until('the lapsed owner\'s ticket dropped', async () => {
      const lapsed = (t2.redis as Redis).zrem(t1.keys.leases(), t1.owner);
      const tried = t2.tryAcquire('e');
      await lapsed;
      expect(await tried).toBe(false);
      return (await t2.inspect('e')).counters.dropped === 1;
    }, 5_000);
    let replies = 0;
    t1.onEvent((e) => {
      if (e.type === 'redis-call' && e.script === 'acquire' && e.ok) replies++;
    });
    // the owner comes back (any call of its own carries its mailbox): it learns and queues again
    expect(await t1.tryAcquire('e')).toBe(false);
    const seen = replies;
    // the reply to its new ticket has come back (events are emitted just before a reply is read)
    await until('queued again', async () => lines.some((l) => String(l.msg).includes('queued again')) && replies > seen && (await t2.inspect('e')).queued === 1);
    await t2.configure('e', { rate: '100/s' });
    await t1.tryAcquire('e'); // its next call (else its heartbeat, within leaseMs / 3) brings the promotion
    const outcome = await settles(waiting, 10_000);
    expect(outcome).not.toBe('still waiting');
    expect((outcome as { value?: Admission }).value?.queued).toBe(true);
  });

  it('a ticket gone from the queue without a word is found by the heartbeat and queued again', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '1/min', burst: 1 } }, leaseMs: 3_000 });
    const redis = t.redis as Redis;
    await t.acquire('e');
    const waiting = t.acquire('e');
    await until('the ticket queued', async () => (await t.inspect('e')).queued === 1);
    // its promotion's mail expired before the owner came back: the queue simply no longer has it
    const [member] = await redis.zrange(t.keys.queue('e'), 0, -1);
    await redis.zrem(t.keys.queue('e'), member!);
    await until('queued again', async () => (await redis.zrange(t.keys.queue('e'), 0, -1)).some((m) => m !== member), 10_000);
    await t.configure('e', { rate: '100/s' });
    expect(await settles(waiting, 10_000)).not.toBe('still waiting');
  });

  it('the bucket key expiring while tickets remain: the queue still decides (ZCARD), nobody jumps it, nobody hangs', async () => {
    // a short lease: the owner's heartbeat (a third of it) fetches the promotion soon
    const t1 = makeThrottler({ endpoints: { e: { rate: '1/min', burst: 1 } }, leaseMs: 3_000 });
    const t2 = makeThrottler({ endpoints: { e: { rate: '1/min', burst: 1 } }, namespace: t1.keys.namespace });
    await t1.acquire('e');
    const waiting = t1.acquire('e');
    await until('the ticket queued', async () => (await t2.inspect('e')).queued === 1);
    await (t1.redis as Redis).del(t1.keys.bucket('e'));
    // a fresh bucket is full, but a ticket waits: the ticket gets the token, the newcomer does not
    expect(await t2.tryAcquire('e')).toBe(false);
    expect(await settles(waiting, 10_000)).not.toBe('still waiting');
  });

  it('every script gives the bucket, queue and class keys one TTL', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '1/min', burst: 1 } } });
    const redis = t.redis as Redis;
    await t.acquire('e');
    const controller = new AbortController();
    const waiting = t.acquire('e', { signal: controller.signal }).catch(() => undefined);
    const other = t.acquire('e', { tenant: 'other' }).catch(() => undefined);
    await until('two tickets queued', async () => (await t.inspect('e')).queued === 2);
    controller.abort(); // cancel-9 runs
    await waiting;
    await until('one ticket left', async () => (await t.inspect('e')).queued === 1);
    await t.penalize('e', { retryAfterMs: 1_000 }); // penalize-2 runs: the bucket's TTL only grows
    const [b, q] = await Promise.all([redis.pttl(t.keys.bucket('e')), redis.pttl(t.keys.queue('e'))]);
    expect(q).toBeGreaterThan(0);
    expect(b).toBeGreaterThanOrEqual(q - 50);
    await t.close();
    await other;
  });
});

describe("an operator's lower rate wins", () => {
  it('the adaptive floor is never above a rate set with configure()', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '10/s', burst: 1, adaptive: { minFraction: 0.5 } } } });
    await t.configure('e', { rate: '1/s' });
    await t.acquire('e');
    // at 1/s the next token is a second away; the adaptive floor (5/s) would say 200 ms
    const err = await t.acquire('e', { maxWaitMs: 500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ThrottleTimeoutError);
    expect((err as ThrottleTimeoutError).expectedWaitMs).toBeGreaterThan(800);
  });

  it('a runtime tenant budget applies to tickets already queued', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '100/s', burst: 1 } }, tenants: { acme: { rate: '1/min', burst: 1 } } });
    await t.acquire('e', { tenant: 'acme' });
    const waiting = t.acquire('e', { tenant: 'acme' });
    await until('the ticket queued', async () => (await t.inspect('e')).queued === 1);
    await t.setTenantBudget('acme', { rate: '100/s', burst: 1 });
    expect(await settles(waiting, 10_000)).not.toBe('still waiting');
  });

  it('a refund goes to the tenant budget that was charged', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '1/s', burst: 1 } }, horizonMs: 2_000 });
    await t.setTenantBudget('acme', { rate: '1/min', burst: 1 });
    await t.acquire('e', { tenant: 'x' }); // the endpoint's token: acme's next slot is a second away
    const controller = new AbortController();
    const replied = new Promise<void>((resolve) => t.onEvent((e) => e.type === 'redis-call' && e.script === 'acquire' && resolve()));
    const reserved = t.acquire('e', { tenant: 'acme', signal: controller.signal }).catch(() => 'aborted');
    await replied; // reserved a second ahead, charged to acme's budget
    await t.setTenantBudget('acme', null);
    controller.abort();
    expect(await reserved).toBe('aborted');
    await until('the endpoint full again', async () => (await t.inspect('e')).tokens >= 1 - 1e-6, 5_000);
    await t.setTenantBudget('acme', { rate: '1/min', burst: 1 });
    // the charged budget got its token back: acme goes at once, not a minute later
    expect(await t.tryAcquire('e', { tenant: 'acme' })).toBe(true);
  });

  it('a tenant held at its own budget never blocks other tenants, however many tickets it queued', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '200/s', burst: 1 } }, horizonMs: 20, tenants: { hog: { rate: '1/min', burst: 1 } } });
    const controller = new AbortController();
    const hog = Array.from({ length: 300 }, () => t.acquire('e', { tenant: 'hog', signal: controller.signal }).catch(() => undefined));
    await until('the hog queued', async () => (await t.inspect('e')).queued === 299);
    // each of b's tickets moves the fair-queue clock on; past the hog's 299 tags, b would sit behind all of them
    for (let i = 0; i < 400; i++) await t.acquire('e', { tenant: 'b', maxWaitMs: 5_000 });
    controller.abort();
    await Promise.all(hog);
  });
});

describe('inputs that wedge or overflow are refused at the boundary', () => {
  it('burst below 1 is refused in the config, in configure() and in tenant budgets', async () => {
    expect(() => makeThrottler({ endpoints: { e: { rate: '1/s', burst: 0.5 } } })).toThrow(InvalidConfigError);
    expect(() => makeThrottler({ endpoints: { e: { rate: '1/s' } }, tenants: { a: { rate: '1/s', burst: 0.2 } } })).toThrow(/burst/);
    const t = makeThrottler({ endpoints: { e: { rate: '1/s' } } });
    await expect(t.configure('e', { burst: 0.5 })).rejects.toBeInstanceOf(InvalidConfigError);
    await expect(t.setTenantBudget('a', { rate: '1/s', burst: 0.5 })).rejects.toBeInstanceOf(InvalidConfigError);
  });

  it('leaseMs below 1 s is refused', () => {
    expect(() => makeThrottler({ endpoints: { e: { rate: '1/s' } }, leaseMs: 200 })).toThrow(/leaseMs must be at least 1000/);
  });

  it('maxWaitMs beyond what a timer holds (2^31 - 1 ms) is refused, Infinity means no limit', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '1/s' } } });
    await expect(t.acquire('e', { maxWaitMs: 2 ** 31 })).rejects.toThrow(/maxWaitMs must be a number of ms from 0 to 2147483647/);
    await expect(t.acquire('e', { maxWaitMs: Infinity })).resolves.toBeDefined();
  });

  it('a burst lowered below a queued ticket\'s cost: that ticket gets a typed error and the queue moves on', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '1/min', burst: 5 } }, leaseMs: 3_000 });
    await t.acquire('e', { cost: 5 });
    const big = t.acquire('e', { cost: 5 });
    const small = t.acquire('e', { cost: 1 });
    await until('two tickets queued', async () => (await t.inspect('e')).queued === 2);
    await t.configure('e', { burst: 2 });
    const outcome = await settles(big, 10_000);
    expect(outcome).not.toBe('still waiting');
    expect((outcome as { error?: unknown }).error).toBeInstanceOf(CostAboveBurstError);
    await t.configure('e', { rate: '100/s' });
    expect(await settles(small, 10_000)).not.toBe('still waiting');
  });

  it('a reply that comes back after close() gives its future slot back', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '1/2s', burst: 1 } }, horizonMs: 3_000 });
    const observer = makeThrottler({ endpoints: { e: { rate: '1/2s', burst: 1 } }, namespace: t.keys.namespace });
    await t.acquire('e'); // empties the bucket: the next slot is two seconds ahead
    const admin = newRedis();
    try {
      await admin.call('CLIENT', 'PAUSE', '600', 'ALL'); // the next call is answered late
      const late = t.acquire('e').catch((e: unknown) => e);
      await sleep(50);
      await t.close();
      expect(await late).toBeInstanceOf(ThrottlerClosedError);
      // given back: the bucket holds what it refilled since it was emptied, not a token less
      expect((await observer.inspect('e')).tokens).toBeGreaterThan(0);
    } finally {
      await admin.quit();
    }
  });

  it('a failed cancel does not keep the process heartbeating for nobody', async () => {
    const { logger, lines } = logSink();
    const t = makeThrottler({ endpoints: { e: { rate: '1/min', burst: 1 } }, leaseMs: 1_000, logger });
    const redis = t.redis as Redis;
    await t.acquire('e');
    const controller = new AbortController();
    const waiting = t.acquire('e', { signal: controller.signal }).catch(() => undefined);
    await until('the ticket queued', async () => (await t.inspect('e')).queued === 1);
    // the cancel fails (a key of the wrong type makes the script answer with an error)
    await redis.set(t.keys.queue('e'), 'x');
    controller.abort();
    await waiting;
    await until('the failed cancel', async () => lines.some((l) => l.msg === 'could not give back a reservation or ticket'));
    await redis.del(t.keys.queue('e'));
    // nothing is left to wait for: the lease is not renewed and runs out
    await until('the lease ran out', async () => {
      const [lease, [sec, usec]] = await Promise.all([redis.zscore(t.keys.leases(), t.owner), redis.time()]);
      return Number(lease ?? 0) < Number(sec) * 1000 + Number(usec) / 1000;
    }, 5_000);
  });
});

describe('a rolling config change converges', () => {
  it('the newest config version wins for the whole fleet, and the change is in the audit log', async () => {
    const namespace = testNamespace('roll');
    const old = makeThrottler({ namespace, endpoints: { e: { rate: '10/s', burst: 1 } }, configVersion: 1 });
    await old.acquire('e');
    const next = makeThrottler({ namespace, endpoints: { e: { rate: '1/s', burst: 1 } }, configVersion: 2 });
    await next.acquire('e', { maxWaitMs: 2_000 });
    // the old process follows the new file: its next token is a second away, not 100 ms
    const err = await old.acquire('e', { maxWaitMs: 500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ThrottleTimeoutError);
    expect((await old.inspect('e')).effective.ratePerSec).toBeCloseTo(1, 6);
    const entries = (await old.auditLog()).filter((e) => e.actor === 'config file');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ endpoint: 'e', change: 'config version 2 replaces 1', before: { rate: String(0.01) }, after: { rate: String(0.001) } });
  });
});
