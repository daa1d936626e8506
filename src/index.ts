/**
 * Sluice: a distributed, fair, queueing throttler for scraping fleets.
 * The public API, in one screen.
 *
 * @module sluice
 */
export { createThrottler, Throttler } from './throttler.js';
export type { ThrottlerOptions, AcquireOptions, Admission } from './throttler.js';
export { EndpointOverride, OVERRIDE_TTL_MS } from './controls.js';
export type { AuditEntry, ChangeOptions } from './controls.js';
export type { EndpointStatus } from './inspect.js';
export type { ThrottleEvent, ThrottleListener } from './events.js';
export { ThrottlerConfig, EndpointConfig, BucketConfig, RateInput, DurationInput, Name, parseThrottlerConfig, describeIssues, checkDefaultPriority } from './config/schema.js';
export type { ThrottlerConfigInput } from './config/schema.js';
export { formatIssues, showValue } from './config/issues.js';
export type { IssueReport, FormatIssuesOptions } from './config/issues.js';
export { parseRate, parseDurationMs, formatRate } from './config/units.js';
export type { Rate } from './config/units.js';
export { redactUrl } from './redis/connection.js';
export type { RedisInput } from './redis/connection.js';
export { assertName } from './keys.js';
export { rootLogger, createRootLogger } from './logger.js';
export type { Logger } from './logger.js';
export { deferralOf, jobDelayMs } from './deferral.js';
export {
  SluiceError,
  ErrorCode,
  ThrottleTimeoutError,
  QueueFullError,
  AbortError,
  UnknownEndpointError,
  CostAboveBurstError,
  InvalidNameError,
  InvalidConfigError,
  InvalidPayloadError,
  RedisUnavailableError,
  ThrottlerClosedError,
  JobDeferredError,
  UpstreamLimitError,
} from './errors/index.js';
export type { DeferralReason } from './errors/index.js';
