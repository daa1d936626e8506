/**
 * The fleet's discovery and harvesting logic in real Chromium against the simulator, behind a
 * real throttler and real BullMQ workers: what is found, what is recorded, that every request
 * went through acquire, and how jobs go back to the queue (without spending an attempt) when the
 * throttle's wait is long or TikTok pushes back.
 */
import { Job, type Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Browser } from 'playwright';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { enqueueHarvesting } from '../jobs/producers.js';
import { createQueues, type SluiceQueues } from '../jobs/queues.js';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser, sandboxed } from '../workers/fleet/browser.js';
import { ContextPool, type Blank } from '../workers/fleet/pool.js';
import { discover, type FoundBatch } from '../workers/fleet/discovery.js';
import { assetHostsMatcher, penaltyKindOf, RequestGate, tiktokHosts, type Exchange, type PenaltyKind } from '../workers/fleet/gate.js';
import { harvest } from '../workers/fleet/harvesting.js';
import { createFleetWorker } from '../workers/fleet/runner.js';
import { Session } from '../workers/fleet/session.js';
import { parseFleetSettings, type FleetSettingsInput } from '../workers/fleet/settings.js';
import { ResultsStore } from '../workers/results/store.js';
import { startSimulator, type ApiRefusal, type Simulator } from '../workers/simulator/index.js';
import { tiktokUrls } from '../workers/tiktok/index.js';
import type { ThrottleEvent, Throttler } from '../src/index.js';
import { cleanup, logSink, makeThrottler, redisUrl, testNamespace, until } from './support/helpers.js';

const ENDPOINTS = ['tiktok.search', 'tiktok.hashtag', 'tiktok.creator', 'tiktok.video', 'tiktok.profile'];
const silent = pino({ level: 'silent' });

let browser: Browser;
let sim: Simulator;
let pool: ContextPool;

beforeAll(async () => {
  [browser, sim] = await Promise.all([launchBrowser(), startSimulator({ graph: { seed: 'fleet', creators: 16 } })]);
  pool = new ContextPool(browser, 2);
});

afterAll(async () => {
  await pool?.close();
  await browser?.close();
  await sim?.close();
});

interface Rig {
  namespace: string;
  /** The throttler's log lines (adaptive cuts are logged with their rates). */
  logs: Record<string, unknown>[];
  throttler: Throttler;
  events: ThrottleEvent[];
  exchanges: Exchange[];
  connection: Redis;
  queues: SluiceQueues;
  store: ResultsStore;
  workers: Worker[];
  /** Called with every exchange of the rig's workers (after it is recorded). */
  onExchange?: (e: Exchange) => void;
}

const rigs: Rig[] = [];

afterEach(async () => {
  for (const rig of rigs.splice(0)) {
    await Promise.all(rig.workers.map((w) => w.close()));
    await rig.store.clear();
    await rig.queues.discovery.obliterate({ force: true }).catch(() => undefined);
    await rig.queues.harvesting.obliterate({ force: true }).catch(() => undefined);
    await rig.queues.close();
    await rig.connection.quit();
  }
  await cleanup();
  sim.setLimits({ limits: { profile: null, creator: null, hashtag: null, search: null, video: null }, refill: true });
  sim.setRefusals({ api: 'http429', page: 'captcha' });
  sim.failNext('creator', 0);
});

function rig(rates: Partial<Record<string, string>> = {}, burst = 50, adaptive = false): Rig {
  const namespace = testNamespace('fleet');
  const endpoints = Object.fromEntries(ENDPOINTS.map((e) => [e, { rate: rates[e] ?? '100/s', burst: rates[e] ? 1 : burst, ...(adaptive ? { adaptive: { quietMs: 60_000 } } : {}) }]));
  const sink = logSink();
  const throttler = makeThrottler({ namespace, endpoints, logger: sink.logger });
  const events: ThrottleEvent[] = [];
  throttler.onEvent((e) => {
    if (e.type !== 'redis-call') events.push(e);
  });
  const connection = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  const r: Rig = {
    namespace,
    logs: sink.lines,
    throttler,
    events,
    exchanges: [],
    connection,
    queues: createQueues({ connection, namespace }),
    store: new ResultsStore(connection, namespace),
    workers: [],
  };
  rigs.push(r);
  return r;
}

function settings(extra: FleetSettingsInput = {}) {
  return parseFleetSettings({ maxWaitMs: 5_000, defaultPenaltyMs: 1_500, requestRetries: 1, ...extra });
}

function session(r: Rig, extra: { maxWaitMs?: number } = {}): Promise<Session> {
  return Session.open(pool, {
    throttler: r.throttler,
    baseUrl: sim.url,
    priority: 'normal',
    tenant: 'acme',
    maxWaitMs: extra.maxWaitMs ?? 5_000,
    defaultPenaltyMs: 1_500,
    requestTimeoutMs: 10_000,
    requestRetries: 1,
    onExchange: (e) => r.exchanges.push(e),
  });
}

