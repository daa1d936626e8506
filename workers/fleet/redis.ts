/**
 * A Redis connection for a short command (enqueue, export): connects up front and fails with a
 * one-line message instead of retrying forever, as ioredis would by default.
 */
import { Redis } from 'ioredis';
import { redactUrl } from 'sluice';

/** Redis could not be reached: the message names the URL (password hidden). */
export class RedisConnectError extends Error {
  readonly code = 'REDIS_CONNECT';
  constructor(url: string, cause: unknown) {
    super(`cannot reach Redis at ${redactUrl(url)}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'RedisConnectError';
  }
}


/** Connects (a few tries, then RedisConnectError). The caller quits it. */
export async function connectRedis(url: string): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    connectTimeout: 5_000,
    retryStrategy: (times) => (times > 3 ? null : 200 * times),
  });
  let last: unknown;
  redis.on('error', (err) => {
    last = err;
  });
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new RedisConnectError(url, last ?? err);
  }
  return redis;
}
