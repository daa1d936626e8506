import { afterEach, describe, expect, it } from 'vitest';
import {
  AbortError,
  CostAboveBurstError,
  InvalidNameError,
  QueueFullError,
  ThrottlerClosedError,
  ThrottleTimeoutError,
  UnknownEndpointError,
} from '../src/index.js';
import { cleanup, logSink, makeThrottler } from './support/helpers.js';

afterEach(cleanup);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('acquire: the fast path', () => {
  it('admits a burst at once with one script call for the whole event-loop turn', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '10/s', burst: 5 } } });
    const admissions = await Promise.all(Array.from({ length: 5 }, () => t.acquire('e')));
    expect(admissions.every((a) => !a.queued)).toBe(true);
    expect(Math.max(...admissions.map((a) => a.slot)) - Math.min(...admissions.map((a) => a.slot))).toBeLessThan(5);
    expect(t.calls).toBe(1);
  });

  it('reserves exact slots within the horizon: one call, then a local sleep', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '10/s', burst: 1 } }, horizonMs: 1000 });
    const [a, b, c] = await Promise.all([t.acquire('e'), t.acquire('e'), t.acquire('e')]);
    expect(b!.slot - a!.slot).toBeCloseTo(100, 0);
    expect(c!.slot - b!.slot).toBeCloseTo(100, 0);
    expect(t.calls).toBe(1);
  });
});

describe('acquire: behind a long backlog', () => {
  it('new requests wait to go together: far fewer script calls than admissions', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '100/s', burst: 1 } } });
    let admitted = 0;
    // 32 callers, each back a moment after its admission (never two in one event-loop turn by design)
    await Promise.all(Array.from({ length: 32 }, async (_, i) => {
      await sleep(i);
      while (admitted < 100) {
        await t.acquire('e');
        admitted++;
        await sleep(1 + (i % 3));
      }
    }));
    // one call per request would be about 1 per admission; requests that wait for the next call
    // (usually the claim) share it
    expect(t.calls / admitted).toBeLessThan(0.6);
  });
});

describe('acquire: typed refusals', () => {
  it('refuses an unknown endpoint, priority or bad tenant name', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '10/s' } } });
    await expect(t.acquire('nope')).rejects.toBeInstanceOf(UnknownEndpointError);
    await expect(t.acquire('nope')).rejects.toThrow(/unknown endpoint "nope".*known: e/);
    await expect(t.acquire('e', { priority: 'urgent' })).rejects.toThrow(/unknown priority "urgent"/);
    await expect(t.acquire('e', { tenant: 'a{b}' })).rejects.toBeInstanceOf(InvalidNameError);
  });

  it('refuses a cost above the burst and debits nothing', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '10/s', burst: 3 } } });
    await t.acquire('e');
    const before = await t.inspect('e');
    const err = await t.acquire('e', { cost: 4 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CostAboveBurstError);
    expect(String(err)).toMatch(/cost 4 is above the burst 3/);
    const after = await t.inspect('e');
    expect(after.counters.admitted).toBe(before.counters.admitted);
    expect(after.tokens).toBeGreaterThanOrEqual(before.tokens);
  });

  it('refuses up front, not after waiting, when the expected wait passes maxWaitMs', async () => {
    const sink = logSink();
    const t = makeThrottler({ endpoints: { e: { rate: '1/min', burst: 1 } }, logger: sink.logger });
    await t.acquire('e');
    const started = Date.now();
    const err = (await t.acquire('e', { maxWaitMs: 5_000 }).catch((e: unknown) => e)) as ThrottleTimeoutError;
    expect(err).toBeInstanceOf(ThrottleTimeoutError);
    expect(err.expectedWaitMs).toBeGreaterThan(55_000);
    expect(Date.now() - started).toBeLessThan(5_000); // refused at once, not after the minute it would wait
    expect((await t.inspect('e')).queued).toBe(0);
    expect(sink.lines.some((l) => l.msg === 'refused up front: expected wait passes maxWaitMs' && l.endpoint === 'e')).toBe(true);
  });

  it('handles a zero rate: the bucket never refills, waits are unbounded', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: { tokens: 0, intervalMs: 1000 }, burst: 1 } } });
    expect(await t.tryAcquire('e')).toBe(true);
    expect(await t.tryAcquire('e')).toBe(false);
    const err = (await t.acquire('e', { maxWaitMs: 60_000 }).catch((e: unknown) => e)) as ThrottleTimeoutError;
    expect(err).toBeInstanceOf(ThrottleTimeoutError);
    expect(err.expectedWaitMs).toBe(Infinity);
    expect(err.message).toMatch(/unbounded/);
  });

  it('rejects with QueueFullError when the fair queue is full', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '1/min', burst: 1, maxQueue: 2 } }, horizonMs: 50 });
    await t.acquire('e');
    const waiting = [t.acquire('e'), t.acquire('e')];
    waiting.forEach((p) => p.catch(() => undefined));
    await sleep(50);
    const err = await t.acquire('e').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueFullError);
    expect(String(err)).toMatch(/queue is full \(2 waiting\)/);
    expect((await t.inspect('e')).counters.queueFull).toBe(1);
  });
});