function worker(r: Rig, kind: 'discovery' | 'harvesting', extra: FleetSettingsInput = {}, baseUrl = sim.url): Worker {
  const w = createFleetWorker({
    kind,
    connection: r.connection,
    namespace: r.namespace,
    browser,
    throttler: r.throttler,
    priorities: Object.keys(r.throttler.config.priorities),
    baseUrl,
    settings: settings(extra),
    queues: r.queues,
    store: r.store,
    logger: silent,
    onExchange: (e) => {
      r.exchanges.push(e);
      r.onExchange?.(e);
    },
  });
  r.workers.push(w);
  return w;
}


async function stateOf(queue: SluiceQueues['harvesting'] | SluiceQueues['discovery'], id: string): Promise<{ state: string; job: Job }> {
  // state first: a job read before it moves on would show the new state with the old fields
  const state = await queue.getJobState(id);
  const job = (await Job.fromId(queue, id)) as Job;
  return { state, job };
}

const sorted = (xs: Iterable<string>) => [...xs].sort();

const admitted = (r: Rig) => r.events.filter((e) => e.type === 'admitted').length;

describe('what the gate treats as TikTok', () => {
  it('every host of the base URL\'s domain, not its CDNs; the simulator by origin', () => {
    const tiktok = tiktokHosts('https://www.tiktok.com');
    for (const url of ['https://www.tiktok.com/@x', 'https://m.tiktok.com/api/user/detail/', 'https://tiktok.com/tag/a']) expect(tiktok(new URL(url)), url).toBe(true);
    for (const url of ['https://p16-sign.tiktokcdn.com/a.jpeg', 'https://nottiktok.com/x', 'https://www.tiktok.com.evil.io/x']) expect(tiktok(new URL(url)), url).toBe(false);
    const local = tiktokHosts('http://127.0.0.1:4010');
    expect(local(new URL('http://127.0.0.1:4010/@x'))).toBe(true);
    expect(local(new URL('http://127.0.0.1:4011/@x'))).toBe(false);
  });
});

describe('harvesting logic', () => {
  it('records every bio domain of public and private profiles; a missing account is final', async () => {
    const r = rig();
    const before = sim.stats().total;
    const g = sim.graph;
    const publicOne = g.creators.find((c) => !c.private && c.domains.length >= 2)!;
    const privateOne = g.creators.find((c) => c.private)!;
    const urls = tiktokUrls({ baseUrl: sim.url });
    const sessions: Session[] = [];
    for (const creator of [publicOne, privateOne]) {
      const s = await session(r);
      sessions.push(s);
      try {
        const result = await harvest({ handle: creator.handle, tenant: 'acme', priority: 'normal', source: { kind: 'manual', value: 'test' } }, { session: s, urls, store: r.store });
        expect(sorted(result.domains)).toEqual(sorted(creator.domains));
      } finally {
        s.close();
      }
      expect(sorted((await r.store.profile(creator.handle))!.domains)).toEqual(sorted(creator.domains));
    }
    const s = await session(r);
    sessions.push(s);
    await expect(harvest({ handle: g.missingHandles[0]!, tenant: 'acme', priority: 'normal', source: { kind: 'manual', value: 'test' } }, { session: s, urls, store: r.store })).rejects.toMatchObject({ name: 'FinalOutcomeError', code: 'TARGET_NOT_FOUND' });
    s.close();

    // every request the simulator saw went through acquire; nothing unmapped reached it (Chromium
    // asks for /favicon.ico outside the route a moment after a page loads: give it time to)
    await new Promise((res) => setTimeout(res, 2_000));
    const stats = sim.stats();
    const sent = sessions.reduce((n, x) => n + x.gate.counters.sent, 0);
    // the 3 pages, plus the pages' own API calls admitted before the job closed its context
    expect(stats.total - before).toBeGreaterThanOrEqual(3);
    expect(sent).toBeGreaterThanOrEqual(3);
    const detail = JSON.stringify({ sim: stats.total - before, sent, admitted: admitted(r), exchanges: r.exchanges.map((e) => `${e.resourceType} ${e.url}`) });
    expect(stats.total - before, detail).toBeLessThanOrEqual(admitted(r));
    expect(sent, detail).toBeLessThanOrEqual(admitted(r));
    expect(stats.unclassified).toBe(0);
    for (const e of r.events.filter((x) => x.type === 'admitted')) expect(e).toMatchObject({ tenant: 'acme', priority: 'normal' });
  });
});

