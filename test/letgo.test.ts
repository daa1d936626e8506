import { afterEach, describe, expect, it } from 'vitest';
import { ThrottleTimeoutError, type ThrottleEvent } from '../src/index.js';
import { RedisClock, lateToleranceMs } from '../src/letgo.js';
import { createMetrics } from '../src/metrics/registry.js';
import { cleanup, logSink, makeThrottler, redisUrl, testNamespace } from './support/helpers.js';
import { bucketDebt, runLoadProcesses } from './support/processes.js';

/** Blocks the event loop: timers and replies wait while slots come due. */
function stall(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy
  }
}

const clock = () => performance.timeOrigin + performance.now();

/**
 * What the upstream sees is the moment each caller is let go, not the slot Redis granted it. A
 * process whose event loop stalls finds several slots due at once when it wakes; letting all of
 * them go together would hand the upstream a clump its bucket refuses. Here the let-go times of
 * every process are replayed through a model of the upstream's bucket.
 */
afterEach(cleanup);

describe('let-go times obey the bucket', () => {
  it('3 processes at full utilization, each stalled 700 ms by a busy loop: the upstream bucket (rate, burst + rate x tolerance) never refuses', async () => {
    const rate = 20;
    const burst = 2;
    const tolerance = 25; // the default at 20/s: half the slot spacing
    const namespace = testNamespace('letgo');
    const common = { redis: redisUrl(), namespace, endpoint: 'e', rate: `${rate}/s`, burst, callers: 6, durationMs: 4_500, lateToleranceMs: tolerance };
    const { results } = await runLoadProcesses([
      { ...common, stalls: [{ at: 800, ms: 700 }] },
      { ...common, stalls: [{ at: 1_700, ms: 700 }] },
      { ...common, stalls: [{ at: 2_600, ms: 700 }, { at: 3_400, ms: 400 }] },
    ]);
    const lets = results.flatMap((r) => r.admissions.map((a) => a.at));
    // 2 ms: between the throttler's decision and the caller's clock reading (same turn, no I/O)
    const { debt, at } = bucketDebt(lets, rate / 1000, burst + (rate / 1000) * (tolerance + 2));
    expect({ debt, at }).toEqual({ debt: 0, at: NaN });
    // the stalls happened and cost throughput, not safety: late slots were written off and their
    // callers queued again, and every process went on being served after its stall
    expect(results.reduce((n, r) => n + r.requeuedLate, 0)).toBeGreaterThan(0);
    for (const r of results) expect(r.count).toBeGreaterThan(10);
    expect(results.every((r) => Object.keys(r.errors).length === 0)).toBe(true);
  }, 60_000);

  it('one process stalled 600 ms with callers reserved and queued: none goes on its stale slot, all are served, one info line and the counter tell', async () => {
    const rate = 20;
    const { logger, lines } = logSink();
    const t = makeThrottler({ endpoints: { e: { rate: `${rate}/s`, burst: 1 } }, logger });
    const metrics = createMetrics({ throttler: t, fleet: false });
    const events: ThrottleEvent[] = [];
    t.onEvent((e) => events.push(e));
    await t.inspect('e');
    const lets: number[] = [];
    const first = t.acquire('e');
    const rest = Array.from({ length: 9 }, () => t.acquire('e').then((a) => (lets.push(clock()), a)));
    await first;
    lets.push(clock());
    // the others hold reservations (within the horizon) and tickets; their slots pass meanwhile
    await new Promise((r) => setTimeout(r, 20));
    stall(600);
    const admissions = await Promise.all(rest);
    const tolerance = lateToleranceMs(undefined, rate / 1000);
    expect(tolerance).toBe(25);
    expect(Math.max(...admissions.map((a) => a.lateMs))).toBeLessThanOrEqual(tolerance);
    // without the write-off, the callers whose slots passed in the stall go together: debt > 1
    expect(bucketDebt(lets, rate / 1000, 1 + (rate / 1000) * (tolerance + 2)).debt).toBe(0);
    const requeued = events.filter((e) => e.type === 'requeued-late');
    expect(requeued.length).toBeGreaterThan(0);
    expect(requeued.every((e) => e.lateMs > tolerance)).toBe(true);
    await new Promise((r) => setTimeout(r, 150));
    const line = lines.find((l) => String(l.msg).startsWith('callers found later than lateToleranceMs'));
    expect(line).toMatchObject({ level: 30, toleranceMs: 25 });
    expect(Number(line!.requeued)).toBeGreaterThan(0);
    expect(await metrics.metrics()).toContain(`sluice_late_slots_requeued_total{endpoint="e"} ${requeued.length}`);
    metrics.close();
  }, 30_000);

  it("a caller queued again after a stall keeps its deadline: past maxWaitMs behind a busy bucket it gets ThrottleTimeoutError, not its stale slot", async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '10/s', burst: 1 } }, horizonMs: 300 });
    await t.inspect('e');
    await t.acquire('e');
    const events: ThrottleEvent[] = [];
    t.onEvent((e) => events.push(e));
    // reserved 100 ms ahead, deadline 150 ms; the stall passes both while others take the bucket
    const bounded = t.acquire('e', { maxWaitMs: 150 }).catch((e: unknown) => e);
    const others = Array.from({ length: 5 }, () => t.acquire('e'));
    await new Promise((r) => setTimeout(r, 10));
    stall(400);
    expect(await bounded).toBeInstanceOf(ThrottleTimeoutError);
    expect(events.some((e) => e.type === 'requeued-late')).toBe(true);
    await Promise.all(others);
  }, 30_000);
});

describe('RedisClock', () => {
  it('keeps the fastest recent reply: a reply read late (a stall) does not shift the slots by the stall', () => {
    const c = new RedisClock();
    c.note(10_000, 4_000, 4_001); // offset in [5_999, 6_000]
    expect(c.offset).toBe(5_999);
    c.note(10_100, 4_099, 4_600); // read 500 ms late: its own bound says 5_500
    expect(c.offset).toBe(5_999);
    c.note(10_200, 4_199, 4_200.5);
    expect(c.offset).toBe(5_999.5);
  });

  it("starts over when a round trip proves the kept offset too high (Redis's clock stepped back)", () => {
    const c = new RedisClock();
    c.note(10_000, 4_000, 4_001);
    c.note(9_000, 4_100, 4_101); // offset now in [4_899, 4_900]
    expect(c.offset).toBe(4_899);
  });

  it('forgets bounds older than a few seconds (clocks drift)', () => {
    const c = new RedisClock();
    c.note(10_000, 4_000, 4_001);
    c.note(20_000, 14_000, 14_050); // 10 s later, a slow reply: [5_950, 6_000]
    expect(c.offset).toBe(5_950);
  });

  it('default tolerance: half the slot spacing (half a token), at least 20 ms; a configured one wins', () => {
    expect(lateToleranceMs(undefined, 1 / 60_000)).toBe(30_000);
    expect(lateToleranceMs(undefined, 1 / 1000)).toBe(500);
    expect(lateToleranceMs(undefined, 20 / 1000)).toBe(25);
    expect(lateToleranceMs(undefined, 1000 / 1000)).toBe(20);
    expect(lateToleranceMs(undefined, 200 / 1000)).toBe(20);
    expect(lateToleranceMs(undefined, 0)).toBe(Infinity);
    expect(lateToleranceMs(12, 20 / 1000)).toBe(12);
  });
});
