import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { AdaptiveConfig, MAX_WAIT_MS, parseThrottlerConfig, describeIssues, RateInput, type ThrottlerConfig, type ThrottlerConfigInput } from './config/schema.js';

type EndpointConfigOutput = ThrottlerConfig['endpoints'][string];
import { tokensPerMs, type Rate } from './config/units.js';
import { InvalidConfigError, InvalidNameError, ThrottleTimeoutError, UnknownEndpointError } from './errors/index.js';
import { assertName, Keys, type KeyLayout } from './keys.js';
import { EventHub, type ThrottleListener } from './events.js';
import { EndpointLane, type Admission } from './lane.js';
import { nowMs } from './sleep.js';
import { rootLogger, type Logger } from './logger.js';
import { connect, type RedisInput } from './redis/connection.js';
import { defineScripts, run } from './redis/scripts.js';

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

/** Runtime change to an endpoint, kept in Redis so every worker follows it on its next acquire. */
export const EndpointOverride = z
  .object({
    rate: RateInput.optional(),
    burst: z.number().min(1, 'burst must be at least 1 (a smaller bucket could never admit a request of cost 1)').max(1e9).optional(),
    maxQueue: z.number().int().positive().max(1e7).optional(),
    weights: z.record(z.string(), z.number().positive().max(1e6)).optional(),
  })
  .strict();
export type EndpointOverride = z.input<typeof EndpointOverride>;

/** How long an operator's override stays in Redis after its last change. */
export const OVERRIDE_TTL_MS = 30 * 24 * 3600 * 1000;
const AUDIT_LENGTH = 1000;

/** Who makes a change, for the audit log. */
export interface ChangeOptions {
  actor?: string;
}

/** One operator change: who, what, before, after. */
export interface AuditEntry {
  at: number;
  actor: string;
  endpoint: string;
  change: string;
  before: Record<string, string>;
  after: Record<string, string>;
}

/** A picture of one endpoint, fleet-wide, as Redis holds it now. */
export interface EndpointStatus {
  endpoint: string;
  configured: { ratePerSec: number; burst: number; maxQueue: number };
  effective: { ratePerSec: number; burst: number; maxQueue: number };
  tokens: number;
  queued: number;
  queuedByClass: Record<string, number>;
  pausedUntil: number | null;
  counters: {
    admitted: number;
    queued: number;
    timeouts: number;
    queueFull: number;
    /** Tickets of dead processes dropped from the queue. */
    dropped: number;
    penalties: number;
    /** In dry-run: admissions that would have waited. */
    wouldWait: number;
    /** Admissions of allowlisted tenants. */
    bypassed: number;
  };
  /** Operator pause: until when (ms since the epoch; Infinity = until resumed), or null. */
  paused: number | null;
  dryRun: boolean;
  /** A previewed limit and how many admissions would have waited under it. */
  shadow: { ratePerSec: number; burst: number; wouldWait: number } | null;
  /** Allowlisted tenants. */
  bypass: string[];
  /** A temporary override in force: until when (ms since the epoch). */
  temporaryUntil: number | null;
  /** Adaptive mode's state, when the endpoint has learned a rate: the effective rate is `effective.ratePerSec`. */
  adaptive: { ratePerSec: number; ceilingPerSec: number; lastPenaltyAt: number | null; lastRaiseAt: number | null } | null;
  overrides: Record<string, string>;
  /** Remaining TTLs (ms) of the bucket, queue and class keys; -2 when the key does not exist. */
  ttls: { bucket: number; queue: number; classes: number };
}

interface ResolvedEndpoint {
  ratePerMs: number;
  burst: number;
  maxQueue: number;
  adaptive: string;
}

