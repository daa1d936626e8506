import { AsyncLocalStorage } from 'node:async_hooks';
import { NonRetriableError } from 'inngest';
import { ErrorCode, QueueFullError, ThrottleTimeoutError } from '../errors/index.js';
import type { Admission, Throttler } from '../throttler.js';
import { deferralMarker, ThrottleDeferredError, type DeferralMarker } from './deferral.js';
import type { ResolvedOptions } from './options.js';

/**
 * The admission gate run inside a step's handler: acquire with a short inline wait, or turn a
 * long wait into a deferral. Admission is taken here, when the handler runs, and not when the
 * step is discovered: a step is discovered on every request that reaches it (parallel siblings,
 * targeted re-entries), but its handler runs once per attempt.
 */

/** The step whose handler is running on this async chain; `ctx.throttle()` needs one. */
export interface StepFrame {
  stepId: string;
  /** How many times this step was deferred already (0 on the first try). */
  deferrals: number;
}

export const stepScope = new AsyncLocalStorage<StepFrame>();

/** What one acquisition asks for; undefined fields take the throttler's defaults. */
export interface GateRequest {
  endpoint: string;
  priority?: string | undefined;
  tenant?: string | undefined;
  cost?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** Part of the invocation kept for the request itself after the admission. */
const INVOCATION_MARGIN_MS = 1_000;

/** Errors that a retry cannot fix (a bad name, endpoint or cost): fail the step once, not maxAttempts times. */
const PERMANENT: ReadonlySet<string> = new Set([ErrorCode.UnknownEndpoint, ErrorCode.InvalidName, ErrorCode.InvalidConfig, ErrorCode.CostAboveBurst]);

function deferralFor(err: unknown, endpoint: string, options: ResolvedOptions): DeferralMarker | undefined {
  const { inlineWaitMs, maxDeferMs } = options;
  if (err instanceof ThrottleTimeoutError) {
    const wait = err.expectedWaitMs;
    // refused up front: the throttler says how long; Infinity (rate 0) sleeps maxDeferMs and asks again
    if (wait !== undefined) return deferralMarker(endpoint, 'wait', wait, maxDeferMs, Number.isFinite(wait) ? wait : null);
    // the ticket's deadline passed in the queue (the estimate was short): come back after one more inline window
    return deferralMarker(endpoint, 'expired', inlineWaitMs, maxDeferMs);
  }
  // backpressure with no estimate: one inline window later the queue has moved by rate x window
  if (err instanceof QueueFullError) return deferralMarker(endpoint, 'queue-full', inlineWaitMs, maxDeferMs);
  return undefined;
}

/**
 * Acquires `request.endpoint` for the step running now. Resolves with the admission; throws
 * ThrottleDeferredError when the wait is longer than `inlineWaitMs` (the step wrapper turns it
 * into a durable sleep), NonRetriableError for a request no retry can fix, and lets every other
 * error (Redis unavailable, throttler closed) fail the attempt as usual.
 */
export async function admit(throttler: Throttler, request: GateRequest, deferrals: number, options: ResolvedOptions, invocationDeadline: number): Promise<Admission> {
  const { endpoint, ...rest } = request;
  const acquireOptions = {
    ...(rest.priority !== undefined ? { priority: rest.priority } : {}),
    ...(rest.tenant !== undefined ? { tenant: rest.tenant } : {}),
    ...(rest.cost !== undefined ? { cost: rest.cost } : {}),
    ...(rest.signal !== undefined ? { signal: rest.signal } : {}),
  };
  // never wait past the invocation's own end: an admission after it would take a token for a
  // request nobody sends, and the retry would take another (a margin for the request itself)
  const invocationLeftMs = Math.max(0, invocationDeadline - Date.now() - INVOCATION_MARGIN_MS);
  try {
    if (deferrals >= options.maxDeferrals) {
      // deferred often enough: more would add steps toward Inngest's per-run cap; wait for the turn instead
      options.logger.warn({ endpoint, deferrals, maxWaitMs: invocationLeftMs }, 'step deferred maxDeferrals times: waiting inline for its turn');
      return await throttler.acquire(endpoint, { ...acquireOptions, maxWaitMs: invocationLeftMs });
    }
    return await throttler.acquire(endpoint, { ...acquireOptions, maxWaitMs: Math.min(options.inlineWaitMs, invocationLeftMs) });
  } catch (err) {
    const marker = deferralFor(err, endpoint, options);
    if (marker) throw new ThrottleDeferredError(marker);
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && PERMANENT.has(code)) {
      throw new NonRetriableError((err as Error).message, { cause: err });
    }
    throw err;
  }
}
