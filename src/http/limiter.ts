import { QueueFullError, RedisUnavailableError, ThrottleTimeoutError } from '../errors/index.js';
import { rootLogger, type Logger } from '../logger.js';
import { connect } from '../redis/connection.js';
import { defineScripts } from '../redis/scripts.js';
import { createThrottler, type Throttler } from '../throttler.js';
import { limitHeaders, policyHeader, type HeaderOptions } from './headers.js';
import { HttpKeys, keyPart } from './keys.js';
import { createHttpMetrics, type HttpMetrics, type Outcome } from './metrics.js';
import { checkPolicyRef, parseHttpLimiterConfig, type HttpLimiterConfig, type HttpLimiterOptions, type KeySpec, type PolicyRef, type RedisConnection, type ResolvedPolicy } from './options.js';
import { AddressSet, clientIpResolver, type LimitRequest } from './request.js';
import { PolicySelector } from './rules.js';
import { LimitBatcher } from './batch.js';
import type { LimitReply } from './script.js';

/** Per-route override given to an adapter: this route's policy instead of the rules (null: not limited). */
export interface RouteLimit {
  policy?: PolicyRef;
}

export type RefusalCode = 'RATE_LIMITED' | 'QUOTA_EXCEEDED' | 'BLOCKED' | 'REDIS_UNAVAILABLE';

/** What the limiter decided for one request; the adapters turn it into a response. */
export interface Decision {
  allowed: boolean;
  /** 429 when limited or blocked, 503 when Redis could not decide and the policy is closed. */
  status: 200 | 429 | 503;
  /** Header fields for the response, refused or not (lower-case names). */
  headers: Record<string, string>;
  policy: string | null;
  /** The client key the request was counted under (`ip:…`, `user:…`, `key:…`, `fn:…`). */
  key: string | undefined;
  /** Set when refused. */
  refusal?: { code: RefusalCode; message: string; retryAfterSec: number };
  /** The script's reply, when Redis decided. */
  reply?: LimitReply;
}

const DEFAULT_TIER_AUTH = 'authenticated';
const DEFAULT_TIER_ANON = 'anonymous';
const FAILURE_LOG_EVERY_MS = 5_000;

/**
 * The inbound limiter: one check per request against the policy the request falls under, at most
 * one Redis round trip; the checks of one event-loop turn go to Redis as one script call.
 * Framework adapters (`fastify`, `express`, `fetch`) only translate requests and decisions.
 */
export class HttpLimiter {
  readonly config: HttpLimiterConfig;
  readonly keys: HttpKeys;
  readonly redis: RedisConnection;
  readonly metrics: HttpMetrics;
  readonly policies: ReadonlyMap<string, ResolvedPolicy>;
  private readonly owned: boolean;
  private readonly log: Logger;
  private readonly selector: PolicySelector;
  private readonly allowKeys: Set<string>;
  private readonly allowCidrs: AddressSet;
  private readonly resolveIp: (socketIp: string | undefined, forwardedFor: string | undefined) => string | undefined;
  private readonly headerOptions: HeaderOptions;
  private readonly now: (() => number) | undefined;
  private readonly apiKeyOf: (req: LimitRequest) => string | undefined;
  /** Circuit breaker: until then Redis is not asked, the failure policy answers. */
  private downUntil = 0;
  private failuresSinceLog = 0;
  private lastFailureLog = 0;
  private readonly batcher: LimitBatcher;
  private throttler: Throttler | undefined;
  private readonly ownsThrottler: boolean;
  private closed = false;
  private warnedNoIp = false;

