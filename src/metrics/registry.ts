/**
 * Prometheus metrics of a Sluice process, in a registry of their own (never prom-client's
 * global one, so embedding applications keep theirs clean).
 *
 * Two sources:
 * - this process's decisions, counted from the throttler's events (admissions, waits, refusals,
 *   penalties, Redis calls): every process that acquires can export them, and Prometheus sums
 *   them across the fleet;
 * - the fleet-wide state in Redis (tokens, queue depth, effective rate, fleet counters, BullMQ
 *   jobs), read on scrape. Only one process should export it (the admin server), or sums would
 *   count it once per process: `fleet: false` turns it off in workers.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Throttler } from '../throttler.js';
import { readEndpointViews, type EndpointView } from './endpoint-view.js';
import { queueList, readQueueFigures, type JobQueue, type QueueFigures, type QueuesInput } from './job-queues.js';
import { WAIT_BUCKETS_MS } from './wait-histogram.js';

export interface MetricsOptions {
  throttler: Throttler;
  /** BullMQ queues whose job counts and workers are exported (fleet figures): a list, or `createQueues()`'s result. */
  queues?: QueuesInput;
  /** Export the fleet-wide figures read from Redis on scrape. Default true. */
  fleet?: boolean;
  /** Registry to register into. Default: a new one. */
  registry?: Registry;
  /**
   * Tenants that get series of their own in `sluice_queue_depth_by_class`, per endpoint: the most
   * queued ones at each scrape. The rest are summed, per priority, under the tenant
   * `OTHER_TENANTS`, so a fleet serving thousands of tenants cannot blow up Prometheus. Default 20.
   */
  maxTenantSeries?: number;
}

/**
 * The tenant label of the tenants beyond `maxTenantSeries`. Braces cannot appear in a tenant name
 * (config `Name`), so this never merges a real tenant called "other" into the rest.
 */
export const OTHER_TENANTS = '{other}';

export interface SluiceMetrics {
  readonly registry: Registry;
  /** The exposition text (what `GET /metrics` serves). */
  metrics(): Promise<string>;
  readonly contentType: string;
  /** Stops counting the throttler's events. */
  close(): void;
}

const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** Creates the registry and starts counting the throttler's events; see the module comment. */
export function createMetrics(options: MetricsOptions): SluiceMetrics {
  const { throttler } = options;
  const registry = options.registry ?? new Registry();
  const registers = [registry];

  // ---- this process, from events ----
  const admissions = new Counter({ name: 'sluice_admissions_total', help: 'Admissions granted by this process, by endpoint, priority and whether the call went through the fair queue.', labelNames: ['endpoint', 'priority', 'queued'] as const, registers });
  const waits = new Histogram({ name: 'sluice_wait_seconds', help: 'Time callers of this process waited from acquire to admission.', labelNames: ['endpoint'] as const, buckets: WAIT_BUCKETS_MS.map((ms) => ms / 1000), registers });
  // late callers send their requests together: a clump the upstream may count against its burst
  const late = new Histogram({ name: 'sluice_admission_late_seconds', help: 'How long after its reserved slot a caller of this process was let go (event-loop stalls, late wake-ups).', labelNames: ['endpoint'] as const, buckets: LATENCY_BUCKETS_S, registers });
  // a stall costs throughput, not safety: these callers asked for a fresh slot instead of clumping
  const lateRequeued = new Counter({ name: 'sluice_late_slots_requeued_total', help: 'Callers of this process found later than lateToleranceMs after their slot (event-loop stalls): the slot was written off and the caller queued again.', labelNames: ['endpoint'] as const, registers });
  const refusals = new Counter({ name: 'sluice_refusals_total', help: 'Acquires refused in this process, by reason (timeout, queue-full, cost-above-burst, aborted, expired, closed, redis-unavailable).', labelNames: ['endpoint', 'reason'] as const, registers });
  const penalties = new Counter({ name: 'sluice_penalties_total', help: 'Upstream push-backs (429, captcha) reported by this process.', labelNames: ['endpoint'] as const, registers });
  // the fleet read of this scrape counts among the Redis calls: wait for it before reporting them
  const fleet = options.fleet !== false ? fleetReader(throttler, (ms, ok) => redisCall('inspect', ms, ok)) : undefined;
  const settled = async () => {
    await fleet?.views();
  };
  const redisErrors = new Counter({ name: 'sluice_redis_errors_total', help: 'Redis calls that failed, by script.', labelNames: ['script'] as const, registers, collect: settled });
  const redisLatency = new Histogram({ name: 'sluice_redis_call_seconds', help: 'Duration of Redis calls, by script.', labelNames: ['script'] as const, buckets: LATENCY_BUCKETS_S, registers, collect: settled });

  function redisCall(script: string, ms: number, ok: boolean): void {
    redisLatency.observe({ script }, ms / 1000);
    if (!ok) redisErrors.inc({ script });
  }
  for (const e of throttler.endpoints) {
    // zero series from the start, so rate() and absent() behave before the first event
    waits.zero({ endpoint: e });
    penalties.inc({ endpoint: e }, 0);
    lateRequeued.inc({ endpoint: e }, 0);
  }
  redisErrors.inc({ script: 'acquire' }, 0);
  redisErrors.inc({ script: 'inspect' }, 0);

  const unsubscribe = throttler.onEvent((event) => {
    switch (event.type) {
      case 'admitted':
        admissions.inc({ endpoint: event.endpoint, priority: event.priority, queued: String(event.queued) });
        waits.observe({ endpoint: event.endpoint }, event.waitedMs / 1000);
        late.observe({ endpoint: event.endpoint }, event.lateMs / 1000);
        break;
      case 'requeued-late':
        lateRequeued.inc({ endpoint: event.endpoint });
        break;
      case 'refused':
        refusals.inc({ endpoint: event.endpoint, reason: event.reason });
        break;
      case 'penalized':
        penalties.inc({ endpoint: event.endpoint });
        break;
      case 'redis-call':
        redisCall(event.script, event.ms, event.ok);
        break;
      default:
        break;
    }
  });

  if (fleet) registerFleetMetrics(registry, fleet, queueList(options.queues), options.maxTenantSeries ?? 20);

  return {
    registry,
    metrics: () => registry.metrics(),
    get contentType() {
      return registry.contentType;
    },
    close: unsubscribe,
  };
}

