/**
 * The fleet-wide picture of each endpoint, as the admin API, the dashboard, `sluice status` and
 * the metrics all show it: `inspect()` (Redis's state) plus the merged wait statistics the
 * workers publish. Plain JSON: no Infinity, no Maps.
 */
import type { EndpointStatus } from '../inspect.js';
import type { Throttler } from '../throttler.js';
import { readFleetWaits, type FleetWaits } from './fleet-waits.js';

export interface EndpointView {
  endpoint: string;
  configured: { ratePerSec: number; burst: number; maxQueue: number };
  effective: { ratePerSec: number; burst: number; maxQueue: number };
  /** Priority weights in force (config file overlaid by runtime overrides). */
  weights: Record<string, number>;
  tokens: number;
  queued: number;
  queuedByClass: { tenant: string; priority: string; queued: number }[];
  /** Upstream penalty (429, captcha): paused until (ms since the epoch), or null. */
  pausedUntil: number | null;
  /** Operator pause, or null; `until: null` means until resumed. */
  paused: { until: number | null } | null;
  dryRun: boolean;
  shadow: { ratePerSec: number; burst: number; wouldWait: number } | null;
  bypass: string[];
  /** A temporary override is in force until then (ms since the epoch). */
  temporaryUntil: number | null;
  /** Fleet-wide counters since the endpoint's bucket was created. */
  counters: EndpointStatus['counters'];
  /** Fleet-wide waits over the last window, from the workers' reporters (null figures when none reported). */
  waits: Omit<FleetWaits, 'histogram'>;
  /** Raw runtime overrides (the Redis hash). */
  overrides: Record<string, string>;
}

/** Builds the view of one endpoint from its inspect() result and merged waits. */
export function toEndpointView(status: EndpointStatus, waits: FleetWaits | undefined, priorities: Record<string, number>): EndpointView {
  const weights: Record<string, number> = { ...priorities };
  for (const [f, v] of Object.entries(status.overrides)) if (f.startsWith('w:')) weights[f.slice(2)] = Number(v);
  const queuedByClass = Object.entries(status.queuedByClass)
    .filter(([, n]) => n > 0)
    .map(([cls, queued]) => {
      const bar = cls.indexOf('|');
      return { tenant: bar < 0 ? cls : cls.slice(0, bar), priority: bar < 0 ? '' : cls.slice(bar + 1), queued };
    })
    .sort((a, b) => b.queued - a.queued || a.tenant.localeCompare(b.tenant) || a.priority.localeCompare(b.priority));
  const { histogram: _histogram, ...w } = waits ?? { windowMs: 0, processes: 0, admitted: 0, waited: 0, p50Ms: null, p95Ms: null, histogram: undefined };
  return {
    endpoint: status.endpoint,
    configured: status.configured,
    effective: status.effective,
    weights,
    tokens: status.tokens,
    queued: status.queued,
    queuedByClass,
    pausedUntil: status.pausedUntil,
    paused: status.paused === null ? null : { until: Number.isFinite(status.paused) ? status.paused : null },
    dryRun: status.dryRun,
    shadow: status.shadow,
    bypass: status.bypass,
    temporaryUntil: status.temporaryUntil,
    counters: status.counters,
    waits: w,
    overrides: status.overrides,
  };
}

export interface ReadViewsOptions {
  /** Endpoints to read. Default: every configured endpoint. */
  endpoints?: readonly string[];
  /** Told the duration of each Redis read and whether it worked (for Redis latency metrics). */
  onRedisCall?: (ms: number, ok: boolean) => void;
}

/** Reads every endpoint's view: one inspect per endpoint and one pipeline for the waits, in parallel. */
export async function readEndpointViews(throttler: Throttler, options: ReadViewsOptions = {}): Promise<EndpointView[]> {
  const endpoints = options.endpoints ?? throttler.endpoints;
  const timed = async <T>(p: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      const v = await p();
      options.onRedisCall?.(performance.now() - started, true);
      return v;
    } catch (err) {
      options.onRedisCall?.(performance.now() - started, false);
      throw err;
    }
  };
  const [statuses, waits] = await Promise.all([
    Promise.all(endpoints.map((e) => timed(() => throttler.inspect(e)))),
    timed(() => readFleetWaits(throttler.redis, throttler.keys, endpoints)),
  ]);
  return statuses.map((s) => toEndpointView(s, waits.get(s.endpoint), throttler.config.priorities));
}