  constructor(options: HttpLimiterOptions) {
    const { redis, logger, registry, throttler, now, ...rest } = options;
    const { config, policies } = parseHttpLimiterConfig(rest);
    this.config = config;
    this.policies = policies;
    this.keys = new HttpKeys(config.namespace);
    this.log = (logger ?? rootLogger()).child({ component: 'http-limiter', namespace: config.namespace });
    this.metrics = createHttpMetrics(registry);
    this.selector = new PolicySelector(config, [...policies.keys()][0]!);
    this.allowKeys = new Set(config.allowlist.keys);
    this.allowCidrs = new AddressSet(config.allowlist.cidrs, 'allowlist.cidrs');
    this.resolveIp = clientIpResolver(config.trustProxy);
    this.headerOptions = { ietf: config.ietfHeaders, legacy: config.legacyHeaders };
    this.now = now;
    const apiKey = config.apiKey;
    this.apiKeyOf = typeof apiKey === 'function' ? apiKey : (req) => req.header(apiKey.toLowerCase());
    // a limiter must answer within timeoutMs, not after ioredis's reconnect retries
    const conn = connect(redis, { commandTimeout: config.timeoutMs, maxRetriesPerRequest: 1 });
    this.redis = conn.redis;
    this.owned = conn.owned;
    if (this.owned) this.redis.on('error', () => undefined); // outages are logged per failure policy below
    defineScripts(this.redis);
    this.batcher = new LimitBatcher(this.redis);
    this.throttler = throttler;
    this.ownsThrottler = throttler === undefined;
    for (const p of policies.values()) {
      if (p.failure === 'open') this.log.warn({ policy: p.name }, 'failure policy open: when Redis cannot decide, requests of this policy go through unlimited (logged and counted)');
    }
  }

  /** Checks a per-route override when the route is declared, not on its first request. */
  checkRoute(route: RouteLimit, where: string): void {
    if (route.policy !== undefined) checkPolicyRef(route.policy, this.policies, `invalid rate limit of ${where}`);
  }

  /** The client address of a request from its socket address and `X-Forwarded-For`, per `trustProxy`. */
  clientIp(socketIp: string | undefined, forwardedFor: string | undefined): string | undefined {
    return this.resolveIp(socketIp, forwardedFor);
  }

  private tierOf(req: LimitRequest): string {
    const t = this.config.tier?.(req);
    if (t !== undefined) return t;
    return this.config.user?.(req) !== undefined || this.apiKeyOf(req) !== undefined ? DEFAULT_TIER_AUTH : DEFAULT_TIER_ANON;
  }

  /** The client key (kind-prefixed, so a user named `1.2.3.4` is not the address) and the raw identity for the allowlist. */
  private keyOf(spec: KeySpec, req: LimitRequest): { key: string; identity: string | undefined } {
    if (typeof spec === 'function') {
      const v = spec(req);
      return v === undefined ? { key: 'anonymous', identity: undefined } : { key: `fn:${v}`, identity: v };
    }
    if (spec === 'ip') return this.ipKey(req);
    const id = spec.startsWith('user') ? this.config.user?.(req) : this.apiKeyOf(req);
    const prefix = spec.startsWith('user') ? 'user' : 'key';
    if (id !== undefined && id !== '') return { key: `${prefix}:${id}`, identity: id };
    return spec.endsWith('-or-ip') ? this.ipKey(req) : { key: 'anonymous', identity: undefined };
  }

  private ipKey(req: LimitRequest): { key: string; identity: string | undefined } {
    const ip = req.ip;
    if (ip === undefined && !this.warnedNoIp) {
      this.warnedNoIp = true;
      this.log.warn('a request limited by address came without one: such requests share the key ip:unknown (fetch adapters: pass ip, or trust a proxy)');
    }
    return { key: `ip:${ip ?? 'unknown'}`, identity: ip };
  }

  private count(policy: string, outcome: Outcome, reason: string): void {
    this.metrics.requests.inc({ policy, outcome, reason });
  }