describe('contexts used again', () => {
  it('the next job gets the same context with nothing of the last one: no cookie, no storage; between jobs nothing reaches TikTok', async () => {
    const r = rig();
    const reused = new ContextPool(browser, 1);
    const creator = sim.graph.creators[0]!;
    const options = { throttler: r.throttler, baseUrl: sim.url, priority: 'normal', tenant: 'acme', maxWaitMs: 5_000, defaultPenaltyMs: 1_000, requestTimeoutMs: 10_000 };
    try {
      const first = await reused.take();
      const gate = await RequestGate.attach(first.context, options);
      await first.page.goto(`${sim.url}/@${creator.handle}`, { waitUntil: 'domcontentloaded' });
      await first.page.evaluate(() => {
        document.cookie = 'left=behind; max-age=3600';
        localStorage.setItem('left', 'behind');
        sessionStorage.setItem('left', 'behind');
      });
      gate.close();
      // the job is over and the page is still there: what it asks for now is aborted
      const before = sim.stats().total;
      const late = await first.page.evaluate(async (url) => fetch(url).then(() => 'sent', () => 'aborted'), `${sim.url}/api/user/detail/?uniqueId=${creator.handle}`);
      expect(late).toBe('aborted');
      expect(sim.stats().total).toBe(before);
      reused.release(first.context, gate.origins());

      const second = await reused.take();
      expect(second.context).toBe(first.context);
      const next = await RequestGate.attach(second.context, options);
      await second.page.goto(`${sim.url}/@${creator.handle}`, { waitUntil: 'domcontentloaded' });
      const left = await second.page.evaluate(() => [document.cookie, localStorage.getItem('left'), sessionStorage.getItem('left')]);
      expect(left).toEqual(['', null, null]);
      expect(await second.context.cookies()).toEqual([]);
      // and the new job's requests go through its own gate
      expect(next.counters.sent).toBeGreaterThanOrEqual(1);
      next.close();
      reused.release(second.context, next.origins());
    } finally {
      await reused.close();
    }
  });
});

describe("a page's own API call that comes after the job fetched the same page itself", () => {
  /**
   * Holds the first `/api/user/detail` fetch of each page (the page's own script) until the test
   * releases it: pageApi finds no call of the page by `load`, fetches the fallback itself, and
   * only then does the page's call reach the gate.
   */
  class LatePagePool extends ContextPool {
    last: Blank | undefined;
    override async take(): Promise<Blank> {
      const blank = await super.take();
      await blank.context.addInitScript(() => {
        const w = window as unknown as { __release?: () => void };
        const real = window.fetch.bind(window);
        const held = new Promise<void>((resolve) => (w.__release = resolve));
        let first = true;
        window.fetch = (input, init) => {
          if (first && String(input).includes('/api/user/detail')) {
            first = false;
            return held.then(() => real(input, init));
          }
          return real(input, init);
        };
      });
      this.last = blank;
      return blank;
    }
  }

  it('TikTok sees the page once: the late call is answered with the fallback\'s response', async () => {
    const r = rig();
    const late = new LatePagePool(browser, 0);
    const creator = sim.graph.creators.find((c) => !c.private)!;
    const urls = tiktokUrls({ baseUrl: sim.url });
    const s = await Session.open(late, { throttler: r.throttler, baseUrl: sim.url, priority: 'normal', tenant: 'acme', maxWaitMs: 5_000, defaultPenaltyMs: 1_500, requestTimeoutMs: 10_000, requestRetries: 1 });
    try {
      sim.resetStats();
      await s.openPage(urls.profile(creator.handle));
      const api = await s.pageApi((url) => url.pathname.startsWith('/api/user/detail'), urls.userDetailApi({ uniqueId: creator.handle }));
      expect(api.body).toContain(creator.secUid);
      // the fallback went out on its own: the page's call was still held
      expect(s.gate.exchanges.filter((e) => e.url.includes('/api/user/detail'))).toHaveLength(1);
      const page = late.last!.page;
      await page.evaluate(() => (window as unknown as { __release: () => void }).__release());
      // the page's script sets this once its call is answered
      await page.waitForFunction(() => document.body.dataset.api !== undefined, undefined, { timeout: 10_000 });
      const stats = sim.stats();
      expect(stats.endpoints.profile.requests, stats.repeatedUrls.join(' ')).toBe(2);
      expect(stats.repeats, stats.repeatedUrls.join(' ')).toBe(0);
    } finally {
      s.close();
      await late.close();
    }
  });
});

