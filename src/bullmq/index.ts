/**
 * `sluice/bullmq`: Sluice in front of a BullMQ worker. The public API, in one screen.
 *
 * ```ts
 * const worker = new Worker('fetch', throttledProcessor({ throttler, endpoint: 'api.search', process: work }), {
 *   connection, prefix: bullmqPrefix('scrape'),
 * });
 * ```
 *
 * @module sluice/bullmq
 */
export { throttledProcessor, deferJob, DEFAULT_JOB_MAX_WAIT_MS } from './processor.js';
export type { ThrottledProcessorOptions, ThrottledJobContext } from './processor.js';
export { bullmqPrefix } from './prefix.js';
export { JobDeferredError, UpstreamLimitError } from '../errors/index.js';
export type { DeferralReason } from '../errors/index.js';
export { deferralOf, jobDelayMs } from '../deferral.js';
