import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { bullmqPrefix } from '../src/bullmq/index.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Worker } from 'bullmq';
import { pino } from 'pino';
import { createAdminServer, type AdminServer } from '../src/admin/server.js';
import { authenticate, isLoopback, safeEqual } from '../src/admin/auth.js';
import { startWaitReporter } from '../src/metrics/reporter.js';
import { bucketOf, emptyHistogram, quantileMs, WAITED_THRESHOLD_MS } from '../src/metrics/wait-histogram.js';
import { createQueues, type SluiceQueues } from '../jobs/queues.js';
import { ResultsStore } from '../workers/results/store.js';
import type { Throttler } from '../src/throttler.js';
import type { EndpointView } from '../src/metrics/endpoint-view.js';
import { renderStatusTable, statusCommand } from '../workers/cli/commands/status.js';
import { adminCommand } from '../workers/cli/commands/admin.js';
import { startEmbeddedRedis } from '../workers/embedded/redis-server.js';
import { cleanup, logSink, makeThrottler, redisUrl } from './support/helpers.js';
import { rawRequest } from './support/raw-http.js';
import { createHarvestApp } from '../workers/inngest/harvest-app.js';

const silent = pino({ level: 'silent' });
const ADMIN = { authorization: 'Bearer admin-secret' };
const READ = { authorization: 'Bearer read-secret' };

function throttlerForTest(): Throttler {
  return makeThrottler({
    endpoints: {
      'api.search': { rate: '60/min', burst: 10 },
      'api.profile': { rate: '20/s', burst: 2, maxQueue: 50 },
    },
  });
}

describe('auth helpers', () => {
  it('compares tokens in constant time whatever their lengths', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abcd')).toBe(false);
    expect(safeEqual('', 'x')).toBe(false);
  });

  it('tells admin, read-only and bad credentials apart', () => {
    const creds = { token: 'a'.repeat(32), readToken: 'r'.repeat(32) };
    expect(authenticate(`Bearer ${'a'.repeat(32)}`, creds)).toMatchObject({ ok: true, role: 'admin' });
    expect(authenticate(`bearer ${'r'.repeat(32)}`, creds)).toMatchObject({ ok: true, role: 'read' });
    expect(authenticate('Bearer nope', creds)).toMatchObject({ ok: false, status: 401 });
    expect(authenticate(undefined, creds)).toMatchObject({ ok: false, status: 401 });
    expect(authenticate(`Basic ${'a'.repeat(32)}`, creds)).toMatchObject({ ok: false });
  });

  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) expect(isLoopback(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '192.168.1.2']) expect(isLoopback(h)).toBe(false);
  });
});