describe('discovery logic', () => {
  const run = async (r: Rig, seed: { kind: 'hashtag' | 'keyword' | 'creator' | 'video'; value: string }) => {
    const found = new Set<string>();
    const s = await session(r);
    try {
      const result = await discover({ seed, tenant: 'acme', priority: 'normal' } as never, {
        session: s,
        urls: tiktokUrls({ baseUrl: sim.url }),
        sink: async (b: FoundBatch) => b.handles.forEach((h) => found.add(h)),
        defaultMaxProfiles: 1000,
        followMentions: true,
      });
      return { result, found };
    } finally {
      s.close();
    }
  };
  const fromVideos = (ids: readonly string[]) => {
    const out = new Set<string>();
    for (const id of ids) {
      const v = sim.graph.video(id)!;
      out.add(v.author);
      v.mentions.forEach((m) => out.add(m));
    }
    return out;
  };

  it('hashtag, keyword, creator and video seeds lead to the authors, users and mentions they show', async () => {
    const r = rig();
    const g = sim.graph;
    const tag = [...g.hashtags].sort((a, b) => b.videoIds.length - a.videoIds.length)[0]!;
    const hashtag = await run(r, { kind: 'hashtag', value: tag.name });
    expect(sorted(hashtag.found)).toEqual(sorted(fromVideos(tag.videoIds)));

    const keyword = g.keywords[0]!;
    const byKeyword = await run(r, { kind: 'keyword', value: keyword });
    const expected = fromVideos(g.searchVideos(keyword).map((v) => v.id));
    g.searchUsers(keyword).forEach((c) => expected.add(c.handle));
    expect(sorted(byKeyword.found)).toEqual(sorted(expected));

    const creator = g.creators.find((c) => !c.private && c.videoIds.length >= 2)!;
    const byCreator = await run(r, { kind: 'creator', value: creator.handle });
    expect(sorted(byCreator.found)).toEqual(sorted(fromVideos(creator.videoIds).add(creator.handle)));

    const video = g.videos.find((v) => v.mentions.length > 0 && !g.creator(v.author)!.private)!;
    const byVideo = await run(r, { kind: 'video', value: video.id });
    expect(sorted(byVideo.found)).toEqual(sorted(fromVideos([video.id])));

    const privateCreator = g.creators.find((c) => c.private)!;
    const byPrivate = await run(r, { kind: 'creator', value: privateCreator.handle });
    expect(byPrivate.result.outcome).toBe('private');
    expect([...byPrivate.found]).toEqual([privateCreator.handle]);
  });

  it('a discovery job enqueues a harvesting job per handle found, with its tenant, priority and seed as source', async () => {
    const r = rig();
    worker(r, 'discovery');
    const tag = sim.graph.hashtags[0]!;
    const job = await r.queues.discovery.add('discovery', { seed: { kind: 'hashtag', value: tag.name }, tenant: 'acme', priority: 'high' });
    await until('discovery job done', async () => (await job.getState()) === 'completed');
    const harvests = await r.queues.harvesting.getJobs(['waiting', 'prioritized', 'delayed']);
    expect(sorted(harvests.map((j) => j.data.handle as string))).toEqual(sorted(fromVideos(tag.videoIds)));
    for (const h of harvests) expect(h.data).toMatchObject({ tenant: 'acme', priority: 'high', source: { kind: 'hashtag', value: tag.name } });
  });
});

