/**
 * Runs in every worker process: learns each admission's wait from the throttler's events and
 * publishes this process's last-minute wait histogram per endpoint to Redis every few seconds,
 * so the admin server and `sluice status` can show fleet-wide wait percentiles (workers run in
 * other processes and other machines; only Redis sees them all).
 */
import type { Throttler } from '../throttler.js';
import type { Logger } from '../logger.js';
import { redisTimeMs, staleWaitFields, WAIT_FIELD_PREFIX, type PublishedWaits } from './fleet-waits.js';
import { SlidingWaitWindow, totalOf } from './wait-histogram.js';

export interface WaitReporterOptions {
  /** How often the histograms are published. Default 5 000 ms. */
  intervalMs?: number;
  /** Width of the published window (rounded to whole intervals). Default 60 000 ms. */
  windowMs?: number;
  /** Where publishing failures are logged (at warn, once per failure streak). */
  logger?: Logger;
}

export interface WaitReporter {
  /** Publishes now (tests, shutdown). */
  flush(): Promise<void>;
  /** Stops listening and publishing, and removes this process's fields. */
  stop(): Promise<void>;
}

/** Every this many flushes a publisher also deletes fields of processes that stopped refreshing theirs. */
const PRUNE_EVERY = 12;

/** Starts publishing this process's wait histograms; see the module comment. */
export function startWaitReporter(throttler: Throttler, options: WaitReporterOptions = {}): WaitReporter {
  const intervalMs = options.intervalMs ?? 5_000;
  const slotCount = Math.max(1, Math.round((options.windowMs ?? 60_000) / intervalMs));
  const windows = new Map<string, SlidingWaitWindow>();
  const published = new Set<string>();
  const field = `${WAIT_FIELD_PREFIX}${throttler.owner}`;
  // three missed refreshes: the process is gone (or cut off), its numbers no longer count
  const staleAfterMs = 3 * intervalMs;
  const redis = throttler.redis;
  let flushes = 0;
  let failing = false;

  const unsubscribe = throttler.onEvent((event) => {
    if (event.type !== 'admitted') return;
    let w = windows.get(event.endpoint);
    if (!w) windows.set(event.endpoint, (w = new SlidingWaitWindow(intervalMs, slotCount)));
    w.record(event.waitedMs);
  });

  async function flush(): Promise<void> {
    if (windows.size === 0) return;
    const at = await redisTimeMs(redis);
    const prune = ++flushes % PRUNE_EVERY === 0;
    const tx = redis.multi();
    for (const [endpoint, w] of windows) {
      const key = throttler.keys.stats(endpoint);
      const h = w.snapshot();
      if (totalOf(h) === 0) {
        // an idle process leaves the picture rather than publishing zeros forever
        if (published.delete(endpoint)) tx.hdel(key, field);
        windows.delete(endpoint);
        continue;
      }
      const value: PublishedWaits = { at, windowMs: w.windowMs, staleAfterMs, counts: h.counts, sumMs: Math.round(h.sumMs) };
      tx.hset(key, field, JSON.stringify(value)).pexpire(key, staleAfterMs);
      published.add(endpoint);
    }
    await tx.exec();
    if (prune) {
      for (const endpoint of published) {
        const key = throttler.keys.stats(endpoint);
        const stale = staleWaitFields(await redis.hgetall(key), at);
        if (stale.length) await redis.hdel(key, ...stale);
      }
    }
  }

  const timer = setInterval(() => {
    flush().then(
      () => (failing = false),
      (err: unknown) => {
        if (!failing) options.logger?.warn({ err }, 'could not publish wait statistics');
        failing = true;
      },
    );
  }, intervalMs);
  timer.unref();

  return {
    flush,
    async stop() {
      clearInterval(timer);
      unsubscribe();
      if (published.size === 0) return;
      const tx = redis.multi();
      for (const endpoint of published) tx.hdel(throttler.keys.stats(endpoint), field);
      published.clear();
      await tx.exec().catch(() => undefined);
    },
  };
}
