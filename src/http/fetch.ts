import type { Decision, HttpLimiter, RouteLimit } from './limiter.js';
import { normalizePath, type LimitRequest } from './request.js';

/** What a fetch-style server knows beside the Request: the peer address and the matched route. */
export interface FetchContext {
  /** The socket peer address (e.g. Hono's `getConnInfo(c).remote.address`, Bun's `server.requestIP(req)`). */
  ip?: string;
  /** The router's pattern (Hono: `c.req.routePath`); default: the normalised path. */
  route?: string;
}

function toLimitRequest(limiter: HttpLimiter, request: Request, ctx: FetchContext): LimitRequest {
  return {
    method: request.method,
    route: ctx.route ?? normalizePath(new URL(request.url).pathname),
    ip: limiter.clientIp(ctx.ip, request.headers.get('x-forwarded-for') ?? undefined),
    header: (name) => request.headers.get(name) ?? undefined,
    raw: request,
  };
}

/** A refusal as an RFC 9457 problem response. */
export function refusalResponse(decision: Decision): Response {
  const status = decision.status;
  return new Response(
    JSON.stringify({
      type: 'about:blank',
      title: status === 429 ? 'Too Many Requests' : 'Service Unavailable',
      status,
      detail: decision.refusal!.message,
      code: decision.refusal!.code,
    }),
    { status, headers: { ...decision.headers, 'content-type': 'application/problem+json' } },
  );
}

/**
 * `(Request) => Promise<Response | null>`: the refusal to send, or null to go on. Success
 * headers need a hook into the response: use `fetchMiddleware` (Hono) or `limiter.decide`.
 */
export function fetchRateLimit(limiter: HttpLimiter, route: RouteLimit = {}): (request: Request, ctx?: FetchContext) => Promise<Response | null> {
  limiter.checkRoute(route, 'fetch handler');
  return async (request, ctx = {}) => {
    const decision = await limiter.decide(toLimitRequest(limiter, request, ctx), route);
    return decision.allowed ? null : refusalResponse(decision);
  };
}

/** The shape of a Hono context that this middleware uses (no dependency on hono itself). */
export interface FetchMiddlewareContext {
  req: { raw: Request };
  res: Response;
}

/**
 * Middleware for Hono and alike (`app.use('/api/*', fetchMiddleware(limiter, { ip: (c) => ... }))`):
 * refusals answered here, success responses get the rate limit fields.
 */
export function fetchMiddleware<C extends FetchMiddlewareContext>(
  limiter: HttpLimiter,
  options: RouteLimit & { ip?: (c: C) => string | undefined } = {},
): (c: C, next: () => Promise<void>) => Promise<Response | void> {
  const { ip, ...route } = options;
  limiter.checkRoute(route, 'fetch middleware');
  return async (c, next) => {
    // a middleware's routePath is its own pattern (`/api/*`), not the handler's: rules match the normalised path
    const decision = await limiter.decide(toLimitRequest(limiter, c.req.raw, { ip: ip?.(c) }), route);
    if (!decision.allowed) return refusalResponse(decision);
    await next();
    for (const [k, v] of Object.entries(decision.headers)) c.res.headers.set(k, v);
  };
}