  /**
   * Decides one request: at most one Redis round trip (none for allowlisted or unlimited requests),
   * shared with the other requests decided in the same event-loop turn.
   */
  async decide(req: LimitRequest, route: RouteLimit = {}): Promise<Decision> {
    const tier = this.tierOf(req);
    const name = route.policy === undefined ? this.selector.select(req, tier) : this.selector.pick(route.policy, tier);
    if (name === null) {
      this.count('', 'skipped', 'unlimited');
      return { allowed: true, status: 200, headers: {}, policy: null, key: undefined };
    }
    const policy = this.policies.get(name)!;
    const { key, identity } = this.keyOf(policy.key ?? this.config.key, req);
    // size first: the address is worked out only when something needs it
    if ((identity !== undefined && this.allowKeys.size > 0 && this.allowKeys.has(identity)) || (this.allowCidrs.size > 0 && this.allowCidrs.has(req.ip))) {
      this.count(name, 'skipped', 'allowlist');
      return { allowed: true, status: 200, headers: {}, policy: name, key };
    }
    if (policy.queue) return this.queued(policy, key, tier);
    if (this.closed) return this.failed(policy, key, new RedisUnavailableError('the http limiter is closed'));
    if (Date.now() < this.downUntil) return this.failed(policy, key, undefined);
    let reply: LimitReply;
    try {
      const call = this.batcher.limit(this.keys.state(name, key), policy, this.now?.());
      // a connection the limiter opened has commandTimeout; a given one gets the deadline here
      reply = this.owned ? await call : await withDeadline(call, this.config.timeoutMs);
    } catch (err) {
      this.downUntil = Date.now() + this.config.breakerMs;
      return this.failed(policy, key, err);
    }
    return this.fromReply(policy, key, reply);
  }

  private fromReply(policy: ResolvedPolicy, key: string, reply: LimitReply): Decision {
    const headers = limitHeaders(policy, reply, this.headerOptions);
    const name = policy.name;
    switch (reply.verdict) {
      case 'admitted':
        this.count(name, 'allowed', 'rate');
        return { allowed: true, status: 200, headers, policy: name, key, reply };
      case 'limited':
      case 'quota-day':
      case 'quota-month': {
        const reason = reply.verdict === 'limited' ? 'rate' : reply.verdict === 'quota-day' ? 'day' : 'month';
        this.count(name, 'limited', reason);
        const retryAfterSec = Number(headers['retry-after']);
        const message = reason === 'rate'
          ? `Rate limit exceeded, retry in ${retryAfterSec} s`
          : `${reason === 'day' ? 'Daily' : 'Monthly'} quota exhausted, retry in ${retryAfterSec} s`;
        return { allowed: false, status: 429, headers, policy: name, key, reply, refusal: { code: reason === 'rate' ? 'RATE_LIMITED' : 'QUOTA_EXCEEDED', message, retryAfterSec } };
      }
      case 'blocked': {
        this.count(name, 'blocked', reply.newlyBlocked ? 'new' : 'active');
        if (reply.newlyBlocked) {
          this.log.warn({ policy: name, key, until: reply.blockedUntil }, 'client key blocked: refused too often');
          // the index lives in a slot of its own: a second command, only when a block begins
          void this.redis
            .zadd(this.keys.blocked(), reply.blockedUntil, this.keys.blockedMember(name, keyPart(key)))
            .then(() => this.redis.pexpire(this.keys.blocked(), Math.max(1, reply.blockedUntil - reply.now) + 60_000))
            .catch((err: Error) => this.log.warn({ err: { message: err.message }, key }, 'could not list the block in the index (the block itself holds)'));
        }
        const retryAfterSec = Number(headers['retry-after']);
        return { allowed: false, status: 429, headers, policy: name, key, reply, refusal: { code: 'BLOCKED', message: `Too many refused requests: blocked, retry in ${retryAfterSec} s`, retryAfterSec } };
      }
    }
  }

