import type { NextFunction, Request, Response } from 'express';
import type { HttpLimiter, RouteLimit } from './limiter.js';
import { normalizePath, type LimitRequest } from './request.js';

function toLimitRequest(limiter: HttpLimiter, req: Request): LimitRequest {
  const xff = req.headers['x-forwarded-for'];
  const route = req.route as { path?: unknown } | undefined;
  return {
    method: req.method,
    // on a route (`app.get(path, limit, handler)`) the router's pattern; app-wide, the normalised path
    route: route && typeof route.path === 'string' ? `${req.baseUrl}${route.path}` : normalizePath(req.originalUrl),
    ip: limiter.clientIp(req.socket.remoteAddress, Array.isArray(xff) ? xff.join(',') : xff),
    header: (name) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    },
    raw: req,
  };
}

/**
 * Express middleware: app-wide (`app.use(expressRateLimit(limiter))`, rules match the normalised
 * path) or per route (`app.get('/items/:id', expressRateLimit(limiter, { policy: 'strict' }), h)`,
 * rules match the route pattern). Refusals are JSON: `{ statusCode, code, error, message }`.
 */
export function expressRateLimit(limiter: HttpLimiter, route: RouteLimit = {}): (req: Request, res: Response, next: NextFunction) => void {
  limiter.checkRoute(route, 'express middleware');
  return (req, res, next) => {
    limiter.decide(toLimitRequest(limiter, req), route).then((decision) => {
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
