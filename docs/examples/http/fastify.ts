/**
 * docs/http.md's fastify example, runnable: `REDIS_URL=redis://127.0.0.1:6379 npx tsx docs/examples/http/fastify.ts`.
 * Anonymous callers by address, signed-in callers by API key with a tier each, a stricter rule
 * for writes, a daily quota for the free tier, and abusers blocked for 10 minutes.
 */
import { pathToFileURL } from 'node:url';
import Fastify from 'fastify';
import { createHttpLimiter, fastifyRateLimit } from 'sluice/http';

// your accounts: API key -> tier
const ACCOUNTS: Record<string, 'free' | 'pro'> = { 'key-free': 'free', 'key-pro': 'pro' };

export async function startFastifyExample(options: { redis?: string; port?: number; namespace?: string } = {}): Promise<{ url: string; close(): Promise<void> }> {
  const limiter = createHttpLimiter({
    redis: options.redis ?? process.env.REDIS_URL,
    namespace: options.namespace ?? 'example-fastify',
    key: 'apiKey-or-ip',
    tier: (req) => ACCOUNTS[req.header('x-api-key') ?? ''],
    policies: {
      anonymous: { rate: '5/min', block: { after: 20, within: '1 min', for: '10 min' } },
      free: { rate: '60/min', quota: { day: 1000 } },
      pro: { algorithm: 'gcra', rate: '20/s', burst: 40 },
      writes: { algorithm: 'sliding-window', rate: '10/min' },
    },
    rules: [{ method: ['POST', 'PUT', 'DELETE'], route: '/items*', policy: 'writes' }],
    policy: { free: 'free', pro: 'pro', default: 'anonymous' },
  });
  const app = Fastify();
  await app.register(fastifyRateLimit, { limiter });
  app.get('/items/:id', async (req) => ({ id: (req.params as { id: string }).id }));
  app.post('/items', async () => ({ created: true }));
  app.get('/health', { config: { sluiceLimit: false } }, async () => ({ ok: true }));
  await app.listen({ port: options.port ?? 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await app.close();
      await limiter.close();
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { url } = await startFastifyExample({ port: Number(process.env.PORT ?? 3000) });
  console.log(`listening on ${url}: try curl -i ${url}/items/1`);
}