/**
 * Shares one in-flight read between callers: prom-client starts every collect callback of a
 * scrape in the same tick, so they all get the same read, and the next scrape reads afresh.
 */
function shared<T>(read: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= read().finally(() => (pending = undefined));
    return pending;
  };
}

interface FleetReader {
  /** The endpoint views of this scrape; empty when Redis could not be read. */
  views(): Promise<EndpointView[]>;
  /** Whether the last read worked. */
  readonly up: boolean;
}

function fleetReader(throttler: Throttler, onRedisCall: (ms: number, ok: boolean) => void): FleetReader {
  let up = true;
  const views = shared(async (): Promise<EndpointView[]> => {
    try {
      const v = await readEndpointViews(throttler, { onRedisCall });
      up = true;
      return v;
    } catch {
      // Redis is down: the gauges go empty (no stale numbers) and sluice_redis_up says why
      up = false;
      return [];
    }
  });
  return {
    views,
    get up() {
      return up;
    },
  };
}

/**
 * Queue depth by class with at most `maxTenants` tenants named: the tenants with the most tickets
 * queued on this endpoint (ties by name, so a scrape is reproducible), the others summed per priority.
 */
export function boundedClasses(classes: EndpointView['queuedByClass'], maxTenants: number): EndpointView['queuedByClass'] {
  const byTenant = new Map<string, number>();
  for (const c of classes) byTenant.set(c.tenant, (byTenant.get(c.tenant) ?? 0) + c.queued);
  if (byTenant.size <= maxTenants) return classes;
  const named = new Set([...byTenant].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, maxTenants).map(([t]) => t));
  const other = new Map<string, number>();
  const out: EndpointView['queuedByClass'] = [];
  for (const c of classes) {
    if (named.has(c.tenant)) out.push(c);
    else other.set(c.priority, (other.get(c.priority) ?? 0) + c.queued);
  }
  for (const [priority, queued] of other) out.push({ tenant: OTHER_TENANTS, priority, queued });
  return out;
}

