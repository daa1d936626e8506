/**
 * A load-generating OS process for the concurrency tests and benchmarks: N callers acquire in a
 * loop between startAt and stopAt, then the process prints one JSON line with what it saw.
 */
import { pino } from 'pino';
import { createThrottler } from '../../src/index.js';

export interface LoadSpec {
  redis: string;
  namespace: string;
  endpoint: string;
  rate: string;
  burst: number;
  horizonMs?: number;
  callers: number;
  priority?: string;
  tenant?: string;
  /** Filled in by the parent once every process is ready. */
  startAt?: number;
  /** Run length in ms from startAt. */
  durationMs: number;
  /** Keep only admissions, not per-admission records (for long benchmarks). */
  summaryOnly?: boolean;
  failurePolicy?: 'closed' | 'local' | 'open';
  leaseMs?: number;
  /** Per-acquire maxWaitMs (errors are counted, not fatal). */
  maxWaitMs?: number;
  /** Event-loop stalls: a synchronous busy loop of `ms`, `at` ms after startAt (a GC pause, a CPU-bound parse). */
  stalls?: { at: number; ms: number }[];
  /** The throttler's lateToleranceMs (default: its own). */
  lateToleranceMs?: number;
}

export interface LoadResult {
  admissions: { slot: number; at: number; lateMs: number; queued: boolean; degraded?: 'local' | 'open' }[];
  count: number;
  /** Rejections by error name (e.g. RedisUnavailableError during an outage). */
  errors: Record<string, number>;
  calls: number;
  lateMs: number[];
  /** Callers found later than the tolerance at their slot and queued again ('requeued-late' events). */
  requeuedLate: number;
}

const spec = JSON.parse(process.argv[2]!) as LoadSpec;
const throttler = createThrottler({
  redis: spec.redis,
  namespace: spec.namespace,
  endpoints: { [spec.endpoint]: { rate: spec.rate, burst: spec.burst } },
  priorities: { high: 3, normal: 2, low: 1 },
  ...(spec.horizonMs === undefined ? {} : { horizonMs: spec.horizonMs }),
  ...(spec.failurePolicy === undefined ? {} : { failurePolicy: spec.failurePolicy }),
  ...(spec.leaseMs === undefined ? {} : { leaseMs: spec.leaseMs }),
  ...(spec.lateToleranceMs === undefined ? {} : { lateToleranceMs: spec.lateToleranceMs }),
  logger: pino({ level: 'warn' }, pino.destination(2)),
});

const admissions: LoadResult['admissions'] = [];
const lateMs: number[] = [];
let count = 0;
let requeuedLate = 0;
throttler.onEvent((e) => {
  if (e.type === 'requeued-late') requeuedLate++;
});
const errors: Record<string, number> = {};
// tell the parent we are up, then wait for the common start time on stdin
await throttler.inspect(spec.endpoint);
process.stdout.write('ready\n');
const startAt = await new Promise<number>((resolve) => process.stdin.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
const stopAt = startAt + spec.durationMs;
await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now())));
for (const stall of spec.stalls ?? []) {
  setTimeout(() => {
    const until = Date.now() + stall.ms;
    while (Date.now() < until) {
      // the event loop is blocked: timers and replies wait, slots come due
    }
  }, Math.max(0, startAt + stall.at - Date.now()));
}
await Promise.all(
  Array.from({ length: spec.callers }, async () => {
    while (Date.now() < stopAt) {
      let a;
      try {
        a = await throttler.acquire(spec.endpoint, { priority: spec.priority, tenant: spec.tenant, maxWaitMs: spec.maxWaitMs });
      } catch (err) {
        const name = (err as Error).name;
        errors[name] = (errors[name] ?? 0) + 1;
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      count++;
      lateMs.push(a.lateMs);
      if (!spec.summaryOnly) {
        admissions.push({ slot: a.slot, at: performance.timeOrigin + performance.now(), lateMs: a.lateMs, queued: a.queued, ...(a.degraded ? { degraded: a.degraded } : {}) });
      }
    }
  }),
);
const calls = throttler.calls;
await Promise.race([throttler.close(), new Promise((r) => setTimeout(r, 3_000))]);
process.stdout.write(`${JSON.stringify({ admissions, count, errors, calls, lateMs: spec.summaryOnly ? [] : lateMs, requeuedLate } satisfies LoadResult)}\n`);
process.exit(0);
