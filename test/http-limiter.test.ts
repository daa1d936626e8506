import { type AddressInfo } from 'node:net';
import calculateSlot from 'cluster-key-slot';
import Fastify from 'fastify';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { liftBlock, listBlocked, quotaUsage, type HttpLimiter, type LimitRequest, type PolicyConfigInput } from '../src/http/index.js';
import { HttpKeys } from '../src/http/keys.js';
import { InvalidConfigError } from '../src/errors/index.js';
import { pino } from 'pino';
import { createAdminServer } from '../src/admin/index.js';
import { makeThrottler, newRedis, until } from './support/helpers.js';
import { Clock, closeAll, fastifyServer, get, httpKeys, limiterFor } from './support/http.js';

afterEach(closeAll);

const request = (over: Partial<LimitRequest> = {}): LimitRequest => ({ method: 'GET', route: '/x', ip: '192.0.2.1', header: () => undefined, raw: null, ...over });

describe('sluice/http on a real fastify server', () => {
  it('answers with the IETF fields on success and a 429 with a JSON body and Retry-After when limited', async () => {
    const limiter = limiterFor({ policies: { api: { rate: '3/min' } }, legacyHeaders: true });
    const { url } = await fastifyServer(limiter);
    const first = await get(`${url}/api/items`);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ items: [] });
    expect(first.headers['ratelimit-policy']).toBe('"api";q=3;w=60');
    expect(first.headers.ratelimit).toBe('"api";r=2;t=20');
    expect(first.headers['x-ratelimit-limit']).toBe('3');
    expect(first.headers['x-ratelimit-remaining']).toBe('2');
    await get(`${url}/api/items`);
    await get(`${url}/api/items`);
    const refused = await get(`${url}/api/items`);
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({ statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests', message: expect.stringMatching(/^Rate limit exceeded, retry in \d+ s$/) });
    // one token every 20 s: the next is at most 20 s away, never 0
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(20);
    expect(refused.headers.ratelimit).toBe(`"api";r=0;t=${retryAfter}`);
    expect(refused.headers['x-ratelimit-remaining']).toBe('0');
  });

  it('a route may override the rules or opt out (config.sluiceLimit)', async () => {
    const limiter = limiterFor({ policies: { api: { rate: '100/min' }, strict: { rate: '1/min' } } });
    const { url } = await fastifyServer(limiter, (app) => {
      app.get('/strict', { config: { sluiceLimit: { policy: 'strict' } } }, async () => 'ok');
      app.get('/health', { config: { sluiceLimit: false } }, async () => 'ok');
      // routes of a child plugin are covered too: the plugin skips encapsulation
      void app.register(async (child) => {
        child.get('/child', async () => 'ok');
      });
    });
    expect((await get(`${url}/child`)).headers['ratelimit-policy']).toBe('"api";q=100;w=60');
    expect((await get(`${url}/strict`)).status).toBe(200);
    expect((await get(`${url}/strict`)).status).toBe(429);
    for (let i = 0; i < 3; i++) {
      const h = await get(`${url}/health`);
      expect(h.status).toBe(200);
      expect(h.headers.ratelimit).toBeUndefined();
    }
  });

  it('refuses a route override naming an unknown policy when the route is declared', async () => {
    const limiter = limiterFor({ policies: { api: { rate: '100/min' } } });
    await expect(fastifyServer(limiter, (app) => app.get('/x', { config: { sluiceLimit: { policy: 'nope' } } }, async () => 'ok'))).rejects.toThrow(/policy "nope" is not defined/);
  });

  it('matches rules on the route the router matched, not the raw URL, and by method and country', async () => {
    const limiter = limiterFor({
      policies: { api: { rate: '100/min' }, strict: { rate: '1/min' }, writes: { rate: '2/min' }, risky: { rate: '1/hour' } },
      countryHeader: 'cf-ipcountry',
      rules: [
        { country: 'XX', policy: 'risky' },
        { route: '/admin/*', policy: 'strict' },
        { method: 'POST', route: '/api/items', policy: 'writes' },
      ],
      policy: 'api',
    });
    const { url } = await fastifyServer(limiter);
    expect((await get(`${url}/admin/stats`)).headers['ratelimit-policy']).toMatch(/^"strict"/);
    // an encoded spelling of the same route is the same route to the rules
    const encoded = await get(`${url}/%61dmin/stats`);
    expect(encoded.status).toBe(429);
    expect(encoded.headers['ratelimit-policy']).toMatch(/^"strict"/);
    expect((await get(`${url}/api/items`, {}, 'POST')).headers['ratelimit-policy']).toMatch(/^"writes"/);
    expect((await get(`${url}/api/items`)).headers['ratelimit-policy']).toMatch(/^"api"/);
    expect((await get(`${url}/api/items/7`)).headers['ratelimit-policy']).toMatch(/^"api"/);
    expect((await get(`${url}/api/items`, { 'cf-ipcountry': 'xx' })).headers['ratelimit-policy']).toMatch(/^"risky"/);
  });

  it('tiers: each tier its own policy, an unlimited tier, anonymous callers by address', async () => {
    const users: Record<string, { id: string; tier: string }> = { 'k-free': { id: 'u1', tier: 'free' }, 'k-pro': { id: 'u2', tier: 'pro' }, 'k-ent': { id: 'u3', tier: 'enterprise' } };
    const limiter = limiterFor({
      policies: { anon: { rate: '1/min' }, free: { rate: '2/min' }, pro: { rate: '5/min' } },
      key: 'user-or-ip',
      user: (req) => users[req.header('x-api-key') ?? '']?.id,
      tier: (req) => users[req.header('x-api-key') ?? '']?.tier,
      policy: { free: 'free', pro: 'pro', enterprise: null, default: 'anon' },
    });
    const { url } = await fastifyServer(limiter);
    const admitted = async (headers: Record<string, string>) => {
      let n = 0;
      for (let i = 0; i < 8; i++) if ((await get(`${url}/api/items`, headers)).status === 200) n++;
      return n;
    };
    expect(await admitted({})).toBe(1);
    expect(await admitted({ 'x-api-key': 'k-free' })).toBe(2);
    expect(await admitted({ 'x-api-key': 'k-pro' })).toBe(5);
    expect(await admitted({ 'x-api-key': 'k-ent' })).toBe(8);
    expect((await get(`${url}/api/items`, { 'x-api-key': 'k-ent' })).headers.ratelimit).toBeUndefined();
  });

  it('a tier map without a default is refused at start', () => {
    expect(() => limiterFor({ policies: { a: { rate: '1/s' } }, policy: { pro: 'a' } })).toThrow(InvalidConfigError);
  });

  it('allowlist by key and CIDR; X-Forwarded-For believed only through trusted proxies', async () => {
    const limiter = limiterFor({
      policies: { api: { rate: '1/min' } },
      trustProxy: ['127.0.0.1/32', '::1'],
      key: 'apiKey-or-ip',
      allowlist: { keys: ['vip'], cidrs: ['10.0.0.0/8'] },
    });
    const { url } = await fastifyServer(limiter);
    for (let i = 0; i < 3; i++) {
      expect((await get(`${url}/api/items`, { 'x-forwarded-for': '10.1.2.3' })).status).toBe(200);
      const vip = await get(`${url}/api/items`, { 'x-api-key': 'vip', 'x-forwarded-for': '192.0.2.50' });
      expect(vip.status).toBe(200);
      expect(vip.headers.ratelimit).toBeUndefined();
    }
    expect((await get(`${url}/api/items`, { 'x-forwarded-for': '192.0.2.7' })).status).toBe(200);
    expect((await get(`${url}/api/items`, { 'x-forwarded-for': '192.0.2.7' })).status).toBe(429);
    // a client prepending an allowlisted address is still the address our proxy saw
    expect((await get(`${url}/api/items`, { 'x-forwarded-for': '10.0.0.1, 192.0.2.7' })).status).toBe(429);
    // another client has its own key
    expect((await get(`${url}/api/items`, { 'x-forwarded-for': '192.0.2.8' })).status).toBe(200);
  });

  it('without trustProxy, X-Forwarded-For is ignored: every spoofed address is the same socket', async () => {
    const limiter = limiterFor({ policies: { api: { rate: '1/min' } } });
    const { url } = await fastifyServer(limiter);
    expect((await get(`${url}/api/items`, { 'x-forwarded-for': '198.51.100.1' })).status).toBe(200);
    expect((await get(`${url}/api/items`, { 'x-forwarded-for': '198.51.100.2' })).status).toBe(429);
  });
});

