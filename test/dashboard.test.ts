/**
 * The dashboard in a real Chromium (Debian's, at /usr/bin/chromium): after real traffic, the
 * numbers on the page match the API, charts and markers are drawn, and a screenshot is saved to
 * test-artifacts/dashboard.png for a person to look at.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { bullmqPrefix } from '../src/bullmq/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Worker } from 'bullmq';
import { pino } from 'pino';
import { chromium, type Browser, type Page } from 'playwright';
import { createAdminServer, type AdminServer } from '../src/admin/server.js';
import { startWaitReporter, type WaitReporter } from '../src/metrics/reporter.js';
import { createQueues, type SluiceQueues } from '../jobs/queues.js';
import { ResultsStore } from '../workers/results/store.js';
import type { Throttler } from '../src/throttler.js';
import type { EndpointView } from '../src/metrics/endpoint-view.js';
import { cleanup, makeThrottler, redisUrl } from './support/helpers.js';

const CHROMIUM = process.env.SLUICE_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const TOKEN = 'dash-token';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let throttler: Throttler;
let app: AdminServer;
let url: string;
let browser: Browser;
let queues: SluiceQueues;
let worker: Worker;
let reporter: WaitReporter;
const conns: Redis[] = [];
const pending: Promise<unknown>[] = [];

/** A few seconds of real traffic: bursts, waits, fair-queue classes, a penalty and an operator pause. */
async function traffic(): Promise<void> {
  const tenants = ['acme', 'globex', 'initech'];
  const priorities = ['high', 'normal', 'low'];
  for (let i = 0; i < 40; i++) {
    pending.push(throttler.acquire('tiktok.profile', { tenant: tenants[i % 3], priority: priorities[(i >> 1) % 3] }).catch(() => undefined));
  }
  for (let i = 0; i < 25; i++) pending.push(throttler.acquire('tiktok.search').catch(() => undefined));
  await sleep(2_500);
  await throttler.penalize('tiktok.search', { retryAfterMs: 1_200, reason: 'test 429' });
  await sleep(2_000);
  // freeze the profile endpoint with tickets still queued: the picture the page must match
  await throttler.pause('tiktok.profile', { actor: 'test', reason: 'screenshot' });
  await sleep(1_500);
  await reporter.flush();
}

