/**
 * Operators' runtime controls of a namespace and their audit log: every change is written with
 * its audit entry (who, what, before, after), logged, and announced as a `config-changed` event.
 * The Throttler exposes these methods; this module holds them.
 */
import type { Cluster, ChainableCommander, Redis } from 'ioredis';
import { z } from 'zod';
import { describeIssues, RateInput } from './config/schema.js';
import { defaultBurst, tokensPerMs, type Rate } from './config/units.js';
import { InvalidConfigError } from './errors/index.js';
import type { EventHub } from './events.js';
import { assertName, type Keys } from './keys.js';
import type { Logger } from './logger.js';

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

/** What the controls need of their throttler. */
export interface ControlsContext {
  redis: Redis | Cluster;
  keys: Keys;
  log: Logger;
  events: EventHub;
  /** The priorities of the config: weights may only name them. */
  priorities: Record<string, number>;
  /** The config file's tenant budgets, per ms. */
  configuredTenantBudgets: ReadonlyMap<string, { ratePerMs: number; burst: number }>;
  /** Throws UnknownEndpointError for an endpoint the config does not name. */
  checkEndpoint(endpoint: string): void;
}

export class OperatorControls {
  constructor(private readonly ctx: ControlsContext) {}

  private get redis(): Redis | Cluster {
    return this.ctx.redis;
  }
  private get keys(): Keys {
    return this.ctx.keys;
  }

  private checked(endpoint: string): string {
    this.ctx.checkEndpoint(endpoint);
    return endpoint;
  }

  /** Appends one entry to the audit log (capped, kept 30 days after the last change). */
  private audit(tx: ChainableCommander, entry: AuditEntry): void {
    tx.lpush(this.keys.audit(), JSON.stringify(entry)).ltrim(this.keys.audit(), 0, AUDIT_LENGTH - 1).pexpire(this.keys.audit(), OVERRIDE_TTL_MS);
  }

  /** Records a change made elsewhere (a newer config version reaching the fleet): a JSON AuditEntry. */
  async record(entry: string): Promise<void> {
    await this.redis.multi().lpush(this.keys.audit(), entry).ltrim(this.keys.audit(), 0, AUDIT_LENGTH - 1).pexpire(this.keys.audit(), OVERRIDE_TTL_MS).exec();
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
    this.ctx.checkEndpoint(endpoint);
    const key = this.keys.config(endpoint);
    const before = await this.redis.hgetall(key);
    const after = { ...before, ...set };
    for (const f of del) delete after[f];
    const entry: AuditEntry = { at: Date.now(), actor: actor ?? 'unknown', endpoint, change, before, after };
    const tx = this.redis.multi();
    if (del.length) tx.hdel(key, ...del);
    if (Object.keys(set).length) tx.hset(key, set);
    tx.pexpire(key, OVERRIDE_TTL_MS);
    // the endpoint's scripts read the override hash only while this flag is up (they take it down
    // when they find the hash empty); a bucket this creates lives no longer than the overrides
    const bucket = this.keys.bucket(endpoint);
    tx.hset(bucket, 'cf', '1').pexpire(bucket, OVERRIDE_TTL_MS, 'NX');
    // layout 'endpoint': the audit log is in the namespace's slot, not the endpoint's: a second transaction
    const audit = this.keys.layout === 'endpoint' ? this.redis.multi() : tx;
    this.audit(audit, entry);
    await tx.exec();
    if (audit !== tx) await audit.exec();
    this.ctx.log.info({ endpoint, actor: entry.actor, change, before, after }, 'endpoint config changed');
    this.ctx.events.emit({ type: 'config-changed', endpoint, actor: entry.actor, change, before, after });
  }

  /**
   * Changes an endpoint at runtime for the whole fleet; every worker follows on its next acquire.
   * Kept in Redis for 30 days after the last change, or only `ttlMs` when given (a temporary
   * override for emergencies, which then falls back to the permanent values).
   */
  async configure(endpoint: string, patch: EndpointOverride, options: ChangeOptions & { ttlMs?: number } = {}): Promise<void> {
    this.ctx.checkEndpoint(endpoint);
    const parsed = EndpointOverride.safeParse(patch);
    if (!parsed.success) throw new InvalidConfigError(`invalid override for "${endpoint}": ${describeIssues(parsed.error, patch)}`);
    const fields: Record<string, string> = {};
    const p = parsed.data;
    if (p.rate) fields.rate = String(tokensPerMs(p.rate as Rate));
    if (p.burst !== undefined) fields.burst = String(p.burst);
    if (p.maxQueue !== undefined) fields.maxQueue = String(p.maxQueue);
    for (const [priority, w] of Object.entries(p.weights ?? {})) {
      if (!Object.hasOwn(this.ctx.priorities, priority)) throw new InvalidConfigError(`invalid override for "${endpoint}": unknown priority "${priority}"`);
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
    this.audit(tx, entry);
    await tx.exec();
    if (after !== null) await this.flagTenantBudgets();
    this.ctx.log.info({ tenant, actor: entry.actor, before, after }, 'tenant budget changed');
    this.ctx.events.emit({ type: 'config-changed', endpoint: '*', actor: entry.actor, change: entry.change, before: entry.before, after: entry.after });
  }

  /**
   * Raises the flag 'tf' on every endpoint's state in the namespace: the scripts read the runtime
   * tenant budgets only while it is up (reading them on every call cost a command per call, and
   * almost no namespace has any). A state created later asks for itself. In layout 'namespace'
   * every endpoint's bucket is in the namespace's slot, so one node holds them all.
   */
  private async flagTenantBudgets(): Promise<void> {
    const match = `${this.keys.prefix.replace(/[*?[\]\\]/g, '\\$&')}b:*`;
    const redis = this.redis;
    const nodes = redis.isCluster ? (redis as Cluster).nodes('master') : [redis as Redis];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
        cursor = next;
        if (keys.length === 0) continue;
        const tx = redis.pipeline();
        // a bucket that expired meanwhile comes back as a flag that lives no longer than the budgets
        for (const key of keys) tx.hset(key, 'tf', '1').pexpire(key, OVERRIDE_TTL_MS, 'NX');
        await tx.exec();
      } while (cursor !== '0');
    }
  }

  /** Tenant budgets in force: the config file's, with operators' runtime changes on top (per second). */
  async tenantBudgets(): Promise<Record<string, { ratePerSec: number; burst: number; source: 'config' | 'runtime' }>> {
    const out: Record<string, { ratePerSec: number; burst: number; source: 'config' | 'runtime' }> = {};
    for (const [tenant, b] of this.ctx.configuredTenantBudgets) out[tenant] = { ratePerSec: b.ratePerMs * 1000, burst: b.burst, source: 'config' };
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

}
