/**
 * Fleet-wide wait statistics: each worker process publishes its last-minute wait histogram per
 * endpoint into the endpoint's stats hash (`Keys.stats`), one field per process; readers (admin
 * server, `sluice status`, metrics) merge the fields that are still fresh.
 *
 * Layout of `stats(endpoint)` (hash, PEXPIREd on every write so it vanishes when the fleet stops):
 *
 * | field       | value                                                        |
 * |-------------|--------------------------------------------------------------|
 * | `w|<owner>` | JSON {@link PublishedWaits}: the owner's window, stamped with Redis time |
 *
 * One JSON field per process (rather than one field per bucket) so a reader always sees a whole,
 * consistent histogram of each process, and staleness is judged once per process.
 */
import type { Cluster, Redis } from 'ioredis';
import type { Keys } from '../keys.js';
import { addHistogram, emptyHistogram, quantileMs, totalOf, waitedOf, WAIT_BUCKETS_MS, type WaitHistogram } from './wait-histogram.js';

/** Prefix of the per-process fields in the stats hash. */
export const WAIT_FIELD_PREFIX = 'w|';

/** What one process publishes for one endpoint. */
export interface PublishedWaits extends WaitHistogram {
  /** Redis time (ms) of the write: readers ignore fields older than `staleAfterMs`. */
  at: number;
  /** Width of the window the histogram covers. */
  windowMs: number;
  /** After this long without a refresh the field is a dead process's and is ignored. */
  staleAfterMs: number;
}

/** Fleet-wide waits of one endpoint over the last window. */
export interface FleetWaits {
  /** Window the figures cover (the widest any process publishes), ms. */
  windowMs: number;
  /** Processes that reported admissions in the window. */
  processes: number;
  /** Admissions in the window. */
  admitted: number;
  /** Admissions that waited longer than WAITED_THRESHOLD_MS. */
  waited: number;
  p50Ms: number | null;
  p95Ms: number | null;
  /** The merged histogram, bounds in WAIT_BUCKETS_MS. */
  histogram: WaitHistogram;
}

/** Redis time in ms. */
export async function redisTimeMs(redis: Redis | Cluster): Promise<number> {
  const [sec, usec] = await redis.time();
  return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
}

function parsePublished(json: string): PublishedWaits | undefined {
  try {
    const v = JSON.parse(json) as PublishedWaits;
    if (!Array.isArray(v.counts) || v.counts.length !== WAIT_BUCKETS_MS.length + 1 || typeof v.at !== 'number') return undefined;
    return v;
  } catch {
    return undefined; // a field written by an incompatible version: ignore it rather than fail the status page
  }
}

/** Fields of `hash` (a stats hash) whose publisher stopped refreshing them before `now`. */
export function staleWaitFields(hash: Record<string, string>, now: number): string[] {
  return Object.entries(hash)
    .filter(([f, v]) => {
      if (!f.startsWith(WAIT_FIELD_PREFIX)) return false;
      const p = parsePublished(v);
      return !p || p.at + p.staleAfterMs < now;
    })
    .map(([f]) => f);
}

/** Merges the fresh per-process fields of one stats hash. */
export function mergeWaits(hash: Record<string, string>, now: number): FleetWaits {
  const histogram = emptyHistogram();
  let windowMs = 0;
  let processes = 0;
  for (const [field, value] of Object.entries(hash)) {
    if (!field.startsWith(WAIT_FIELD_PREFIX)) continue;
    const p = parsePublished(value);
    if (!p || p.at + p.staleAfterMs < now) continue;
    addHistogram(histogram, p);
    windowMs = Math.max(windowMs, p.windowMs);
    if (totalOf(p) > 0) processes++;
  }
  return {
    windowMs,
    processes,
    admitted: totalOf(histogram),
    waited: waitedOf(histogram),
    p50Ms: quantileMs(histogram, 0.5),
    p95Ms: quantileMs(histogram, 0.95),
    histogram,
  };
}

/** Reads and merges the published waits of several endpoints: one pipeline (TIME + one HGETALL each). */
export async function readFleetWaits(redis: Redis | Cluster, keys: Keys, endpoints: readonly string[]): Promise<Map<string, FleetWaits>> {
  const pipeline = redis.pipeline().time();
  for (const e of endpoints) pipeline.hgetall(keys.stats(e));
  const replies = (await pipeline.exec()) ?? [];
  const failed = replies.find(([err]) => err);
  if (failed) throw failed[0]!;
  const [sec, usec] = replies[0]![1] as [string, string];
  const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  const out = new Map<string, FleetWaits>();
  endpoints.forEach((e, i) => out.set(e, mergeWaits((replies[i + 1]![1] as Record<string, string>) ?? {}, now)));
  return out;
}
