/** Maps what the routes throw to HTTP answers: the caller's fault (4xx) is never reported as ours (5xx). */
import { InvalidConfigError, InvalidNameError, RedisUnavailableError, UnknownEndpointError } from '../errors/index.js';
import { BadRequest } from './schemas.js';

export interface ErrorReply {
  status: number;
  body: { error: string; message: string; fields?: string[] };
}

export function toErrorReply(err: unknown): ErrorReply {
  if (err instanceof BadRequest) return { status: 400, body: { error: 'bad_request', message: err.message, fields: err.fields } };
  if (err instanceof UnknownEndpointError) return { status: 404, body: { error: 'unknown_endpoint', message: err.message } };
  if (err instanceof InvalidConfigError || err instanceof InvalidNameError) return { status: 400, body: { error: 'bad_request', message: err.message } };
  if (err instanceof RedisUnavailableError || isRedisError(err)) {
    // the driver's message names Redis's host and port: that is for the server log, not the caller
    return { status: 503, body: { error: 'redis_unavailable', message: 'Redis cannot be reached (the admin server log has the details)' } };
  }
  const e = err as { statusCode?: number; code?: string; message?: string };
  // fastify's own errors (bad JSON, body too large, wrong content type) carry their status
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, body: { error: (e.code ?? 'bad_request').toLowerCase(), message: e.message ?? 'bad request' } };
  }
  return { status: 500, body: { error: 'internal', message: 'internal error (see the admin server log)' } };
}

/** ioredis connection and reply errors, told apart from bugs so they answer 503. */
function isRedisError(err: unknown): boolean {
  const name = (err as Error | undefined)?.name ?? '';
  const message = (err as Error | undefined)?.message ?? '';
  return name === 'ReplyError' || name === 'MaxRetriesPerRequestError' || /Connection is closed|ECONNREFUSED|Stream isn't writeable/.test(message);
}
