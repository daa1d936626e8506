import type { NextFunction, Request, Response } from 'express';
import type { HttpLimiter, RouteLimit } from './limiter.js';
import { NodeLimitRequest, normalizePath } from './request.js';

/** The request as the limiter sees it (see NodeLimitRequest); the route from express's router. */
class ExpressLimitRequest extends NodeLimitRequest<Request> {
  readonly method: string;
  readonly route: string;

  constructor(limiter: HttpLimiter, raw: Request) {
    super(limiter, raw);
    this.method = raw.method;
    const route = raw.route as { path?: unknown } | undefined;
    // on a route (`app.get(path, limit, handler)`) the router's pattern; app-wide, the normalised path
    this.route = route && typeof route.path === 'string' ? `${raw.baseUrl}${route.path}` : normalizePath(raw.originalUrl);
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