beforeAll(async () => {
  mkdirSync('test-artifacts', { recursive: true });
  throttler = makeThrottler({
    endpoints: {
      // adaptive: the penalty halves its rate, which the chart's effective-rate line must show
      'tiktok.search': { rate: '6/s', burst: 3, adaptive: { quietMs: 600_000 } },
      'tiktok.profile': { rate: '4/s', burst: 4, maxQueue: 200 },
      'tiktok.video': { rate: '10/min', burst: 20 },
    },
  });
  const ns = throttler.keys.namespace;
  const conn = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  const wconn = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  conns.push(conn, wconn);
  queues = createQueues({ connection: conn, namespace: ns });
  for (const tag of ['cats', 'dogs', 'food']) await queues.discovery.add('discovery', { kind: 'hashtag', hashtag: tag } as never);
  await queues.harvesting.add('harvesting', { handle: 'later' } as never, { delay: 600_000 });
  worker = new Worker('harvesting', async () => 'ok', { connection: wconn, prefix: bullmqPrefix(throttler.keys.namespace) });
  await worker.waitUntilReady();
  const results = new ResultsStore(conn, ns);
  await results.recordProfile({ handle: 'alice', domains: ['alice.shop', 'linktr.ee'] });
  await results.recordProfile({ handle: 'bob', domains: ['bob.dev'] });
  await results.recordProfile({ handle: 'carol', domains: [] });

  reporter = startWaitReporter(throttler, { intervalMs: 1_000 });
  app = createAdminServer({ throttler, queues, results, token: TOKEN, port: 0, historyIntervalMs: 250, logger: pino({ level: 'silent' }) });
  url = await app.start();
  await traffic();
  // no silent skip: a dashboard nobody looked at is what a missing browser would hide
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium, or point SLUICE_CHROMIUM at one`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await reporter?.stop();
  await worker?.close();
  await queues?.close();
  await new ResultsStore(conns[0]!, throttler.keys.namespace).clear();
  for (const c of conns) await c.quit();
  await cleanup();
  await Promise.all(pending);
});

async function api<T>(path: string): Promise<T> {
  const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}

/** The number shown in an element (thousands separators and units dropped). */
async function shown(page: Page, testId: string): Promise<number> {
  const text = await page.getByTestId(testId).first().innerText();
  const m = /-?[\d,]+(?:\.\d+)?/.exec(text);
  if (!m) throw new Error(`no number in [data-testid="${testId}"]: ${text}`);
  return Number(m[0].replace(/,/g, ''));
}

describe('dashboard in Chromium', () => {
  it('shows the numbers the API gives, with charts and markers, and is screenshotted', async () => {
    const page = await browser.newPage({ viewport: { width: 1440, height: 1000 }, deviceScaleFactor: 1 });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // the page runs under its own CSP (script by hash, no framing): nothing it does may be blocked
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) errors.push(m.text());
    });
    const served = await page.goto(`${url}/#token=${TOKEN}`);
    expect(served?.headers()['content-security-policy']).toContain("frame-ancestors 'none'");
    await page.getByTestId('endpoint-tiktok.profile').waitFor();
    // the token left the URL (it must not end up in history or screenshots of the address bar)
    expect(new URL(page.url()).hash).toBe('');

    // counters of the paused endpoint are frozen: they must match exactly
    const { endpoints } = await api<{ endpoints: EndpointView[] }>('/api/endpoints');
    const profile = endpoints.find((e) => e.endpoint === 'tiktok.profile')!;
    expect(profile.paused).toEqual({ until: null });
    expect(profile.queued).toBeGreaterThan(5);
    await expect.poll(() => shown(page, 'tiktok.profile-queued'), { timeout: 6_000 }).toBe(profile.queued);
    expect(await shown(page, 'tiktok.profile-admitted')).toBe(profile.counters.admitted);
    expect(await shown(page, 'tiktok.profile-rate')).toBe(4);
    expect(await shown(page, 'tiktok.profile-burst')).toBe(profile.effective.burst);
    expect(await shown(page, 'tiktok.profile-refused')).toBe(profile.counters.timeouts + profile.counters.queueFull);
    for (const c of profile.queuedByClass) expect(await shown(page, `tiktok.profile-class-${c.tenant}|${c.priority}`), `${c.tenant}|${c.priority}`).toBe(c.queued);
    expect(await page.locator('[data-testid^="tiktok.profile-class-"]').count()).toBe(profile.queuedByClass.length);
    expect(await page.getByTestId('tiktok.profile-paused').innerText()).toMatch(/paused · until resumed/);
    expect(profile.waits.p95Ms).not.toBeNull();
    const p95 = await page.getByTestId('tiktok.profile-p95').innerText();
    const p95Ms = p95.includes(' s') ? (await shown(page, 'tiktok.profile-p95')) * 1000 : await shown(page, 'tiktok.profile-p95');
    expect(Math.abs(p95Ms - profile.waits.p95Ms!)).toBeLessThanOrEqual(p95.includes(' s') ? 50 : 0.5);
    expect(await shown(page, 'tiktok.profile-waited')).toBe(profile.waits.waited);

    // search is idle and refilling: tokens move, so they match within what two polls can change
    const search = (await api<{ endpoints: EndpointView[] }>('/api/endpoints')).endpoints.find((e) => e.endpoint === 'tiktok.search')!;
    expect(await shown(page, 'tiktok.search-admitted')).toBe(search.counters.admitted);
    expect(await shown(page, 'tiktok.search-penalties')).toBe(1);
    expect(Math.abs((await shown(page, 'tiktok.search-tokens')) - search.tokens)).toBeLessThanOrEqual(6 * 2.5 + 0.05);
    const video = (await api<{ endpoints: EndpointView[] }>('/api/endpoints')).endpoints.find((e) => e.endpoint === 'tiktok.video')!;
    expect(await shown(page, 'tiktok.video-tokens')).toBe(Number(video.tokens.toFixed(1)));

    // the fleet
    const fleet = await api<{ workersOnline: number; jobs: Record<string, number>; results: { profiles: number; domains: number } }>('/api/fleet');
    expect(fleet.workersOnline).toBe(1);
    expect(await shown(page, 'fleet-workers')).toBe(1);
    expect(await shown(page, 'fleet-jobs-waiting')).toBe(fleet.jobs.waiting! + fleet.jobs.prioritized!);
    expect(await shown(page, 'fleet-jobs-delayed')).toBe(fleet.jobs.delayed);
    expect(await shown(page, 'fleet-profiles')).toBe(3);
    expect(await shown(page, 'fleet-domains')).toBe(3);

    // charts: admissions drawn, the penalty marked on search, the pause shaded on profile
    const history = await api<{ endpoints: Record<string, { admissionsPerSec: number | null; penalized: boolean; paused: boolean }[]> }>('/api/history');
    expect(history.endpoints['tiktok.search']!.some((s) => s.penalized)).toBe(true);
    expect(history.endpoints['tiktok.profile']!.some((s) => (s.admissionsPerSec ?? 0) > 2)).toBe(true);
    await expect.poll(() => page.locator('[data-testid="endpoint-tiktok.search"] .penalty-mark').count()).toBeGreaterThan(0);
    expect(await page.locator('[data-testid="endpoint-tiktok.profile"] .pause-band').count()).toBeGreaterThan(0);
    expect(await page.locator('[data-testid="endpoint-tiktok.profile"] svg polyline').count()).toBeGreaterThanOrEqual(1);
    // the effective rate over time: 6/s before the penalty, 3/s after it (a step down), under the configured rate's dashed line
    const rates = history.endpoints['tiktok.search']!.map((s) => (s as unknown as { effectivePerSec: number }).effectivePerSec);
    expect(rates[0]).toBeCloseTo(6);
    expect(rates.at(-1)).toBeCloseTo(3);
    const points = await page.locator('[data-testid="endpoint-tiktok.search"] .effective-line').getAttribute('points');
    const ys = new Set(points!.trim().split(/\s+/).map((p) => p.split(',')[1]));
    expect(ys.size, points!).toBe(2);
    expect(await page.locator('[data-testid="endpoint-tiktok.search"] .configured-line').count()).toBe(1);
    expect(await page.locator('[data-testid="endpoint-tiktok.search"] .penalty-mark title').first().textContent()).toBe('1 penalty');

    await page.screenshot({ path: 'test-artifacts/dashboard.png', fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('asks for a token when the API answers 401, then connects', async () => {
    const page = await browser.newPage();
    await page.goto(url);
    await page.getByTestId('login').waitFor({ state: 'visible' });
    expect(await page.getByTestId('updated').innerText()).toBe('token needed');
    await page.locator('#token').fill(TOKEN);
    await page.locator('#login button').click();
    await page.getByTestId('endpoint-tiktok.video').waitFor();
    await page.close();
  });
});
