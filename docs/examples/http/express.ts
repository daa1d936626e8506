/**
 * docs/http.md's express example, runnable: `REDIS_URL=redis://127.0.0.1:6379 npx tsx docs/examples/http/express.ts`.
 * Behind one proxy (its address trusted), the app is limited per client address; the search route
 * has its own, tighter policy; the office network is never limited.
 */
import type { Server } from 'node:http';
import { pathToFileURL } from 'node:url';
import express from 'express';
import { createHttpLimiter, expressRateLimit } from 'sluice/http';

export async function startExpressExample(options: { redis?: string; port?: number; namespace?: string } = {}): Promise<{ url: string; close(): Promise<void> }> {
  const limiter = createHttpLimiter({
    redis: options.redis ?? process.env.REDIS_URL,
    namespace: options.namespace ?? 'example-express',
    trustProxy: ['127.0.0.1/32'], // the load balancer; X-Forwarded-For is believed only from it
    allowlist: { cidrs: ['10.20.0.0/16'] },
    legacyHeaders: true,
    policies: {
      api: { algorithm: 'fixed-window', rate: '100/min' },
      search: { rate: '3/10s', burst: 3 },
    },
  });
  const app = express();
  app.use(expressRateLimit(limiter));
  app.get('/items', (_req, res) => void res.json({ items: [] }));
  // a route's own policy instead of the app-wide one
  app.get('/search', expressRateLimit(limiter, { policy: 'search' }), (req, res) => void res.json({ q: req.query.q ?? '' }));
  const server: Server = app.listen(options.port ?? 0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await new Promise((r) => server.close(r));
      await limiter.close();
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { url } = await startExpressExample({ port: Number(process.env.PORT ?? 3000) });
  console.log(`listening on ${url}: try curl -i ${url}/search?q=sluice`);
}