describe('binding without a token', () => {
  afterEach(cleanup);

  it('refuses a non-loopback host with a clear error', () => {
    const throttler = throttlerForTest();
    expect(() => createAdminServer({ throttler, host: '0.0.0.0', logger: silent })).toThrow(/refusing to listen on "0.0.0.0" without a token/);
    expect(() => createAdminServer({ throttler, host: '10.1.2.3', readToken: 'r', logger: silent })).toThrow(/readToken given without token/);
  });

  it('serves loopback unauthenticated, and says so in the log', async () => {
    const throttler = throttlerForTest();
    const { logger, lines } = logSink();
    const app = createAdminServer({ throttler, port: 0, logger });
    try {
      const url = await app.start();
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(lines.some((l) => l.level === 40 && /unauthenticated/.test(String(l.msg)))).toBe(true);
      const res = await fetch(`${url}/api/endpoints`);
      expect(res.status).toBe(200);
      const put = await fetch(`${url}/api/endpoints/api.search`, { method: 'PUT', headers: { 'content-type': 'application/json', 'x-sluice-actor': 'ops' }, body: JSON.stringify({ burst: 12 }) });
      expect(put.status).toBe(200);
      const [entry] = await throttler.auditLog(1);
      expect(entry).toMatchObject({ actor: 'ops (loopback)', endpoint: 'api.search' });
    } finally {
      await app.close();
    }
  });

  it('refuses cross-site requests and DNS rebinding when unauthenticated', async () => {
    const throttler = throttlerForTest();
    const app = createAdminServer({ throttler, logger: silent });
    try {
      // a page on another site posting to the loopback API (no preflight for a body-less POST)
      const csrf = await app.inject({ method: 'POST', url: '/api/endpoints/api.search/pause', headers: { host: '127.0.0.1:8787', origin: 'https://evil.example' } });
      expect(csrf.statusCode).toBe(403);
      expect(csrf.json().message).toMatch(/cross-origin/);
      expect((await throttler.inspect('api.search')).paused).toBeNull();
      // evil.example resolving to 127.0.0.1: the Host header gives it away
      const rebinding = await app.inject({ method: 'GET', url: '/api/endpoints', headers: { host: 'evil.example:8787' } });
      expect(rebinding.statusCode).toBe(403);
      // the dashboard's own same-origin calls and curl still work
      const same = await app.inject({ method: 'POST', url: '/api/endpoints/api.search/resume', headers: { host: '127.0.0.1:8787', origin: 'http://127.0.0.1:8787' } });
      expect(same.statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/api/endpoints', headers: { host: 'localhost:8787' } })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('binds to a public host when a token is set', () => {
    const throttler = throttlerForTest();
    expect(() => createAdminServer({ throttler, host: '0.0.0.0', token: 't', logger: silent })).not.toThrow();
  });
});

describe('admin API', () => {
  let throttler: Throttler;
  let app: AdminServer;

  beforeEach(async () => {
    throttler = throttlerForTest();
    app = createAdminServer({ throttler, token: 'admin-secret', readToken: 'read-secret', logger: silent });
    await app.ready();
  });
  afterEach(async () => {
    await app.close();
    await cleanup();
  });

  const view = async (name: string): Promise<EndpointView> => (await app.inject({ method: 'GET', url: `/api/endpoints/${name}`, headers: READ })).json();

  it('answers 401 without or with wrong credentials, on every /api route and /metrics', async () => {
    for (const url of ['/api/endpoints', '/api/fleet', '/api/history', '/api/audit', '/metrics']) {
      const none = await app.inject({ method: 'GET', url });
      expect(none.statusCode, url).toBe(401);
      expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
      const wrong = await app.inject({ method: 'GET', url, headers: { authorization: 'Bearer admin-secreT' } });
      expect(wrong.statusCode, url).toBe(401);
    }
    const put = await app.inject({ method: 'PUT', url: '/api/endpoints/api.search', payload: { burst: 3 } });
    expect(put.statusCode).toBe(401);
    expect((await throttler.inspect('api.search')).effective.burst).toBe(10);
  });

  it('answers 403 when the read-only token tries a change, and lets it read', async () => {
    const put = await app.inject({ method: 'PUT', url: '/api/endpoints/api.search', headers: READ, payload: { burst: 3 } });
    expect(put.statusCode).toBe(403);
    expect(put.json().error).toBe('forbidden');
    const pause = await app.inject({ method: 'POST', url: '/api/endpoints/api.search/pause', headers: READ });
    expect(pause.statusCode).toBe(403);
    expect((await throttler.inspect('api.search')).effective.burst).toBe(10);
    expect((await throttler.inspect('api.search')).paused).toBeNull();
    const read = await app.inject({ method: 'GET', url: '/api/endpoints', headers: READ });
    expect(read.statusCode).toBe(200);
  });

  it('serves the dashboard and health without credentials (they hold no data)', async () => {
    const page = await app.inject({ method: 'GET', url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toContain('id="fleet"');
    expect(page.body).not.toMatch(/<script[^>]+src=|<link[^>]+href=/); // self-contained: no CDN
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ ok: true });
  });

  it('PUT changes rate, burst, maxQueue and weights as inspect() sees them, and audit-logs the actor', async () => {
    const res = await app.inject({
      method: 'PUT',
      url: '/api/endpoints/api.search',
      headers: { ...ADMIN, 'x-sluice-actor': 'alice' },
      payload: { rate: '120/min', burst: 20, maxQueue: 500, weights: { high: 5 } },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().endpoint.effective).toEqual({ ratePerSec: 2, burst: 20, maxQueue: 500 });
    const s = await throttler.inspect('api.search');
    expect(s.effective).toEqual({ ratePerSec: 2, burst: 20, maxQueue: 500 });
    expect(s.configured).toEqual({ ratePerSec: 1, burst: 10, maxQueue: 10_000 });
    expect(s.overrides['w:high']).toBe('5');
    expect((await view('api.search')).weights).toMatchObject({ high: 5, normal: 2, low: 1 });

    const audit = (await app.inject({ method: 'GET', url: '/api/audit?limit=5', headers: READ })).json();
    expect(audit.entries[0]).toMatchObject({ actor: 'alice (admin-token)', endpoint: 'api.search', change: 'configure' });
    expect(audit.entries[0].after).toMatchObject({ burst: '20', maxQueue: '500' });

    const reset = await app.inject({ method: 'DELETE', url: '/api/endpoints/api.search/overrides', headers: ADMIN });
    expect(reset.statusCode).toBe(200);
    expect((await throttler.inspect('api.search')).effective).toEqual({ ratePerSec: 1, burst: 10, maxQueue: 10_000 });
  });

  it('PUT with ttlMs makes a temporary override', async () => {
    const res = await app.inject({ method: 'PUT', url: '/api/endpoints/api.search', headers: ADMIN, payload: { rate: '30/min', ttlMs: 60_000 } });
    expect(res.statusCode).toBe(200);
    const s = await throttler.inspect('api.search');
    expect(s.temporaryUntil).toBeGreaterThan(Date.now() + 50_000);
    expect(s.effective.ratePerSec).toBeCloseTo(0.5);
    expect(res.json().endpoint.temporaryUntil).toBe(s.temporaryUntil);
  });

  it('answers 400 naming the field at fault', async () => {
    const cases: [unknown, string[]][] = [
      [{ burst: -1 }, ['burst']],
      [{ burst: 2e9 }, ['burst']],
      [{ rate: 'fast' }, ['rate']],
      [{ rate: '0/s' }, ['rate']],
      [{ rate: '5000000/s' }, ['rate']],
      [{ maxQueue: 1.5 }, ['maxQueue']],
      [{ weights: { urgent: 2 } }, ['weights.urgent']],
      [{ weights: { high: -1 } }, ['weights.high']],
      [{ ttlMs: 0, burst: 5 }, ['ttlMs']],
      [{ burst: 5, colour: 'red' }, ['colour']],
      [{}, ['(body)']],
    ];
    for (const [payload, fields] of cases) {
      const res = await app.inject({ method: 'PUT', url: '/api/endpoints/api.search', headers: ADMIN, payload: payload as object });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().fields, JSON.stringify(payload)).toEqual(fields);
      expect(res.json().message).toContain(fields[0]);
    }
    const pause = await app.inject({ method: 'POST', url: '/api/endpoints/api.search/pause', headers: ADMIN, payload: { durationMs: 'soon' } });
    expect(pause.json()).toMatchObject({ error: 'bad_request', fields: ['durationMs'] });
    const dry = await app.inject({ method: 'POST', url: '/api/endpoints/api.search/dry-run', headers: ADMIN, payload: { enabled: 'yes' } });
    expect(dry.json().fields).toEqual(['enabled']);
    const bypass = await app.inject({ method: 'POST', url: '/api/endpoints/api.search/bypass', headers: ADMIN, payload: { tenant: 'a b' } });
    expect(bypass.json().fields).toEqual(['tenant']);
    const limit = await app.inject({ method: 'GET', url: '/api/audit?limit=0', headers: READ });
    expect(limit.json().fields).toEqual(['query.limit']);
    const actor = await app.inject({ method: 'PUT', url: '/api/endpoints/api.search', headers: { ...ADMIN, 'x-sluice-actor': 'x'.repeat(65) }, payload: { burst: 3 } });
    expect(actor.json().fields).toEqual(['headers.x-sluice-actor']);
    // nothing was applied
    expect((await throttler.inspect('api.search')).effective.burst).toBe(10);
  });

  it('answers 404 for an unknown endpoint, 400 for bad JSON, 413 past the body limit', async () => {
    const unknown = await app.inject({ method: 'PUT', url: '/api/endpoints/nope', headers: ADMIN, payload: { burst: 3 } });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().message).toMatch(/unknown endpoint "nope"/);
    expect((await app.inject({ method: 'GET', url: '/api/endpoints/nope', headers: READ })).statusCode).toBe(404);
    const bad = await app.inject({ method: 'PUT', url: '/api/endpoints/api.search', headers: { ...ADMIN, 'content-type': 'application/json' }, payload: '{"burst": ' });
    expect(bad.statusCode).toBe(400);
    const big = await app.inject({ method: 'PUT', url: '/api/endpoints/api.search', headers: { ...ADMIN, 'content-type': 'application/json' }, payload: JSON.stringify({ burst: 3, pad: 'x'.repeat(20_000) }) });
    expect(big.statusCode).toBe(413);
  });

  it('pauses and resumes, for a while or until resumed', async () => {
    let res = await app.inject({ method: 'POST', url: '/api/endpoints/api.search/pause', headers: ADMIN });
    expect(res.statusCode).toBe(200);
    expect(res.json().endpoint.paused).toEqual({ until: null });
    expect((await throttler.inspect('api.search')).paused).toBe(Infinity);
    res = await app.inject({ method: 'POST', url: '/api/endpoints/api.search/resume', headers: ADMIN });
    expect(res.json().endpoint.paused).toBeNull();
    res = await app.inject({ method: 'POST', url: '/api/endpoints/api.search/pause', headers: ADMIN, payload: { durationMs: 30_000, reason: 'captcha storm' } });
    const until = res.json().endpoint.paused.until as number;
    expect(until).toBeGreaterThan(Date.now() + 25_000);
    expect(until).toBeLessThan(Date.now() + 35_000);
    const audit = await throttler.auditLog(3);
    expect(audit.map((e) => e.change)).toEqual([expect.stringMatching(/^pause for 30000 ms: captcha storm/), 'resume', 'pause']);
    expect(audit[0]!.actor).toBe('admin-token');
  });

  it('turns dry-run, the shadow limit and bypasses on and off', async () => {
    let res = await app.inject({ method: 'POST', url: '/api/endpoints/api.search/dry-run', headers: ADMIN, payload: { enabled: true } });
    expect(res.json().endpoint.dryRun).toBe(true);
    expect((await throttler.inspect('api.search')).dryRun).toBe(true);
    await app.inject({ method: 'POST', url: '/api/endpoints/api.search/dry-run', headers: ADMIN, payload: { enabled: false } });
    expect((await throttler.inspect('api.search')).dryRun).toBe(false);

    res = await app.inject({ method: 'POST', url: '/api/endpoints/api.search/shadow', headers: ADMIN, payload: { rate: '30/min', burst: 5 } });
    expect(res.statusCode).toBe(200);
    expect((await throttler.inspect('api.search')).shadow).toMatchObject({ ratePerSec: 0.5, burst: 5 });
    res = await app.inject({ method: 'POST', url: '/api/endpoints/api.search/shadow', headers: { ...ADMIN, 'content-type': 'application/json' }, payload: 'null' });
    expect(res.statusCode).toBe(200);
    expect((await throttler.inspect('api.search')).shadow).toBeNull();
    await app.inject({ method: 'POST', url: '/api/endpoints/api.search/shadow', headers: ADMIN, payload: { rate: '30/min' } });
    await app.inject({ method: 'DELETE', url: '/api/endpoints/api.search/shadow', headers: ADMIN });
    expect((await throttler.inspect('api.search')).shadow).toBeNull();

    res = await app.inject({ method: 'POST', url: '/api/endpoints/api.search/bypass', headers: ADMIN, payload: { tenant: 'vip' } });
    expect(res.json().endpoint.bypass).toEqual(['vip']);
    await app.inject({ method: 'POST', url: '/api/endpoints/api.search/bypass', headers: ADMIN, payload: { tenant: 'partner', ttlMs: 60_000 } });
    expect((await throttler.inspect('api.search')).bypass.sort()).toEqual(['partner', 'vip']);
    await app.inject({ method: 'DELETE', url: '/api/endpoints/api.search/bypass/vip', headers: ADMIN });
    await app.inject({ method: 'DELETE', url: '/api/endpoints/api.search/bypass', headers: ADMIN, payload: { tenant: 'partner' } });
    expect((await throttler.inspect('api.search')).bypass).toEqual([]);
  });

  it('GET /api/endpoints shows state, counters and fleet-wide wait percentiles', async () => {
    const reporter = startWaitReporter(throttler, { intervalMs: 60_000 });
    try {
      // warm up (the first call loads the scripts), then: burst 2 at 20/s, two go at once, the next four wait 50-200 ms
      await throttler.acquire('api.search');
      const admissions = await Promise.all(Array.from({ length: 6 }, (_, i) => throttler.acquire('api.profile', { tenant: i % 2 ? 'acme' : 'globex' })));
      // the lane measured these waits; the reporter saw the same numbers in its events
      const waits = admissions.map((a) => a.waitedMs);
      expect(waits.filter((w) => w > 40).length).toBeGreaterThanOrEqual(4);
      const expected = emptyHistogram();
      for (const w of waits) expected.counts[bucketOf(w)]!++;
      await throttler.penalize('api.profile', { retryAfterMs: 5_000 });
      await reporter.flush();
      const res = await app.inject({ method: 'GET', url: '/api/endpoints', headers: READ });
      expect(res.statusCode).toBe(200);
      const body = res.json() as { namespace: string; endpoints: EndpointView[] };
      expect(body.namespace).toBe(throttler.keys.namespace);
      expect(body.endpoints.map((e) => e.endpoint).sort()).toEqual(['api.profile', 'api.search']);
      const p = body.endpoints.find((e) => e.endpoint === 'api.profile')!;
      expect(p.configured).toEqual({ ratePerSec: 20, burst: 2, maxQueue: 50 });
      expect(p.counters.admitted).toBe(6);
      expect(p.counters.penalties).toBe(1);
      expect(p.pausedUntil).toBeGreaterThan(Date.now() + 3_000);
      expect(p.waits.admitted).toBe(6);
      expect(p.waits.waited).toBe(waits.filter((w) => w > WAITED_THRESHOLD_MS).length);
      expect(p.waits.processes).toBe(1);
      expect(p.waits.p50Ms).toBe(quantileMs(expected, 0.5));
      expect(p.waits.p95Ms).toBe(quantileMs(expected, 0.95));
      expect(p.waits.p95Ms).toBeGreaterThanOrEqual(100); // four of six waited 50-200 ms (more under load)
      const s = body.endpoints.find((e) => e.endpoint === 'api.search')!;
      expect(s.waits).toMatchObject({ admitted: 1, processes: 1 });
      // one token taken, refilling at 1/s up to the burst of 10
      expect(s.tokens).toBeGreaterThan(8.9);
      expect(s.tokens).toBeLessThanOrEqual(10);
      expect(s.counters.admitted).toBe(1);
    } finally {
      await reporter.stop();
    }
  });

  it('shows queue depth per tenant and priority', async () => {
    await throttler.configure('api.profile', { rate: '1/min', burst: 1 });
    await throttler.acquire('api.profile');
    const ac = new AbortController();
    const waiting = [
      throttler.acquire('api.profile', { tenant: 'acme', priority: 'high', signal: ac.signal }),
      throttler.acquire('api.profile', { tenant: 'acme', priority: 'high', signal: ac.signal }),
      throttler.acquire('api.profile', { tenant: 'globex', priority: 'low', signal: ac.signal }),
    ].map((p) => p.catch((e: Error) => e));
    await expect.poll(async () => (await view('api.profile')).queued, { timeout: 5_000 }).toBe(3);
    const v = await view('api.profile');
    expect(v.queuedByClass).toEqual([
      { tenant: 'acme', priority: 'high', queued: 2 },
      { tenant: 'globex', priority: 'low', queued: 1 },
    ]);
    ac.abort();
    await Promise.all(waiting);
  });

  it('keeps a history of samples for the charts', async () => {
    await app.sample();
    await throttler.acquire('api.search');
    await throttler.acquire('api.search');
    await new Promise((r) => setTimeout(r, 50));
    await app.sample();
    const res = await app.inject({ method: 'GET', url: '/api/history?endpoint=api.search', headers: READ });
    const body = res.json();
    expect(body.intervalMs).toBe(2_000);
    const series = body.endpoints['api.search'];
    expect(series.length).toBeGreaterThanOrEqual(2);
    const last = series[series.length - 1];
    expect(last.admissionsPerSec).toBeGreaterThan(0);
    expect(last.tokens).toBeGreaterThan(7.9); // two of ten taken, refilling at 1/s
    expect(last.tokens).toBeLessThan(9.5);
    const since = await app.inject({ method: 'GET', url: `/api/history?since=${last.t}`, headers: READ });
    expect(since.json().endpoints['api.search']).toEqual([]);
  });
});

describe('GET /api/history: what the dashboard charts', () => {
  it('samples the admitted rate from the admissions made, the adaptive rate and the penalties; read access only', async () => {
    const throttler = makeThrottler({ endpoints: { e: { rate: '1000/s', burst: 100, adaptive: { quietMs: 60_000, decreaseFactor: 0.5 } } } });
    // the background sampler runs once at ready, then not again within the test
    const app = createAdminServer({ throttler, token: 'admin-secret', readToken: 'read-secret', historyIntervalMs: 3_600_000, historySpanMs: 36_000_000, logger: silent });
    try {
      await app.ready();
      await app.sample();
      for (let i = 0; i < 30; i++) await throttler.acquire('e');
      await app.sample();
      await throttler.penalize('e', { retryAfterMs: 1, reason: 'test 429' });
      await throttler.penalize('e', { retryAfterMs: 1, reason: 'test 429, another worker' });
      for (let i = 0; i < 5; i++) await throttler.acquire('e');
      await app.sample();

      // refused without a token or with a wrong one, like every read route; the read token may read
      expect((await app.inject({ method: 'GET', url: '/api/history?endpoint=e' })).statusCode).toBe(401);
      expect((await app.inject({ method: 'GET', url: '/api/history?endpoint=e', headers: { authorization: 'Bearer read-secreT' } })).statusCode).toBe(401);
      const res = await app.inject({ method: 'GET', url: '/api/history?endpoint=e', headers: READ });
      expect(res.statusCode).toBe(200);
      const samples = res.json().endpoints.e as Array<{ t: number; admissionsPerSec: number | null; effectivePerSec: number; configuredPerSec: number; penalties: number | null; penalized: boolean }>;
      const [a, b, c] = samples.slice(-3);
      // admitted rate x the time between samples = the admissions made in between
      expect((b!.admissionsPerSec! * (b!.t - a!.t)) / 1000).toBeCloseTo(30, 6);
      expect((c!.admissionsPerSec! * (c!.t - b!.t)) / 1000).toBeCloseTo(5, 6);
      expect(b).toMatchObject({ effectivePerSec: expect.closeTo(1000), configuredPerSec: 1000, penalties: 0, penalized: false });
      // two penalties (one cut: the second came within the quiet period) halve the effective rate
      expect(c).toMatchObject({ effectivePerSec: expect.closeTo(500), configuredPerSec: 1000, penalties: 2, penalized: true });
      expect(samples).toHaveLength(4); // the sampler's at ready, then ours
      expect(samples[0]!.penalties).toBeNull();
    } finally {
      await app.close();
    }
  });
});

describe('GET /api/fleet', () => {
  let queues: SluiceQueues | undefined;
  let worker: Worker | undefined;
  const conns: Redis[] = [];
  afterEach(async () => {
    await worker?.close();
    await queues?.close();
    for (const c of conns.splice(0)) await c.quit();
    await cleanup();
  });

  it('reports workers online, jobs by state and harvested counts', async () => {
    const throttler = throttlerForTest();
    const ns = throttler.keys.namespace;
    const conn = new Redis(redisUrl(), { maxRetriesPerRequest: null });
    conns.push(conn);
    queues = createQueues({ connection: conn, namespace: ns });
    await queues.discovery.add('discovery', { kind: 'hashtag', hashtag: 'cats' } as never);
    await queues.discovery.add('discovery', { kind: 'hashtag', hashtag: 'dogs' } as never);
    await queues.harvesting.add('harvesting', { handle: 'alice' } as never, { delay: 60_000 });
    const wconn = new Redis(redisUrl(), { maxRetriesPerRequest: null });
    conns.push(wconn);
    worker = new Worker('harvesting', async () => 'ok', { connection: wconn, prefix: bullmqPrefix(throttler.keys.namespace) });
    await worker.waitUntilReady();
    const results = new ResultsStore(conn, ns);
    await results.recordProfile({ handle: 'alice', domains: ['a.com', 'b.com'] });
    await results.recordProfile({ handle: 'bob', domains: ['a.com'] });

    const app = createAdminServer({ throttler, queues, results, token: 'admin-secret', logger: silent });
    try {
      await expect.poll(async () => (await app.inject({ method: 'GET', url: '/api/fleet', headers: ADMIN })).json().workersOnline, { timeout: 5_000 }).toBe(1);
      const fleet = (await app.inject({ method: 'GET', url: '/api/fleet', headers: ADMIN })).json();
      expect(fleet.jobs).toMatchObject({ waiting: 2, delayed: 1, active: 0, failed: 0 });
      expect(fleet.queues.find((q: { queue: string }) => q.queue === 'discovery')).toMatchObject({ workers: 0, jobs: { waiting: 2 } });
      expect(fleet.queues.find((q: { queue: string }) => q.queue === 'harvesting')).toMatchObject({ workers: 1, jobs: { delayed: 1 } });
      expect(fleet.results).toEqual({ profiles: 2, domains: 2 });
      await results.clear();
    } finally {
      await app.close();
    }
  });
});

describe('sluice status', () => {
  const base: EndpointView = {
    endpoint: 'tiktok.profile',
    configured: { ratePerSec: 50 / 60, burst: 100, maxQueue: 10_000 },
    effective: { ratePerSec: 50 / 60, burst: 100, maxQueue: 10_000 },
    weights: { high: 3, normal: 2, low: 1 },
    tokens: 12.345,
    queued: 0,
    queuedByClass: [],
    pausedUntil: null,
    paused: null,
    dryRun: false,
    shadow: null,
    bypass: [],
    temporaryUntil: null,
    counters: { admitted: 12_345, queued: 10, timeouts: 2, queueFull: 1, dropped: 0, penalties: 0, wouldWait: 0, bypassed: 0 },
    waits: { windowMs: 60_000, processes: 2, admitted: 40, waited: 30, p50Ms: 850, p95Ms: 2_400 },
    overrides: {},
  };

  it('renders an aligned table with overrides, states, classes and the fleet', () => {
    const now = 1_000_000;
    const search: EndpointView = {
      ...base,
      endpoint: 'tiktok.search',
      configured: { ratePerSec: 10 / 60, burst: 20, maxQueue: 10_000 },
      effective: { ratePerSec: 2, burst: 5, maxQueue: 500 },
      tokens: -1.5,
      queued: 7,
      queuedByClass: [
        { tenant: 'acme', priority: 'high', queued: 5 },
        { tenant: 'globex', priority: 'low', queued: 2 },
      ],
      paused: { until: null },
      pausedUntil: now + 4_200,
      dryRun: true,
      counters: { ...base.counters, admitted: 7, timeouts: 0, queueFull: 0, penalties: 3, wouldWait: 4 },
      waits: { windowMs: 60_000, processes: 0, admitted: 0, waited: 0, p50Ms: null, p95Ms: null },
    };
    const fleet = { workersOnline: 4, jobs: { waiting: 10, prioritized: 2, active: 3, delayed: 1, completed: 99, failed: 5 }, queues: [], results: { profiles: 1_234, domains: 56 } };
    const text = renderStatusTable([base, search], { fleet, now });
    expect(text).toBe(
      [
        'ENDPOINT                RATE   BURST  TOKENS    QUEUED  ADMITTED  WAITED    P50   P95  REFUSED  PENALTIES  STATE',
        'tiktok.profile        50/min     100    12.3  0/10,000    12,345      30  850ms  2.4s        3          0  ok',
        'tiktok.search   2/s (10/min)  5 (20)    -1.5     7/500         7       0      -     -        0          3  paused, penalized 5s, dry-run (4 would wait)',
        '',
        'QUEUED BY CLASS  TENANT  PRIORITY  TICKETS',
        'tiktok.search    acme    high            5',
        'tiktok.search    globex  low             2',
        '',
        'FLEET  workers 4  jobs waiting 12  active 3  delayed 1  completed 99  failed 5  profiles 1,234  domains 56',
        '',
        'WAITED/P50/P95 over the last 60 s, fleet-wide; (x) = configured value under an override',
        '',
      ].join('\n'),
    );
  });

  it('prints the picture from Redis as a table or JSON', async () => {
    const throttler = throttlerForTest();
    await throttler.acquire('api.search');
    await throttler.configure('api.search', { rate: '2/s' });
    const file = writeConfig(throttler.keys.namespace);
    const chunks: string[] = [];
    const out = new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) });
    await statusCommand({ config: file, redis: redisUrl(), out });
    const text = chunks.join('');
    expect(text).toMatch(/^ENDPOINT\s+RATE/);
    expect(text).toMatch(/\napi\.search\s+2\/s \(1\/s\)\s+10\s+\S+\s+0\/10,000\s+1\s+0\s+-\s+-\s+0\s+0\s+ok\n/);
    expect(text).toMatch(/FLEET {2}workers 0 {2}jobs waiting 0/);
    chunks.length = 0;
    await statusCommand({ config: file, redis: redisUrl(), out, json: true });
    const json = JSON.parse(chunks.join(''));
    expect(json.namespace).toBe(throttler.keys.namespace);
    expect(json.endpoints.find((e: EndpointView) => e.endpoint === 'api.search').counters.admitted).toBe(1);
  });

  it('says clearly when Redis cannot be reached', async () => {
    const file = writeConfig('nowhere');
    await expect(statusCommand({ config: file, redis: 'redis://:secret@127.0.0.1:1', out: new Writable({ write: (_c, _e, cb) => cb() }) })).rejects.toThrow(
      /cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1/,
    );
  });
});

