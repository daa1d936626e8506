/**
 * The demo's closing numbers: jobs, results against the simulator's ground truth, what the
 * simulator saw (requests, violations of its hidden limits), and per endpoint the rate the fleet
 * achieved against the rate the throttle was configured with.
 */
import type { SimStats, Limits } from '../simulator/index.js';
import { endpointKey, TIKTOK_ENDPOINTS, type TikTokEndpoint } from '../tiktok/index.js';
import type { JobTally, Snapshot } from './progress.js';

export interface EndpointSummary {
  /** The throttle's configured rate (requests/s). */
  configuredPerSec: number;
  /** The simulator's hidden limit after --sim-limit-factor (requests/s); null when unlimited. */
  simulatorLimitPerSec: number | null;
  /** Admissions counted by the throttle, fleet-wide. */
  admitted: number;
  /** Requests the simulator received. */
  requests: number;
  /** Requests the simulator refused past its hidden limit. */
  violations: number;
  /**
   * The fewest tokens the simulator's hidden bucket held when a request came (null: unlimited or
   * unused). Under 1 means a violation; a throttled run's margin to the hidden limit is this minus 1.
   */
  simulatorMinTokens: number | null;
  /** Requests per second over the endpoint's active span (first to last request). */
  achievedPerSec: number;
  /** Most requests/s seen in one sampling interval (about 1 s); includes the burst. */
  peakPerSec: number;
  /** The throttle's effective rate at the end (requests/s): below the configured one when adaptive mode cut it. */
  effectivePerSec: number | null;
  /**
   * Violations from 60 s after the fleet's first request on (the time adaptive mode has to find
   * the limit; a starved machine's workers may take a while to start).
   */
  violationsAfter60s: number;
  /** Penalties the fleet sent for this endpoint (each one a fleet-wide pause, and a cut when adaptive). */
  penalties: number;
  /** Pages or API calls of this endpoint served with data more than once. */
  pagesFetchedTwice: number;
  /**
   * The effective rate over the hidden limit in force at each sample, from 60 s after the fleet's
   * first request and 60 s after each change of the hidden limits: lowest, highest, and the share
   * of samples within [0.8, 1.05]. Null when unlimited or not sampled, and when the fleet sent the
   * endpoint nothing: an adaptive rate that was never tried against the limit says nothing of it.
   */
  effectiveVsHidden: { min: number; max: number; inBand: number } | null;
}