describe('Retry-After is truthful: a client that waits exactly that long is admitted', () => {
  it('on Redis\'s own clock: wait Retry-After seconds, be admitted', async () => {
    const limiter = limiterFor({ policies: { api: { rate: '1/2s', burst: 1 } } });
    const { url } = await fastifyServer(limiter);
    expect((await get(`${url}/api/items`)).status).toBe(200);
    const refused = await get(`${url}/api/items`);
    expect(refused.status).toBe(429);
    const seconds = Number(refused.headers['retry-after']);
    expect(seconds).toBeGreaterThanOrEqual(1);
    expect(seconds).toBeLessThanOrEqual(2);
    // a slow machine only makes the wait longer, never shorter: this cannot fail by load
    await new Promise((r) => setTimeout(r, seconds * 1000));
    expect((await get(`${url}/api/items`)).status).toBe(200);
  });

  const cases: [string, PolicyConfigInput][] = [
    ['token-bucket', { algorithm: 'token-bucket', rate: '7/10s', burst: 3 }],
    ['gcra', { algorithm: 'gcra', rate: '10/s', burst: 2 }],
    ['sliding-window', { algorithm: 'sliding-window', rate: '5/2s' }],
    ['fixed-window', { algorithm: 'fixed-window', rate: '4/3s' }],
  ];
  for (const [name, policy] of cases) {
    it(`${name}: over HTTP (whole seconds) and to the millisecond`, async () => {
      const clock = new Clock(Date.UTC(2026, 5, 15, 12, 0, 0, 123));
      const limiter = limiterFor({ policies: { p: policy }, now: clock.now });
      const { url } = await fastifyServer(limiter);
      // a deterministic walk of arrivals: bursts, pauses and waits of exactly Retry-After
      let seed = 42;
      const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      let refusals = 0;
      for (let step = 0; step < 60; step++) {
        const res = await get(`${url}/api/items`);
        if (res.status === 200) {
          clock.advance(Math.floor(rand() * 300));
          continue;
        }
        refusals++;
        expect(res.status).toBe(429);
        const retryAfter = Number(res.headers['retry-after']);
        expect(retryAfter).toBeGreaterThanOrEqual(1);
        // the script's own figure: one ms early is refused, on time is admitted
        const d = await limiter.decide(request({ route: '/api/items', ip: '127.0.0.1' }));
        expect(d.allowed).toBe(false);
        const retryMs = d.reply!.retryMs;
        expect(retryAfter * 1000).toBeGreaterThanOrEqual(retryMs);
        expect(retryAfter * 1000 - retryMs).toBeLessThan(1000);
        clock.advance(retryMs - 1);
        expect((await limiter.decide(request({ route: '/api/items', ip: '127.0.0.1' }))).allowed).toBe(false);
        clock.advance(1 - retryMs);
        clock.advance(retryAfter * 1000);
        const again = await get(`${url}/api/items`);
        expect(again.status, `step ${step}: waited Retry-After ${retryAfter} s`).toBe(200);
      }
      expect(refusals).toBeGreaterThan(5);
    });
  }
});