describe('acquire: giving places back', () => {
  it('an aborted queued caller leaves the queue and the next one moves up', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '1/s', burst: 1 } }, horizonMs: 50 });
    const start = await t.acquire('e');
    const ac = new AbortController();
    const first = t.acquire('e', { signal: ac.signal });
    const second = t.acquire('e');
    await sleep(30);
    expect((await t.inspect('e')).queued).toBe(2);
    ac.abort();
    await expect(first).rejects.toBeInstanceOf(AbortError);
    const adm = await second;
    expect(adm.queued).toBe(true);
    // the aborted ticket's slot went to the next caller: one interval (1 s) after the first
    // admission, not two; reserved slots are Redis time, whatever the machine's load
    expect(adm.slot - start.slot).toBeLessThan(1_500);
    expect((await t.inspect('e')).queued).toBe(0);
  });

  it('an aborted reservation refunds its future slot', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '2/s', burst: 1 } }, horizonMs: 2000 });
    await t.acquire('e');
    const ac = new AbortController();
    const p = t.acquire('e', { signal: ac.signal });
    await sleep(50);
    const debt = (await t.inspect('e')).tokens;
    expect(debt).toBeLessThan(0);
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(AbortError);
    await sleep(20);
    expect((await t.inspect('e')).tokens).toBeGreaterThan(debt + 0.9);
  });

  it('an already aborted signal rejects at once', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '2/s' } } });
    await expect(t.acquire('e', { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError);
    expect(t.calls).toBe(0);
  });

  it('a ticket whose deadline passes in the queue times out and leaves', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '4/s', burst: 1 } }, horizonMs: 50 });
    await t.acquire('e');
    const p = t.acquire('e', { maxWaitMs: 600 });
    await sleep(20);
    // the operator slows the endpoint down while the ticket waits: it can no longer make its deadline
    await t.configure('e', { rate: '1/min' });
    await expect(p).rejects.toBeInstanceOf(ThrottleTimeoutError);
    await sleep(20);
    expect((await t.inspect('e')).queued).toBe(0);
  });

  it('close() gives back every ticket and rejects its callers', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '1/min', burst: 1 } }, horizonMs: 50 });
    await t.acquire('e');
    const waiting = Array.from({ length: 3 }, () => t.acquire('e').catch((e: unknown) => e));
    await sleep(30);
    expect((await t.inspect('e')).queued).toBe(3);
    const other = makeThrottler({ namespace: t.keys.namespace, endpoints: { e: { rate: '1/min', burst: 1 } } });
    await t.close();
    for (const p of waiting) expect(await p).toBeInstanceOf(ThrottlerClosedError);
    expect((await other.inspect('e')).queued).toBe(0);
    await expect(t.acquire('e')).rejects.toBeInstanceOf(ThrottlerClosedError);
  });
});

describe('runtime config', () => {
  it('a rate change reaches waiting callers on their next call, without restart', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '1/min', burst: 1 } }, horizonMs: 200 });
    const admin = makeThrottler({ namespace: t.keys.namespace, endpoints: { e: { rate: '1/min', burst: 1 } } });
    await t.acquire('e');
    const started = Date.now();
    const waiting = Promise.all(Array.from({ length: 3 }, () => t.acquire('e')));
    await sleep(30);
    await admin.configure('e', { rate: '20/s' });
    // the waiters' heartbeat is about horizon + burst/rate away; then they go at the new rate
    const admissions = await waiting;
    expect(admissions).toHaveLength(3);
    expect(Date.now() - started).toBeLessThan(20_000);
    const s = await t.inspect('e');
    expect(s.effective.ratePerSec).toBeCloseTo(20);
    expect(s.configured.ratePerSec).toBeCloseTo(1 / 60);
  });

  it('a lowered burst caps the tokens at once', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '10/s', burst: 10 } } });
    await t.configure('e', { burst: 2 });
    const results = await Promise.all(Array.from({ length: 4 }, () => t.tryAcquire('e')));
    expect(results.filter(Boolean)).toHaveLength(2);
  });

  it('refuses a bad override naming the field', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '10/s' } } });
    await expect(t.configure('e', { rate: 'fast' })).rejects.toThrow(/rate.*"fast"/);
    await expect(t.configure('e', { burst: -1 })).rejects.toThrow(/burst/);
    await expect(t.configure('e', { weights: { urgent: 2 } })).rejects.toThrow(/unknown priority "urgent"/);
  });
});

