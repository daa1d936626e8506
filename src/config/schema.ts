import { z } from 'zod';
import { formatIssues } from './issues.js';
import { isValidName, NAME_RULE } from '../keys.js';
import { InvalidConfigError } from '../errors/index.js';
import { MAX_TOKENS, MIN_INTERVAL_MS, parseDurationMs, parseRate, type Rate } from './units.js';

/** Shortest lease a throttler accepts (see `leaseMs`). */
export const MIN_LEASE_MS = 1_000;
/** Longest wait a timer can hold (2^31 - 1 ms, about 24.8 days): a longer maxWaitMs is refused. */
export const MAX_WAIT_MS = 2 ** 31 - 1;

/** Names that end up in Redis keys and script members: the rule of `assertName` (src/keys.ts). */
export const Name = z.string().refine(isValidName, { error: `must be ${NAME_RULE}` });

const RateObject = z.object({
  tokens: z.number().nonnegative().max(MAX_TOKENS),
  intervalMs: z.number().min(MIN_INTERVAL_MS).max(366 * 86_400_000),
});

/** `"50/min"`, `"10/s"`, `"3/10s"` or `{ tokens, intervalMs }`. */
export const RateInput = z
  .union([z.string(), RateObject], { error: 'write a rate like "50/min", "10/s", "3/10s" or { tokens, intervalMs }' })
  .transform((v, ctx): Rate => {
    if (typeof v !== 'string') return v;
    const rate = parseRate(v);
    if (!rate) {
      ctx.addIssue({ code: 'custom', message: `cannot read rate "${v}": write it like "50/min", "10/s" or "3/10s"` });
      return z.NEVER;
    }
    return rate;
  });

/** `"10 s"`, `"250ms"` or a number of ms. */
export const DurationInput = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const ms = parseDurationMs(v);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `cannot read duration ${JSON.stringify(v)}: write it like "10 s", "250ms" or a number of ms` });
    return z.NEVER;
  }
  return ms;
});

export const BucketConfig = z.object({
  /** Tokens per interval. */
  rate: RateInput,
  /**
   * Most tokens the bucket holds (the largest burst), at least 1: a bucket that can never hold one
   * token would never admit a request of cost 1. Default: one interval's worth of tokens, at least 1.
   */
  burst: z.number().min(1, 'burst must be at least 1 (a smaller bucket could never admit a request of cost 1)').max(1e9).optional(),
});
export type BucketConfig = z.input<typeof BucketConfig>;

/** Adaptive rate (AIMD): learns the upstream's real limit below the configured rate. */
export const AdaptiveConfig = z.object({
  /** A penalty multiplies the effective rate by this. Default 0.5. */
  decreaseFactor: z.number().gt(0).lt(1).default(0.5),
  /**
   * Time without a penalty after which the rate goes up one step. Just below the rate of the last
   * penalty it holds longer before probing past it: 1, 4, 16, 64... quiet periods as penalties come
   * in a row (up to `maxHoldMs`). Default 5 s.
   */
  quietMs: DurationInput.default(5_000),
  /**
   * Longest hold below the last penalty's rate before probing past it again. Against a hidden limit
   * that does not move, the fleet trips it about once per this long; a limit that rises while the
   * fleet holds is found only when the hold ends. Default: 64 quiet periods.
   */
  maxHoldMs: DurationInput.optional(),
  /** One additive step, as a fraction of the configured rate. Default 0.05. */
  increase: z.number().gt(0).max(1).default(0.05),
  /** Never below this fraction of the configured rate. Default 0.05. */
  minFraction: z.number().gt(0).max(1).default(0.05),
});
export type AdaptiveConfig = z.input<typeof AdaptiveConfig>;

export const EndpointConfig = BucketConfig.extend({
  /** Opt-in adaptive rate: `true` for the defaults, or its settings. Default off. */
  adaptive: z.union([z.boolean(), AdaptiveConfig]).optional(),
  /** Most tickets waiting in this endpoint's fair queue; beyond it acquire rejects with QueueFullError. Default: the throttler's `maxQueue`. */
  maxQueue: z.number().int().positive().optional(),
});
export type EndpointConfig = z.input<typeof EndpointConfig>;

export const FailurePolicy = z.enum(['closed', 'local', 'open']);

