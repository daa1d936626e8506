/**
 * Typed errors. Denial (timeout, queue full) is never confused with failure (Redis unreachable):
 * each has its own class and `code`, so a caller can tell "throttled" from "broken".
 */

export const ErrorCode = {
  ThrottleTimeout: 'THROTTLE_TIMEOUT',
  QueueFull: 'QUEUE_FULL',
  Aborted: 'ABORTED',
  UnknownEndpoint: 'UNKNOWN_ENDPOINT',
  CostAboveBurst: 'COST_ABOVE_BURST',
  InvalidName: 'INVALID_NAME',
  InvalidConfig: 'INVALID_CONFIG',
  RedisUnavailable: 'REDIS_UNAVAILABLE',
  Closed: 'THROTTLER_CLOSED',
  InvalidPayload: 'INVALID_PAYLOAD',
  ThrottleDeferred: 'THROTTLE_DEFERRED',
  ThrottleOutsideStep: 'THROTTLE_OUTSIDE_STEP',
  JobDeferred: 'JOB_DEFERRED',
  UpstreamLimited: 'UPSTREAM_LIMITED',
  BadRequest: 'BAD_REQUEST',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export abstract class SluiceError extends Error {
  abstract readonly code: ErrorCode;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The wait for tokens would pass `maxWaitMs`: refused up front, or the ticket's deadline passed. */
export class ThrottleTimeoutError extends SluiceError {
  readonly code = ErrorCode.ThrottleTimeout;
  constructor(
    message: string,
    readonly endpoint: string,
    /** Estimated wait in ms when refused up front; undefined when the deadline passed in the queue. */
    readonly expectedWaitMs?: number,
  ) {
    super(message);
  }
}

/** The endpoint's fair queue holds `maxQueue` tickets already: backpressure, slow the producer down. */
export class QueueFullError extends SluiceError {
  readonly code = ErrorCode.QueueFull;
  constructor(
    message: string,
    readonly endpoint: string,
    readonly maxQueue: number,
  ) {
    super(message);
  }
}

/** The caller's AbortSignal fired; its reservation or ticket was given back. */
export class AbortError extends SluiceError {
  readonly code = ErrorCode.Aborted;
  constructor(message = 'acquire aborted by its signal', options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class UnknownEndpointError extends SluiceError {
  readonly code = ErrorCode.UnknownEndpoint;
  constructor(readonly endpoint: string, known: string[]) {
    super(`unknown endpoint "${endpoint}": configure it under endpoints (known: ${known.join(', ') || 'none'})`);
  }
}

/** A request costs more tokens than the bucket can ever hold: it could never be served. */
export class CostAboveBurstError extends SluiceError {
  readonly code = ErrorCode.CostAboveBurst;
  constructor(
    readonly endpoint: string,
    readonly cost: number,
    readonly burst: number,
  ) {
    super(`cost ${cost} is above the burst ${burst} of "${endpoint}": it could never be admitted; raise burst or lower cost`);
  }
}

export class InvalidNameError extends SluiceError {
  readonly code = ErrorCode.InvalidName;
}

export class InvalidConfigError extends SluiceError {
  readonly code = ErrorCode.InvalidConfig;
}

export class InvalidPayloadError extends SluiceError {
  readonly code = ErrorCode.InvalidPayload;
}

/** Redis could not be reached (or answered with an error) and the failure policy does not allow going on. */
export class RedisUnavailableError extends SluiceError {
  readonly code = ErrorCode.RedisUnavailable;
}

export class ThrottlerClosedError extends SluiceError {
  readonly code = ErrorCode.Closed;
  constructor() {
    super('the throttler is closed');
  }
}

/** Why a job goes back to its queue without spending an attempt. */
export type DeferralReason =
  /** The throttle's expected wait passed the job's `maxWaitMs` (refused up front). */
  | 'wait'
  /** The endpoint's fair queue is full: backpressure. */
  | 'queue-full'
  /** The upstream pushed back (429, captcha...) and the endpoint was penalized fleet-wide. */
  | 'penalized';

/**
 * Thrown from a job's work (or by `sluice/bullmq`'s processor itself) to send the job back to its
 * queue for `delayMs` without spending an attempt: waiting for the throttle or for an upstream's
 * pause is never the job's fault.
 */
export class JobDeferredError extends SluiceError {
  readonly code = ErrorCode.JobDeferred;
  constructor(
    readonly endpoint: string,
    readonly reason: DeferralReason,
    /** How long the job stays delayed, jitter included. */
    readonly delayMs: number,
    detail: string,
  ) {
    super(`${endpoint}: ${detail}; job deferred by ${Math.round(delayMs)} ms`);
  }
}

/**
 * The upstream refused a request for being too fast (an HTTP 429, a captcha page). Thrown from a
 * job's work, `sluice/bullmq` penalizes the endpoint fleet-wide for `retryAfterMs` and defers the
 * job past the pause.
 */
export class UpstreamLimitError extends SluiceError {
  readonly code = ErrorCode.UpstreamLimited;
  constructor(
    readonly endpoint: string,
    /** How long the upstream asked to wait (its Retry-After), or the caller's default penalty. */
    readonly retryAfterMs: number,
    /** A short word for logs and events, e.g. `429` or `captcha`. */
    readonly kind = 'rate-limited',
  ) {
    super(`${endpoint}: the upstream refused a request (${kind}); retry after ${Math.ceil(retryAfterMs)} ms`);
  }
}
