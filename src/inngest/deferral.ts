/**
 * Durable deferral of a throttled step: the step finishes with a marker instead of its output,
 * then the run sleeps (`step.sleep`) and runs the step again under a new id.
 *
 * Why a marker and not an error: a step that throws (even `RetryAfterError`) is a failed attempt.
 * Inngest counts it, and on the last attempt the SDK turns `RetryAfterError` into a permanent
 * failure (`retriability()` checks `maxAttempts - 1 === attempt` before it looks at the error). A
 * step that returns, and a sleep, never touch the attempt counter. See docs/inngest.md.
 */
import { ErrorCode, SluiceError } from '../errors/index.js';

/** Tag of the value a deferred step returns in place of its output. Never reaches user code. */
export const DEFERRAL_TAG = 'sluice.deferred';

/** What a deferred step returns instead of its output (memoized by Inngest, shown in its UI). */
export interface DeferralMarker {
  readonly __sluice: typeof DEFERRAL_TAG;
  readonly endpoint: string;
  /** The throttler's estimate when it refused (ms; null when it had none, e.g. rate 0 or a full queue). */
  readonly expectedWaitMs: number | null;
  /** How long the run sleeps before it tries the step again: whole seconds, rounded up. */
  readonly delayMs: number;
  /** `penalized`: the upstream pushed back (429, captcha) and the endpoint is paused. */
  readonly reason: 'wait' | 'queue-full' | 'expired' | 'penalized';
}

export function isDeferralMarker(value: unknown): value is DeferralMarker {
  return typeof value === 'object' && value !== null && (value as { __sluice?: unknown }).__sluice === DEFERRAL_TAG;
}

/**
 * The sleep before the next try, in ms: whole seconds, rounded UP, at least 1 s, at most `maxMs`.
 *
 * Whole seconds because Inngest's durable timers have 1 s resolution and the SDK's own conversion
 * (`timeStr` in inngest/helpers/strings) floors: `step.sleep(id, 2001)` sleeps "2s", which would
 * wake the run before its turn. Rounding here first makes the SDK's floor a no-op.
 */
export function deferralDelayMs(waitMs: number, maxMs: number): number {
  const capped = Number.isFinite(waitMs) ? Math.min(Math.max(waitMs, 0), maxMs) : maxMs;
  return Math.max(1, Math.ceil(capped / 1000)) * 1000;
}

/**
 * The marker of a step deferred on `endpoint`: it sleeps `waitMs` (rounded up to whole seconds, at
 * most `maxMs`). `expectedWaitMs` is the throttler's estimate when there is one.
 */
export function deferralMarker(endpoint: string, reason: DeferralMarker['reason'], waitMs: number, maxMs: number, expectedWaitMs: number | null = null): DeferralMarker {
  return { __sluice: DEFERRAL_TAG, endpoint, expectedWaitMs, delayMs: deferralDelayMs(waitMs, maxMs), reason };
}

/**
 * Thrown by the gate inside a step when the wait is too long to serve inline; the step wrapper
 * catches it and returns its marker instead. Only escapes if user code inside the step catches
 * and swallows it, so it is named plainly.
 */
export class ThrottleDeferredError extends SluiceError {
  readonly code = ErrorCode.ThrottleDeferred;
  constructor(readonly marker: DeferralMarker) {
    super(`"${marker.endpoint}": the wait is too long to hold an Inngest worker; the step is deferred by ${marker.delayMs} ms (let this error propagate out of step.run)`);
  }
}

/** `ctx.throttle()` was called outside `step.run`, where its admission would be taken again on every replay. */
export class ThrottleOutsideStepError extends SluiceError {
  readonly code = ErrorCode.ThrottleOutsideStep;
  constructor(endpoint: string) {
    super(
      `throttle("${endpoint}") was called outside step.run: code outside steps runs again on every replay, ` +
        'so each replay would take a token for a request made once. Call it first thing inside the step that makes the request.',
    );
  }
}
