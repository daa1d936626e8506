import { afterEach, describe, expect, it } from 'vitest';
import { startEmbeddedRedis, type EmbeddedRedis } from '../workers/embedded/redis-server.js';
import { RedisUnavailableError } from '../src/index.js';
import { cleanup, logSink, makeThrottler, testNamespace } from './support/helpers.js';
import { countBetween, maxInWindow, runLoadProcesses } from './support/processes.js';

/**
 * Redis dies (kill -9) in the middle of a run and comes back on the same port. Each failure
 * policy keeps its promise; no process crashes; admissions during the outage stay in bound.
 */
afterEach(cleanup);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Kills the server `killAfterMs` after `startAt`, restarts it `downMs` later; returns the outage
 * window. `up` is stamped before the new server is spawned, not after `startEmbeddedRedis`
 * returns: clients reconnect (and reserve slots at the new server's clock) as soon as the port
 * opens, which on a busy machine is well before the start-up promise resolves. No slot the new
 * server grants can lie before `up`, whatever the scheduler does.
 */
async function outage(server: { current: EmbeddedRedis }, startAt: number, killAfterMs: number, downMs: number): Promise<{ down: number; up: number }> {
  await sleep(startAt + killAfterMs - Date.now());
  const port = server.current.port;
  const down = Date.now();
  await server.current.stop(); // SIGKILL
  await sleep(downMs);
  const up = Date.now();
  server.current = await startEmbeddedRedis({ port });
  return { down, up };
}

describe('Redis killed mid-run', () => {
  it('closed (the default): nobody goes while Redis is away, nobody crashes, everyone resumes', async () => {
    const server = { current: await startEmbeddedRedis() };
    try {
      const namespace = testNamespace('closed');
      let killed: Promise<{ down: number; up: number }> | undefined;
      const { results } = await runLoadProcesses(
        Array.from({ length: 2 }, () => ({ redis: server.current.url, namespace, endpoint: 'e', rate: '100/s', burst: 10, callers: 8, durationMs: 7_000 })),
        (startAt) => (killed = outage(server, startAt, 1_500, 2_000)),
      );
      const window = await killed!;
      const slots = results.flatMap((r) => r.admissions.map((a) => a.slot));
      expect(results.every((r) => r.count > 0)).toBe(true);
      // slots reserved before the kill lie at most a horizon after it; none was reserved while Redis was away
      expect(countBetween(slots, window.down + 200, window.up)).toBe(0);
      expect(countBetween(slots, window.up, window.up + 3_000)).toBeGreaterThan(0);
      expect(results.flatMap((r) => r.admissions).some((a) => a.degraded)).toBe(false);
    } finally {
      await server.current.stop();
    }
  }, 60_000);

  it('local: 4 processes admit their leased shares, the fleet stays within the rate, recovery has no burst', async () => {
    const server = { current: await startEmbeddedRedis() };
    try {
      const namespace = testNamespace('local');
      const rate = 100;
      let killed: Promise<{ down: number; up: number }> | undefined;
      const { results } = await runLoadProcesses(
        Array.from({ length: 4 }, () => ({
          redis: server.current.url, namespace, endpoint: 'e', rate: `${rate}/s`, burst: 10, callers: 8, durationMs: 10_000, failurePolicy: 'local' as const, leaseMs: 15_000,
        })),
        // heartbeats (every second) have counted all four processes by then
        (startAt) => (killed = outage(server, startAt, 3_500, 3_000)),
      );
      const window = await killed!;
      const all = results.flatMap((r) => r.admissions);
      const local = all.filter((a) => a.degraded === 'local').map((a) => a.at);
      const outageMs = window.up - window.down;
      // every process admitted on its own lease, and the fleet stayed at or below the cap: each
      // process admits rate / 4 from an empty local bucket while its circuit is open
      expect(results.every((r) => r.admissions.some((a) => a.degraded === 'local'))).toBe(true);
      // liveness: the shares were used (a starved machine admits less; the bounds below are the safety)
      expect(local.length).toBeGreaterThan(0.25 * rate * (outageMs / 1000));
      for (const r of results) {
        // each process: its share (rate / 4) over its own time without Redis, from an empty local
        // bucket whose burst is 10 / 4; counted by grant times, which a loaded machine delays unevenly
        const mine = r.admissions.filter((a) => a.degraded === 'local').map((a) => a.at);
        const span = (Math.max(...mine) - Math.min(...mine)) / 1000;
        expect(mine.length).toBeLessThanOrEqual((rate / 4) * span + 2.5 + 2);
      }
      // the whole fleet, by reserved slot, in any 1 s window: rate + burst, including the hand-over
      // back to Redis (a grace holds Redis empty while the last processes still use their shares)
      expect(maxInWindow(all.map((a) => a.slot), 1000)).toBeLessThanOrEqual(rate + 10 + 3);
      // recovery: no burst in the first second after Redis is back
      const after = all.filter((a) => !a.degraded && a.slot >= window.up).map((a) => a.slot);
      expect(after.length).toBeGreaterThan(0);
      expect(maxInWindow(after, 1000)).toBeLessThanOrEqual(rate + 2);
    } finally {
      await server.current.stop();
    }
  }, 60_000);

  it('open: admits everything while Redis is away and says so loudly', async () => {
    const server = { current: await startEmbeddedRedis() };
    const sink = logSink();
    try {
      const t = makeThrottler({ redis: server.current.url, namespace: testNamespace('open'), endpoints: { e: { rate: '1/min', burst: 1 } }, failurePolicy: 'open', logger: sink.logger });
      await t.acquire('e');
      await server.current.stop();
      const admissions = await Promise.all(Array.from({ length: 5 }, () => t.acquire('e')));
      expect(admissions.every((a) => a.degraded === 'open')).toBe(true);
      expect(sink.lines.some((l) => l.level === 50 && String(l.msg).includes('FAILING OPEN'))).toBe(true);
      expect(sink.lines.some((l) => l.msg === 'failure policy is open: if Redis goes away, this process admits without limit')).toBe(true);
    } finally {
      await server.current.stop();
    }
  }, 30_000);

  it('closed with a deadline: RedisUnavailableError, distinct from a throttling timeout', async () => {
    const server = await startEmbeddedRedis();
    const t = makeThrottler({ redis: server.url, namespace: testNamespace('down'), endpoints: { e: { rate: '10/s' } } });
    await t.acquire('e');
    await server.stop();
    const err = await t.acquire('e', { maxWaitMs: 500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisUnavailableError);
    expect(String(err)).toMatch(/Redis did not answer within maxWaitMs 500/);
  }, 30_000);
});
