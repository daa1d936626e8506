import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startExpressExample } from '../docs/examples/http/express.js';
import { startFastifyExample } from '../docs/examples/http/fastify.js';
import { honoExample } from '../docs/examples/http/hono.js';
import { namespaceKeys, newRedis, redisUrl, testNamespace } from './support/helpers.js';
import { get, httpKeys } from './support/http.js';

const namespaces: string[] = [];
const ns = () => {
  const n = testNamespace('ex');
  namespaces.push(n);
  return n;
};
afterEach(async () => {
  const redis = newRedis();
  for (const n of namespaces.splice(0)) {
    const keys = [...(await httpKeys(n)), ...(await namespaceKeys(redis, `${n}-http`))];
    if (keys.length) await redis.del(...keys);
  }
  await redis.quit();
});

/** Runs an example file as a user would (`npx tsx <file>`), until it prints `until`. */
function runFile(file: string, until: RegExp, env: Record<string, string>): Promise<string> {
  const path = fileURLToPath(new URL(`../docs/examples/http/${file}`, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', path], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      if (until.test(out)) {
        child.kill();
        resolve(out);
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.once('exit', (code) => (until.test(out) ? resolve(out) : reject(new Error(`${file} exited ${code}: ${err.slice(-1500)}`))));
  });
}

describe('the guide examples (docs/http.md) run and do what the guide says', () => {
  it('fastify: tiers by API key, writes limited apart, health never limited', async () => {
    const ex = await startFastifyExample({ redis: redisUrl(), namespace: ns() });
    try {
      const anon = await get(`${ex.url}/items/1`);
      expect(anon.headers['ratelimit-policy']).toBe('"anonymous";q=5;w=60');
      const free = await get(`${ex.url}/items/1`, { 'x-api-key': 'key-free' });
      expect(free.headers['ratelimit-policy']).toBe('"free";q=60;w=60, "free-day";q=1000;w=86400');
      expect((await get(`${ex.url}/items/1`, { 'x-api-key': 'key-pro' })).headers['ratelimit-policy']).toBe('"pro";q=20;w=1');
      for (let i = 0; i < 4; i++) await get(`${ex.url}/items/2`);
      expect((await get(`${ex.url}/items/3`)).status).toBe(429);
      expect((await get(`${ex.url}/health`)).status).toBe(200);
      expect((await get(`${ex.url}/items`, { 'x-api-key': 'key-pro' }, 'POST')).headers['ratelimit-policy']).toBe('"writes";q=10;w=60');
    } finally {
      await ex.close();
    }
  });

  it('express: trusted proxy, allowlisted office, a tighter route', async () => {
    const ex = await startExpressExample({ redis: redisUrl(), namespace: ns() });
    try {
      const client = { 'x-forwarded-for': '198.51.100.4' };
      for (let i = 0; i < 3; i++) expect((await get(`${ex.url}/search?q=a`, client)).status).toBe(200);
      const refused = await get(`${ex.url}/search?q=a`, client);
      expect(refused.status).toBe(429);
      expect(refused.headers['x-ratelimit-limit']).toBe('3');
      expect((await get(`${ex.url}/search?q=a`, { 'x-forwarded-for': '198.51.100.5' })).status).toBe(200);
      for (let i = 0; i < 5; i++) expect((await get(`${ex.url}/search?q=a`, { 'x-forwarded-for': '10.20.3.4' })).status).toBe(200);
      expect((await get(`${ex.url}/items`, client)).headers['ratelimit-policy']).toBe('"api";q=100;w=60');
    } finally {
      await ex.close();
    }
  });

  it('Hono: per API key through app.fetch; the export route queues instead of refusing', async () => {
    const { app, close } = honoExample({ redis: redisUrl(), namespace: ns() });
    try {
      const call = (path: string) => app.fetch(new Request(`http://localhost${path}`, { headers: { 'x-api-key': 'k' } }));
      const first = await call('/api/items/1');
      expect(first.status).toBe(200);
      expect(first.headers.get('ratelimit')).toMatch(/^"api";r=4;t=1$/);
      // 3 exports at once: burst 1 then 2/s, each within the 2 s wait
      const exports = await Promise.all([call('/api/export'), call('/api/export'), call('/api/export')]);
      expect(exports.map((r) => r.status)).toEqual([200, 200, 200]);
    } finally {
      await close();
    }
  });

  it('each example file runs as written (npx tsx docs/examples/http/<file>)', async () => {
    const env = { REDIS_URL: redisUrl(), PORT: '0' };
    expect(await runFile('hono.ts', /^200 /m, env)).toContain('{"id":"1"}');
    expect(await runFile('fastify.ts', /listening on http:\/\/127\.0\.0\.1:\d+/, env)).toContain('listening on');
    expect(await runFile('express.ts', /listening on http:\/\/127\.0\.0\.1:\d+/, env)).toContain('listening on');
  });
});
