import { JobDeferredError, QueueFullError, ThrottleTimeoutError } from './errors/index.js';

/**
 * The delay before a deferred job runs again: the base (the expected wait, or the pause) plus
 * jitter that only ever adds, so the job never comes back before its turn; spread by up to 20%
 * (at least 250 ms) so the jobs deferred by one refusal do not all return on the same millisecond.
 * (Inngest steps sleep in whole seconds instead: `deferralDelayMs` of `sluice/inngest`.)
 */
export function jobDelayMs(baseMs: number): number {
  const base = Math.max(0, Number.isFinite(baseMs) ? baseMs : 0);
  return Math.ceil(base + Math.random() * Math.max(250, base * 0.2));
}

/**
 * Maps a throttle refusal (the expected wait passes `maxWaitMs`, or the queue is full) to a job
 * deferral; anything else is not one. Shared by `sluice/bullmq` and any job runner of a user's.
 */
export function deferralOf(err: unknown, maxWaitMs: number): JobDeferredError | undefined {
  if (err instanceof JobDeferredError) return err;
  if (err instanceof ThrottleTimeoutError) {
    // expectedWaitMs is absent when a queued ticket's deadline passed: it was at least maxWaitMs
    const wait = err.expectedWaitMs ?? maxWaitMs;
    return new JobDeferredError(err.endpoint, 'wait', jobDelayMs(wait), `expected wait ${Math.round(wait)} ms is beyond maxWaitMs ${maxWaitMs} ms`);
  }
  if (err instanceof QueueFullError) {
    // no estimate: come back after roughly one max wait, when the queue has moved
    return new JobDeferredError(err.endpoint, 'queue-full', jobDelayMs(maxWaitMs), `fair queue full (${err.maxQueue} tickets)`);
  }
  return undefined;
}
