import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, redisUrl, testNamespace } from './support/helpers.js';
import { countBetween, maxInWindow, runLoadProcesses } from './support/processes.js';

/**
 * Concurrency claims are proven with several OS processes, each with many callers, against one
 * real Redis. Counts and windows are checked; wall-clock speed is not (that is the benchmark's job).
 */
afterEach(cleanup);

describe('several processes share one bucket', () => {
  it('safety and utilization: 4 processes x 32 callers at 200/s, burst 20, for 10 s', async () => {
    const rate = 200;
    const burst = 20;
    const T = 10_000;
    const namespace = testNamespace('safety');
    const { startAt, results } = await runLoadProcesses(
      Array.from({ length: 4 }, () => ({ redis: redisUrl(), namespace, endpoint: 'e', rate: `${rate}/s`, burst, callers: 32, durationMs: T })),
    );
    const slots = results.flatMap((r) => r.admissions.map((a) => a.slot));
    const starts = results.flatMap((r) => r.admissions.map((a) => a.at));
    // safety: by reserved slot, never more than burst + rate x 1 s in any 1 s window
    expect(maxInWindow(slots, 1000)).toBeLessThanOrEqual(burst + rate);
    // the requests as they actually went out: a start may be a few ms late, never early
    expect(maxInWindow(starts, 1000)).toBeLessThanOrEqual(burst + rate + Math.ceil(rate * 0.015));
    // utilization: at least 99% of rate x T inside the run
    const admitted = countBetween(slots, startAt, startAt + T);
    expect(admitted).toBeGreaterThanOrEqual(0.99 * rate * (T / 1000));
    const calls = results.reduce((n, r) => n + r.calls, 0);
    const total = results.reduce((n, r) => n + r.count, 0);
    // efficiency at 128 waiters vs 200/s (a large oversubscription): at most 2 script calls per admission
    expect(calls / total).toBeLessThanOrEqual(2);
  }, 60_000);

  it('fairness: high (3) vs low (1) from separate processes share 3:1, then low takes the whole rate', async () => {
    const rate = 100;
    const namespace = testNamespace('fair');
    const common = { redis: redisUrl(), namespace, endpoint: 'e', rate: `${rate}/s`, burst: 10, callers: 24 };
    const { startAt, results } = await runLoadProcesses([
      { ...common, priority: 'high', durationMs: 6_000 },
      { ...common, priority: 'high', durationMs: 6_000 },
      { ...common, priority: 'low', durationMs: 10_000 },
      { ...common, priority: 'low', durationMs: 10_000 },
    ]);
    const highStop = startAt + 6_000;
    const lowStop = startAt + 10_000;
    const high = results.slice(0, 2).flatMap((r) => r.admissions.map((a) => a.slot));
    const low = results.slice(2).flatMap((r) => r.admissions.map((a) => a.slot));
    // both saturating (after the first burst settles): 3.0 +- 0.3
    const from = startAt + 1_500;
    const to = highStop - 500;
    const share = countBetween(high, from, to) / countBetween(low, from, to);
    expect(share).toBeGreaterThan(2.7);
    expect(share).toBeLessThan(3.3);
    // low never starves: some admissions in every second while high saturates
    for (let s = startAt; s < highStop - 1000; s += 1000) expect(countBetween(low, s, s + 1000)).toBeGreaterThan(0);
    // high idle: low gets the whole rate (work conservation), >= 98% of rate
    const idleFrom = highStop + 1_500;
    const idleTo = lowStop - 500;
    const lowIdle = countBetween(low, idleFrom, idleTo) + countBetween(high, idleFrom, idleTo);
    expect(countBetween(low, idleFrom, idleTo) / (((idleTo - idleFrom) / 1000) * rate)).toBeGreaterThanOrEqual(0.98);
    expect(lowIdle).toBeLessThanOrEqual(Math.ceil(((idleTo - idleFrom) / 1000) * rate) + 10);
  }, 60_000);
});
