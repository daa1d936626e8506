import { type AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { createHttpLimiter, fastifyRateLimit, type HttpLimiter, type HttpLimiterOptions } from '../../src/http/index.js';
import { newRedis, redisUrl, testNamespace } from './helpers.js';

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

export async function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  const res = await fetch(url, { method, headers });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // plain text
  }
  return { status: res.status, headers: Object.fromEntries(res.headers), body };
}

/** A test clock for the scripts (ARGV now): windows and days are crossed by moving it. */
export class Clock {
  constructor(public ms = Date.UTC(2026, 5, 15, 12, 0, 0)) {}
  readonly now = () => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

const opened: { app?: FastifyInstance; limiter: HttpLimiter; namespace: string }[] = [];

export function limiterFor(options: Omit<HttpLimiterOptions, 'redis' | 'namespace'> & { redis?: HttpLimiterOptions['redis']; logger?: Logger }): HttpLimiter {
  const namespace = testNamespace('http');
  const limiter = createHttpLimiter({ redis: redisUrl(), logger: pino({ level: 'silent' }), namespace, ...options });
  opened.push({ limiter, namespace });
  return limiter;
}

/** A real fastify server on a free port with the limiter's plugin and a few routes. */
export async function fastifyServer(limiter: HttpLimiter, routes: (app: FastifyInstance) => void = () => undefined): Promise<{ url: string; app: FastifyInstance }> {
  const app = Fastify();
  await app.register(fastifyRateLimit, { limiter });
  app.get('/api/items', async () => ({ items: [] }));
  app.get('/api/items/:id', async (req) => ({ id: (req.params as { id: string }).id }));
  app.post('/api/items', async () => ({ created: true }));
  app.get('/admin/stats', async () => ({ ok: true }));
  routes(app);
  await app.listen({ port: 0, host: '127.0.0.1' });
  opened.find((o) => o.limiter === limiter)!.app = app;
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, app };
}

/** Keys of the limiter's namespace (SCAN, never KEYS). */
export async function httpKeys(namespace: string): Promise<string[]> {
  const redis = newRedis();
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `sluice:{${namespace}:h*`, 'COUNT', 1000);
    cursor = next;
    out.push(...batch);
  } while (cursor !== '0');
  await redis.quit();
  return out;
}

export async function closeAll(): Promise<void> {
  for (const { app, limiter, namespace } of opened.splice(0)) {
    await app?.close();
    await limiter.close();
    const keys = await httpKeys(namespace);
    if (keys.length) {
      const redis = newRedis();
      await redis.del(...keys);
      await redis.quit();
    }
  }
}