describe('sluice admin', () => {
  afterEach(cleanup);

  it('starts the server for a config file, serves the API with the token, and closes', async () => {
    const throttler = throttlerForTest();
    const file = writeConfig(throttler.keys.namespace);
    const { logger, lines } = logSink();
    const running = await adminCommand({ config: file, redis: redisUrl(), port: 0, token: 'cli-token', logger, handleSignals: false });
    try {
      expect(lines.some((l) => l.url === running.url && /dashboard at/.test(String(l.msg)))).toBe(true);
      expect(JSON.stringify(lines)).not.toContain('cli-token');
      expect((await fetch(`${running.url}/api/endpoints`)).status).toBe(401);
      const res = await fetch(`${running.url}/api/endpoints`, { headers: { authorization: 'Bearer cli-token' } });
      const body = (await res.json()) as { namespace: string; endpoints: EndpointView[] };
      expect(body.namespace).toBe(throttler.keys.namespace);
      expect(body.endpoints.map((e) => e.endpoint).sort()).toEqual(['api.profile', 'api.search']);
    } finally {
      await running.close();
    }
    await expect(fetch(`${running.url}/healthz`)).rejects.toThrow();
  });

  it('refuses a public host without a token', async () => {
    const file = writeConfig('refused');
    await expect(adminCommand({ config: file, redis: redisUrl(), host: '0.0.0.0', port: 0, logger: silent, handleSignals: false })).rejects.toThrow(/without a token/);
  });
});

