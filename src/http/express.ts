import type { NextFunction, Request, Response } from 'express';
import type { HttpLimiter, RouteLimit } from './limiter.js';
import { normalizePath, type LimitRequest } from './request.js';

/** The request as the limiter sees it: no closure per request, the client address only when asked for (see fastify.ts). */
class ExpressLimitRequest implements LimitRequest {
  private address: string | undefined | null = null;
  readonly method: string;
  readonly route: string;

  constructor(
    private readonly limiter: HttpLimiter,
    readonly raw: Request,
  ) {
    this.method = raw.method;
    const route = raw.route as { path?: unknown } | undefined;
    // on a route (`app.get(path, limit, handler)`) the router's pattern; app-wide, the normalised path
    this.route = route && typeof route.path === 'string' ? `${raw.baseUrl}${route.path}` : normalizePath(raw.originalUrl);
  }

  get ip(): string | undefined {
    if (this.address === null) {
      const xff = this.raw.headers['x-forwarded-for'];
      this.address = this.limiter.clientIp(this.raw.socket.remoteAddress, Array.isArray(xff) ? xff.join(',') : xff);
    }
    return this.address;
  }

  header(name: string): string | undefined {
    const v = this.raw.headers[name];
    return Array.isArray(v) ? v[0] : v;
  }
}

/**
 * Express middleware: app-wide (`app.use(expressRateLimit(limiter))`, rules match the normalised
 * path) or per route (`app.get('/items/:id', expressRateLimit(limiter, { policy: 'strict' }), h)`,
 * rules match the route pattern). Refusals are JSON: `{ statusCode, code, error, message }`.
 */
export function expressRateLimit(limiter: HttpLimiter, route: RouteLimit = {}): (req: Request, res: Response, next: NextFunction) => void {
  limiter.checkRoute(route, 'express middleware');
  return (req, res, next) => {
    limiter.decide(new ExpressLimitRequest(limiter, req), route).then((decision) => {
      res.set(decision.headers);
      if (decision.allowed) return next();
      res.status(decision.status).json({
        statusCode: decision.status,
        code: decision.refusal!.code,
        error: decision.status === 429 ? 'Too Many Requests' : 'Service Unavailable',
        message: decision.refusal!.message,
      });
    }, next);
  };
}
