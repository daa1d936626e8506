/**
 * `sluice/inngest`: Sluice in front of Inngest functions. The public API, in one screen.
 *
 * @module sluice/inngest
 */
export { throttleMiddleware } from './middleware.js';
export type { ThrottleFn, ThrottleCallOptions, ThrottleContext } from './middleware.js';
export { DEFAULT_INLINE_WAIT_MS, DEFAULT_MAX_DEFER_MS, DEFAULT_MAX_DEFERRALS, DEFAULT_INVOCATION_TIMEOUT_MS } from './options.js';
export type { ThrottleMiddlewareOptions, StepRoute, StepRouting, EventMapper } from './options.js';
export { ThrottleDeferredError, ThrottleOutsideStepError, isDeferralMarker, deferralDelayMs, deferralMarker } from './deferral.js';
export type { DeferralMarker } from './deferral.js';
export { retryStepId, waitStepId } from './step-run.js';
