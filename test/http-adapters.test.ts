import { type AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { Hono } from 'hono';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { expressRateLimit, fetchMiddleware, fetchRateLimit } from '../src/http/index.js';
import { closeAll, get, limiterFor } from './support/http.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  await closeAll();
});

async function listen(app: express.Express): Promise<string> {
  const server = app.listen(0, '127.0.0.1');
  servers.push(server);
  await new Promise((r) => server.once('listening', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('express middleware on a real express 5 server', () => {
  it('app-wide and per route, with headers, JSON refusals and rules on the route pattern', async () => {
    const limiter = limiterFor({
      policies: { api: { rate: '2/min' }, item: { rate: '1/min', algorithm: 'fixed-window' }, strict: { rate: '1/hour' } },
      rules: [{ route: '/items/:id', policy: 'item' }],
      legacyHeaders: true,
    });
    const app = express();
    app.get('/items/:id', expressRateLimit(limiter), (req, res) => void res.json({ id: req.params.id }));
    app.get('/strict', expressRateLimit(limiter, { policy: 'strict' }), (_req, res) => void res.json({ ok: true }));
    app.use('/api', expressRateLimit(limiter));
    app.get('/api/things', (_req, res) => void res.json({ things: [] }));
    const url = await listen(app);

    const ok = await get(`${url}/api/things`);
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ things: [] });
    expect(ok.headers['ratelimit-policy']).toBe('"api";q=2;w=60');
    expect(ok.headers.ratelimit).toBe('"api";r=1;t=30');
    expect(ok.headers['x-ratelimit-remaining']).toBe('1');
    await get(`${url}/api/things`);
    const refused = await get(`${url}/api/things`);
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({ statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests', message: expect.stringContaining('retry in') });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);

    // two ids, one route: one policy, one key
    expect((await get(`${url}/items/1`)).headers['ratelimit-policy']).toBe('"item";q=1;w=60');
    expect((await get(`${url}/items/2`)).status).toBe(429);
    expect((await get(`${url}/strict`)).status).toBe(200);
    expect((await get(`${url}/strict`)).status).toBe(429);
  });
});

describe('fetch handler and middleware (Hono)', () => {
  it('a Hono app answered through its fetch handler: success headers, problem+json refusals', async () => {
    const limiter = limiterFor({ policies: { api: { rate: '2/min', algorithm: 'gcra', burst: 2 } }, key: 'apiKey' });
    const app = new Hono();
    app.use('/api/*', fetchMiddleware(limiter));
    app.get('/api/items/:id', (c) => c.json({ id: c.req.param('id') }));
    const call = () => app.fetch(new Request('http://api.test/api/items/7', { headers: { 'x-api-key': 'k1' } }));

    const first = await call();
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ id: '7' });
    expect(first.headers.get('ratelimit')).toBe('"api";r=1;t=30');
    expect((await call()).status).toBe(200);
    const refused = await call();
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    expect(Number(refused.headers.get('retry-after'))).toBe(30);
    expect(await refused.json()).toEqual({ type: 'about:blank', title: 'Too Many Requests', status: 429, detail: 'Rate limit exceeded, retry in 30 s', code: 'RATE_LIMITED' });
    // another key, its own limit
    expect((await app.fetch(new Request('http://api.test/api/items/7', { headers: { 'x-api-key': 'k2' } }))).status).toBe(200);
  });

  it('(Request) => Response | null for any fetch-style server, the peer address passed by the caller', async () => {
    const limiter = limiterFor({ policies: { api: { rate: '1/min' } } });
    const limit = fetchRateLimit(limiter);
    const req = () => new Request('http://api.test/x');
    expect(await limit(req(), { ip: '192.0.2.1' })).toBeNull();
    expect((await limit(req(), { ip: '192.0.2.1' }))?.status).toBe(429);
    expect(await limit(req(), { ip: '192.0.2.2' })).toBeNull();
  });
});

describe('queue instead of reject', () => {
  it('requests wait their turn in the fair queue up to maxWaitMs; beyond it, 429 up front', async () => {
    const registry = new Registry();
    const limiter = limiterFor({ registry, policies: { report: { rate: '5/s', burst: 1, queue: { maxWaitMs: 300 } } }, tierWeights: { pro: 3 } });
    const app = express();
    app.get('/report', expressRateLimit(limiter), (_req, res) => void res.json({ ok: true }));
    const url = await listen(app);
    const answers = await Promise.all(Array.from({ length: 40 }, () => get(`${url}/report`)));
    const admitted = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 429);
    expect(admitted.length + refused.length).toBe(40);
    // the burst is 1: every admission past the first waited in the queue
    expect(admitted.length).toBeGreaterThanOrEqual(2);
    // 40 at once need 8 s at 5/s: most are refused up front, not after waiting
    expect(refused.length).toBeGreaterThanOrEqual(20);
    for (const r of refused) {
      expect((r.body as { code: string }).code).toBe('RATE_LIMITED');
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    const text = await registry.metrics();
    const queued = [...text.matchAll(/sluice_http_requests_total\{policy="report",outcome="queued",reason="\w+"\} (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    expect(queued).toBe(admitted.length);
    expect(text).toMatch(/outcome="queued",reason="waited"\} [1-9]/);
  });
});