describe('quotas beside the rate (calendar windows, all-or-nothing)', () => {
  it('a daily quota in a time zone resets at local midnight, not UTC midnight', async () => {
    // 23:59:58 in New York (EDT, UTC-4) on 2026-06-15
    const clock = new Clock(Date.UTC(2026, 5, 16, 3, 59, 58));
    const limiter = limiterFor({ policies: { api: { rate: '100/s', quota: { day: 3, timeZone: 'America/New_York' } } }, now: clock.now });
    const { url } = await fastifyServer(limiter);
    for (let i = 0; i < 3; i++) expect((await get(`${url}/api/items`)).status).toBe(200);
    const spent = await get(`${url}/api/items`);
    expect(spent.status).toBe(429);
    expect((spent.body as { code: string }).code).toBe('QUOTA_EXCEEDED');
    expect(spent.headers['retry-after']).toBe('2');
    expect(spent.headers.ratelimit).toContain('"api-day";r=0;t=2');
    expect(spent.headers['ratelimit-policy']).toBe('"api";q=100;w=1, "api-day";q=3;w=86400');
    clock.advance(1999);
    expect((await get(`${url}/api/items`)).status).toBe(429);
    clock.advance(1); // local midnight
    const next = await get(`${url}/api/items`);
    expect(next.status).toBe(200);
    expect(next.headers.ratelimit).toContain('"api-day";r=2;t=86400');
  });

  it('a monthly quota resets on the 1st; usage is readable for the admin API', async () => {
    const clock = new Clock(Date.UTC(2026, 1, 28, 23, 59, 59, 500));
    const limiter = limiterFor({ policies: { api: { rate: '100/s', key: 'apiKey', quota: { month: 2 } } }, now: clock.now });
    const { url } = await fastifyServer(limiter);
    const h = { 'x-api-key': 'tenant-a' };
    expect((await get(`${url}/api/items`, h)).status).toBe(200);
    expect((await get(`${url}/api/items`, h)).status).toBe(200);
    expect((await get(`${url}/api/items`, h)).status).toBe(429);
    expect(await quotaUsage(limiter.redis, limiter.keys.namespace, 'api', 'key:tenant-a', clock.ms)).toEqual({ day: null, month: { used: 2, resetsAt: Date.UTC(2026, 2, 1) } });
    clock.advance(500);
    expect((await get(`${url}/api/items`, h)).status).toBe(200);
    expect((await quotaUsage(limiter.redis, limiter.keys.namespace, 'api', 'key:tenant-a', clock.ms)).month?.used).toBe(1);
  });

  it('all-or-nothing: a rate refusal spends no quota, a quota refusal takes no token', async () => {
    const clock = new Clock();
    const limiter = limiterFor({ policies: { api: { rate: '2/min', burst: 2, quota: { day: 3 } } }, now: clock.now });
    const req = request();
    expect((await limiter.decide(req)).allowed).toBe(true);
    expect((await limiter.decide(req)).allowed).toBe(true);
    for (let i = 0; i < 5; i++) expect((await limiter.decide(req)).reply!.verdict).toBe('limited');
    expect((await quotaUsage(limiter.redis, limiter.keys.namespace, 'api', 'ip:192.0.2.1', clock.ms)).day?.used).toBe(2);
    clock.advance(60_000); // the bucket is full again: 2 tokens
    expect((await limiter.decide(req)).allowed).toBe(true);
    const spent = await limiter.decide(req);
    expect(spent.reply!.verdict).toBe('quota-day');
    expect(spent.reply!.remaining).toBe(1); // the token it did not take
  });
});