function writeConfig(namespace: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
  const file = join(dir, 'sluice.yml');
  writeFileSync(
    file,
    [
      `namespace: ${namespace}`,
      'throttle:',
      '  endpoints:',
      "    api.search: { rate: 60/min, burst: 10 }",
      "    api.profile: { rate: 20/s, burst: 2, maxQueue: 50 }",
      '',
    ].join('\n'),
  );
  return file;
}

describe('tenant budgets at runtime', () => {
  afterEach(cleanup);

  it('PUT /api/tenants/:name sets a budget the whole fleet follows; DELETE goes back to the config', async () => {
    const throttler = throttlerForTest();
    const app = createAdminServer({ throttler, token: 'admin-secret', readToken: 'read-secret', logger: silent });
    try {
      const bad = await app.inject({ method: 'PUT', url: '/api/tenants/acme', headers: ADMIN, payload: { rate: 'lots' } });
      expect(bad.statusCode).toBe(400);
      expect(bad.body).toMatch(/rate/);
      const denied = await app.inject({ method: 'PUT', url: '/api/tenants/acme', headers: READ, payload: { rate: '1/min', burst: 2 } });
      expect(denied.statusCode).toBe(403);
      const put = await app.inject({ method: 'PUT', url: '/api/tenants/acme', headers: { ...ADMIN, 'x-sluice-actor': 'ops' }, payload: { rate: '1/min', burst: 2 } });
      expect(put.statusCode).toBe(200);
      expect(put.json().tenants.acme).toMatchObject({ burst: 2, source: 'runtime' });
      // acme is now held to 2 across endpoints; another tenant is not
      const results = await Promise.all(Array.from({ length: 4 }, (_, i) => throttler.tryAcquire(i % 2 ? 'api.search' : 'api.profile', { tenant: 'acme' })));
      expect(results.filter(Boolean)).toHaveLength(2);
      expect(await throttler.tryAcquire('api.search', { tenant: 'globex' })).toBe(true);
      const audit = await app.inject({ method: 'GET', url: '/api/audit', headers: READ });
      expect(audit.json().entries[0]).toMatchObject({ endpoint: '*', change: 'tenant budget for acme', actor: 'ops (admin-token)' });
      const del = await app.inject({ method: 'DELETE', url: '/api/tenants/acme', headers: ADMIN });
      expect(del.statusCode).toBe(200);
      expect(del.json().tenants.acme).toBeUndefined();
      expect(await throttler.tryAcquire('api.search', { tenant: 'acme' })).toBe(true);
    } finally {
      await app.close();
    }
  });
});