/** The AIMD settings as the scripts read them: 'factor,quietMs,step,minRate' in tokens/ms. */
function adaptiveSpec(adaptive: EndpointConfigOutput['adaptive'], ratePerMs: number): string {
  if (!adaptive) return '';
  const a = AdaptiveConfig.parse(adaptive === true ? {} : adaptive);
  return [a.decreaseFactor, a.quietMs, a.increase * ratePerMs, a.minFraction * ratePerMs].join(',');
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
    defineScripts(this.redis);
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
          void this.redis.multi().lpush(this.keys.audit(), entry).ltrim(this.keys.audit(), 0, AUDIT_LENGTH - 1).pexpire(this.keys.audit(), OVERRIDE_TTL_MS).exec()
            .catch((err: unknown) => this.log.warn({ err }, 'could not write an audit entry'));
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
  async acquire(endpoint: string, options: AcquireOptions = {}): Promise<Admission> {
    const lane = this.lane(endpoint);
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
    return lane.acquire({
      cost,
      maxWaitMs: maxWaitMs === Infinity ? undefined : maxWaitMs,
      tenant,
      priority,
      weight,
      tenantBudget: this.configuredTenantBudgets.get(tenant),
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

  /** Redis time in ms: every expiry the scripts compare against is in Redis time. */
  private async redisNow(): Promise<number> {
    const [sec, usec] = await this.redis.time();
    return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  }

  /**
   * Applies one operator change to an endpoint's override hash and writes the audit entry in the
   * same transaction: who, what, before, after.
   */
  private async change(endpoint: string, actor: string | undefined, change: string, set: Record<string, string>, del: string[] = []): Promise<void> {
    this.settingsOf(endpoint);
    const key = this.keys.config(endpoint);
    const before = await this.redis.hgetall(key);
    const after = { ...before, ...set };
    for (const f of del) delete after[f];
    const entry: AuditEntry = { at: Date.now(), actor: actor ?? 'unknown', endpoint, change, before, after };
    const tx = this.redis.multi();
    if (del.length) tx.hdel(key, ...del);
    if (Object.keys(set).length) tx.hset(key, set);
    tx.pexpire(key, OVERRIDE_TTL_MS);
    // layout 'endpoint': the audit log is in the namespace's slot, not the endpoint's: a second transaction
    const audit = this.keys.layout === 'endpoint' ? this.redis.multi() : tx;
    audit.lpush(this.keys.audit(), JSON.stringify(entry)).ltrim(this.keys.audit(), 0, AUDIT_LENGTH - 1).pexpire(this.keys.audit(), OVERRIDE_TTL_MS);
    await tx.exec();
    if (audit !== tx) await audit.exec();
    this.log.info({ endpoint, actor: entry.actor, change, before, after }, 'endpoint config changed');
    this.events.emit({ type: 'config-changed', endpoint, actor: entry.actor, change, before, after });
  }

  /**
   * Changes an endpoint at runtime for the whole fleet; every worker follows on its next acquire.
   * Kept in Redis for 30 days after the last change, or only `ttlMs` when given (a temporary
   * override for emergencies, which then falls back to the permanent values).
   */
  async configure(endpoint: string, patch: EndpointOverride, options: ChangeOptions & { ttlMs?: number } = {}): Promise<void> {
    this.settingsOf(endpoint);
    const parsed = EndpointOverride.safeParse(patch);
    if (!parsed.success) throw new InvalidConfigError(`invalid override for "${endpoint}": ${describeIssues(parsed.error, patch)}`);
    const fields: Record<string, string> = {};
    const p = parsed.data;
    if (p.rate) fields.rate = String(tokensPerMs(p.rate as Rate));
    if (p.burst !== undefined) fields.burst = String(p.burst);
    if (p.maxQueue !== undefined) fields.maxQueue = String(p.maxQueue);
    for (const [priority, w] of Object.entries(p.weights ?? {})) {
      if (!Object.hasOwn(this.config.priorities, priority)) throw new InvalidConfigError(`invalid override for "${endpoint}": unknown priority "${priority}"`);
      fields[`w:${priority}`] = String(w);
    }
    if (Object.keys(fields).length === 0) return;
    const { ttlMs } = options;
    if (ttlMs === undefined) return this.change(endpoint, options.actor, 'configure', fields);
    if (!(ttlMs > 0 && Number.isFinite(ttlMs))) throw new InvalidConfigError(`ttlMs must be a positive number of ms, received ${String(ttlMs)}`);
    const temporary: Record<string, string> = { 'tmp:until': String((await this.redisNow()) + ttlMs) };
    for (const [f, v] of Object.entries(fields)) temporary[`tmp:${f}`] = v;
    // a new temporary override replaces the previous one whole
    const stale = Object.keys(await this.redis.hgetall(this.keys.config(endpoint))).filter((f) => f.startsWith('tmp:') && !(f in temporary));
    return this.change(endpoint, options.actor, `configure for ${ttlMs} ms`, temporary, stale);
  }

  /** Drops every runtime override of an endpoint: the config file's values apply again. */
  async resetOverrides(endpoint: string, options: ChangeOptions = {}): Promise<void> {
    const fields = Object.keys(await this.redis.hgetall(this.keys.config(this.checked(endpoint))));
    if (fields.length) await this.change(endpoint, options.actor, 'reset overrides', {}, fields);
  }

  /** Stops admissions on an endpoint (for `durationMs`, or until resumed); callers queue or time out. */
  async pause(endpoint: string, options: ChangeOptions & { durationMs?: number; reason?: string } = {}): Promise<void> {
    const { durationMs } = options;
    if (durationMs !== undefined && !(durationMs > 0 && Number.isFinite(durationMs))) {
      throw new InvalidConfigError(`durationMs must be a positive number of ms, received ${String(durationMs)}`);
    }
    const until = durationMs === undefined ? 'inf' : String((await this.redisNow()) + Math.ceil(durationMs));
    await this.change(endpoint, options.actor, `pause${durationMs ? ` for ${durationMs} ms` : ''}${options.reason ? `: ${options.reason}` : ''}`, { paused: until });
  }

  async resume(endpoint: string, options: ChangeOptions = {}): Promise<void> {
    await this.change(endpoint, options.actor, 'resume', {}, ['paused']);
  }

  /** Dry-run (shadow mode): admit everything at once and count what would have waited. */
  async setDryRun(endpoint: string, enabled: boolean, options: ChangeOptions = {}): Promise<void> {
    if (enabled) await this.change(endpoint, options.actor, 'dry-run on', { dryRun: '1' });
    else await this.change(endpoint, options.actor, 'dry-run off', {}, ['dryRun']);
  }

  /** A shadow limit evaluated beside the real one, to preview a change before applying it; null removes it. */
  async setShadow(endpoint: string, limit: { rate: string | Rate; burst?: number } | null, options: ChangeOptions = {}): Promise<void> {
    if (limit === null) return this.change(endpoint, options.actor, 'shadow limit removed', {}, ['shadow:rate', 'shadow:burst']);
    const parsed = RateInput.safeParse(limit.rate);
    if (!parsed.success) throw new InvalidConfigError(`invalid shadow limit for "${endpoint}": ${describeIssues(parsed.error, limit.rate)}`);
    const rate = parsed.data as Rate;
    const burst = limit.burst ?? defaultBurst(rate);
    if (!(burst > 0)) throw new InvalidConfigError(`invalid shadow limit for "${endpoint}": burst must be > 0, received ${burst}`);
    await this.change(endpoint, options.actor, 'shadow limit', { 'shadow:rate': String(tokensPerMs(rate)), 'shadow:burst': String(burst) });
  }

  /** Allowlists a tenant on an endpoint (for `ttlMs`, or until removed with null): its calls go at once, charged to nobody. */
  async setBypass(endpoint: string, tenant: string, grant: { ttlMs?: number } | null, options: ChangeOptions = {}): Promise<void> {
    assertName('tenant', tenant);
    const field = `bypass:${tenant}`;
    if (grant === null) return this.change(endpoint, options.actor, `bypass removed for ${tenant}`, {}, [field]);
    const { ttlMs } = grant;
    if (ttlMs !== undefined && !(ttlMs > 0 && Number.isFinite(ttlMs))) throw new InvalidConfigError(`ttlMs must be a positive number of ms, received ${String(ttlMs)}`);
    const until = ttlMs === undefined ? 'inf' : String((await this.redisNow()) + ttlMs);
    await this.change(endpoint, options.actor, `bypass for ${tenant}${ttlMs ? ` for ${ttlMs} ms` : ''}`, { [field]: until });
  }

  /**
   * Sets a tenant's budget over all endpoints at runtime (null: back to the config file's), for
   * the whole fleet on its next acquire. Kept in Redis for 30 days after the last change.
   */
  async setTenantBudget(tenant: string, budget: { rate: string | Rate; burst?: number } | null, options: ChangeOptions = {}): Promise<void> {
    assertName('tenant', tenant);
    if (this.keys.layout === 'endpoint') {
      throw new InvalidConfigError("tenant budgets are shared by endpoints, which keyLayout 'endpoint' puts in separate Cluster slots: use keyLayout 'namespace' to set them");
    }
    const key = this.keys.tenantConfig();
    const before = await this.redis.hget(key, tenant);
    let after: string | null = null;
    if (budget !== null) {
      const parsed = RateInput.safeParse(budget.rate);
      if (!parsed.success) throw new InvalidConfigError(`invalid budget for tenant "${tenant}": ${describeIssues(parsed.error, budget.rate)}`);
      const rate = parsed.data as Rate;
      const burst = budget.burst ?? defaultBurst(rate);
      if (!(burst >= 1 && burst <= 1e9)) throw new InvalidConfigError(`invalid budget for tenant "${tenant}": burst must be a number from 1 to 1e9, received ${String(budget.burst)}`);
      after = `${tokensPerMs(rate)},${burst}`;
    }
    const tx = this.redis.multi();
    if (after === null) tx.hdel(key, tenant);
    else tx.hset(key, tenant, after).pexpire(key, OVERRIDE_TTL_MS);
    const entry: AuditEntry = {
      at: Date.now(), actor: options.actor ?? 'unknown', endpoint: '*', change: after === null ? `tenant budget reset for ${tenant}` : `tenant budget for ${tenant}`,
      before: before === null ? {} : { [`tenant:${tenant}`]: before }, after: after === null ? {} : { [`tenant:${tenant}`]: after },
    };
    tx.lpush(this.keys.audit(), JSON.stringify(entry)).ltrim(this.keys.audit(), 0, AUDIT_LENGTH - 1).pexpire(this.keys.audit(), OVERRIDE_TTL_MS);
    await tx.exec();
    this.log.info({ tenant, actor: entry.actor, before, after }, 'tenant budget changed');
    this.events.emit({ type: 'config-changed', endpoint: '*', actor: entry.actor, change: entry.change, before: entry.before, after: entry.after });
  }

  /** Tenant budgets in force: the config file's, with operators' runtime changes on top (per second). */
  async tenantBudgets(): Promise<Record<string, { ratePerSec: number; burst: number; source: 'config' | 'runtime' }>> {
    const out: Record<string, { ratePerSec: number; burst: number; source: 'config' | 'runtime' }> = {};
    for (const [tenant, b] of this.configuredTenantBudgets) out[tenant] = { ratePerSec: b.ratePerMs * 1000, burst: b.burst, source: 'config' };
    for (const [tenant, v] of Object.entries(await this.redis.hgetall(this.keys.tenantConfig()))) {
      const [rate, burst] = v.split(',').map(Number);
      out[tenant] = { ratePerSec: rate! * 1000, burst: burst!, source: 'runtime' };
    }
    return out;
  }

  /** The newest operator changes first. */
  async auditLog(limit = 100): Promise<AuditEntry[]> {
    const raw = await this.redis.lrange(this.keys.audit(), 0, Math.max(0, limit - 1));
    return raw.map((r) => JSON.parse(r) as AuditEntry);
  }

  private checked(endpoint: string): string {
    this.settingsOf(endpoint);
    return endpoint;
  }

  /** The endpoint as Redis holds it now, fleet-wide. */
  async inspect(endpoint: string): Promise<EndpointStatus> {
    const s = this.settingsOf(endpoint);
    const k = this.keys;
    this.extraCalls++;
    const r = await run<unknown[]>(this.redis, 'inspect', [k.config(endpoint), k.bucket(endpoint), k.queue(endpoint), k.classes(endpoint)], [s.ratePerMs, s.burst, s.maxQueue, this.configVersion]);
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
    const overrides = pairs(r[16]);
    const pauseWait = r[22] === 'inf' ? Infinity : Number(r[22]);
    const tmpUntil = Number(overrides['tmp:until'] ?? 0);
    return {
      endpoint,
      configured: { ratePerSec: s.ratePerMs * 1000, burst: s.burst, maxQueue: s.maxQueue },
      effective: { ratePerSec: num(2) * 1000, burst: num(3), maxQueue: num(4) },
      tokens: num(1),
      queued: num(6),
      queuedByClass: Object.fromEntries(Object.entries(pairs(r[17])).map(([c, n]) => [c, Number(n)])),
      pausedUntil,
      counters: {
        admitted: num(10), queued: num(11), timeouts: num(12), queueFull: num(13), dropped: num(14), penalties: num(15),
        wouldWait: num(19), bypassed: num(20),
      },
      paused: pauseWait > 0 ? now + pauseWait : null,
      dryRun: overrides.dryRun === '1',
      shadow: r[23] === '' ? null : { ratePerSec: Number(r[23]) * 1000, burst: Number(r[24]), wouldWait: num(21) },
      bypass: Object.entries(overrides)
        .filter(([f, v]) => f.startsWith('bypass:') && (v === 'inf' || Number(v) > now))
        .map(([f]) => f.slice('bypass:'.length)),
      temporaryUntil: tmpUntil > now ? tmpUntil : null,
      adaptive: Number(r[25]) > 0
        ? { ratePerSec: Number(r[25]) * 1000, ceilingPerSec: Number(r[26]) * 1000, lastPenaltyAt: num(27) || null, lastRaiseAt: num(28) || null }
        : null,
      overrides,
      ttls: { bucket: ttls[0]!, queue: ttls[1]!, classes: ttls[2]! },
    };
  }

  /** Gives back every ticket and future slot this process holds, rejects their callers, closes the connection if Sluice opened it. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearTimeout(this.heartbeatTimer);
      await Promise.all([...this.lanes.values()].map((l) => l.close()));
      if (this.fleet.length) await this.redis.zrem(this.keys.live(), this.owner).catch(() => undefined);
      for (const key of new Set([...this.lanes.keys()].map((e) => this.keys.owner(this.owner, e)))) await this.redis.del(key).catch(() => undefined);
      if (this.owned) await this.redis.quit().catch(() => this.redis.disconnect());
    })();
    return this.closing;
  }
}

/** Creates a throttler; validates the config at once (InvalidConfigError names the field and the value). */
export function createThrottler(options: ThrottlerOptions): Throttler {
  return new Throttler(options);
}
