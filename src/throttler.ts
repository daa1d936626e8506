import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { parseThrottlerConfig, describeIssues, RateInput, type ThrottlerConfig, type ThrottlerConfigInput } from './config/schema.js';
import { tokensPerMs, type Rate } from './config/units.js';
import { InvalidConfigError, InvalidNameError, ThrottleTimeoutError, UnknownEndpointError } from './errors/index.js';
import { assertName, Keys } from './keys.js';
import { EventHub, type ThrottleListener } from './events.js';
import { EndpointLane, type Admission } from './lane.js';
import { rootLogger, type Logger } from './logger.js';
import { connect, type RedisInput } from './redis/connection.js';
import { defineScripts, run } from './redis/scripts.js';

export type { Admission };

export interface ThrottlerOptions extends ThrottlerConfigInput {
  /** A URL, an ioredis Redis or Cluster instance, or `{ cluster: [urls] }`. Default: REDIS_URL, then redis://127.0.0.1:6379. */
  redis?: RedisInput;
  /** A pino logger; the throttler logs through a child `{ component: 'throttler', namespace }`. */
  logger?: Logger;
}

export interface AcquireOptions {
  /** A priority name from the config; its weight sets the share under contention. Default: the config's defaultPriority. */
  priority?: string;
  /** The tenant the request is made for: a fairness class of its own, and its budget if one is configured. Default `default`. */
  tenant?: string;
  /** Tokens this request takes. Default 1. */
  cost?: number;
  /** Longest acceptable wait; refused up front with ThrottleTimeoutError when the expected wait is longer. Default: no limit. */
  maxWaitMs?: number;
  /** Aborting gives the place (ticket or reserved slot) back and rejects with AbortError. */
  signal?: AbortSignal;
}

/** Runtime change to an endpoint, kept in Redis so every worker follows it on its next acquire. */
export const EndpointOverride = z
  .object({
    rate: RateInput.optional(),
    burst: z.number().positive().max(1e9).optional(),
    maxQueue: z.number().int().positive().max(1e7).optional(),
    weights: z.record(z.string(), z.number().positive().max(1e6)).optional(),
  })
  .strict();
export type EndpointOverride = z.input<typeof EndpointOverride>;

/** How long an operator's override stays in Redis after its last change. */
export const OVERRIDE_TTL_MS = 30 * 24 * 3600 * 1000;

/** A picture of one endpoint, fleet-wide, as Redis holds it now. */
export interface EndpointStatus {
  endpoint: string;
  configured: { ratePerSec: number; burst: number; maxQueue: number };
  effective: { ratePerSec: number; burst: number; maxQueue: number };
  tokens: number;
  queued: number;
  queuedByClass: Record<string, number>;
  pausedUntil: number | null;
  counters: { admitted: number; queued: number; timeouts: number; queueFull: number; dropped: number; penalties: number };
  overrides: Record<string, string>;
  /** Remaining TTLs (ms) of the bucket, queue and class keys; -2 when the key does not exist. */
  ttls: { bucket: number; queue: number; classes: number };
}

interface ResolvedEndpoint {
  ratePerMs: number;
  burst: number;
  maxQueue: number;
}

function defaultBurst(rate: Rate): number {
  return Math.max(1, rate.tokens);
}

export class Throttler {
  readonly config: ThrottlerConfig;
  readonly keys: Keys;
  /** This process's id in Redis (owner of its tickets). */
  readonly owner = randomBytes(8).toString('hex');
  readonly redis;
  private readonly owned: boolean;
  private readonly log: Logger;
  private readonly lanes = new Map<string, EndpointLane>();
  private readonly endpointSettings = new Map<string, ResolvedEndpoint>();
  private readonly tenantBudgets = new Map<string, { ratePerMs: number; burst: number }>();
  private readonly global: { ratePerMs: number; burst: number } | undefined;
  private readonly defaultPriority: string;
  private extraCalls = 0;
  private readonly events = new EventHub();
  private closing: Promise<void> | undefined;