/**
 * Access is decided on the route fastify matched, so every spelling of a request target the router
 * accepts (or refuses) meets the same checks. Real HTTP over a socket: fastify.inject and fetch may
 * normalise the target before the server sees it.
 */
describe('every spelling of a path meets the same checks', () => {
  afterEach(cleanup);

  /** [method, request target, the route it reaches (undefined: no route, 404)] */
  const writes: [string, string, string | undefined][] = [
    ['POST', '/api/endpoints/api.search/pause', 'pause'],
    ['POST', '/%61pi/endpoints/api.search/pause', 'pause'],
    ['POST', '/%61%70%69/endpoints/api.search/pause', 'pause'],
    ['POST', '/api/%65ndpoints/api%2Esearch/%70ause', 'pause'],
    ['POST', '/api/endpoints/api.search/pause?x=1', 'pause'],
    ['POST', 'http://x/api/endpoints/api.search/pause', 'pause'],
    ['POST', 'http://x/%61pi/endpoints/api.search/pause', 'pause'],
    ['PUT', '/%61pi/tenants/acme', 'tenant'],
    ['POST', '/./api/endpoints/api.search/pause', undefined],
    ['POST', '//api/endpoints/api.search/pause', undefined],
    ['POST', '/api/endpoints/api.search/pause/', undefined],
    ['POST', '/API/endpoints/api.search/pause', undefined],
    ['POST', '/Api/endpoints/api.search/pause', undefined],
    ['POST', '/api/endpoints/api.search/../api.search/pause', undefined],
    ['POST', '/nowhere', undefined],
  ];
  const reads: [string, string, string | undefined][] = [
    ['GET', '/api/audit', 'audit'],
    ['GET', '/%61pi/audit', 'audit'],
    ['HEAD', '/%61pi/audit', 'audit'],
    ['GET', 'http://x/api/audit', 'audit'],
    ['GET', '/%6detrics', 'metrics'],
    ['GET', '/%6D%65trics', 'metrics'],
    ['GET', 'http://x/%6detrics', 'metrics'],
    ['GET', '/metrics?x', 'metrics'],
    ['GET', '/api/audit/', undefined],
    ['GET', '/API/audit', undefined],
    ['GET', '/./api/audit', undefined],
    ['GET', '//api/audit', undefined],
    ['GET', '/METRICS', undefined],
    ['GET', '/metrics/', undefined],
    ['GET', '/favicon.ico', undefined],
  ];
  const body = (route: string | undefined) => (route === 'tenant' ? JSON.stringify({ rate: '1/min', burst: 2 }) : '{}');
  const json = { 'content-type': 'application/json' };

  async function serve(extra: { token?: string; readToken?: string } = { token: 'admin-secret', readToken: 'read-secret' }) {
    const throttler = throttlerForTest();
    const app = createAdminServer({ throttler, ...extra, port: 0, logger: silent, failedAuth: { max: 1_000 } });
    const url = await app.start();
    return { throttler, app, url, host: new URL(url).host };
  }
  const untouched = async (throttler: Throttler) => {
    expect((await throttler.inspect('api.search')).paused).toBeNull();
    expect(await throttler.tenantBudgets()).not.toHaveProperty('acme');
  };

  it('without a token: 401 on every spelling, and nothing changes', async () => {
    const { throttler, app, url } = await serve();
    try {
      for (const [method, target, route] of [...writes, ...reads]) {
        const res = await rawRequest(url, method, target, json, body(route));
        expect(res.status, `${method} ${target}`).toBe(401);
        expect(res.headers['www-authenticate'], `${method} ${target}`).toMatch(/^Bearer/);
      }
      await untouched(throttler);
    } finally {
      await app.close();
    }
  });

  it('with the read-only token: reads where the route is read, 403 on every spelling of a change', async () => {
    const { throttler, app, url } = await serve();
    try {
      for (const [method, target, route] of writes) {
        const res = await rawRequest(url, method, target, { ...READ, ...json }, body(route));
        expect(res.status, `${method} ${target}`).toBe(route ? 403 : 404);
      }
      await untouched(throttler);
      for (const [method, target, route] of reads) {
        const res = await rawRequest(url, method, target, READ);
        expect(res.status, `${method} ${target}`).toBe(route ? 200 : 404);
      }
    } finally {
      await app.close();
    }
  });

  it('with the admin token: the router takes each spelling to the route listed (the table is what the router does)', async () => {
    const { throttler, app, url } = await serve();
    try {
      for (const [method, target, route] of [...writes, ...reads]) {
        const res = await rawRequest(url, method, target, { ...ADMIN, ...json }, body(route));
        expect(res.status, `${method} ${target}`).toBe(route ? 200 : 404);
        if (route === 'pause') await throttler.resume('api.search');
      }
    } finally {
      await app.close();
    }
  });

  it('a cross-origin request is refused on every spelling, even with the admin token', async () => {
    const { throttler, app, url } = await serve();
    try {
      for (const [method, target, route] of [...writes, ...reads]) {
        const res = await rawRequest(url, method, target, { ...ADMIN, ...json, origin: 'https://evil.example' }, body(route));
        expect(res.status, `${method} ${target}`).toBe(403);
      }
      await untouched(throttler);
    } finally {
      await app.close();
    }
  });

  it('unauthenticated on loopback: a foreign Host (DNS rebinding) is refused on every spelling, and so is a foreign absolute-form target', async () => {
    const { throttler, app, url, host } = await serve({});
    try {
      for (const [method, target, route] of [...writes, ...reads]) {
        const res = await rawRequest(url, method, target, { ...json, host: 'evil.example' }, body(route));
        expect(res.status, `${method} ${target}`).toBe(403);
      }
      for (const [method, target] of [['POST', 'http://evil.example/api/endpoints/api.search/pause'], ['GET', 'http://evil.example/%61pi/audit']] as const) {
        const res = await rawRequest(url, method, target, { ...json, host }, '{}');
        expect(res.status, `${method} ${target}`).toBe(403);
      }
      await untouched(throttler);
      // the same server answers its own loopback name, absolute-form included
      expect((await rawRequest(url, 'GET', `http://${host}/%61pi/audit`)).status).toBe(200);
    } finally {
      await app.close();
    }
  });
});

