import type { Cluster, Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { describeIssues, DurationInput, Name, RateInput } from '../config/schema.js';
import type { Rate } from '../config/units.js';
import { InvalidConfigError } from '../errors/index.js';
import type { Logger } from '../logger.js';
import type { RedisInput } from '../redis/connection.js';
import type { Throttler } from '../throttler.js';
import type { LimitRequest } from './request.js';

/** A function of the request; its result names a client, a tier... or `undefined` for none. */
export type RequestFn = (req: LimitRequest) => string | undefined;
const Fn = z.custom<RequestFn>((v) => typeof v === 'function', 'must be a function of the request');

/**
 * How requests are told apart: `ip` (the client address, see `trustProxy`), `user` (the `user`
 * option), `apiKey` (the `apiKey` option), `user-or-ip` / `apiKey-or-ip` (signed-in callers by
 * identity, anonymous ones by address), or a function of the request.
 */
export const KeySpec = z.union([z.enum(['ip', 'user', 'apiKey', 'user-or-ip', 'apiKey-or-ip']), Fn]);
export type KeySpec = z.infer<typeof KeySpec>;

/** See docs/http.md, "Choosing an algorithm". */
export const Algorithm = z.enum(['token-bucket', 'gcra', 'sliding-window', 'fixed-window']);
export type Algorithm = z.infer<typeof Algorithm>;

function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Calendar quotas beside the rate, checked in the same script, all-or-nothing. */
export const QuotaConfig = z
  .object({
    /** Requests per calendar day. */
    day: z.number().int().positive().optional(),
    /** Requests per calendar month. */
    month: z.number().int().positive().optional(),
    /** IANA time zone whose midnight starts a day (and the 1st a month). Default `UTC`. */
    timeZone: z.string().refine(validTimeZone, 'is not an IANA time zone (e.g. "UTC", "Europe/Paris")').default('UTC'),
  })
  .strict()
  .refine((q) => q.day !== undefined || q.month !== undefined, 'give day, month or both');

/** Abuse blocking: a key refused `after` times within `within` is refused outright for `for`. */
export const BlockConfig = z
  .object({
    after: z.number().int().positive(),
    within: DurationInput.refine((ms) => ms > 0, 'must be > 0'),
    for: DurationInput.refine((ms) => ms > 0, 'must be > 0'),
  })
  .strict();

/** `closed`: answer 503 when Redis cannot decide; `open`: let the request through. Both are logged and counted. */
export const FailurePolicy = z.enum(['closed', 'open']);

export const PolicyConfig = z
  .object({
    /** Default `token-bucket`. */
    algorithm: Algorithm.default('token-bucket'),
    /** `"100/min"`: requests per window (windows) or the refill rate (token bucket, GCRA). */
    rate: RateInput,
    /** Requests that may go back to back. Default: the rate's count for token-bucket, 1 for GCRA (smooth). Ignored by the windows. */
    burst: z.number().int().positive().max(1e9).optional(),
    /** How requests are told apart under this policy. Default: the limiter's `key`. */
    key: KeySpec.optional(),
    quota: QuotaConfig.optional(),
    block: BlockConfig.optional(),
    /**
     * Hold requests in the throttle's weighted-fair queue (one shared rate for the route, each
     * client key a fairness class, the tier its priority) up to `maxWaitMs`; 429 only when the
     * wait would pass it.
     */
    queue: z.object({ maxWaitMs: DurationInput }).strict().optional(),
    /** Overrides the limiter's `failure` for this policy. */
    failure: FailurePolicy.optional(),
  })
  .strict();
export type PolicyConfigInput = z.input<typeof PolicyConfig>;

/** A policy name, `null` (not limited), or one per tier: `{ free: 'slow', pro: 'fast', enterprise: null }`. */
export const PolicyRef = z.union([Name, z.null(), z.record(Name, z.union([Name, z.null()]))]);
export type PolicyRef = z.infer<typeof PolicyRef>;

const OneOrMany = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]));

/** First matching rule wins; a rule matches when every condition it names matches. */
export const RuleConfig = z
  .object({
    /** HTTP methods, e.g. `POST` or `['PUT', 'DELETE']`. */
    method: OneOrMany.transform((v) => v.map((m) => m.toUpperCase())).optional(),
    /** Route patterns as the router matched them (`/items/:id`), or a prefix ending in `*` (`/admin/*`). */
    route: OneOrMany.optional(),
    /** Country codes read from `countryHeader`, e.g. `['XX', 'T1']`. */
    country: OneOrMany.transform((v) => v.map((c) => c.toUpperCase())).optional(),
    policy: PolicyRef,
  })
  .strict();