  constructor(options: ThrottlerOptions) {
    const { redis, logger, ...rest } = options;
    this.config = parseThrottlerConfig(rest);
    this.keys = new Keys(this.config.namespace);
    this.log = (logger ?? rootLogger()).child({ component: 'throttler', namespace: this.config.namespace });
    for (const [name, ep] of Object.entries(this.config.endpoints)) {
      const rate = ep.rate as Rate;
      this.endpointSettings.set(name, {
        ratePerMs: tokensPerMs(rate),
        burst: ep.burst ?? defaultBurst(rate),
        maxQueue: ep.maxQueue ?? this.config.maxQueue,
      });
    }
    for (const [tenant, b] of Object.entries(this.config.tenants)) {
      const rate = b.rate as Rate;
      this.tenantBudgets.set(tenant, { ratePerMs: tokensPerMs(rate), burst: b.burst ?? defaultBurst(rate) });
    }
    if (this.config.global) {
      const rate = this.config.global.rate as Rate;
      this.global = { ratePerMs: tokensPerMs(rate), burst: this.config.global.burst ?? defaultBurst(rate) };
    }
    const priorities = Object.keys(this.config.priorities);
    this.defaultPriority = this.config.defaultPriority ?? (priorities.includes('normal') ? 'normal' : priorities[0]!);
    const conn = connect(redis);
    this.redis = conn.redis;
    this.owned = conn.owned;
    defineScripts(this.redis);
  }

  /** Subscribes to every decision that matters (admissions, refusals, penalties, config changes, Redis calls). Returns the unsubscribe function. */
  onEvent(listener: ThrottleListener): () => void {
    return this.events.on(listener);
  }

  /** Names of the configured endpoints. */
  get endpoints(): string[] {
    return [...this.endpointSettings.keys()];
  }

  /** Script calls this process has made (acquire, cancel, penalize, inspect), for efficiency figures. */
  get calls(): number {
    let n = this.extraCalls;
    for (const lane of this.lanes.values()) n += lane.calls;
    return n;
  }

  private settingsOf(endpoint: string): ResolvedEndpoint {
    const s = this.endpointSettings.get(endpoint);
    if (!s) throw new UnknownEndpointError(endpoint, this.endpoints);
    return s;
  }

  private lane(endpoint: string): EndpointLane {
    let lane = this.lanes.get(endpoint);
    if (!lane) {
      const s = this.settingsOf(endpoint);
      lane = new EndpointLane(this.redis, {
        endpoint,
        keys: this.keys,
        owner: this.owner,
        ...s,
        horizonMs: this.config.horizonMs,
        leaseMs: this.config.leaseMs,
        global: this.global,
        logger: this.log.child({ endpoint }),
        events: this.events,
      });
      this.lanes.set(endpoint, lane);
    }
    return lane;
  }

  /**
   * Resolves when the caller may send its request to `endpoint`. Never rejects because tokens are
   * short: the caller waits its turn. Rejects with ThrottleTimeoutError (expected wait passes
   * maxWaitMs), QueueFullError, AbortError, UnknownEndpointError, CostAboveBurstError,
   * RedisUnavailableError or ThrottlerClosedError.
   */
  async acquire(endpoint: string, options: AcquireOptions = {}): Promise<Admission> {
    const lane = this.lane(endpoint);
    const priority = options.priority ?? this.defaultPriority;
    const weight = this.config.priorities[priority];
    if (weight === undefined) {
      throw new InvalidNameError(`unknown priority "${priority}": use one of ${Object.keys(this.config.priorities).join(', ')}`);
    }
    const tenant = options.tenant === undefined ? this.config.defaultTenant : assertName('tenant', options.tenant);
    const cost = options.cost ?? 1;
    if (!(typeof cost === 'number' && cost > 0 && Number.isFinite(cost))) {
      throw new InvalidConfigError(`cost must be a positive number of tokens, received ${String(cost)}`);
    }
    const maxWaitMs = options.maxWaitMs;
    if (maxWaitMs !== undefined && !(typeof maxWaitMs === 'number' && maxWaitMs >= 0)) {
      throw new InvalidConfigError(`maxWaitMs must be a number of ms >= 0, received ${String(maxWaitMs)}`);
    }
    return lane.acquire({
      cost,
      maxWaitMs: maxWaitMs === Infinity ? undefined : maxWaitMs,
      tenant,
      priority,
      weight,
      tenantBudget: this.tenantBudgets.get(tenant),
      signal: options.signal,
    });
  }

  /** Admits only if no wait is needed; never queues. Resolves true when admitted. */
  async tryAcquire(endpoint: string, options: Omit<AcquireOptions, 'maxWaitMs' | 'signal'> = {}): Promise<boolean> {
    try {
      await this.acquire(endpoint, { ...options, maxWaitMs: 0 });
      return true;
    } catch (err) {
      if (err instanceof ThrottleTimeoutError) return false;
      throw err;
    }
  }

