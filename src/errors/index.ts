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