describe('abuse blocking', () => {
  it('N refusals within W block the key for T, listed and lifted through the admin functions', async () => {
    const clock = new Clock();
    const limiter = limiterFor({ policies: { api: { rate: '1/min', block: { after: 3, within: '1 min', for: '10 min' } } }, now: clock.now });
    const { url } = await fastifyServer(limiter);
    expect((await get(`${url}/api/items`)).status).toBe(200);
    expect((await get(`${url}/api/items`)).status).toBe(429);
    expect((await get(`${url}/api/items`)).status).toBe(429);
    const blocked = await get(`${url}/api/items`);
    expect(blocked.status).toBe(429);
    expect((blocked.body as { code: string }).code).toBe('BLOCKED');
    expect(blocked.headers['retry-after']).toBe('600');
    // the bucket refilled long ago, the block holds
    clock.advance(5 * 60_000);
    expect(((await get(`${url}/api/items`)).body as { code: string }).code).toBe('BLOCKED');
    const list = await listBlocked(limiter.redis, limiter.keys.namespace, clock.ms);
    expect(list).toEqual([{ policy: 'api', key: 'ip:127.0.0.1', until: clock.ms - 5 * 60_000 + 600_000 }]);
    expect(await liftBlock(limiter.redis, limiter.keys.namespace, 'api', 'ip:127.0.0.1')).toBe(true);
    expect(await listBlocked(limiter.redis, limiter.keys.namespace, clock.ms)).toEqual([]);
    expect((await get(`${url}/api/items`)).status).toBe(200);
  });

  it('refusals spread wider than W do not block; the block ends by itself after T', async () => {
    const clock = new Clock();
    const limiter = limiterFor({ policies: { api: { rate: '1/hour', block: { after: 2, within: '10 s', for: '1 min' } } }, now: clock.now });
    const req = request();
    expect((await limiter.decide(req)).allowed).toBe(true);
    for (let i = 0; i < 4; i++) {
      expect((await limiter.decide(req)).reply!.verdict).toBe('limited');
      clock.advance(11_000);
    }
    expect((await limiter.decide(req)).reply!.verdict).toBe('limited');
    const b = await limiter.decide(req);
    expect(b.reply!.verdict).toBe('blocked');
    expect(b.reply!.newlyBlocked).toBe(true);
    clock.advance(60_000);
    expect((await limiter.decide(req)).reply!.verdict).toBe('limited');
  });
});

