/**
 * The inspect script's one typed wrapper: runs it and decodes its reply into named fields, so no
 * caller reads the tuple by index.
 */
import type { Cluster, Redis } from 'ioredis';
import type { Keys } from './keys.js';
import { run } from './redis/scripts.js';

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
  /**
   * Adaptive mode's state, when the endpoint has learned a rate: the effective rate is `effective.ratePerSec`.
   * `ceilingPerSec` is the rate of the last penalty; `probeBackoff` (0-3) counts the penalties in a
   * row near that ceiling: the rate holds below it for quiet period x 4^probeBackoff before probing past it.
   */
  adaptive: { ratePerSec: number; ceilingPerSec: number; lastPenaltyAt: number | null; lastRaiseAt: number | null; probeBackoff: number } | null;
  overrides: Record<string, string>;
  /** Remaining TTLs (ms) of the bucket and queue keys; -2 when the key does not exist. */
  ttls: { bucket: number; queue: number };
}

/** The configured values inspect compares against. */
export interface InspectedSettings {
  ratePerMs: number;
  burst: number;
  maxQueue: number;
}

/** Reads one endpoint as Redis holds it now (one script call). */
export async function readEndpointStatus(redis: Redis | Cluster, k: Keys, endpoint: string, s: InspectedSettings, configVersion: number): Promise<EndpointStatus> {
  const r = await run<unknown[]>(redis, 'inspect', [k.config(endpoint), k.bucket(endpoint), k.queue(endpoint)], [s.ratePerMs, s.burst, s.maxQueue, configVersion]);
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
      ? { ratePerSec: Number(r[25]) * 1000, ceilingPerSec: Number(r[26]) * 1000, lastPenaltyAt: num(27) || null, lastRaiseAt: num(28) || null, probeBackoff: num(29) }
      : null,
    overrides,
    ttls: { bucket: ttls[0]!, queue: ttls[1]! },
  };
}