export const ThrottlerConfig = z.object({
  /** Namespace: every key of this throttler shares the hash tag `{namespace}`. Default `sluice`. */
  namespace: Name.default('sluice'),
  /** Endpoints and their rates. */
  endpoints: z.record(Name, EndpointConfig).refine((e) => Object.keys(e).length > 0, 'configure at least one endpoint'),
  /** Priority names and their weights in the fair queue. Default `{ high: 3, normal: 2, low: 1 }`. */
  priorities: z.record(Name, z.number().positive()).default({ high: 3, normal: 2, low: 1 }),
  /** Priority of a call that names none. Default `normal` (or the first priority). */
  defaultPriority: Name.optional(),
  /** Tenant of a call that names none. Default `default`. */
  defaultTenant: Name.default('default'),
  /** A cap over all endpoints of the namespace, checked with each endpoint's bucket, all-or-nothing. */
  global: BucketConfig.optional(),
  /** Per-tenant budgets over all endpoints, all-or-nothing with the endpoint's bucket. */
  tenants: z.record(Name, BucketConfig).default({}),
  /**
   * Waits up to this long are served by a reservation: one round trip, then a local sleep, in
   * arrival order. Longer waits join the fair queue, where weights decide. A shorter horizon is
   * fairer (at most rate x horizon tokens go first-come-first-served); a longer one saves claims
   * at high rates. Default 100 ms.
   */
  horizonMs: DurationInput.default(100),
  /** Default bound of each endpoint's fair queue. Default 10 000. */
  maxQueue: z.number().int().positive().default(10_000),
  /**
   * How long a process's queued tickets outlive its last word to Redis. At least 1 s: a process
   * whose event loop stalls longer than this loses its place (its tickets are dropped and queued
   * again when it comes back), so a short lease turns every GC pause into a lost place. Default 30 s.
   */
  /**
   * How late after its slot a caller may still be let go. Redis grants slots that keep to the
   * bucket; a caller let go at most this long after its slot keeps what the upstream sees, over any
   * window Δ, ≤ rate·(Δ + lateToleranceMs) + burst. A caller found later (its process was stalled:
   * GC, a CPU-bound parse) is not let go on its stale slot: the slot is written off and the caller
   * queues again for a fresh one, with its tenant, priority and maxWaitMs. Lower it for a stricter
   * bound (each write-off costs a token); raise it if `sluice_late_slots_requeued_total` grows
   * without stalls. Default: half the slot spacing at the endpoint's current rate (at most half a
   * token over the burst), but at least 20 ms (rate·20 ms tokens above 25/s).
   */
  lateToleranceMs: DurationInput.pipe(z.number().min(1, 'lateToleranceMs must be at least 1 ms (timers fire up to a ms late)').max(3_600_000)).optional(),
  leaseMs: DurationInput.pipe(z.number().min(MIN_LEASE_MS, `leaseMs must be at least ${MIN_LEASE_MS} ms`).max(24 * 3600_000)).default(30_000),
  /**
   * Version of this process's config file (any number that grows with each change, e.g. the
   * deploy's timestamp). During a rolling restart the fleet follows one file, not each process its
   * own: the newest version any process has sent wins for each endpoint's rate, burst and max
   * queue, and the switch is written to the audit log. Default: the time this throttler was created
   * (so the process started last wins; set it explicitly if an old version may restart late).
   */
  configVersion: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  /**
   * What acquire does when Redis cannot be reached:
   * `closed` (default) callers wait, within their deadlines, until Redis answers: hammering the
   * upstream is what gets a scraping fleet banned;
   * `local` each live process admits its leased share (rate / live processes) on its own; the
   * lease lasts `leaseMs` from the last word with Redis, then callers wait as in `closed`. Exactly
   * what it keeps: over any window Δ the fleet admits at most rate·Δ + max(burst, N·max(1, cost)) per
   * endpoint (N live processes), where each share holds at least one request's cost, so
   * with more processes than burst the fleet's burst is N·max(1, cost), not burst; no local admission
   * before the end of a penalty (Retry-After) or operator pause this process had heard of (a pause
   * without end: callers wait for Redis); tickets queued in Redis whose callers were admitted locally are
   * given back when Redis returns. What it does not keep without Redis: tenant budgets and the
   * namespace cap (`global`), which only Redis sees across endpoints and processes; runtime rate
   * changes and pauses made during the outage;
   * `open` admit everything (logged loudly, every admission marked `degraded: 'open'`).
   */
  failurePolicy: FailurePolicy.default('closed'),
});
export type ThrottlerConfigInput = z.input<typeof ThrottlerConfig>;
export type ThrottlerConfig = z.output<typeof ThrottlerConfig>;

/** Formats zod issues as `field: message (received value)` lines a person can act on. */
export function describeIssues(error: z.ZodError, input: unknown): string {
  return formatIssues(error, input).message;
}

/** Parses throttler config once, at the boundary; throws InvalidConfigError naming the field and value. */
export function parseThrottlerConfig(input: unknown): ThrottlerConfig {
  const result = ThrottlerConfig.safeParse(input);
  if (!result.success) throw new InvalidConfigError(`invalid throttler config: ${describeIssues(result.error, input)}`);
  checkDefaultPriority(result.data, 'invalid throttler config');
  return result.data;
}

/** What the schema alone cannot say: the default priority must be one of the priorities. */
export function checkDefaultPriority(config: { defaultPriority?: string | undefined; priorities: Record<string, number> }, context: string): void {
  if (config.defaultPriority !== undefined && !Object.hasOwn(config.priorities, config.defaultPriority)) {
    throw new InvalidConfigError(`${context}: defaultPriority "${config.defaultPriority}" is not one of the priorities (${Object.keys(config.priorities).join(', ')})`);
  }
}