describe('admin server hardening', () => {
  afterEach(cleanup);

  it('slows repeated failed authentication per address: after max failures even the right token waits, other addresses do not', async () => {
    const throttler = throttlerForTest();
    const { logger, lines } = logSink();
    const app = createAdminServer({ throttler, token: 'admin-secret', port: 0, logger, failedAuth: { max: 3, windowMs: 60_000 } });
    try {
      const url = await app.start();
      // successes are not counted, nor requests that try no credential (a favicon, a first poll)
      for (let i = 0; i < 5; i++) expect((await rawRequest(url, 'GET', '/api/audit', ADMIN)).status).toBe(200);
      for (const target of ['/favicon.ico', '/api/audit', '/api/audit', '/metrics', '/api/fleet']) expect((await rawRequest(url, 'GET', target)).status).toBe(401);
      expect((await rawRequest(url, 'GET', '/api/audit', ADMIN)).status).toBe(200);
      // failures are, whatever the spelling
      for (const target of ['/api/audit', '/%61pi/audit', 'http://x/api/audit']) {
        expect((await rawRequest(url, 'GET', target, { authorization: 'Bearer guess' })).status).toBe(401);
      }
      expect(lines.some((l) => l.level === 40 && /too many failed admin authentications/.test(String(l.msg)))).toBe(true);
      const locked = await rawRequest(url, 'GET', '/api/audit', ADMIN);
      expect(locked.status).toBe(429);
      expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
      expect(JSON.parse(locked.body).error).toBe('too_many_failures');
      expect((await rawRequest(url, 'POST', '/%61pi/endpoints/api.search/pause', { ...ADMIN, 'content-type': 'application/json' }, '{}')).status).toBe(429);
      expect((await throttler.inspect('api.search')).paused).toBeNull();
      // public routes stay open, and another address is not locked out by this one
      expect((await rawRequest(url, 'GET', '/healthz')).status).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/api/audit', headers: ADMIN, remoteAddress: '10.0.0.7' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('sends security headers with the dashboard: a CSP that allows only its own script, no framing, no sniffing, no referrer', async () => {
    const throttler = throttlerForTest();
    const app = createAdminServer({ throttler, token: 'admin-secret', port: 0, logger: silent });
    try {
      const url = await app.start();
      const page = await rawRequest(url, 'GET', '/');
      expect(page.status).toBe(200);
      const csp = page.headers['content-security-policy'] ?? '';
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("default-src 'none'");
      expect(csp).not.toMatch(/script-src[^;]*'unsafe-inline'/);
      const script = /<script>([\s\S]*?)<\/script>/.exec(page.body)![1]!;
      expect(csp).toContain(`script-src 'sha256-${createHash('sha256').update(script).digest('base64')}'`);
      expect(page.headers['x-content-type-options']).toBe('nosniff');
      expect(page.headers['referrer-policy']).toBe('no-referrer');
      expect(page.headers['x-frame-options']).toBe('DENY');
    } finally {
      await app.close();
    }
  });

  it('keeps /api/inngest (unauthenticated: Inngest signs) to a small body: 413 past 256 KiB, before the SDK reads it', async () => {
    const throttler = makeThrottler({ endpoints: { 'tiktok.profile': { rate: '1/s' } } });
    const inngest = createHarvestApp({ throttler, client: { isDev: true, logger: silent }, harvestProfile: async (handle) => handle });
    const app = createAdminServer({ throttler, token: 'admin-secret', inngest, port: 0, logger: silent });
    try {
      const url = await app.start();
      const big = JSON.stringify({ event: { name: 'sluice/profile.harvest', data: { handle: 'x', pad: 'x'.repeat(300 * 1024) } } });
      const res = await rawRequest(url, 'POST', '/api/inngest?fnId=sluice-harvest-profile&stepId=step', { 'content-type': 'application/json' }, big);
      expect(res.status).toBe(413);
      // spelled another way, the same route and the same limit
      expect((await rawRequest(url, 'POST', '/%61pi/inngest?fnId=sluice-harvest-profile', { 'content-type': 'application/json' }, big)).status).toBe(413);
      expect((await rawRequest(url, 'GET', '/api/inngest')).status).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('answers 503 with a fixed message when Redis is down; the log has the driver\'s error', async () => {
    const redis = await startEmbeddedRedis();
    const { logger, lines } = logSink();
    const throttler = makeThrottler({ redis: redis.url, endpoints: { 'api.search': { rate: '60/min', burst: 10 } } });
    const app = createAdminServer({ throttler, token: 'admin-secret', port: 0, logger });
    try {
      const url = await app.start();
      await redis.stop();
      for (const target of ['/api/endpoints', '/api/audit']) {
        const res = await rawRequest(url, 'GET', target, ADMIN);
        expect(res.status, target).toBe(503);
        expect(JSON.parse(res.body).error).toBe('redis_unavailable');
        expect(res.body).not.toContain(String(redis.port));
        expect(res.body).not.toContain('127.0.0.1');
      }
      // the operator reads the driver's own error in the log
      expect(lines.some((l) => l.level === 50 && l.msg === 'admin request failed' && (l.err as { type?: string } | undefined)?.type !== undefined)).toBe(true);
    } finally {
      await app.close();
      await redis.stop();
    }
  }, 30_000);
});
