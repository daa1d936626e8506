/**
 * Hidden per-endpoint limits: one token bucket per endpoint key. Clients never see the numbers;
 * they only see what happens past them (429, captcha, ...), as with TikTok.
 */

/** The simulator's endpoint keys: the throttle's `tiktok.*` names without the prefix. */
export const SIM_KEYS = ['search', 'hashtag', 'creator', 'video', 'profile'] as const;
export type SimKey = (typeof SIM_KEYS)[number];

export interface Limit {
  /** Tokens added per second. 0 = no refill. */
  ratePerSec: number;
  /** Bucket size: requests allowed back to back from a full bucket. At least 1. */
  burst: number;
}

export type Limits = Partial<Record<SimKey, Limit>>;

export interface LimitsUpdate {
  /** Per-key limits to set; `null` removes a key's limit (unlimited). Keys not named keep theirs. */
  limits?: Partial<Record<SimKey, Limit | null>>;
  /** New scale for every limit (rate and burst). */
  limitFactor?: number;
  /** Refill every bucket to its (new) burst. Default false: tokens carry over, capped at burst. */
  refill?: boolean;
  /** Empty every bucket, as if a burst had just gone through (tests that need the next request refused). */
  empty?: boolean;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** `tokens`: what the bucket held when the request came (before taking); Infinity when unlimited. */
export type TakeResult = { allowed: true; tokens: number } | { allowed: false; tokens: number; retryAfterMs: number };

/** Longest Retry-After we advertise when a bucket never refills. */
const MAX_RETRY_MS = 3_600_000;

/** The token buckets of all keys, with runtime changes and a global scale factor. */
export class HiddenLimits {
  private configured: Limits = {};
  private factor = 1;
  private readonly buckets = new Map<SimKey, Bucket>();

  constructor(
    limits: Limits = {},
    limitFactor = 1,
    /** Monotonic ms clock; injectable for tests. */
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.set({ limits, limitFactor, refill: true });
  }

  /**
   * Limits in force after `limitFactor`: rate × factor, burst × factor rounded down (never below 1),
   * so a half-rate simulator is never more generous than asked.
   */
  effective(): Limits {
    const out: Limits = {};
    for (const key of SIM_KEYS) {
      const limit = this.configured[key];
      if (limit) out[key] = { ratePerSec: limit.ratePerSec * this.factor, burst: Math.max(1, Math.floor(limit.burst * this.factor)) };
    }
    return out;
  }

  get limitFactor(): number {
    return this.factor;
  }

  /** Changes limits at runtime; see {@link LimitsUpdate}. Throws RangeError on invalid values. */
  set(update: LimitsUpdate): void {
    if (update.limitFactor !== undefined) {
      if (!Number.isFinite(update.limitFactor) || update.limitFactor <= 0) {
        throw new RangeError(`limitFactor must be a positive number, got ${update.limitFactor}`);
      }
    }
    const next: Limits = { ...this.configured };
    for (const [key, limit] of Object.entries(update.limits ?? {}) as Array<[SimKey, Limit | null]>) {
      if (!SIM_KEYS.includes(key)) throw new RangeError(`unknown endpoint key "${key}" (known: ${SIM_KEYS.join(', ')})`);
      if (limit === null) {
        delete next[key];
        continue;
      }
      if (!Number.isFinite(limit.ratePerSec) || limit.ratePerSec < 0) {
        throw new RangeError(`${key}.ratePerSec must be a number >= 0, got ${limit.ratePerSec}`);
      }
      if (!Number.isFinite(limit.burst) || limit.burst < 1) throw new RangeError(`${key}.burst must be a number >= 1, got ${limit.burst}`);
      next[key] = { ratePerSec: limit.ratePerSec, burst: limit.burst };
    }
    // Settle every bucket at the old rates before the new ones apply.
    for (const key of SIM_KEYS) this.refillTo(key, this.clock());
    this.configured = next;
    if (update.limitFactor !== undefined) this.factor = update.limitFactor;
    const eff = this.effective();
    const now = this.clock();
    for (const key of SIM_KEYS) {
      const limit = eff[key];
      const bucket = this.buckets.get(key);
      if (!limit) this.buckets.delete(key);
      else if (update.empty) this.buckets.set(key, { tokens: 0, at: now });
      else if (!bucket || update.refill) this.buckets.set(key, { tokens: limit.burst, at: now });
      else bucket.tokens = Math.min(bucket.tokens, limit.burst);
    }
  }

  private refillTo(key: SimKey, now: number): Bucket | undefined {
    const bucket = this.buckets.get(key);
    const limit = this.effective()[key];
    if (!bucket || !limit) return undefined;
    const elapsed = Math.max(0, now - bucket.at) / 1000;
    bucket.tokens = Math.min(limit.burst, bucket.tokens + elapsed * limit.ratePerSec);
    bucket.at = now;
    return bucket;
  }

  /**
   * Takes one token for `key`. Unlimited keys always pass. A refusal does not spend a token.
   * @returns whether the request is within limits and, if not, how long until one token exists.
   */
  take(key: SimKey): TakeResult {
    const bucket = this.refillTo(key, this.clock());
    if (!bucket) return { allowed: true, tokens: Infinity };
    const tokens = bucket.tokens;
    // Epsilon: float refill can land a hair under 1 at the exact instant a token is due.
    if (tokens >= 1 - 1e-9) {
      bucket.tokens -= 1;
      return { allowed: true, tokens };
    }
    const rate = this.effective()[key]?.ratePerSec ?? 0;
    const waitMs = rate > 0 ? Math.ceil(((1 - bucket.tokens) / rate) * 1000) : MAX_RETRY_MS;
    return { allowed: false, tokens, retryAfterMs: Math.min(MAX_RETRY_MS, Math.max(1, waitMs)) };
  }
}