export const HttpLimiterConfig = z
  .object({
    /** Keys live under `sluice:{namespace:h:...}`. Default `sluice`. */
    namespace: Name.default('sluice'),
    policies: z.record(Name, PolicyConfig).refine((p) => Object.keys(p).length > 0, 'define at least one policy'),
    /** Policy of requests no rule matches. Default: the first policy. */
    policy: PolicyRef.optional(),
    rules: z.array(RuleConfig).default([]),
    /** Default `ip`. */
    key: KeySpec.default('ip'),
    /**
     * Which `X-Forwarded-For` hops to believe: `false` (default: the socket address only), `true`
     * (every hop: the leftmost address), a number of proxy hops, or the proxies' addresses/CIDRs.
     */
    trustProxy: z.union([z.boolean(), z.number().int().nonnegative(), z.array(z.string().min(1))]).default(false),
    /** The signed-in user's id, or undefined for anonymous callers. */
    user: Fn.optional(),
    /** A header name holding the API key (default `x-api-key`) or a function of the request. */
    apiKey: z.union([z.string().min(1), Fn]).default('x-api-key'),
    /** The caller's tier. Default: `authenticated` when a user or API key is present, else `anonymous`. */
    tier: Fn.optional(),
    /** Weights of tiers in the fair queue of `queue` policies (priorities). Unlisted tiers weigh 1. */
    tierWeights: z.record(Name, z.number().positive().max(1e6)).default({}),
    /** Never limited: client keys (as `key` resolves them) and client address ranges (`10.0.0.0/8`, `::1`). */
    allowlist: z.object({ keys: z.array(z.string()).default([]), cidrs: z.array(z.string()).default([]) }).strict().default({ keys: [], cidrs: [] }),
    /** Header carrying the client's country for `country` rules, e.g. `cf-ipcountry`. */
    countryHeader: z.string().min(1).optional(),
    /** Default `closed`: no decision, no service (503). */
    failure: FailurePolicy.default('closed'),
    /** Longest wait for Redis per request before the failure policy applies. Default 500 ms. */
    timeoutMs: DurationInput.default(500),
    /** After a Redis failure, skip Redis for this long (circuit breaker) and apply the failure policy at once. Default 1 s. */
    breakerMs: DurationInput.default(1000),
    /** `RateLimit-Policy` / `RateLimit` (IETF draft) fields. Default true. */
    ietfHeaders: z.boolean().default(true),
    /** `X-RateLimit-Limit/Remaining/Reset` as well. Default false. */
    legacyHeaders: z.boolean().default(false),
  })
  .strict();
export type HttpLimiterConfigInput = z.input<typeof HttpLimiterConfig>;
export type HttpLimiterConfig = z.output<typeof HttpLimiterConfig>;

export interface HttpLimiterOptions extends HttpLimiterConfigInput {
  /** A URL, an ioredis Redis or Cluster instance, or `{ cluster: [urls] }`. Default: REDIS_URL. */
  redis?: RedisInput;
  logger?: Logger;
  /** Registry for the limiter's counters. Default: a registry of its own (`limiter.metrics.registry`). */
  registry?: Registry;
  /** The throttler that serves `queue` policies. Default: one created on the same Redis when a policy queues. */
  throttler?: Throttler;
  /**
   * The clock passed to the scripts (ms since the epoch). Default: none, Redis's own TIME decides.
   * For tests that must cross a window or a calendar day without waiting.
   */
  now?: () => number;
}

/** A policy as the scripts read it. */
export interface ResolvedPolicy {
  name: string;
  algorithm: Algorithm;
  rate: Rate;
  /** Script parameters a and b. */
  a: number;
  b: number;
  /** Requests per window as announced in `RateLimit-Policy` (q), and the window in seconds (w). */
  quota: number;
  windowSec: number;
  key: KeySpec | undefined;
  day: number | undefined;
  month: number | undefined;
  timeZone: string;
  block: { after: number; withinMs: number; forMs: number } | undefined;
  queue: { maxWaitMs: number } | undefined;
  failure: 'closed' | 'open';
}

