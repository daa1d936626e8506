/**
 * When a caller whose slot is due may be let go. Redis grants slots that conform to the bucket
 * (≤ rate·Δ + burst in any window Δ), but the upstream sees the let-go times. A let-go at most τ
 * after its slot keeps what the upstream sees ≤ rate·(Δ + τ) + burst, whatever every other process
 * does, because the bound holds caller by caller. A process that wakes from a stall with several
 * slots long due would let them all go at once; instead those slots are written off (the upstream
 * never saw them, which is safe) and their callers ask for fresh ones: a stall costs throughput,
 * never safety.
 */

/**
 * Default tolerance: half the slot spacing at the current rate, so a late caller adds at most half
 * a token to what the upstream sees. Not capped in time: at 1/min a second late is 1/60 of a token,
 * and writing that slot off would cost a minute. Never below what a busy event loop routinely loses
 * (timers, a claim that learns its promotion a little late): writing off every slot a few ms late
 * cut a loaded 2-core machine's throughput at 200/s to a third, while a stall's clump is hundreds
 * of ms. Above 25/s that floor allows rate·20 ms tokens over the burst.
 */
const MIN_DEFAULT_TOLERANCE_MS = 20;

/** The tolerance at an endpoint's current rate (tokens/ms), or the configured one. */
export function lateToleranceMs(configured: number | undefined, ratePerMs: number): number {
  if (configured !== undefined) return configured;
  return ratePerMs > 0 ? Math.max(MIN_DEFAULT_TOLERANCE_MS, 0.5 / ratePerMs) : Infinity;
}

/** How long the fastest reply of a while is trusted for (clocks drift, a failed-over Redis has its own). */
const WINDOW_MS = 5_000;
const BIN_MS = 1_000;

/**
 * Redis time on this process's clock. Every reply bounds Redis-minus-local from both sides:
 * above by `now - sentAt`, below by `now - receivedAt`. The lower bound is the safe one (slots land
 * late, never early), and its error is that reply's way back, which a stall while the reply sat
 * unread makes as long as the stall. The best lower bound of the last few seconds is kept, so one
 * reply read late does not shift this process's slots (and hide their lateness) by the stall.
 */
export class RedisClock {
  /** Best lower bound per second of local time, oldest first. */
  private bins: { bin: number; offset: number }[] = [];
  private best = 0;

  /** Redis ms minus local ms: an underestimate by the fastest recent reply's way back. */
  get offset(): number {
    return this.best;
  }

  note(redisNow: number, sentAt: number, receivedAt: number): void {
    const low = redisNow - receivedAt;
    const high = redisNow - sentAt;
    const bin = Math.floor(receivedAt / BIN_MS);
    // a round trip proves the kept bound too high (Redis's clock stepped back, a failover): start over
    if (high < this.best) this.bins = [];
    const last = this.bins.at(-1);
    if (last && last.bin === bin) last.offset = Math.max(last.offset, low);
    else this.bins.push({ bin, offset: low });
    const from = bin - WINDOW_MS / BIN_MS;
    while (this.bins.length > 1 && this.bins[0]!.bin < from) this.bins.shift();
    this.best = Math.max(...this.bins.map((b) => b.offset));
  }
}
