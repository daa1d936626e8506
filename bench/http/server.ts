/**
 * One server process of `npm run bench:http`: every kind of server below, each on its own port
 * (idle ones cost nothing; one process start instead of seven on a busy machine).
 * Spec as JSON in argv[2]: { redisUrl, hotLimit, windowMs }. Prints `ready {"<kind>": port, ...}`;
 * answers a line `cpu` on stdin with `cpu <µs of CPU used so far>`.
 * The client key is the `x-client` header. Keys `hot` and `mem-*` get `hotLimit` per window (the
 * over-admission and memory runs: state that lasts); every other key a limit no run reaches
 * (the throughput run), so each limiter does its full work on every request and never refuses.
 */
import express from 'express';
import Fastify from 'fastify';
import fastifyRateLimitPeer from '@fastify/rate-limit';
import { rateLimit as expressRateLimitPeer } from 'express-rate-limit';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { RedisStore } from 'rate-limit-redis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { createHttpLimiter, expressRateLimit, fastifyRateLimit, type Algorithm } from '../../src/http/index.js';

export type Kind = 'fastify-none' | 'fastify-sluice' | 'fastify-rate-limit' | 'fastify-rlf' | 'express-none' | 'express-sluice' | 'express-erl';
const KINDS: Kind[] = ['fastify-none', 'fastify-sluice', 'fastify-rate-limit', 'fastify-rlf', 'express-none', 'express-sluice', 'express-erl'];
const spec = JSON.parse(process.argv[2]!) as { redisUrl: string; hotLimit: number; windowMs: number; algorithm?: Algorithm };
const { hotLimit, windowMs } = spec;
const BULK = 1e9;
const clientOf = (h: Record<string, string | string[] | undefined>) => String(h['x-client'] ?? 'anonymous');
const limited = (client: string | undefined) => client === 'hot' || (client?.startsWith('mem-') ?? false);
const limitOf = (client: string) => (limited(client) ? hotLimit : BULK);
const body = { ok: true };

function sluice() {
  return createHttpLimiter({
    redis: spec.redisUrl,
    namespace: 'bench',
    logger: pino({ level: 'silent' }),
    timeoutMs: 10_000,
    key: (req) => req.header('x-client') ?? 'anonymous',
    tier: (req) => (limited(req.header('x-client')) ? 'hot' : 'bulk'),
    policies: {
      hot: { algorithm: spec.algorithm ?? 'token-bucket', rate: { tokens: hotLimit, intervalMs: windowMs } },
      bulk: { algorithm: spec.algorithm ?? 'token-bucket', rate: { tokens: BULK, intervalMs: windowMs } },
    },
    policy: { hot: 'hot', default: 'bulk' },
  });
}

async function serve(kind: Kind): Promise<number> {
if (kind.startsWith('fastify')) {
  const app = Fastify();
  if (kind === 'fastify-sluice') await app.register(fastifyRateLimit, { limiter: sluice() });
  if (kind === 'fastify-rate-limit') {
    await app.register(fastifyRateLimitPeer, { max: (_req, key) => limitOf(key), timeWindow: windowMs, redis: new Redis(spec.redisUrl), nameSpace: 'bench-frl-', keyGenerator: (req) => clientOf(req.headers) });
  }
  if (kind === 'fastify-rlf') {
    const storeClient = new Redis(spec.redisUrl);
    const hot = new RateLimiterRedis({ storeClient, points: hotLimit, duration: windowMs / 1000, keyPrefix: 'bench-rlf' });
    const bulk = new RateLimiterRedis({ storeClient, points: BULK, duration: windowMs / 1000, keyPrefix: 'bench-rlf' });
    app.addHook('onRequest', async (req, reply) => {
      const client = clientOf(req.headers);
      try {
        const r = await (limited(client) ? hot : bulk).consume(client);
        reply.header('x-ratelimit-remaining', r.remainingPoints);
      } catch (e) {
        if (!(e instanceof RateLimiterRes)) throw e;
        return reply.code(429).header('retry-after', Math.ceil(e.msBeforeNext / 1000)).send({ statusCode: 429, error: 'Too Many Requests' });
      }
    });
  }
  app.get('/work', async () => body);
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as { port: number }).port;
} else {
  const app = express();
  if (kind === 'express-sluice') app.use(expressRateLimit(sluice()));
  if (kind === 'express-erl') {
    const client = new Redis(spec.redisUrl);
    app.use(expressRateLimitPeer({
      windowMs, limit: (req) => limitOf(clientOf(req.headers)), standardHeaders: 'draft-8', legacyHeaders: false, validate: false,
      keyGenerator: (req) => clientOf(req.headers),
      store: new RedisStore({ prefix: 'bench-erl:', sendCommand: (command: string, ...args: string[]) => client.call(command, ...args) as never }),
    }));
  }
  app.get('/work', (_req, res) => void res.json(body));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return (server.address() as { port: number }).port;
}
}

const ports: Record<string, number> = {};
for (const kind of KINDS) ports[kind] = await serve(kind);
process.stdout.write(`ready ${JSON.stringify(ports)}\n`);
// a line `cpu` on stdin: this process's CPU time so far (µs), for the bench's CPU per request
process.stdin.setEncoding('utf8');
process.stdin.on('data', (line: string) => {
  if (line.includes('cpu')) {
    const u = process.cpuUsage();
    process.stdout.write(`cpu ${u.user + u.system}\n`);
  }
});
process.stdin.on('end', () => process.exit(0));