export type RedisConnection = Redis | Cluster;

/** Parses the options once, at the boundary; InvalidConfigError names the field and the value. */
export function parseHttpLimiterConfig(input: unknown): { config: HttpLimiterConfig; policies: Map<string, ResolvedPolicy> } {
  const parsed = HttpLimiterConfig.safeParse(input);
  if (!parsed.success) throw new InvalidConfigError(`invalid http limiter options: ${describeIssues(parsed.error, input)}`);
  const config = parsed.data;
  const policies = new Map<string, ResolvedPolicy>();
  for (const [name, p] of Object.entries(config.policies)) {
    const rate = p.rate as Rate;
    const where = `invalid http limiter options: policies.${name}`;
    // `h:<policy>:<key>` must read one way only
    if (name.includes(':')) throw new InvalidConfigError(`${where}: a policy name cannot hold ":"`);
    if (!(rate.tokens >= 1)) throw new InvalidConfigError(`${where}.rate: must admit at least 1 request per interval (received ${rate.tokens}/${rate.intervalMs} ms)`);
    const windowed = p.algorithm === 'sliding-window' || p.algorithm === 'fixed-window';
    if (windowed && !Number.isInteger(rate.tokens)) throw new InvalidConfigError(`${where}.rate: a window takes a whole number of requests (received ${rate.tokens})`);
    if (windowed && p.burst !== undefined) throw new InvalidConfigError(`${where}.burst: ${p.algorithm} has no burst; the rate's count is the limit per window`);
    if (p.queue && (p.quota || p.block)) throw new InvalidConfigError(`${where}.queue: a queued policy is one shared, fair rate; quota and block do not apply to it, define them on another policy`);
    const burst = p.burst ?? (p.algorithm === 'gcra' ? 1 : Math.max(1, Math.floor(rate.tokens)));
    const perMs = rate.tokens / rate.intervalMs;
    let a: number;
    let b: number;
    if (p.algorithm === 'token-bucket') [a, b] = [burst, perMs];
    else if (p.algorithm === 'gcra') [a, b] = [burst, 1 / perMs];
    else [a, b] = [rate.tokens, rate.intervalMs];
    policies.set(name, {
      name,
      algorithm: p.algorithm,
      rate,
      a,
      b,
      // q requests per w whole seconds: the long-run rate, whatever the algorithm
      quota: rate.intervalMs < 1000 ? Math.floor(perMs * 1000) : rate.tokens,
      windowSec: Math.max(1, Math.round(rate.intervalMs / 1000)),
      key: p.key,
      day: p.quota?.day,
      month: p.quota?.month,
      timeZone: p.quota?.timeZone ?? 'UTC',
      block: p.block && { after: p.block.after, withinMs: p.block.within, forMs: p.block.for },
      queue: p.queue && { maxWaitMs: p.queue.maxWaitMs },
      failure: p.failure ?? config.failure,
    });
  }
  for (const ref of [config.policy, ...config.rules.map((r) => r.policy)]) checkPolicyRef(ref, policies, 'invalid http limiter options');
  const specs = [['key', config.key], ...[...policies.values()].map((p) => [`policies.${p.name}.key`, p.key] as const)] as const;
  for (const [where, spec] of specs) {
    if (typeof spec === 'string' && spec.startsWith('user') && !config.user) {
      throw new InvalidConfigError(`invalid http limiter options: ${where} is "${spec}" but no user option says who the user is: give user: (req) => id`);
    }
  }
  return { config, policies };
}

/** A policy reference names defined policies, and a tier map has a `default`. */
export function checkPolicyRef(ref: PolicyRef | undefined, policies: ReadonlyMap<string, ResolvedPolicy>, context: string): void {
  if (ref && typeof ref === 'object' && !Object.hasOwn(ref, 'default')) {
    throw new InvalidConfigError(`${context}: the tier map ${JSON.stringify(ref)} needs a "default" entry: the policy (or null) of tiers it does not list`);
  }
  const names = ref === undefined || ref === null ? [] : typeof ref === 'string' ? [ref] : Object.values(ref);
  for (const n of names) {
    if (n !== null && !policies.has(n)) throw new InvalidConfigError(`${context}: policy "${n}" is not defined under policies (defined: ${[...policies.keys()].join(', ')})`);
  }
}