  /** Redis could not decide: the policy's failure mode answers, logged (at most every 5 s, with a count) and counted. */
  private failed(policy: ResolvedPolicy, key: string, err: unknown): Decision {
    const mode = policy.failure;
    this.count(policy.name, 'failed', mode);
    this.failuresSinceLog++;
    if (Date.now() - this.lastFailureLog >= FAILURE_LOG_EVERY_MS) {
      this.log.error(
        { policy: policy.name, failure: mode, requests: this.failuresSinceLog, err: err instanceof Error ? { message: err.message } : undefined },
        mode === 'open' ? 'Redis cannot decide: requests go through unlimited (failure policy open)' : 'Redis cannot decide: requests refused with 503 (failure policy closed)',
      );
      this.lastFailureLog = Date.now();
      this.failuresSinceLog = 0;
    }
    if (mode === 'open') return { allowed: true, status: 200, headers: {}, policy: policy.name, key };
    const retryAfterSec = Math.max(1, Math.ceil(this.config.breakerMs / 1000));
    return {
      allowed: false, status: 503, headers: { 'retry-after': String(retryAfterSec) }, policy: policy.name, key,
      refusal: { code: 'REDIS_UNAVAILABLE', message: 'The rate limiter cannot decide right now; retry shortly', retryAfterSec },
    };
  }

  private queueThrottler(): Throttler {
    if (!this.throttler) {
      const endpoints: Record<string, { rate: { tokens: number; intervalMs: number }; burst: number }> = {};
      for (const p of this.policies.values()) {
        if (p.queue) endpoints[p.name] = { rate: p.rate, burst: p.algorithm === 'token-bucket' || p.algorithm === 'gcra' ? p.a : p.rate.tokens };
      }
      this.throttler = createThrottler({
        namespace: `${this.config.namespace}-http`,
        redis: this.redis,
        endpoints,
        priorities: { default: 1, ...this.config.tierWeights },
        defaultPriority: 'default',
        logger: this.log,
      });
    }
    return this.throttler;
  }

  /** A queued policy: wait in the fair queue (tier = priority, client key = fairness class) up to maxWaitMs. */
  private async queued(policy: ResolvedPolicy, key: string, tier: string): Promise<Decision> {
    const name = policy.name;
    const headers: Record<string, string> = this.headerOptions.ietf ? { 'ratelimit-policy': policyHeader(policy, Date.now()) } : {};
    try {
      const admission = await this.queueThrottler().acquire(name, {
        tenant: keyPart(key),
        priority: Object.hasOwn(this.config.tierWeights, tier) ? tier : 'default',
        maxWaitMs: policy.queue!.maxWaitMs,
      });
      if (admission.degraded) return this.failed(policy, key, undefined);
      this.count(name, 'queued', admission.waitedMs > 0 ? 'waited' : 'immediate');
      return { allowed: true, status: 200, headers, policy: name, key };
    } catch (err) {
      if (err instanceof ThrottleTimeoutError || err instanceof QueueFullError) {
        const full = err instanceof QueueFullError;
        this.count(name, 'limited', full ? 'queue-full' : 'queue-timeout');
        const waitMs = err instanceof ThrottleTimeoutError ? (err.expectedWaitMs ?? policy.queue!.maxWaitMs) : policy.queue!.maxWaitMs;
        const retryAfterSec = Math.max(1, Math.ceil(waitMs / 1000));
        return {
          allowed: false, status: 429, headers: { ...headers, 'retry-after': String(retryAfterSec) }, policy: name, key,
          refusal: { code: 'RATE_LIMITED', message: full ? 'The queue is full, retry later' : `The wait would pass ${policy.queue!.maxWaitMs} ms, retry in ${retryAfterSec} s`, retryAfterSec },
        };
      }
      return this.failed(policy, key, err);
    }
  }

  /** Stops deciding (requests then get the failure policy) and closes what the limiter opened. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // checks already gathered go before the connection is closed
    this.batcher.flush();
    if (this.ownsThrottler) await this.throttler?.close();
    if (this.owned) await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisUnavailableError(`Redis did not answer within ${ms} ms (timeoutMs)`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Creates the limiter; the options are validated at once (InvalidConfigError names the field and value). */
export function createHttpLimiter(options: HttpLimiterOptions): HttpLimiter {
  return new HttpLimiter(options);
}
