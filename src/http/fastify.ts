import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { HttpLimiter, RouteLimit } from './limiter.js';
import { NodeLimitRequest, normalizePath } from './request.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** This route's Sluice limit (`sluiceLimit`, so it never collides with @fastify/rate-limit's `rateLimit`): `{ policy }` instead of the limiter's rules, or `false` for none. */
    sluiceLimit?: RouteLimit | false;
  }
}

export interface FastifyRateLimitOptions {
  limiter: HttpLimiter;
}

const STATUS_TEXT = { 429: 'Too Many Requests', 503: 'Service Unavailable' } as const;

/** The request as the limiter sees it (see NodeLimitRequest); method and route as fastify matched them. */
class FastifyLimitRequest extends NodeLimitRequest<FastifyRequest> {
  constructor(
    limiter: HttpLimiter,
    raw: FastifyRequest,
    readonly method: string,
    readonly route: string,
  ) {
    super(limiter, raw);
  }
}

/**
 * The fastify plugin. Registered without encapsulation (as fastify-plugin does), so its hook
 * covers every route of the instance it is registered on, including routes declared later.
 * A route's `config.sluiceLimit` overrides the rules: `{ policy: 'strict' }` or `false`.
 */
export function fastifyRateLimit(fastify: FastifyInstance, options: FastifyRateLimitOptions, done: (err?: Error) => void): void {
  const { limiter } = options;
  fastify.addHook('onRoute', (route) => {
    const own = (route.config as { sluiceLimit?: RouteLimit | false } | undefined)?.sluiceLimit;
    if (own) limiter.checkRoute(own, `route ${route.method} ${route.url}`);
  });
  fastify.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    // routeOptions is a getter that builds an object: read it once
    const routeOptions = request.routeOptions;
    const own = routeOptions.config?.sluiceLimit;
    if (own === false) return;
    // the router's pattern: `/%61dmin` and `/admin` are one route to the rules
    const route = routeOptions.url ?? normalizePath(request.url);
    const decision = await limiter.decide(new FastifyLimitRequest(limiter, request, request.method, route), own);
    reply.headers(decision.headers);
    if (!decision.allowed) {
      const status = decision.status as 429 | 503;
      return reply.code(status).send({ statusCode: status, code: decision.refusal!.code, error: STATUS_TEXT[status], message: decision.refusal!.message });
    }
  });
  done();
}

// what fastify-plugin sets: no encapsulation, a readable name in fastify's plugin tree
Object.assign(fastifyRateLimit, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'sluice-rate-limit' });
