/**
 * The last 15 minutes of each endpoint, sampled in memory by the admin server for the
 * dashboard's charts. Nothing here is durable: a restarted admin server starts a new history,
 * which is fine for a live view (the durable numbers are Redis's counters and Prometheus).
 */
import type { EndpointView } from '../metrics/endpoint-view.js';

export interface HistorySample {
  /** When the sample was taken, ms since the epoch (admin server clock). */
  t: number;
  /** Fleet-wide admissions per second since the previous sample (null for the first one). */
  admissionsPerSec: number | null;
  /** The rate in force at sample time: the adaptive one when the endpoint learned one, else the configured (or overridden) one. */
  effectivePerSec: number;
  /** The configured rate at sample time, for comparison. */
  configuredPerSec: number;
  /** Upstream penalties since the previous sample (null for the first one). */
  penalties: number | null;
  /** Fleet-wide wait p95 over the reporters' window, ms (null when no process reported). */
  p95Ms: number | null;
  p50Ms: number | null;
  tokens: number;
  queued: number;
  /** Paused at sample time (penalty or operator). */
  paused: boolean;
  /** At least one upstream penalty arrived since the previous sample. */
  penalized: boolean;
}

/** A fixed-size ring of samples. */
class Ring<T> {
  private readonly items: T[] = [];
  private start = 0;
  constructor(readonly capacity: number) {}
  push(item: T): void {
    if (this.items.length < this.capacity) this.items.push(item);
    else {
      this.items[this.start] = item;
      this.start = (this.start + 1) % this.capacity;
    }
  }
  toArray(): T[] {
    return [...this.items.slice(this.start), ...this.items.slice(0, this.start)];
  }
}

interface Previous {
  t: number;
  admitted: number;
  penalties: number;
}

/** Per-endpoint rings of samples over `spanMs`, one sample every `intervalMs`. */
export class History {
  readonly capacity: number;
  private readonly rings = new Map<string, Ring<HistorySample>>();
  private readonly previous = new Map<string, Previous>();

  constructor(
    readonly intervalMs = 2_000,
    readonly spanMs = 15 * 60_000,
  ) {
    this.capacity = Math.max(2, Math.ceil(spanMs / intervalMs));
  }

  /** Adds one sample per endpoint from views read at `t`. */
  record(views: readonly EndpointView[], t = Date.now()): void {
    for (const v of views) {
      const prev = this.previous.get(v.endpoint);
      const { admitted, penalties } = v.counters;
      let admissionsPerSec: number | null = null;
      if (prev && t > prev.t) {
        // counters live in the bucket key, which expires when idle: a drop means it started again from 0
        const delta = admitted >= prev.admitted ? admitted - prev.admitted : admitted;
        admissionsPerSec = (delta * 1000) / (t - prev.t);
      }
      // the same restart-from-0 reading as admissions
      const newPenalties = prev === undefined ? null : penalties >= prev.penalties ? penalties - prev.penalties : penalties;
      const penalized = (newPenalties ?? 0) > 0;
      this.previous.set(v.endpoint, { t, admitted, penalties });
      let ring = this.rings.get(v.endpoint);
      if (!ring) this.rings.set(v.endpoint, (ring = new Ring(this.capacity)));
      ring.push({
        t,
        admissionsPerSec,
        effectivePerSec: v.effective.ratePerSec,
        configuredPerSec: v.configured.ratePerSec,
        penalties: newPenalties,
        p95Ms: v.waits.p95Ms,
        p50Ms: v.waits.p50Ms,
        tokens: v.tokens,
        queued: v.queued,
        paused: v.pausedUntil !== null || v.paused !== null,
        penalized,
      });
    }
  }

  /** Samples of one endpoint, oldest first. */
  series(endpoint: string): HistorySample[] {
    return this.rings.get(endpoint)?.toArray() ?? [];
  }

  /** Every endpoint's samples. */
  all(): Record<string, HistorySample[]> {
    return Object.fromEntries([...this.rings.keys()].map((e) => [e, this.series(e)]));
  }
}