describe('every blocking signal reaches penalize with its kind (tiktok-web-shapes.md §4a)', () => {
  // A creator job: its profile page is served, its first item_list call meets the signal. The
  // endpoint is adaptive, so the penalty also cuts its rate; the job goes back to the queue
  // without spending an attempt, and its next attempt reads the list without the profile page.
  // (429 with Retry-After: 'an API 429 penalizes with its Retry-After' below.) The hidden bucket
  // is empty and never refills until the test lifts the limit: no race with a refill.
  const cases: Array<{ name: string; refusal?: ApiRefusal; fail?: number; kind: PenaltyKind; detail: RegExp; retryAfterMs?: number }> = [
    { name: '429 without Retry-After (the fleet\'s default pause)', refusal: 'http429-bare', kind: 'rate-limited', detail: /http-429/, retryAfterMs: 1_500 },
    { name: 'verify (captcha) JSON', refusal: 'verify', kind: 'captcha', detail: /verify-json/, retryAfterMs: 1_500 },
    { name: 'WAF challenge page', refusal: 'waf', kind: 'waf', detail: /waf-challenge/, retryAfterMs: 1_500 },
    { name: 'soft block: 200 with an empty body', refusal: 'empty', kind: 'empty', detail: /empty-body/, retryAfterMs: 1_500 },
    { name: 'soft block: 200 with an empty list', refusal: 'empty-list', kind: 'empty', detail: /empty-list/, retryAfterMs: 1_500 },
    { name: 'soft block: 200 with a block status code', refusal: 'block-status', kind: 'empty', detail: /status--1/, retryAfterMs: 1_500 },
    { name: 'a burst of 5xx (3 in a row, each retried)', fail: 3, kind: 'server-error', detail: /3 5xx/, retryAfterMs: 1_500 },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const r = rig({}, 50, true);
      worker(r, 'discovery', { requestRetries: 2 });
      if (c.refusal) {
        sim.setRefusals({ api: c.refusal });
        sim.setLimits({ limits: { creator: { ratePerSec: 0, burst: 1 } }, empty: true });
      }
      if (c.fail) sim.failNext('creator', c.fail);
      // the simulator is shared: count this test's requests only
      sim.resetStats();
      const creator = sim.graph.creators.find((x) => !x.private && x.videoIds.length > 0)!;
      const job = await r.queues.discovery.add('discovery', { seed: { kind: 'creator', value: creator.handle }, tenant: 'acme', priority: 'normal' });
      const deferred = await until('job deferred', async () => {
        const s = await stateOf(r.queues.discovery, job.id!);
        return s.state === 'delayed' ? s.job : undefined;
      });
      expect(deferred.attemptsMade).toBe(0);
      expect(deferred.data.resume).toMatchObject({ list: 'items', cursor: '0', secUid: creator.secUid });
      const penalties = r.events.filter((e) => e.type === 'penalized');
      expect(penalties).toHaveLength(1);
      const penalty = penalties[0] as Extract<ThrottleEvent, { type: 'penalized' }>;
      expect(penalty.endpoint).toBe('tiktok.creator');
      expect(penaltyKindOf(penalty.reason)).toBe(c.kind);
      expect(penalty.reason).toMatch(c.detail);
      if (c.retryAfterMs !== undefined) expect(penalty.retryAfterMs).toBe(c.retryAfterMs);
      // adaptive: the rate that met the signal is cut (0.5 x 100/s); read from the log, as the
      // bucket's hash (and the learned rate in it) expires once the paused endpoint is idle
      expect(r.logs.filter((l) => l.msg === 'adaptive rate cut')).toEqual([expect.objectContaining({ endpoint: 'tiktok.creator', fromPerSec: expect.closeTo(100), toPerSec: expect.closeTo(50) })]);
      sim.setLimits({ limits: { creator: null } });
      const done = await until('job completed', async () => {
        const s = await stateOf(r.queues.discovery, job.id!);
        return s.state === 'completed' ? s.job : undefined;
      });
      expect(done.attemptsMade).toBe(1);
      // the profile page (and its own API call) was fetched once: the second attempt did not come
      // back for it, and no list page was read twice
      const after = sim.stats();
      expect(after.endpoints.profile.served).toBeLessThanOrEqual(2);
      expect(after.repeats, after.repeatedUrls.join(' ')).toBe(0);
    }, 60_000);
  }

  it('a single 5xx is only retried: no penalty', async () => {
    const r = rig({}, 50, true);
    worker(r, 'discovery', { requestRetries: 2 });
    sim.failNext('creator', 1);
    const creator = sim.graph.creators.find((x) => !x.private && x.videoIds.length > 0)!;
    const job = await r.queues.discovery.add('discovery', { seed: { kind: 'creator', value: creator.handle }, tenant: 'acme', priority: 'normal' });
    await until('job completed', async () => (await job.getState()) === 'completed');
    expect(r.events.filter((e) => e.type === 'penalized')).toHaveLength(0);
    expect(r.exchanges.filter((e) => e.status === 503)).toHaveLength(1);
  }, 60_000);
});