describe('parents: tenant budgets and the namespace cap', () => {
  it('a tenant budget holds across endpoints, all-or-nothing with the endpoint bucket', async () => {
    // slow refills, so the arithmetic below cannot depend on how fast this machine answers
    const t = makeThrottler({
      endpoints: { a: { rate: '1/min', burst: 50 }, b: { rate: '1/min', burst: 50 } },
      tenants: { acme: { rate: '1/min', burst: 3 } },
    });
    const results = await Promise.all([
      ...Array.from({ length: 3 }, () => t.tryAcquire('a', { tenant: 'acme' })),
      ...Array.from({ length: 3 }, () => t.tryAcquire('b', { tenant: 'acme' })),
    ]);
    expect(results.filter(Boolean)).toHaveLength(3);
    const a = await t.inspect('a');
    const b = await t.inspect('b');
    // refused requests debited nothing from the endpoint buckets
    expect(a.counters.admitted + b.counters.admitted).toBe(3);
    expect(50 - a.tokens + (50 - b.tokens)).toBeCloseTo(3, 0);
    // other tenants are not held by acme's budget
    expect(await t.tryAcquire('a', { tenant: 'globex' })).toBe(true);
  });

  it('the namespace cap holds over all endpoints', async () => {
    const t = makeThrottler({
      endpoints: { a: { rate: '100/s', burst: 10 }, b: { rate: '100/s', burst: 10 } },
      global: { rate: '1/min', burst: 4 },
    });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => t.tryAcquire(i % 2 ? 'a' : 'b')));
    expect(results.filter(Boolean)).toHaveLength(4);
  });

  it('a queued ticket held only by its tenant budget does not block other tenants', async () => {
    const t = makeThrottler({
      endpoints: { e: { rate: '20/s', burst: 1 } },
      tenants: { slow: { rate: '1/min', burst: 1 } },
      horizonMs: 100,
    });
    await t.acquire('e', { tenant: 'slow' });
    const slow = t.acquire('e', { tenant: 'slow', maxWaitMs: 120_000 });
    slow.catch(() => undefined);
    await sleep(20);
    const fast = await Promise.all(Array.from({ length: 5 }, () => t.acquire('e', { tenant: 'fast' })));
    expect(fast).toHaveLength(5);
    expect(Math.max(...fast.map((a) => a.waitedMs))).toBeLessThan(3_000);
  });
});

describe('penalize', () => {
  it('pauses exactly one endpoint, fleet-wide', async () => {
    const t = makeThrottler({ endpoints: { a: { rate: '100/s', burst: 10 }, b: { rate: '100/s', burst: 10 } } });
    const { pausedUntil } = await t.penalize('a', { retryAfterMs: 400, reason: '429' });
    const other = makeThrottler({ namespace: t.keys.namespace, endpoints: { a: { rate: '100/s', burst: 10 }, b: { rate: '100/s', burst: 10 } } });
    const [a, b] = await Promise.all([other.acquire('a'), other.acquire('b')]);
    expect(b.slot).toBeLessThan(pausedUntil - 200);
    expect(a.slot).toBeGreaterThanOrEqual(pausedUntil);
    const s = await t.inspect('a');
    expect(s.counters.penalties).toBe(1);
  });

  it('rounds Retry-After up, never down', async () => {
    const t = makeThrottler({ endpoints: { a: { rate: '100/s', burst: 10 } } });
    const now = Number((await t.redis.time())[0]) * 1000;
    const { pausedUntil } = await t.penalize('a', { retryAfterMs: 1000.2 });
    expect(pausedUntil - now).toBeGreaterThanOrEqual(1001);
  });
});
