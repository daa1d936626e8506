/**
 * A throttled processor for anyone's BullMQ worker: acquire a token before the work, and send the
 * job back to its queue without spending an attempt when waiting is not the job's fault.
 *
 * How a job ends:
 * - the work returns: completed;
 * - the throttle's expected wait passes `maxWaitMs`, or the endpoint's queue is full, or the work
 *   throws {@link JobDeferredError}: `job.moveToDelayed(until, token)` + `DelayedError`, which does
 *   NOT spend an attempt, and only this job waits (the queue is never paused, so jobs for other
 *   endpoints keep going);
 * - the work throws {@link UpstreamLimitError} (a 429, a captcha): the endpoint is penalized
 *   fleet-wide for its Retry-After, then the job is deferred past the pause;
 * - anything else (including Redis being down): a failed attempt, retried with the queue's backoff.
 */
import { DelayedError, type Job, type Processor } from 'bullmq';
import { deferralOf, jobDelayMs } from '../deferral.js';
import { JobDeferredError, QueueFullError, ThrottleTimeoutError, UpstreamLimitError } from '../errors/index.js';
import { rootLogger, type Logger } from '../logger.js';
import type { AcquireOptions, Admission, Throttler } from '../throttler.js';

/** What the work gets besides the job. */
export interface ThrottledJobContext {
  /** The admission the token was taken with (its endpoint, when it was let go, how long it waited). */
  admission: Admission;
  /** BullMQ's lock token of this job (for `moveToDelayed` and friends in advanced work). */
  token: string | undefined;
}

export interface ThrottledProcessorOptions<Data, Result> {
  /** The throttler tokens come from. */
  throttler: Pick<Throttler, 'acquire' | 'penalize'>;
  /** The endpoint the job's request goes to: a name, or one chosen per job. */
  endpoint: string | ((job: Job<Data>) => string);
  /**
   * Acquire options per job: `priority`, `tenant`, `cost`. `maxWaitMs` defaults to
   * {@link ThrottledProcessorOptions.maxWaitMs}; no `signal` (the processor owns none).
   */
  acquire?: (job: Job<Data>) => Omit<AcquireOptions, 'signal' | 'maxWaitMs'>;
  /**
   * Longest wait for a token inside the job, ms. Beyond it the job is deferred by the expected
   * wait (with jitter) instead of holding a worker slot. Default 30 000.
   */
  maxWaitMs?: number;
  /** The job's work, run once the token is taken. */
  process: (job: Job<Data>, context: ThrottledJobContext) => Promise<Result>;
  /** Parent logger; the processor logs deferrals through a child `{ component: 'bullmq' }`. */
  logger?: Logger;
}

/** Default {@link ThrottledProcessorOptions.maxWaitMs}. */
export const DEFAULT_JOB_MAX_WAIT_MS = 30_000;

/**
 * Sends the job back to its queue for `delayMs` without spending an attempt. Throws BullMQ's
 * `DelayedError`, which the processor must let through: it tells the worker the job was moved.
 */
export async function deferJob(job: Job, token: string | undefined, delayMs: number): Promise<never> {
  await job.moveToDelayed(Date.now() + Math.max(0, Math.ceil(delayMs)), token);
  throw new DelayedError(`job ${job.id} deferred by ${Math.ceil(delayMs)} ms`);
}

/** Creates the processor to pass to `new Worker(queueName, processor, ...)`. */
export function throttledProcessor<Data = unknown, Result = unknown>(options: ThrottledProcessorOptions<Data, Result>): Processor<Data, Result> {
  const maxWaitMs = options.maxWaitMs ?? DEFAULT_JOB_MAX_WAIT_MS;
  const log = (options.logger ?? rootLogger()).child({ component: 'bullmq' });
  const endpointOf = typeof options.endpoint === 'function' ? options.endpoint : () => options.endpoint as string;

  return async (job: Job<Data>, token?: string): Promise<Result> => {
    const endpoint = endpointOf(job);
    try {
      const admission = await options.throttler.acquire(endpoint, { ...options.acquire?.(job), maxWaitMs });
      return await options.process(job, { admission, token });
    } catch (err) {
      let deferral = deferralOf(err, maxWaitMs);
      if (err instanceof UpstreamLimitError) {
        const { pausedUntil } = await options.throttler.penalize(err.endpoint, { retryAfterMs: err.retryAfterMs, reason: err.kind });
        deferral = new JobDeferredError(err.endpoint, 'penalized', jobDelayMs(pausedUntil - Date.now()), err.message);
      }
      if (!deferral) throw err;
      log.info({ jobId: job.id, endpoint: deferral.endpoint, reason: deferral.reason, delayMs: deferral.delayMs }, 'job deferred');
      return deferJob(job, token, deferral.delayMs);
    }
  };
}
