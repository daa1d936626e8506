import type { Logger } from './logger.js';
import { jitter } from './sleep.js';

export type FailurePolicy = 'closed' | 'local' | 'open';

/** A leased share of an endpoint's rate: what one process may admit on its own while Redis is away. */
export interface LocalShare {
  ratePerMs: number;
  burst: number;
}

/**
 * One endpoint lane's view of a Redis outage: the circuit breaker (after a failed call Redis is
 * not asked again until a backoff ends, then by one probe) and, for policy 'local', the bucket
 * this process admits from meanwhile. The lane decides what happens to its callers; this keeps
 * the counts, the clock and the local tokens.
 */
export class Outage {
  /** Failed calls since Redis last answered (0: no outage); calls that were on their way together count once. */
  failures = 0;
  /** Counted failures so far: a call remembers it when sent, and one sent before the latest counted failure adds nothing. */
  generation = 0;
  /** Callers admitted without Redis in this outage. */
  admitted = 0;
  private breakerUntil = 0;
  private lastLog = 0;
  /** The local bucket, started empty at each outage so that an outage never begins with a burst. */
  private local: { t: number; ts: number } | undefined;
  /** Local ms before which nothing is admitted without Redis: the last pause Redis (or penalize) told of. */
  private pauseUntil = 0;

  constructor(
    readonly policy: FailurePolicy,
    private readonly logger: Logger,
  ) {}

  /** Ms the circuit stays open; 0 when Redis may be asked. */
  openFor(): number {
    return Math.max(0, this.breakerUntil - Date.now());
  }

  /**
   * A call failed: logs (at most every 5 s) and opens the circuit. Returns the ms until the probe.
   * `sentIn`: the generation when the call was sent. Calls on their way together (a lane sends two
   * at once) fail together: only the first lengthens the backoff.
   */
  failed(err: unknown, sentIn = this.generation): number {
    const now = Date.now();
    if (sentIn !== this.generation) return Math.max(0, this.breakerUntil - now);
    this.generation++;
    this.failures++;
    if (now - this.lastLog > 5_000) {
      this.lastLog = now;
      const what = { closed: 'callers wait', local: 'each process admits its leased share', open: 'FAILING OPEN: admitting without limit' }[this.policy];
      this.logger.error({ err, failures: this.failures, failurePolicy: this.policy }, `Redis unreachable: ${what}`);
    }
    // closed: back off up to 2 s; local/open keep admitting meanwhile, so probe often to hand
    // control back to Redis soon after it returns
    const cap = this.policy === 'closed' ? 2_000 : 300;
    const backoff = jitter(Math.min(cap, 50 * 2 ** Math.min(this.failures, 6)), 0.3);
    this.breakerUntil = now + backoff;
    // the same expression as above, so a call that failed together never reports a longer wait
    // (backoff and (now + backoff) - now differ in the last bits)
    return this.breakerUntil - now;
  }

  /** Redis answers again: the circuit closes and the local bucket is forgotten. */
  recovered(): void {
    this.logger.warn({ failures: this.failures, admittedWithoutRedis: this.admitted }, 'Redis reachable again');
    this.failures = 0;
    this.breakerUntil = 0;
    this.local = undefined;
    this.admitted = 0;
  }

  /** A pause Redis told of, or one this process reported: no local admission before it. */
  notePause(untilLocalMs: number, replace = false): void {
    this.pauseUntil = replace ? untilLocalMs : Math.max(this.pauseUntil, untilLocalMs);
  }

  /**
   * Takes `cost` from the local bucket (policy 'local'): `at`, the local ms at which the caller may
   * go (`taken` false: that passes `deadline`, nothing was taken), or undefined when it must wait
   * for Redis (no lease, or an operator's pause without end).
   */
  takeLocal(share: LocalShare | undefined, cost: number, now: number, deadline?: number): { at: number; taken: boolean } | undefined {
    if (!share || share.ratePerMs <= 0 || this.pauseUntil === Infinity) return undefined;
    // a penalty's or an operator's pause, as last heard: the local bucket starts refilling at its end
    const from = Math.max(now, this.pauseUntil);
    this.local ??= { t: 0, ts: from };
    if (from > this.local.ts) {
      this.local.t = Math.min(share.burst, this.local.t + (from - this.local.ts) * share.ratePerMs);
      this.local.ts = from;
    }
    const at = from + Math.max(0, (cost - this.local.t) / share.ratePerMs);
    if (deadline !== undefined && at > deadline) return { at, taken: false };
    this.local.t -= cost;
    this.admitted++;
    return { at, taken: true };
  }

  /** Gives back a local admission whose time has not come (its caller gave up). */
  giveBackLocal(cost: number): void {
    if (this.local) this.local.t += cost;
  }
}
