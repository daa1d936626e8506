/**
 * docs/http.md's Hono example, runnable: `REDIS_URL=redis://127.0.0.1:6379 npx tsx docs/examples/http/hono.ts`
 * (answers one request through `app.fetch` and prints it; in production hand `app.fetch` to
 * `@hono/node-server`, Bun or Deno). Clients are told apart by API key; an expensive route waits
 * in the fair queue for up to 2 s instead of refusing at once.
 */
import { pathToFileURL } from 'node:url';
import { Hono } from 'hono';
import { createHttpLimiter, fetchMiddleware } from 'sluice/http';

export function honoExample(options: { redis?: string; namespace?: string } = {}): { app: Hono; close(): Promise<void> } {
  const limiter = createHttpLimiter({
    redis: options.redis ?? process.env.REDIS_URL,
    namespace: options.namespace ?? 'example-hono',
    key: 'apiKey',
    policies: {
      api: { algorithm: 'gcra', rate: '10/s', burst: 5 },
      // one shared rate for the route, fair between API keys, waits up to 2 s
      export: { rate: '2/s', burst: 1, queue: { maxWaitMs: 2000 } },
    },
    rules: [{ route: '/api/export', policy: 'export' }],
    policy: 'api',
  });
  const app = new Hono();
  app.use('/api/*', fetchMiddleware(limiter));
  app.get('/api/items/:id', (c) => c.json({ id: c.req.param('id') }));
  app.get('/api/export', (c) => c.json({ rows: 0 }));
  return { app, close: () => limiter.close() };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { app, close } = honoExample();
  const res = await app.fetch(new Request('http://localhost/api/items/1', { headers: { 'x-api-key': 'demo' } }));
  console.log(res.status, Object.fromEntries(res.headers), await res.text());
  await close();
}
