import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmbeddedRedis, type EmbeddedRedis } from '../workers/embedded/redis-server.js';
import { logSink, until } from './support/helpers.js';
import { closeAll, fastifyServer, get, limiterFor } from './support/http.js';

let server: EmbeddedRedis | undefined;
afterEach(async () => {
  await closeAll();
  await server?.stop();
  server = undefined;
});

describe('failure policies: when Redis cannot decide, per route, never silent', () => {
  it('closed answers 503 with Retry-After, open lets the request through; both logged and counted; service resumes with Redis', async () => {
    server = await startEmbeddedRedis();
    const { logger, lines } = logSink();
    const registry = new Registry();
    const limiter = limiterFor({
      redis: server.url,
      logger,
      registry,
      timeoutMs: 300,
      breakerMs: 500,
      policies: { api: { rate: '100/min' }, public: { rate: '100/min', failure: 'open' } },
      rules: [{ route: '/public', policy: 'public' }],
      policy: 'api',
    });
    const { url } = await fastifyServer(limiter, (app) => app.get('/public', async () => 'ok'));
    expect((await get(`${url}/api/items`)).status).toBe(200);
    expect((await get(`${url}/public`)).status).toBe(200);
    const port = server.port;
    await server.stop();
    server = undefined;

    const closed = await get(`${url}/api/items`);
    expect(closed.status).toBe(503);
    expect(closed.body).toEqual({ statusCode: 503, code: 'REDIS_UNAVAILABLE', error: 'Service Unavailable', message: expect.any(String) });
    expect(closed.headers['retry-after']).toBe('1');
    const open = await get(`${url}/public`);
    expect(open.status).toBe(200);
    expect(open.body).toBe('ok');
    expect(open.headers.ratelimit).toBeUndefined();

    const text = await registry.metrics();
    expect(text).toMatch(/sluice_http_requests_total\{policy="api",outcome="failed",reason="closed"\} [1-9]/);
    expect(text).toMatch(/sluice_http_requests_total\{policy="public",outcome="failed",reason="open"\} [1-9]/);
    expect(lines.some((l) => l.level === 50 && String(l.msg).includes('Redis cannot decide'))).toBe(true);
    // the open policy was announced at start, before any outage
    expect(lines.some((l) => l.level === 40 && l.policy === 'public' && String(l.msg).includes('failure policy open'))).toBe(true);

    server = await startEmbeddedRedis({ port });
    const back = await until('Redis decides again', async () => {
      const r = await get(`${url}/api/items`);
      return r.status === 200 ? r : undefined;
    }, 20_000);
    expect(back.headers.ratelimit).toMatch(/^"api";r=\d+;t=\d+$/);
  });

  it('a Redis instance the user passes, set to retry forever, still gets the limiter\'s deadline', async () => {
    server = await startEmbeddedRedis();
    // ioredis would hold commands until Redis returns: without a deadline the request hangs
    const redis = new Redis(server.url, { maxRetriesPerRequest: null });
    redis.on('error', () => undefined);
    const limiter = limiterFor({ redis, timeoutMs: 300, policies: { api: { rate: '100/min' } } });
    try {
      const { url } = await fastifyServer(limiter);
      expect((await get(`${url}/api/items`)).status).toBe(200);
      await server.stop();
      server = undefined;
      const refused = await get(`${url}/api/items`);
      expect(refused.status).toBe(503);
      expect((refused.body as { code: string }).code).toBe('REDIS_UNAVAILABLE');
    } finally {
      redis.disconnect();
    }
  });
});