  /**
   * The upstream pushed back (429, captcha): pause `endpoint` fleet-wide for `retryAfterMs`
   * (rounded up, never down). Other endpoints keep going.
   */
  async penalize(endpoint: string, options: { retryAfterMs: number; reason?: string }): Promise<{ pausedUntil: number }> {
    const s = this.settingsOf(endpoint);
    const retryAfterMs = Math.ceil(options.retryAfterMs);
    if (!(retryAfterMs >= 0 && Number.isFinite(retryAfterMs))) {
      throw new InvalidConfigError(`retryAfterMs must be a finite number of ms >= 0, received ${String(options.retryAfterMs)}`);
    }
    this.extraCalls++;
    const [pausedUntil] = await run<string[]>(this.redis, 'penalize', [this.keys.config(endpoint), this.keys.bucket(endpoint)], [s.ratePerMs, s.burst, retryAfterMs]);
    this.log.warn({ endpoint, retryAfterMs, reason: options.reason }, 'endpoint penalized: paused fleet-wide');
    this.events.emit({ type: 'penalized', endpoint, retryAfterMs, reason: options.reason });
    return { pausedUntil: Number(pausedUntil) };
  }

  /** Changes an endpoint at runtime for the whole fleet (kept in Redis for 30 days after the last change). */
  async configure(endpoint: string, patch: EndpointOverride): Promise<void> {
    this.settingsOf(endpoint);
    const parsed = EndpointOverride.safeParse(patch);
    if (!parsed.success) throw new InvalidConfigError(`invalid override for "${endpoint}": ${describeIssues(parsed.error, patch)}`);
    const fields: Record<string, string> = {};
    const p = parsed.data;
    if (p.rate) fields.rate = String(tokensPerMs(p.rate as Rate));
    if (p.burst !== undefined) fields.burst = String(p.burst);
    if (p.maxQueue !== undefined) fields.maxQueue = String(p.maxQueue);
    for (const [priority, w] of Object.entries(p.weights ?? {})) {
      if (!(priority in this.config.priorities)) throw new InvalidConfigError(`invalid override for "${endpoint}": unknown priority "${priority}"`);
      fields[`w:${priority}`] = String(w);
    }
    if (Object.keys(fields).length === 0) return;
    const key = this.keys.config(endpoint);
    const before = await this.redis.hgetall(key);
    await this.redis.multi().hset(key, fields).pexpire(key, OVERRIDE_TTL_MS).exec();
    this.log.info({ endpoint, before, after: { ...before, ...fields } }, 'endpoint config changed');
  }

  /** Drops every runtime override of an endpoint: the config file's values apply again. */
  async resetOverrides(endpoint: string): Promise<void> {
    this.settingsOf(endpoint);
    await this.redis.del(this.keys.config(endpoint));
    this.log.info({ endpoint }, 'endpoint overrides reset');
  }

  /** The endpoint as Redis holds it now, fleet-wide. */
  async inspect(endpoint: string): Promise<EndpointStatus> {
    const s = this.settingsOf(endpoint);
    const k = this.keys;
    this.extraCalls++;
    const r = await run<unknown[]>(this.redis, 'inspect', [k.config(endpoint), k.bucket(endpoint), k.queue(endpoint), k.classes(endpoint)], [s.ratePerMs, s.burst, s.maxQueue]);
    const num = (i: number) => Number(r[i]);
    const pairs = (v: unknown): Record<string, string> => {
      const arr = v as string[];
      const out: Record<string, string> = {};
      for (let i = 0; i < arr.length; i += 2) out[arr[i]!] = arr[i + 1]!;
      return out;
    };
    const now = num(0);
    const pausedUntil = num(9) > now ? num(9) : null;
    const ttls = r[18] as number[];
    return {
      endpoint,
      configured: { ratePerSec: s.ratePerMs * 1000, burst: s.burst, maxQueue: s.maxQueue },
      effective: { ratePerSec: num(2) * 1000, burst: num(3), maxQueue: num(4) },
      tokens: num(1),
      queued: num(6),
      queuedByClass: Object.fromEntries(Object.entries(pairs(r[17])).map(([c, n]) => [c, Number(n)])),
      pausedUntil,
      counters: { admitted: num(10), queued: num(11), timeouts: num(12), queueFull: num(13), dropped: num(14), penalties: num(15) },
      overrides: pairs(r[16]),
      ttls: { bucket: ttls[0]!, queue: ttls[1]!, classes: ttls[2]! },
    };
  }

  /** Gives back every ticket and future slot this process holds, rejects their callers, closes the connection if Sluice opened it. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.lanes.values()].map((l) => l.close()));
      await this.redis.del(this.keys.owner(this.owner)).catch(() => undefined);
      if (this.owned) await this.redis.quit().catch(() => this.redis.disconnect());
    })();
    return this.closing;
  }
}

/** Creates a throttler; validates the config at once (InvalidConfigError names the field and the value). */
export function createThrottler(options: ThrottlerOptions): Throttler {
  return new Throttler(options);
}
