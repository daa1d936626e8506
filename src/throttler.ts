import { randomBytes } from 'node:crypto';
import { AdaptiveConfig, MAX_WAIT_MS, parseThrottlerConfig, type ThrottlerConfig, type ThrottlerConfigInput } from './config/schema.js';

type EndpointConfigOutput = ThrottlerConfig['endpoints'][string];
import { defaultBurst, tokensPerMs, type Rate } from './config/units.js';
import { InvalidConfigError, InvalidNameError, ThrottleTimeoutError, UnknownEndpointError } from './errors/index.js';
import { assertName, Keys, type KeyLayout } from './keys.js';
import { EventHub, type ThrottleListener } from './events.js';
import { EndpointLane, type Admission, type LaneRequest } from './lane.js';
import { nowMs } from './sleep.js';
import { rootLogger, type Logger } from './logger.js';
import { connect, type RedisInput } from './redis/connection.js';
import { defineScripts, run } from './redis/scripts.js';
import { OperatorControls, type AuditEntry, type ChangeOptions, type EndpointOverride } from './controls.js';
import { readEndpointStatus, type EndpointStatus } from './inspect.js';

export type { Admission };

export interface ThrottlerOptions extends ThrottlerConfigInput {
  /** A URL, an ioredis Redis or Cluster instance, or `{ cluster: [urls] }`. Default: REDIS_URL, then redis://127.0.0.1:6379. */
  redis?: RedisInput;
  /**
   * Where the keys live on a Redis Cluster. `'namespace'` (default): one hash tag per namespace,
   * so the whole namespace is one slot on one master. `'endpoint'`: one hash tag per endpoint, so
   * the endpoints spread over the masters; refused with a global cap or tenant budgets (a parent
   * bucket shared by endpoints must live in their slot), and runtime tenant budgets are refused
   * too. Every process of a namespace must use the same layout.
   */
  keyLayout?: KeyLayout;
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

interface ResolvedEndpoint {
  ratePerMs: number;
  burst: number;
  maxQueue: number;
  adaptive: string;
}

/** The adaptive settings as the scripts read them: 'factor,quietMs,step,minRate,maxHoldMs', rates in tokens/ms. */
function adaptiveSpec(adaptive: EndpointConfigOutput['adaptive'], ratePerMs: number): string {
  if (!adaptive) return '';
  const a = AdaptiveConfig.parse(adaptive === true ? {} : adaptive);
  return [a.decreaseFactor, a.quietMs, a.increase * ratePerMs, a.minFraction * ratePerMs, a.maxHoldMs ?? 64 * a.quietMs].join(',');
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
  private readonly configuredTenantBudgets = new Map<string, { ratePerMs: number; burst: number }>();
  private readonly global: { ratePerMs: number; burst: number } | undefined;
  private readonly defaultPriority: string;
  /** This process's config version (see ThrottlerConfig.configVersion). */
  readonly configVersion: number;
  private extraCalls = 0;
  /** Live-process counts of the namespace from recent heartbeats (policy 'local'). */
  private fleet: { size: number; at: number }[] = [];
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly events = new EventHub();
  private closing: Promise<void> | undefined;
  /** The lane request of an acquire without options. */
  private defaultRequest: LaneRequest | undefined;

  constructor(options: ThrottlerOptions) {
    const { redis, logger, keyLayout = 'namespace', ...rest } = options;
    this.config = parseThrottlerConfig(rest);
    if (keyLayout !== 'namespace' && keyLayout !== 'endpoint') throw new InvalidConfigError(`keyLayout must be 'namespace' or 'endpoint', received ${String(keyLayout)}`);
    if (keyLayout === 'endpoint' && (this.config.global || Object.keys(this.config.tenants).length > 0)) {
      throw new InvalidConfigError("keyLayout 'endpoint' puts each endpoint in its own Cluster slot, but this config has a global cap or tenant budgets, which endpoints share: use keyLayout 'namespace'");
    }
    this.keys = new Keys(this.config.namespace, keyLayout);
    this.configVersion = this.config.configVersion ?? Date.now();
    this.log = (logger ?? rootLogger()).child({ component: 'throttler', namespace: this.config.namespace });
    for (const [name, ep] of Object.entries(this.config.endpoints)) {
      const rate = ep.rate as Rate;
      this.endpointSettings.set(name, {
        ratePerMs: tokensPerMs(rate),
        burst: ep.burst ?? defaultBurst(rate),
        maxQueue: ep.maxQueue ?? this.config.maxQueue,
        adaptive: adaptiveSpec(ep.adaptive, tokensPerMs(rate)),
      });
    }
    for (const [tenant, b] of Object.entries(this.config.tenants)) {
      const rate = b.rate as Rate;
      this.configuredTenantBudgets.set(tenant, { ratePerMs: tokensPerMs(rate), burst: b.burst ?? defaultBurst(rate) });
    }
    if (this.config.global) {
      const rate = this.config.global.rate as Rate;
      this.global = { ratePerMs: tokensPerMs(rate), burst: this.config.global.burst ?? defaultBurst(rate) };
    }
    const priorities = Object.keys(this.config.priorities);
    this.defaultPriority = this.config.defaultPriority ?? (priorities.includes('normal') ? 'normal' : priorities[0]!);
    const conn = connect(redis, {}, this.log);
    this.redis = conn.redis;
    this.owned = conn.owned;
    defineScripts(this.redis, this.log);
    this.controls = new OperatorControls({
      redis: this.redis,
      keys: this.keys,
      log: this.log,
      events: this.events,
      priorities: this.config.priorities,
      configuredTenantBudgets: this.configuredTenantBudgets,
      checkEndpoint: (endpoint) => void this.settingsOf(endpoint),
    });
    if (this.owned) {
      // without a listener ioredis prints every reconnect error; the lanes log outages once per 5 s
      let lastLog = 0;
      this.redis.on('error', (err: Error) => {
        if (Date.now() - lastLog < 5_000) return;
        lastLog = Date.now();
        this.log.warn({ err: { message: err.message } }, 'Redis connection error');
      });
    }
    if (this.config.failurePolicy === 'local') void this.heartbeat();
  }

  /** Keeps this process counted among the live ones, so each knows its share if Redis goes away. */
  private async heartbeat(): Promise<void> {
    try {
      const size = await run<number>(this.redis, 'heartbeat', [this.keys.live()], [this.owner, this.config.leaseMs]);
      const now = Date.now();
      this.fleet = [...this.fleet.filter((f) => now - f.at <= this.config.leaseMs), { size: Math.max(1, Number(size)), at: now }];
    } catch {
      // the lease simply runs out; acquire logs the outage
    }
    if (this.closing) return;
    // often: a process that joined since is only counted in others' shares after their next beat
    this.heartbeatTimer = setTimeout(() => void this.heartbeat(), Math.min(1_000, this.config.leaseMs / 3));
    this.heartbeatTimer.unref();
  }

  /**
   * Doorman-style leased share: rate / live processes, valid for leaseMs after the last heartbeat.
   * The count is the largest seen within a lease: a process that joins shrinks everyone's share at
   * their next beat, but a count that drops (a process died, or a restarted Redis has not heard
   * from everyone yet) only grows the share once the lease has passed.
   */
  private localShare(ratePerMs: number, burst: number): { ratePerMs: number; burst: number } | undefined {
    const now = Date.now();
    const recent = this.fleet.filter((f) => now - f.at <= this.config.leaseMs);
    if (recent.length === 0) return undefined;
    const size = Math.max(...recent.map((f) => f.size));
    return { ratePerMs: ratePerMs / size, burst: Math.max(1, burst / size) };
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
        configVersion: this.configVersion,
        horizonMs: this.config.horizonMs,
        leaseMs: this.config.leaseMs,
        lateToleranceMs: this.config.lateToleranceMs,
        global: this.global,
        logger: this.log.child({ endpoint }),
        events: this.events,
        failurePolicy: this.config.failurePolicy,
        localShare: (rate, burst) => this.localShare(rate, burst),
        audit: (entry) => {
          void this.controls.record(entry).catch((err: unknown) => this.log.warn({ err }, 'could not write an audit entry'));
        },
      });
      if (this.config.failurePolicy === 'open') this.log.warn({ endpoint }, 'failure policy is open: if Redis goes away, this process admits without limit');
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
  acquire(endpoint: string, options?: AcquireOptions): Promise<Admission> {
    // not async: that would wrap the lane's promise in one more (and two more microtask turns) per
    // acquire; a bad argument still rejects, never throws
    try {
      const lane = this.lane(endpoint);
      // every option at its default: the same request each time (the lane never changes one)
      if (options === undefined) return lane.acquire((this.defaultRequest ??= this.request({})));
      return lane.acquire(this.request(options));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** An acquire's options, checked and resolved for the lane. */
  private request(options: AcquireOptions): LaneRequest {
    const priority = options.priority ?? this.defaultPriority;
    const weight = Object.hasOwn(this.config.priorities, priority) ? this.config.priorities[priority] : undefined;
    if (weight === undefined) {
      throw new InvalidNameError(`unknown priority "${priority}": use one of ${Object.keys(this.config.priorities).join(', ')}`);
    }
    const tenant = options.tenant === undefined ? this.config.defaultTenant : assertName('tenant', options.tenant);
    const cost = options.cost ?? 1;
    if (!(typeof cost === 'number' && cost > 0 && Number.isFinite(cost))) {
      throw new InvalidConfigError(`cost must be a positive number of tokens, received ${String(cost)}`);
    }
    const maxWaitMs = options.maxWaitMs;
    if (maxWaitMs !== undefined && !(typeof maxWaitMs === 'number' && maxWaitMs >= 0 && (maxWaitMs <= MAX_WAIT_MS || maxWaitMs === Infinity))) {
      throw new InvalidConfigError(`maxWaitMs must be a number of ms from 0 to ${MAX_WAIT_MS} (about 24.8 days, the longest a timer holds) or Infinity for no limit, received ${String(maxWaitMs)}`);
    }
    return {
      cost,
      maxWaitMs: maxWaitMs === Infinity ? undefined : maxWaitMs,
      tenant,
      priority,
      weight,
      tenantBudget: this.configuredTenantBudgets.get(tenant),
      signal: options.signal,
    };
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
    // known here at once: a failure policy 'local' honours it even if Redis does not answer
    this.lane(endpoint).notePause(nowMs() + retryAfterMs);
    this.extraCalls++;
    const [pausedUntil, , before, after] = await run<string[]>(this.redis, 'penalize', [this.keys.config(endpoint), this.keys.bucket(endpoint)], [s.ratePerMs, s.burst, retryAfterMs, s.adaptive, '', this.configVersion]);
    this.log.warn({ endpoint, retryAfterMs, reason: options.reason }, 'endpoint penalized: paused fleet-wide');
    if (before !== after) {
      this.log.warn({ endpoint, fromPerSec: Number(before) * 1000, toPerSec: Number(after) * 1000, reason: options.reason ?? 'penalty' }, 'adaptive rate cut');
    }
    this.events.emit({ type: 'penalized', endpoint, retryAfterMs, reason: options.reason });
    return { pausedUntil: Number(pausedUntil) };
  }

  /** Operators' runtime controls and their audit log (src/controls.ts). */
  private readonly controls: OperatorControls;

  /**
   * Changes an endpoint at runtime for the whole fleet; every worker follows on its next acquire.
   * Kept in Redis for 30 days after the last change, or only `ttlMs` when given (a temporary
   * override for emergencies, which then falls back to the permanent values).
   */
  configure(endpoint: string, patch: EndpointOverride, options: ChangeOptions & { ttlMs?: number } = {}): Promise<void> {
    return this.controls.configure(endpoint, patch, options);
  }
  /** Drops every runtime override of an endpoint: the config file's values apply again. */
  resetOverrides(endpoint: string, options: ChangeOptions = {}): Promise<void> {
    return this.controls.resetOverrides(endpoint, options);
  }
  /** Stops admissions on an endpoint (for `durationMs`, or until resumed); callers queue or time out. */
  pause(endpoint: string, options: ChangeOptions & { durationMs?: number; reason?: string } = {}): Promise<void> {
    return this.controls.pause(endpoint, options);
  }
  resume(endpoint: string, options: ChangeOptions = {}): Promise<void> {
    return this.controls.resume(endpoint, options);
  }
  /** Dry-run (shadow mode): admit everything at once and count what would have waited. */
  setDryRun(endpoint: string, enabled: boolean, options: ChangeOptions = {}): Promise<void> {
    return this.controls.setDryRun(endpoint, enabled, options);
  }
  /** A shadow limit evaluated beside the real one, to preview a change before applying it; null removes it. */
  setShadow(endpoint: string, limit: { rate: string | Rate; burst?: number } | null, options: ChangeOptions = {}): Promise<void> {
    return this.controls.setShadow(endpoint, limit, options);
  }
  /** Allowlists a tenant on an endpoint (for `ttlMs`, or until removed with null): its calls go at once, charged to nobody. */
  setBypass(endpoint: string, tenant: string, grant: { ttlMs?: number } | null, options: ChangeOptions = {}): Promise<void> {
    return this.controls.setBypass(endpoint, tenant, grant, options);
  }
  /**
   * Sets a tenant's budget over all endpoints at runtime (null: back to the config file's), for
   * the whole fleet on its next acquire. Kept in Redis for 30 days after the last change.
   */
  setTenantBudget(tenant: string, budget: { rate: string | Rate; burst?: number } | null, options: ChangeOptions = {}): Promise<void> {
    return this.controls.setTenantBudget(tenant, budget, options);
  }
  /** Tenant budgets in force: the config file's, with operators' runtime changes on top (per second). */
  tenantBudgets(): Promise<Record<string, { ratePerSec: number; burst: number; source: 'config' | 'runtime' }>> {
    return this.controls.tenantBudgets();
  }
  /** The newest operator changes first. */
  auditLog(limit = 100): Promise<AuditEntry[]> {
    return this.controls.auditLog(limit);
  }


  /** The endpoint as Redis holds it now, fleet-wide. */
  async inspect(endpoint: string): Promise<EndpointStatus> {
    const s = this.settingsOf(endpoint);
    this.extraCalls++;
    return readEndpointStatus(this.redis, this.keys, endpoint, s, this.configVersion);
  }

  /** Gives back every ticket and future slot this process holds, rejects their callers, closes the connection if Sluice opened it. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearTimeout(this.heartbeatTimer);
      await Promise.all([...this.lanes.values()].map((l) => l.close()));
      if (this.fleet.length) await this.redis.zrem(this.keys.live(), this.owner).catch(() => undefined);
      for (const key of new Set([...this.lanes.keys()].map((e) => this.keys.leases(e)))) await this.redis.zrem(key, this.owner).catch(() => undefined);
      if (this.owned) await this.redis.quit().catch(() => this.redis.disconnect());
    })();
    return this.closing;
  }
}

/** Creates a throttler; validates the config at once (InvalidConfigError names the field and the value). */
export function createThrottler(options: ThrottlerOptions): Throttler {
  return new Throttler(options);
}
