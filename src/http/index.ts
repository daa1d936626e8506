/**
 * `sluice/http`: inbound rate limiting on the throttle's core. One limiter, three adapters
 * (fastify plugin, express middleware, fetch handler / middleware), admin functions for blocks
 * and quota usage. Guide: docs/http.md.
 *
 * @module sluice/http
 */
export { createHttpLimiter, HttpLimiter, type Decision, type RefusalCode, type RouteLimit } from './limiter.js';
export {
  HttpLimiterConfig, PolicyConfig, QuotaConfig, BlockConfig, RuleConfig, PolicyRef, KeySpec, Algorithm,
  type HttpLimiterOptions, type HttpLimiterConfigInput, type PolicyConfigInput, type RequestFn,
} from './options.js';
export type { LimitRequest } from './request.js';
export type { LimitReply, Verdict } from './script.js';
export type { HttpMetrics, Outcome } from './metrics.js';
export { fastifyRateLimit, type FastifyRateLimitOptions } from './fastify.js';
export { expressRateLimit } from './express.js';
export { fetchRateLimit, fetchMiddleware, refusalResponse, type FetchContext, type FetchMiddlewareContext } from './fetch.js';
export { listBlocked, liftBlock, quotaUsage, type BlockedKey, type QuotaUsage } from './admin.js';
export { registerHttpAdminRoutes } from './admin-routes.js';
