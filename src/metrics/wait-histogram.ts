/**
 * Wait-time histograms over a sliding window, small enough to publish to Redis every few seconds
 * and merge across the fleet. Fixed bucket bounds make merging a plain sum.
 */

/** Upper bounds (ms) of the wait buckets; a last, open bucket holds everything above. */
export const WAIT_BUCKETS_MS: readonly number[] = [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000];

/**
 * An admission "waited" when it took longer than this: a Redis round trip plus event-loop delay
 * (and the first call's script load) stays below it on a sane network, so anything above is the
 * throttle holding the caller back. It is a bucket bound, so the histogram can count it exactly.
 */
export const WAITED_THRESHOLD_MS = 10;

/** Counts of one window: `counts[i]` admissions in bucket i (not cumulative), the last one open. */
export interface WaitHistogram {
  counts: number[];
  /** Sum of the waits, ms. */
  sumMs: number;
}

export function emptyHistogram(): WaitHistogram {
  return { counts: new Array<number>(WAIT_BUCKETS_MS.length + 1).fill(0), sumMs: 0 };
}

export function bucketOf(ms: number): number {
  for (let i = 0; i < WAIT_BUCKETS_MS.length; i++) if (ms <= WAIT_BUCKETS_MS[i]!) return i;
  return WAIT_BUCKETS_MS.length;
}

/** Adds `from` into `into` (same bounds), and returns `into`. */
export function addHistogram(into: WaitHistogram, from: WaitHistogram): WaitHistogram {
  for (let i = 0; i < into.counts.length; i++) into.counts[i]! += from.counts[i] ?? 0;
  into.sumMs += from.sumMs;
  return into;
}

export function totalOf(h: WaitHistogram): number {
  return h.counts.reduce((a, b) => a + b, 0);
}

/** Admissions that waited longer than {@link WAITED_THRESHOLD_MS}. */
export function waitedOf(h: WaitHistogram): number {
  let n = 0;
  for (let i = 0; i < h.counts.length; i++) if (i === WAIT_BUCKETS_MS.length || WAIT_BUCKETS_MS[i]! > WAITED_THRESHOLD_MS) n += h.counts[i]!;
  return n;
}

/**
 * The q-quantile (0..1) in ms, interpolated linearly inside its bucket like Prometheus's
 * `histogram_quantile`; null for an empty histogram. A quantile in the open bucket reports the
 * last finite bound: the histogram cannot say more.
 */
export function quantileMs(h: WaitHistogram, q: number): number | null {
  const total = totalOf(h);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < h.counts.length; i++) {
    const c = h.counts[i]!;
    if (c > 0 && seen + c >= rank) {
      if (i === WAIT_BUCKETS_MS.length) return WAIT_BUCKETS_MS[i - 1]!;
      const lower = i === 0 ? 0 : WAIT_BUCKETS_MS[i - 1]!;
      const upper = WAIT_BUCKETS_MS[i]!;
      return lower + (upper - lower) * Math.max(0, rank - seen) / c;
    }
    seen += c;
  }
  return WAIT_BUCKETS_MS[WAIT_BUCKETS_MS.length - 1]!;
}

/**
 * A sliding window made of fixed slots (e.g. 12 slots of 5 s = the last minute). Recording is
 * O(buckets) at worst; a snapshot sums the slots still inside the window.
 */
export class SlidingWaitWindow {
  private readonly slots: { index: number; h: WaitHistogram }[];

  constructor(
    /** Width of one slot, ms. */
    readonly slotMs: number,
    /** Number of slots: the window is `slotMs * slotCount`. */
    readonly slotCount: number,
  ) {
    this.slots = Array.from({ length: slotCount }, () => ({ index: -1, h: emptyHistogram() }));
  }

  get windowMs(): number {
    return this.slotMs * this.slotCount;
  }

  record(waitedMs: number, now = Date.now()): void {
    const index = Math.floor(now / this.slotMs);
    const slot = this.slots[index % this.slotCount]!;
    if (slot.index !== index) {
      slot.index = index;
      slot.h = emptyHistogram();
    }
    slot.h.counts[bucketOf(waitedMs)]!++;
    slot.h.sumMs += waitedMs;
  }

  /** The histogram of the last `windowMs`, slot-granular. */
  snapshot(now = Date.now()): WaitHistogram {
    const current = Math.floor(now / this.slotMs);
    const out = emptyHistogram();
    for (const slot of this.slots) if (slot.index > current - this.slotCount && slot.index <= current) addHistogram(out, slot.h);
    return out;
  }
}