describe('keys', () => {
  it('one key per limited client, each in its own Cluster slot, with a TTL and a bounded size', async () => {
    const clock = new Clock();
    const limiter: HttpLimiter = limiterFor({ policies: { api: { rate: '10/s', quota: { day: 1000 } } }, now: clock.now });
    for (let i = 0; i < 100; i++) await limiter.decide(request({ ip: `198.51.100.${i}` }));
    const keys = await httpKeys(limiter.keys.namespace);
    expect(keys).toHaveLength(100);
    expect(new Set(keys.map((k) => calculateSlot(k))).size).toBeGreaterThan(90);
    const redis = newRedis();
    for (const k of keys.slice(0, 10)) {
      expect(await redis.pttl(k)).toBeGreaterThan(0);
      expect(Number(await redis.memory('USAGE', k))).toBeLessThan(200);
    }
    await redis.quit();
    // a hostile key cannot break out of its hash tag
    const hk = new HttpKeys('ns');
    expect(hk.state('api', 'user:}{evil')).toMatch(/^sluice:\{ns:h:api:~[\w-]+\}$/);
  });

  it('on Redis time, a key expires when idle: its TTL covers its state, with at most a minute of slack, and is not renewed on every request', async () => {
    const limiter = limiterFor({ policies: { api: { rate: '10/s' } } });
    const first = await limiter.decide(request());
    const k = limiter.keys.state('api', first.key!);
    const redis = newRedis();
    const expiryOf = async () => {
      const [[, x], [, pttl], [, time]] = (await redis.multi().hget(k, 'x').pttl(k).time().exec()) as [[null, string], [null, number], [null, [string, string]]];
      const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
      return { x: Number(x), pttl, now };
    };
    const e1 = await expiryOf();
    // the TTL ends at x (to the ms), x outlives the state (the bucket is whole again at now + resetMs)
    expect(e1.pttl).toBeGreaterThan(0);
    expect(Math.abs(e1.now + e1.pttl - e1.x)).toBeLessThanOrEqual(2);
    expect(e1.x - first.reply!.now).toBeGreaterThanOrEqual(first.reply!.resetMs);
    expect(e1.x - first.reply!.now).toBeLessThanOrEqual(first.reply!.resetMs + 1 + 60_000);
    // a second request whose state x already covers leaves the TTL alone (no PEXPIRE)
    const second = await limiter.decide(request());
    const e2 = await expiryOf();
    expect(second.reply!.now + second.reply!.resetMs).toBeLessThanOrEqual(e2.x);
    expect(e2.x).toBe(e1.x);
    await redis.quit();
  });

  it('counts every outcome in a registry the user gives', async () => {
    const registry = new Registry();
    const limiter = limiterFor({ policies: { api: { rate: '1/min' } }, registry, allowlist: { keys: [], cidrs: ['203.0.113.0/24'] } });
    await limiter.decide(request());
    await limiter.decide(request());
    await limiter.decide(request({ ip: '203.0.113.9' }));
    const text = await registry.metrics();
    expect(text).toContain('sluice_http_requests_total{policy="api",outcome="allowed",reason="rate"} 1');
    expect(text).toContain('sluice_http_requests_total{policy="api",outcome="limited",reason="rate"} 1');
    expect(text).toContain('sluice_http_requests_total{policy="api",outcome="skipped",reason="allowlist"} 1');
  });
});