describe('jobs behind the throttle', () => {
  it('a long expected wait sends the job back to the queue without spending an attempt; other endpoints keep going', async () => {
    const r = rig({ 'tiktok.profile': '1/min' });
    await r.throttler.acquire('tiktok.profile'); // the only token: the next profile request waits about a minute
    const before = sim.stats().endpoints;
    worker(r, 'discovery', { maxWaitMs: 1_000 });
    const creator = sim.graph.creators.find((c) => !c.private)!;
    const blocked = await r.queues.discovery.add('discovery', { seed: { kind: 'creator', value: creator.handle }, tenant: 'acme', priority: 'normal' });
    const other = await r.queues.discovery.add('discovery', { seed: { kind: 'hashtag', value: sim.graph.hashtags[0]!.name }, tenant: 'acme', priority: 'normal' });
    await until('hashtag job done', async () => (await other.getState()) === 'completed');
    const { state, job } = await until('creator job delayed', async () => {
      const s = await stateOf(r.queues.discovery, blocked.id!);
      return s.state === 'delayed' ? s : undefined;
    });
    expect(state).toBe('delayed');
    expect(job.attemptsMade).toBe(0);
    // delayed by about the throttle's expected wait (a minute for one token), not a fixed backoff
    expect(job.delay).toBeGreaterThan(30_000);
    expect(sim.stats().endpoints.profile.requests).toBe(before.profile.requests);
    const timeouts = r.events.filter((e) => e.type === 'refused' && e.reason === 'timeout');
    expect(timeouts.length).toBeGreaterThanOrEqual(1);
  });

  it('a captcha page penalizes the endpoint fleet-wide and the job is retried after the pause', async () => {
    const r = rig();
    worker(r, 'harvesting');
    // empty and never refilled until lifted below: the job's page is refused however slow the
    // machine is to get there (no race with a refill)
    sim.setLimits({ limits: { profile: { ratePerSec: 0, burst: 1 } }, empty: true });
    const creator = sim.graph.creators.find((c) => !c.private)!;
    const job = await r.queues.harvesting.add('harvesting', { handle: creator.handle, tenant: 'acme', priority: 'normal', source: { kind: 'manual', value: 't' } });
    const deferred = await until('job deferred', async () => {
      const s = await stateOf(r.queues.harvesting, job.id!);
      return s.state === 'delayed' ? s.job : undefined;
    });
    expect(deferred.attemptsMade).toBe(0);
    // (read from the throttler's events: inspect's counters live in the bucket hash, which expires
    // soon after the pause on an idle endpoint)
    const penalty = r.events.find((e) => e.type === 'penalized');
    expect(penalty).toMatchObject({ endpoint: 'tiktok.profile', retryAfterMs: 1_500 });
    expect(penaltyKindOf((penalty as { reason?: string }).reason)).toBe('captcha');
    expect(sim.stats().endpoints.profile.refusals.captcha).toBeGreaterThanOrEqual(1);
    sim.setLimits({ limits: { profile: null } });

    const done = await until('job completed', async () => {
      const s = await stateOf(r.queues.harvesting, job.id!);
      return s.state === 'completed' ? s.job : undefined;
    });
    expect(done.attemptsMade).toBe(1); // the finishing attempt only: the deferral spent none
    expect(sorted((await r.store.profile(creator.handle))!.domains)).toEqual(sorted(creator.domains));
  });

  it('an API 429 penalizes with its Retry-After (in ms, rounded up) and the job completes later', async () => {
    const r = rig();
    worker(r, 'discovery');
    // emptied once the profile page is in, not before: a slow machine's browser start cannot give
    // the bucket time to refill before the list call
    r.onExchange = (e) => {
      if (e.endpoint === 'tiktok.profile' && e.resourceType === 'document') sim.setLimits({ limits: { creator: { ratePerSec: 0.2, burst: 1 } }, empty: true });
    };
    const creator = sim.graph.creators.find((c) => !c.private && c.videoIds.length > 0)!;
    const job = await r.queues.discovery.add('discovery', { seed: { kind: 'creator', value: creator.handle }, tenant: 'acme', priority: 'normal' });
    await until('job deferred', async () => (await stateOf(r.queues.discovery, job.id!)).state === 'delayed');
    const done = await until('job completed', async () => {
      const s = await stateOf(r.queues.discovery, job.id!);
      return s.state === 'completed' ? s.job : undefined;
    });
    expect(done.attemptsMade).toBe(1);
    const penalty = r.events.find((e) => e.type === 'penalized') as { retryAfterMs: number; reason: string };
    const refused = r.exchanges.find((e) => e.status === 429)!;
    // Retry-After is whole seconds: the pause is exactly that many ms
    expect(refused.classification.retryAfterMs).toBeGreaterThanOrEqual(1_000);
    expect(penalty).toMatchObject({ endpoint: 'tiktok.creator', retryAfterMs: refused.classification.retryAfterMs });
    expect(penalty.reason).toMatch(/rate-limited/);
    expect(sim.stats().endpoints.creator.refusals.http429).toBeGreaterThanOrEqual(1);
  });

  it('a job deferred halfway through a list goes on from the page it reached, not from the first', async () => {
    // a bigger graph: a hashtag with three pages of 30 items
    const big = await startSimulator({ graph: { seed: 'resume', creators: 120 } });
    try {
      const tag = [...big.graph.hashtags].sort((a, b) => b.videoIds.length - a.videoIds.length)[0]!;
      expect(tag.videoIds.length).toBeGreaterThan(60);
      const r = rig();
      // the hidden limit lets the page, its own first list call and page 2 through, then refuses page 3
      big.setLimits({ limits: { hashtag: { ratePerSec: 0.1, burst: 3 } }, refill: true });
      worker(r, 'discovery', {}, big.url);
      const job = await r.queues.discovery.add('discovery', { seed: { kind: 'hashtag', value: tag.name }, tenant: 'acme', priority: 'normal' });
      const deferred = await until('job deferred', async () => {
        const s = await stateOf(r.queues.discovery, job.id!);
        return s.state === 'delayed' ? s.job : undefined;
      });
      big.setLimits({ limits: { hashtag: null } });
      expect(deferred.attemptsMade).toBe(0);
      expect(deferred.data.resume).toMatchObject({ list: 'items', cursor: '60' });
      expect(deferred.data.resume.found).toBeGreaterThan(0);
      const done = await until('job completed', async () => {
        const s = await stateOf(r.queues.discovery, job.id!);
        return s.state === 'completed' ? s.job : undefined;
      });
      expect(done.attemptsMade).toBe(1);
      const listed = (cursor: string) =>
        r.exchanges.filter((e) => e.url.includes('/api/challenge/item_list/') && new URL(e.url).searchParams.get('cursor') === cursor).length;
      // the second attempt read neither the hashtag's page, nor list page 1, nor page 2 again: it
      // put its browser page on the origin without a request and went on from its cursor
      expect(listed('0')).toBe(1);
      expect(listed('30')).toBe(1);
      expect(listed('60')).toBe(2); // refused, then read
      expect(r.exchanges.filter((e) => e.resourceType === 'document')).toHaveLength(1);
      expect(deferred.data.resume.challengeId).toBe(tag.id);
      expect(big.stats().repeats, big.stats().repeatedUrls.join(' ')).toBe(0);
      // everything the hashtag leads to was found across the two attempts
      const fromBig = new Set<string>();
      for (const id of tag.videoIds) {
        const v = big.graph.video(id)!;
        fromBig.add(v.author);
        v.mentions.forEach((m) => fromBig.add(m));
      }
      const harvests = await r.queues.harvesting.getJobs(['waiting', 'prioritized', 'delayed']);
      expect(new Set(harvests.map((j) => j.data.handle as string))).toEqual(fromBig);
    } finally {
      await big.close();
    }
  }, 60_000);

  it('following creators: the harvesting job reads the profile once and hands the list on; no page is fetched twice', async () => {
    const r = rig();
    worker(r, 'harvesting');
    worker(r, 'discovery', { follow: { mentions: true, hashtags: false, creators: true } });
    sim.resetStats();
    const creator = sim.graph.creators.find((c) => !c.private && c.videoIds.length > 0)!;
    // through the producer, as discovery enqueues it: the creator's own list names it again, a duplicate
    await enqueueHarvesting(r.queues.harvesting, { handle: creator.handle, tenant: 'acme', priority: 'normal', source: { kind: 'manual', value: 't' }, followCreator: true });
    const listing = await until('creator list job done', async () => {
      const jobs = await r.queues.discovery.getJobs(['completed']);
      return jobs.find((j) => j.data.seed.kind === 'creator' && j.data.seed.value === creator.handle);
    });
    // it started from the secUid the profile page gave, and its own finds are followed the same way
    expect(listing.data.resume).toMatchObject({ list: 'items', cursor: '0', secUid: creator.secUid });
    expect(listing.attemptsMade).toBe(1);
    const pages = r.exchanges.filter((e) => e.resourceType === 'document' && e.url.endsWith(`/@${creator.handle}`));
    expect(pages).toHaveLength(1);
    expect(r.exchanges.some((e) => e.url.includes('/api/post/item_list/') && e.url.includes(encodeURIComponent(creator.secUid)))).toBe(true);
    await until('queues idle', async () => {
      const c = await Promise.all([r.queues.discovery.getJobCounts('waiting', 'active', 'delayed', 'prioritized'), r.queues.harvesting.getJobCounts('waiting', 'active', 'delayed', 'prioritized')]);
      return c.every((x) => Object.values(x).every((n) => n === 0));
    }, 60_000);
    expect(sorted((await r.store.profile(creator.handle))!.domains)).toEqual(sorted(creator.domains));
    const stats = sim.stats();
    expect(stats.repeats, stats.repeatedUrls.join(' ')).toBe(0);
  }, 90_000);

  it('an invalid payload fails as unrecoverable and the worker keeps running', async () => {
    const r = rig();
    worker(r, 'harvesting');
    const bad = await r.queues.harvesting.add('harvesting', { handle: 'not a handle!', tenant: 'acme', priority: 'normal' } as never, { attempts: 5 });
    const unknownPriority = await r.queues.harvesting.add('harvesting', { handle: 'abc', tenant: 'acme', priority: 'urgent', source: { kind: 'manual', value: 't' } }, { attempts: 5 });
    const creator = sim.graph.creators.find((c) => !c.private)!;
    const good = await r.queues.harvesting.add('harvesting', { handle: creator.handle, tenant: 'acme', priority: 'normal', source: { kind: 'manual', value: 't' } });
    for (const id of [bad.id!, unknownPriority.id!]) {
      const { job } = await until('job failed', async () => {
        const s = await stateOf(r.queues.harvesting, id);
        return s.state === 'failed' ? s : undefined;
      });
      expect(job.attemptsMade).toBe(1); // no retry of the 5 allowed
      expect(job.failedReason).toMatch(/invalid harvesting job/);
    }
    await until('good job completed', async () => (await good.getState()) === 'completed');
    expect(r.workers[0]!.isRunning()).toBe(true);
  });
});