export interface DemoSummary {
  namespace: string;
  throttle: boolean;
  simLimitFactor: number;
  elapsedMs: number;
  /** True when --duration (or a signal) ended the run before every job finished. */
  stoppedEarly: boolean;
  jobsCompleted: number;
  jobsFailed: number;
  jobsPending: number;
  jobs: { discovery: JobTally; harvesting: JobTally };
  profiles: number;
  domains: number;
  /** Harvested domains against `graph.groundTruth(seeds)`. */
  groundTruth: { creators: number; domains: number; exact: boolean; missing: string[]; extra: string[] };
  /** Distinct domains harvested per hour of run time. */
  domainsPerHour: number;
  /** Limit violations in all (the simulator's count). */
  violations: number;
  /** Penalties sent by the workers, by kind (rate-limited, captcha, empty, waf, server-error); from their logs. */
  penaltiesByKind: Record<string, number>;
  /**
   * Slots written off per endpoint because the worker came later than the throttle's
   * lateToleranceMs for them (its process was starved): the caller queued again rather than send
   * late, bunched with the next request. From the workers' logs.
   */
  lateRequeued: Record<string, number>;
  /** Pages and API calls served with data more than once: work paid for twice (target 0). */
  pagesFetchedTwice: number;
  /** The first few of them, as the simulator identifies pages. */
  repeatedUrls: string[];
  /** The hidden limit factor over time (ms from the start): the start's, then each change. */
  limitSchedule: Array<{ atMs: number; limitFactor: number }>;
  /** The HTML report of the run, when one was written. */
  reportPath?: string;
  simulatorRequests: number;
  simulatorViolations: number;
  /** Requests to paths no endpoint covers: none should reach TikTok (the gate aborts them). */
  simulatorUnclassified: number;
  endpoints: Record<TikTokEndpoint, EndpointSummary>;
  /** Endpoints in adaptive mode: the effective rate they ended at, beside the simulator's hidden limit. */
  adaptive: Partial<Record<TikTokEndpoint, { effectivePerSec: number | null; configuredPerSec: number; simulatorLimitPerSec: number | null }>>;
  /** Where the worker processes' logs are. */
  logDir: string;
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

function peakPerSec(series: Snapshot[], endpoint: TikTokEndpoint): number {
  const key = endpointKey(endpoint);
  let peak = 0;
  for (let i = 1; i < series.length; i++) {
    const a = series[i - 1]!;
    const b = series[i]!;
    const dt = (b.at - a.at) / 1000;
    if (dt > 0.2) peak = Math.max(peak, (b.sim.endpoints[key].requests - a.sim.endpoints[key].requests) / dt);
  }
  return round(peak);
}

function achievedPerSec(sim: SimStats, endpoint: TikTokEndpoint): number {
  const k = sim.endpoints[endpointKey(endpoint)];
  if (k.requests < 2 || k.firstAt === null || k.lastAt === null || k.lastAt <= k.firstAt) return 0;
  return round(k.requests / ((k.lastAt - k.firstAt) / 1000));
}

export interface SummaryInput {
  namespace: string;
  throttle: boolean;
  simLimitFactor: number;
  startedAt: number;
  stoppedEarly: boolean;
  final: Snapshot;
  series: Snapshot[];
  configuredPerSec: Record<TikTokEndpoint, number>;
  /** Effective rates at the end, read from Redis (adaptive mode lowers them); null when unknown. */
  effectivePerSec: Record<TikTokEndpoint, number | null>;
  /** Endpoints in adaptive mode. */
  adaptiveEndpoints: TikTokEndpoint[];
  simLimits: Limits;
  /** Penalties by kind summed over the workers' logs. */
  penaltiesByKind: Record<string, number>;
  /** Slots written off for lateness per endpoint, summed over the workers' logs. */
  lateRequeued: Record<string, number>;
  /** The simulator's limit factor over time (epoch ms). */
  limitHistory: Array<{ from: number; limitFactor: number }>;
  harvestedDomains: string[];
  truth: { creators: string[]; domains: string[] };
  logDir: string;
}

/** When the grace for finding a limit ends: 60 s after the fleet's first request. */
const SETTLE_MS = 60_000;
function settledFrom(i: SummaryInput): number {
  return (i.final.sim.firstAt ?? i.startedAt) + SETTLE_MS;
}

/** Violations of `endpoint` once settled: the final count less the count at the last sample before. */
function violationsAfter60s(i: SummaryInput, endpoint: TikTokEndpoint): number {
  const key = endpointKey(endpoint);
  const from = settledFrom(i);
  const before = i.series.filter((snap) => snap.at <= from).at(-1);
  if (i.final.at <= from) return 0;
  return i.final.sim.endpoints[key].violations - (before?.sim.endpoints[key].violations ?? 0);
}

function effectiveVsHidden(i: SummaryInput, endpoint: TikTokEndpoint): EndpointSummary['effectiveVsHidden'] {
  if (i.final.sim.endpoints[endpointKey(endpoint)].requests === 0) return null;
  const from = settledFrom(i);
  const changes = i.limitHistory.slice(1).map((p) => p.from);
  const ratios = i.series
    .filter((snap) => snap.at > from && changes.every((c) => snap.at < c || snap.at > c + SETTLE_MS) && snap.hiddenPerSec[endpoint])
    .map((snap) => snap.effectivePerSec[endpoint] / snap.hiddenPerSec[endpoint]!);
  if (ratios.length === 0) return null;
  const inBand = ratios.filter((r) => r >= 0.8 && r <= 1.05).length / ratios.length;
  return { min: round(Math.min(...ratios)), max: round(Math.max(...ratios)), inBand: round(inBand) };
}

export function buildSummary(i: SummaryInput): DemoSummary {
  const { final } = i;
  const harvested = new Set(i.harvestedDomains);
  const truth = new Set(i.truth.domains);
  const endpoints = Object.fromEntries(
    TIKTOK_ENDPOINTS.map((e) => {
      const k = final.sim.endpoints[endpointKey(e)];
      const limit = i.simLimits[endpointKey(e)];
      const summary: EndpointSummary = {
        configuredPerSec: round(i.configuredPerSec[e]),
        simulatorLimitPerSec: limit ? round(limit.ratePerSec) : null,
        effectivePerSec: i.effectivePerSec[e] === null ? null : round(i.effectivePerSec[e]!),
        admitted: final.admitted[e],
        requests: k.requests,
        violations: k.violations,
        simulatorMinTokens: k.minTokens === null ? null : round(k.minTokens),
        achievedPerSec: achievedPerSec(final.sim, e),
        peakPerSec: peakPerSec(i.series, e),
        violationsAfter60s: violationsAfter60s(i, e),
        penalties: final.penalties[e],
        pagesFetchedTwice: k.repeats,
        effectiveVsHidden: effectiveVsHidden(i, e),
      };
      return [e, summary];
    }),
  ) as Record<TikTokEndpoint, EndpointSummary>;
  const { discovery, harvesting } = final.jobs;
  return {
    namespace: i.namespace,
    throttle: i.throttle,
    simLimitFactor: i.simLimitFactor,
    elapsedMs: final.at - i.startedAt,
    stoppedEarly: i.stoppedEarly,
    jobsCompleted: discovery.completed + harvesting.completed,
    jobsFailed: discovery.failed + harvesting.failed,
    jobsPending: discovery.pending + harvesting.pending,
    jobs: final.jobs,
    profiles: final.profiles,
    domains: final.domains,
    groundTruth: {
      creators: i.truth.creators.length,
      domains: truth.size,
      exact: harvested.size === truth.size && [...truth].every((d) => harvested.has(d)),
      missing: [...truth].filter((d) => !harvested.has(d)).sort(),
      extra: [...harvested].filter((d) => !truth.has(d)).sort(),
    },
    domainsPerHour: final.at > i.startedAt ? Math.round((final.domains * 3_600_000) / (final.at - i.startedAt)) : 0,
    violations: final.sim.violations,
    penaltiesByKind: i.penaltiesByKind,
    lateRequeued: i.lateRequeued,
    pagesFetchedTwice: final.sim.repeats,
    repeatedUrls: final.sim.repeatedUrls,
    limitSchedule: i.limitHistory.map((p) => ({ atMs: Math.max(0, p.from - i.startedAt), limitFactor: p.limitFactor })),
    simulatorRequests: final.sim.total,
    simulatorViolations: final.sim.violations,
    simulatorUnclassified: final.sim.unclassified,
    adaptive: Object.fromEntries(
      i.adaptiveEndpoints.map((e) => [e, { effectivePerSec: endpoints[e].effectivePerSec, configuredPerSec: endpoints[e].configuredPerSec, simulatorLimitPerSec: endpoints[e].simulatorLimitPerSec }]),
    ),
    endpoints,
    logDir: i.logDir,
  };
}

/** The summary as a few lines for a person. */
export function formatSummary(s: DemoSummary): string {
  const gt = s.groundTruth;
  const lines = [
    `Sluice demo ${s.stoppedEarly ? 'stopped early' : 'finished'} in ${(s.elapsedMs / 1000).toFixed(1)} s (throttle ${s.throttle ? 'on' : 'OFF'}, simulator limits x${s.simLimitFactor}, namespace ${s.namespace})`,
    `  jobs       ${s.jobsCompleted} done, ${s.jobsFailed} failed, ${s.jobsPending} not finished` +
      `  (discovery ${s.jobs.discovery.completed}/${s.jobs.discovery.failed}, harvesting ${s.jobs.harvesting.completed}/${s.jobs.harvesting.failed} done/failed)`,
    `  harvested  ${s.profiles} profiles, ${s.domains} domains; ground truth ${gt.domains} domains of ${gt.creators} creators: ` +
      (gt.exact ? 'exact match' : `${gt.missing.length} missing, ${gt.extra.length} extra`),
    `  rate       ${s.domainsPerHour} domains/hour; pages fetched twice: ${s.pagesFetchedTwice}`,
    `  simulator  ${s.simulatorRequests} requests, ${s.simulatorViolations} limit violations, ${s.simulatorUnclassified} to unknown paths`,
    `  penalties  ${Object.entries(s.penaltiesByKind).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`,
    `  late slots ${Object.entries(s.lateRequeued).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'} (written off, callers queued again)`,
    '  endpoint         configured/s  sim limit/s  effective/s  admitted  requests  violations (>60s)  penalties  min tokens  achieved/s  peak/s',
  ];
  for (const [name, e] of Object.entries(s.endpoints)) {
    lines.push(
      `  ${name.padEnd(16)} ${String(e.configuredPerSec).padStart(12)}  ${String(e.simulatorLimitPerSec ?? '-').padStart(11)}  ${String(e.effectivePerSec ?? '-').padStart(11)}  ${String(e.admitted).padStart(8)}  ${String(e.requests).padStart(8)}  ${`${e.violations} (${e.violationsAfter60s})`.padStart(17)}  ${String(e.penalties).padStart(9)}  ${String(e.simulatorMinTokens ?? '-').padStart(10)}  ${String(e.achievedPerSec).padStart(10)}  ${String(e.peakPerSec).padStart(6)}`,
    );
  }
  if (s.reportPath) lines.push(`  report     ${s.reportPath}`);
  lines.push(`  worker logs ${s.logDir}`);
  return lines.join('\n');
}