describe('script contract: clock going backwards, config changed mid-flight', () => {
  const algorithms: [string, PolicyConfigInput][] = [
    ['token-bucket', { algorithm: 'token-bucket', rate: '2/min', burst: 2 }],
    ['gcra', { algorithm: 'gcra', rate: '2/min', burst: 2 }],
    ['sliding-window', { algorithm: 'sliding-window', rate: '2/min' }],
    ['fixed-window', { algorithm: 'fixed-window', rate: '2/min' }],
  ];
  for (const [name, policy] of algorithms) {
    it(`${name}: a clock that goes back (even by windows) admits nothing more`, async () => {
      const clock = new Clock(Date.UTC(2026, 5, 15, 12, 0, 30));
      const limiter = limiterFor({ policies: { p: policy }, now: clock.now });
      const req = request();
      expect((await limiter.decide(req)).allowed).toBe(true);
      expect((await limiter.decide(req)).allowed).toBe(true);
      for (const back of [1, 1_000, 60_000, 3 * 60_000]) {
        clock.ms -= back;
        expect((await limiter.decide(req)).allowed, `${back} ms back`).toBe(false);
        clock.ms += back;
      }
      expect((await limiter.decide(req)).allowed).toBe(false);
    });
  }

  it('a policy changed for keys already counted: the new limit applies at once, no leftover credit', async () => {
    const clock = new Clock();
    const first = limiterFor({ policies: { p: { rate: '10/min', burst: 10 } }, now: clock.now });
    const req = request();
    expect((await first.decide(req)).allowed).toBe(true);
    // the same namespace, the bucket shrunk to 2: 9 tokens stored, 2 usable
    const { createHttpLimiter } = await import('../src/http/index.js');
    const { pino } = await import('pino');
    const second = createHttpLimiter({ redis: first.redis, namespace: first.keys.namespace, logger: pino({ level: 'silent' }), now: clock.now, policies: { p: { rate: '2/min', burst: 2 } } });
    try {
      expect((await second.decide(req)).allowed).toBe(true);
      expect((await second.decide(req)).allowed).toBe(true);
      expect((await second.decide(req)).allowed).toBe(false);
      const windows = createHttpLimiter({ redis: first.redis, namespace: first.keys.namespace, logger: pino({ level: 'silent' }), now: clock.now, policies: { w: { rate: '5/min', algorithm: 'fixed-window' } } });
      for (let i = 0; i < 3; i++) await windows.decide(req);
      await windows.close();
      const lowered = createHttpLimiter({ redis: first.redis, namespace: first.keys.namespace, logger: pino({ level: 'silent' }), now: clock.now, policies: { w: { rate: '2/min', algorithm: 'fixed-window' } } });
      const d = await lowered.decide(req);
      expect(d.allowed).toBe(false);
      expect(d.reply!.remaining).toBe(0);
      await lowered.close();
    } finally {
      await second.close();
    }
  });
});

describe('admin routes for blocks and quotas, mounted in the admin server', () => {
  it('lists and lifts a block, reads quota usage', async () => {
    const limiter = limiterFor({ policies: { api: { rate: '1/hour', quota: { day: 10 }, block: { after: 2, within: '1 min', for: '1 hour' } } } });
    const { url: api } = await fastifyServer(limiter);
    // the admin server's own instance (the limiter does not cover it), behind its tokens
    const throttler = makeThrottler({ endpoints: { 'x.y': { rate: '1/s' } } });
    const admin = createAdminServer({ throttler, token: 'adm-token', readToken: 'ro-token', port: 0, logger: pino({ level: 'silent' }), httpLimiter: { redis: limiter.redis, namespace: limiter.keys.namespace } });
    const url = await admin.start();
    const adm = { authorization: 'Bearer adm-token' };
    const ro = { authorization: 'Bearer ro-token' };
    try {
      expect((await get(`${api}/api/items`)).status).toBe(200);
      await get(`${api}/api/items`);
      expect(((await get(`${api}/api/items`)).body as { code: string }).code).toBe('BLOCKED');
      const listed = await until('the block is listed', async () => {
        const r = await get(`${url}/api/http/blocked`, ro);
        return (r.body as { blocked: unknown[] }).blocked.length ? r : undefined;
      });
      expect(listed.body).toEqual({ namespace: limiter.keys.namespace, blocked: [{ policy: 'api', key: 'ip:127.0.0.1', until: expect.any(Number) }] });
      expect((await get(`${url}/api/http/blocked`)).status).toBe(401);
      expect((await get(`${url}/api/http/blocked/api/ip:127.0.0.1`, ro, 'DELETE')).status).toBe(403);
      const quota = await get(`${url}/api/http/quota/api/ip:127.0.0.1`, ro);
      expect(quota.body).toMatchObject({ policy: 'api', key: 'ip:127.0.0.1', day: { used: 1 }, month: null });
      expect((await get(`${url}/api/http/blocked/api/ip:127.0.0.1`, adm, 'DELETE')).status).toBe(200);
      expect((await get(`${url}/api/http/blocked/api/ip:127.0.0.1`, adm, 'DELETE')).status).toBe(404);
      expect(((await get(`${url}/api/http/blocked`, ro)).body as { blocked: unknown[] }).blocked).toEqual([]);
      // lifted: back to the rate's own answer
      expect(((await get(`${api}/api/items`)).body as { code: string }).code).toBe('RATE_LIMITED');
    } finally {
      await admin.close();
    }
  });
});