describe('the browser reaches nothing but TikTok', () => {
  async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; port: number }> {
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, port: (server.address() as AddressInfo).port };
  }

  it('aborts and logs what a TikTok page asks of other hosts: another loopback port (img, fetch), localhost, a private address, a WebSocket', async () => {
    // what a hostile page could aim at: the machine's own services
    const hits: string[] = [];
    const other = await listen((req, res) => {
      hits.push(req.url ?? '');
      res.end('secret');
    });
    const o = other.port;
    const targets = [`http://127.0.0.1:${o}/img`, `http://localhost:${o}/img2`, `http://127.0.0.1:${o}/fetch`, 'http://10.255.255.1/internal'];
    // "TikTok": a profile page whose markup and script reach elsewhere
    const tiktok = await listen((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(
        `<html><head></head><body><h1>profile</h1><img src="${targets[0]}"><img src="${targets[1]}"><img src="${targets[3]}">` +
          `<script>fetch(${JSON.stringify(targets[2])}).catch(() => {}); new WebSocket('ws://127.0.0.1:${o}/ws');</script></body></html>`,
      );
    });
    const r = rig();
    const { logger, lines } = logSink();
    const context = await browser.newContext({ serviceWorkers: 'block' });
    try {
      const baseUrl = `http://127.0.0.1:${tiktok.port}`;
      const gate = await RequestGate.attach(context, {
        throttler: r.throttler, baseUrl, priority: 'normal', tenant: 'acme', maxWaitMs: 5_000, defaultPenaltyMs: 1_000, requestTimeoutMs: 10_000, logger,
      });
      const page = await context.newPage();
      // every request to another host ends one way or the other: wait for all of them
      const outcomes = new Map<string, string>();
      const settled = new Promise<void>((resolve) => {
        const note = (url: string, outcome: string) => {
          if (targets.includes(url)) outcomes.set(url, outcome);
          if (outcomes.size === targets.length) resolve();
        };
        page.on('requestfailed', (req) => note(req.url(), req.failure()?.errorText ?? 'failed'));
        page.on('requestfinished', (req) => note(req.url(), 'finished'));
      });
      const response = await page.goto(`${baseUrl}/@someone`, { waitUntil: 'domcontentloaded' });
      expect(response?.status()).toBe(200);
      await settled;
      expect(Object.fromEntries(outcomes)).toEqual(Object.fromEntries(targets.map((t) => [t, expect.stringMatching(/^net::ERR_BLOCKED_BY_CLIENT/)])));
      // the WebSocket is refused by the gate's WebSocket route (the page sees no request event for it)
      await until('websocket refused', async () => gate.counters.offsite === targets.length + 1);
      expect(hits).toEqual([]);
      // the profile page itself went through the throttle
      expect(gate.counters.sent).toBe(1);
      const warned = lines.filter((l) => l.msg === 'request outside TikTok aborted' && l.level === 40).map((l) => new URL(l.url as string).origin);
      expect(new Set(warned)).toEqual(new Set([`http://127.0.0.1:${o}`, `http://localhost:${o}`, 'http://10.255.255.1', `ws://127.0.0.1:${o}`]));
    } finally {
      await context.close();
      other.server.close();
      tiktok.server.close();
    }
  });

  it('asset hosts: https subdomains of the listed domains only; the settings refuse IPs and localhost', () => {
    const isAsset = assetHostsMatcher(['tiktokcdn.com']);
    expect(isAsset(new URL('https://p16-sign.tiktokcdn.com/a.js'))).toBe(true);
    expect(isAsset(new URL('https://tiktokcdn.com/a.js'))).toBe(true);
    expect(isAsset(new URL('http://p16.tiktokcdn.com/a.js'))).toBe(false);
    expect(isAsset(new URL('https://eviltiktokcdn.com/a.js'))).toBe(false);
    expect(isAsset(new URL('https://tiktokcdn.com.evil.io/a.js'))).toBe(false);
    expect(parseFleetSettings({}).assetHosts).toContain('tiktokcdn.com');
    for (const bad of ['127.0.0.1', 'localhost', 'https://tiktokcdn.com', '10.0.0.1']) {
      expect(() => parseFleetSettings({ assetHosts: [bad] }), bad).toThrow(/assetHosts\.0: must be a lowercase domain name/);
    }
  });

  it("Chromium's sandbox is on whenever the process is not root (seccomp-bpf in its renderers)", async () => {
    expect(sandboxed(0)).toBe(false);
    expect(sandboxed(1000)).toBe(true);
    // as root here, launch as an unprivileged user, the way the image runs (as `node`)
    const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const home = mkdtempSync(join(tmpdir(), 'sluice-sandbox-'));
    try {
      if (asUser.uid !== undefined) chownSync(home, asUser.uid, asUser.gid);
      const root = fileURLToPath(new URL('..', import.meta.url));
      const out = await new Promise<string>((resolve, reject) => {
        execFile(process.execPath, ['--import', 'tsx', 'test/fixtures/browser/sandbox-probe.ts'], { cwd: root, env: { ...process.env, HOME: home }, ...asUser, timeout: 150_000 }, (err, stdout, stderr) => {
          if (err) reject(new Error(`probe failed: ${err.message}\n${stderr}`));
          else resolve(stdout);
        });
      });
      const probe = JSON.parse(out.trim().split('\n').at(-1)!) as { uid: number; processes: { type: string; seccomp: string; noSandbox: boolean }[] };
      expect(probe.uid).not.toBe(0);
      expect(probe.processes.filter((p) => p.noSandbox)).toEqual([]);
      // renderers are forked from the zygote: with the sandbox, they run under seccomp-bpf (mode 2)
      expect(probe.processes.filter((p) => p.seccomp === '2').length).toBeGreaterThan(0);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  }, 180_000);
});