function registerFleetMetrics(registry: Registry, fleet: FleetReader, queues: readonly JobQueue[], maxTenants: number): void {
  const registers = [registry];
  const views = fleet.views;
  const figures = shared((): Promise<QueueFigures[]> => readQueueFigures(queues).catch(() => []));

  /** A gauge whose values are read from the endpoint views on scrape. */
  const viewGauge = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (g: Gauge<L>, v: EndpointView) => void) =>
    new Gauge<L>({
      name, help, labelNames, registers,
      async collect() {
        const list = await views();
        this.reset();
        for (const v of list) fill(this, v);
      },
    });
  /** A counter mirrored from Redis's fleet-wide counters on scrape. */
  const viewCounter = (name: string, help: string, pick: (v: EndpointView) => number) =>
    new Counter<'endpoint'>({
      name, help, labelNames: ['endpoint'], registers,
      async collect() {
        const list = await views();
        this.reset();
        for (const v of list) this.inc({ endpoint: v.endpoint }, pick(v));
      },
    });

  new Gauge({
    name: 'sluice_redis_up', help: '1 when the last scrape could read the throttle state from Redis, else 0.', registers,
    async collect() {
      await views();
      this.set(fleet.up ? 1 : 0);
    },
  });
  viewGauge('sluice_tokens', 'Tokens in the endpoint bucket now (negative: reserved ahead).', ['endpoint'], (g, v) => g.set({ endpoint: v.endpoint }, v.tokens));
  viewGauge('sluice_queue_depth', 'Tickets waiting in the endpoint fair queue.', ['endpoint'], (g, v) => g.set({ endpoint: v.endpoint }, v.queued));
  viewGauge('sluice_queue_depth_by_class', `Tickets waiting in the fair queue, by tenant and priority (the ${maxTenants} most queued tenants per endpoint; the rest summed under tenant "${OTHER_TENANTS}").`, ['endpoint', 'tenant', 'priority'], (g, v) => {
    for (const c of boundedClasses(v.queuedByClass, maxTenants)) g.set({ endpoint: v.endpoint, tenant: c.tenant, priority: c.priority }, c.queued);
  });
  viewGauge('sluice_queue_max', 'Effective bound of the endpoint fair queue.', ['endpoint'], (g, v) => g.set({ endpoint: v.endpoint }, v.effective.maxQueue));
  viewGauge('sluice_effective_rate_per_second', 'Rate in force (config overlaid by runtime overrides), tokens per second.', ['endpoint'], (g, v) => g.set({ endpoint: v.endpoint }, v.effective.ratePerSec));
  viewGauge('sluice_configured_rate_per_second', 'Rate from the config file, tokens per second.', ['endpoint'], (g, v) => g.set({ endpoint: v.endpoint }, v.configured.ratePerSec));
  viewGauge('sluice_effective_burst', 'Burst in force, tokens.', ['endpoint'], (g, v) => g.set({ endpoint: v.endpoint }, v.effective.burst));
  viewGauge('sluice_paused', '1 while the endpoint is paused, by cause (penalty: upstream push-back; operator: paused by hand).', ['endpoint', 'cause'], (g, v) => {
    g.set({ endpoint: v.endpoint, cause: 'penalty' }, v.pausedUntil === null ? 0 : 1);
    g.set({ endpoint: v.endpoint, cause: 'operator' }, v.paused === null ? 0 : 1);
  });
  viewGauge('sluice_dry_run', '1 while the endpoint is in dry-run (admits everything).', ['endpoint'], (g, v) => g.set({ endpoint: v.endpoint }, v.dryRun ? 1 : 0));
  viewGauge('sluice_fleet_wait_seconds', 'Fleet-wide wait quantiles over the last window, from the workers\' reporters.', ['endpoint', 'quantile'], (g, v) => {
    if (v.waits.p50Ms !== null) g.set({ endpoint: v.endpoint, quantile: '0.5' }, v.waits.p50Ms / 1000);
    if (v.waits.p95Ms !== null) g.set({ endpoint: v.endpoint, quantile: '0.95' }, v.waits.p95Ms / 1000);
  });
  viewCounter('sluice_fleet_admitted_total', 'Admissions on the endpoint, fleet-wide (Redis counter).', (v) => v.counters.admitted);
  viewCounter('sluice_fleet_queued_total', 'Calls that went through the fair queue, fleet-wide.', (v) => v.counters.queued);
  viewCounter('sluice_fleet_timeouts_total', 'Calls refused or expired because their wait passed maxWaitMs, fleet-wide.', (v) => v.counters.timeouts);
  viewCounter('sluice_fleet_queue_full_total', 'Calls refused because the fair queue was full, fleet-wide.', (v) => v.counters.queueFull);
  viewCounter('sluice_fleet_dropped_total', 'Tickets of dead processes dropped from the queue, fleet-wide.', (v) => v.counters.dropped);
  viewCounter('sluice_fleet_penalties_total', 'Upstream push-backs (429, captcha), fleet-wide.', (v) => v.counters.penalties);
  viewCounter('sluice_fleet_would_wait_total', 'In dry-run: admissions that would have waited, fleet-wide.', (v) => v.counters.wouldWait);
  viewCounter('sluice_fleet_bypassed_total', 'Admissions of allowlisted tenants, fleet-wide.', (v) => v.counters.bypassed);

  if (queues.length === 0) return;
  new Gauge<'queue' | 'state'>({
    name: 'sluice_jobs', help: 'BullMQ jobs by queue and state.', labelNames: ['queue', 'state'], registers,
    async collect() {
      const list = await figures();
      this.reset();
      for (const f of list) for (const [state, n] of Object.entries(f.jobs)) this.set({ queue: f.queue, state }, n);
    },
  });
  new Gauge<'queue'>({
    name: 'sluice_workers', help: 'BullMQ workers connected, by queue.', labelNames: ['queue'], registers,
    async collect() {
      const list = await figures();
      this.reset();
      for (const f of list) this.set({ queue: f.queue }, f.workers);
    },
  });
}
