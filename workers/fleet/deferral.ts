/**
 * Why a job stops early and goes back to its queue without spending an attempt: the throttle
 * would make it wait too long, or TikTok pushed back and the endpoint is paused. Neither is the
 * job's fault, so neither may count against its attempts (BullMQ's `moveToDelayed` +
 * `DelayedError`, see runner.ts).
 */

export type DeferralReason =
  /** The throttle's expected wait passed the job's maxWaitMs (refused up front). */
  | 'wait'
  /** The endpoint's fair queue is full: backpressure. */
  | 'queue-full'
  /** TikTok answered 429 / captcha / WAF / empty: the endpoint was penalized fleet-wide. */
  | 'penalized';

/** Thrown out of a job's logic to send the job back to the queue for `delayMs`. */
export class JobDeferral extends Error {
  constructor(
    readonly endpoint: string,
    readonly reason: DeferralReason,
    /** How long the job stays delayed, jitter included. */
    readonly delayMs: number,
    detail: string,
  ) {
    super(`${endpoint}: ${detail}; job deferred by ${Math.round(delayMs)} ms`);
    this.name = 'JobDeferral';
  }
}

/**
 * The delay before a deferred job runs again: the base (the expected wait, or the pause) plus
 * jitter that only ever adds, so the job never comes back before its turn; spread by up to 20%
 * (at least 250 ms) so the jobs deferred by one refusal do not all return on the same millisecond.
 */
export function deferralDelayMs(baseMs: number): number {
  const base = Math.max(0, Number.isFinite(baseMs) ? baseMs : 0);
  return Math.ceil(base + Math.random() * Math.max(250, base * 0.2));
}
