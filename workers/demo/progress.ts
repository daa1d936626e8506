/**
 * What the demo watches once a second: job counts of both queues, results, admissions per
 * endpoint (the throttle's counters in Redis) and requests per endpoint (what the simulator saw).
 */
import type { SluiceQueues } from '../../jobs/queues.js';
import type { ResultsStore } from '../results/store.js';
import type { Simulator, SimStats } from '../simulator/index.js';
import type { Throttler } from 'sluice';
import { endpointKey, TIKTOK_ENDPOINTS, type TikTokEndpoint } from '../tiktok/index.js';

export interface JobTally {
  completed: number;
  failed: number;
  /** Waiting, active, delayed (deferred or backing off) or prioritized: not finished yet. */
  pending: number;
  /** Of pending: delayed (deferred by the throttle or a pushback, or backing off). */
  delayed: number;
}

export interface Snapshot {
  at: number;
  jobs: { discovery: JobTally; harvesting: JobTally };
  profiles: number;
  domains: number;
  /** Admissions per endpoint since the start, fleet-wide (see {@link AdmissionTotals}). */
  admitted: Record<TikTokEndpoint, number>;
  /** Penalties per endpoint since the start, fleet-wide (same running totals). */
  penalties: Record<TikTokEndpoint, number>;
  /** The throttle's effective rate per endpoint (requests/s): the adaptive one where it is cut. */
  effectivePerSec: Record<TikTokEndpoint, number>;
  /** The simulator's hidden limit per endpoint (requests/s) at this moment; null when unlimited. */
  hiddenPerSec: Record<TikTokEndpoint, number | null>;
  sim: SimStats;
}

const PENDING = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;

async function tally(queue: SluiceQueues['discovery'] | SluiceQueues['harvesting']): Promise<JobTally> {
  const c = await queue.getJobCounts('completed', 'failed', ...PENDING);
  return {
    completed: c.completed ?? 0,
    failed: c.failed ?? 0,
    pending: PENDING.reduce((n, k) => n + (c[k] ?? 0), 0),
    delayed: c.delayed ?? 0,
  };
}

/**
 * Running totals of the throttle's `admitted` counters. Those counters live in the endpoint's
 * bucket hash, which expires when the endpoint is idle (every key has a TTL), so a counter can
 * start again from zero: a drop is read as a reset and its new value added.
 */
export class AdmissionTotals {
  private readonly last = new Map<TikTokEndpoint, number>();
  readonly totals = Object.fromEntries(TIKTOK_ENDPOINTS.map((e) => [e, 0])) as Record<TikTokEndpoint, number>;

  add(endpoint: TikTokEndpoint, counter: number): number {
    const last = this.last.get(endpoint) ?? 0;
    this.totals[endpoint] += counter >= last ? counter - last : counter;
    this.last.set(endpoint, counter);
    return this.totals[endpoint];
  }
}

export interface Watched {
  queues: SluiceQueues;
  store: ResultsStore;
  throttler: Throttler;
  sim: Simulator;
  admissions: AdmissionTotals;
  penalties: AdmissionTotals;
}

/**
 * Reads everything once. Discovery is counted before harvesting on purpose: only discovery jobs
 * add jobs, so "discovery idle, then harvesting idle" means the run is over.
 */
export async function takeSnapshot(w: Watched): Promise<Snapshot> {
  const discovery = await tally(w.queues.discovery);
  const harvesting = await tally(w.queues.harvesting);
  const counts = await w.store.counts();
  const statuses = await Promise.all(TIKTOK_ENDPOINTS.map((e) => w.throttler.inspect(e)));
  const admitted = Object.fromEntries(statuses.map((s) => [s.endpoint, w.admissions.add(s.endpoint as TikTokEndpoint, s.counters.admitted)])) as Record<TikTokEndpoint, number>;
  const penalties = Object.fromEntries(statuses.map((s) => [s.endpoint, w.penalties.add(s.endpoint as TikTokEndpoint, s.counters.penalties)])) as Record<TikTokEndpoint, number>;
  const effectivePerSec = Object.fromEntries(statuses.map((s) => [s.endpoint, s.effective.ratePerSec])) as Record<TikTokEndpoint, number>;
  const limits = w.sim.limits();
  const hiddenPerSec = Object.fromEntries(TIKTOK_ENDPOINTS.map((e) => [e, limits[endpointKey(e)]?.ratePerSec ?? null])) as Record<TikTokEndpoint, number | null>;
  return { at: Date.now(), jobs: { discovery, harvesting }, ...counts, admitted, penalties, effectivePerSec, hiddenPerSec, sim: w.sim.stats() };
}

/** True when no job is left to run in either queue. */
export function idle(s: Snapshot): boolean {
  return s.jobs.discovery.pending === 0 && s.jobs.harvesting.pending === 0;
}

const short = (e: TikTokEndpoint) => endpointKey(e);

/** One progress line: `[ 12.0s] discovery 5✓ 0✗ 3… | harvesting ... | profiles 9 domains 18 | admitted/sent ...`. */
export function progressLine(s: Snapshot, startedAt: number, note = ''): string {
  const secs = ((s.at - startedAt) / 1000).toFixed(1).padStart(5);
  const jobs = (name: string, t: JobTally) => `${name} ${t.completed} done ${t.failed} failed ${t.pending} waiting`;
  const perEndpoint = TIKTOK_ENDPOINTS.map((e) => `${short(e)} ${s.admitted[e]}/${s.sim.endpoints[endpointKey(e)].requests}`).join(' ');
  return (
    `[${secs}s] ${jobs('discovery', s.jobs.discovery)} | ${jobs('harvesting', s.jobs.harvesting)} | ` +
    `profiles ${s.profiles} domains ${s.domains} | admitted/sent ${perEndpoint} | violations ${s.sim.violations}${note}`
  );
}
