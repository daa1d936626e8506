/**
 * The example Inngest function with the harvesting worker's code path: real Chromium against the
 * simulator, a real throttler in Redis, the Inngest server played by `runToEnd`, and the function
 * served by the admin server at /api/inngest.
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAdminServer } from '../src/admin/server.js';
import { adminCommand } from '../workers/cli/commands/admin.js';
import { parseFleetSettings } from '../workers/fleet/settings.js';
import { startInngestHarvester, type InngestHarvester } from '../workers/fleet/inngest-harvest.js';
import type { HarvestResult } from '../workers/fleet/harvesting.js';
import { createHarvestApp, HARVEST_EVENT } from '../workers/inngest/harvest-app.js';
import { ResultsStore } from '../workers/results/store.js';
import { startSimulator, type Simulator } from '../workers/simulator/index.js';
import { tiktokUrls, TIKTOK_ENDPOINTS } from '../workers/tiktok/index.js';
import { InvalidConfigError, type Throttler } from '../src/index.js';
import { cleanup, makeThrottler, redisUrl, testNamespace } from './support/helpers.js';
import { runToEnd, sleepNameMs } from './support/inngest-server.js';

const silent = pino({ level: 'silent' });
const sorted = (a: readonly string[]) => [...a].sort();

let sim: Simulator;
let redis: Redis;
let harvester: InngestHarvester | undefined;

beforeAll(async () => {
  // pages without their own inline API call: every request is one the harvest asked for, so the
  // token count is exact (an inline call cut short when the harvest ends is admitted, never sent)
  sim = await startSimulator({ graph: { seed: 'inngest', creators: 12 }, pageScripts: false });
  redis = new Redis(redisUrl());
});

afterEach(async () => {
  await harvester?.close();
  harvester = undefined;
  await cleanup();
  sim.setLimits({ limits: { profile: null }, refill: true });
  sim.failNext('profile', 0);
  sim.resetStats();
});

afterAll(async () => {
  await sim?.close();
  await redis?.quit();
});

interface Rig {
  throttler: Throttler;
  store: ResultsStore;
  harvester: InngestHarvester;
  /** Admissions the throttler reported, per endpoint, with their class. */
  admitted: { endpoint: string; priority: string; tenant: string }[];
  /** Endpoints penalized through the throttler. */
  penalized: string[];
}

async function rig(): Promise<Rig> {
  const namespace = testNamespace('inngest-harvest');
  const throttler = makeThrottler({
    namespace,
    endpoints: Object.fromEntries(TIKTOK_ENDPOINTS.map((e) => [e, { rate: '50/s', burst: 5 }])),
    priorities: { high: 3, normal: 2, low: 1 },
    defaultPriority: 'normal',
  });
  const admitted: Rig['admitted'] = [];
  const penalized: string[] = [];
  throttler.onEvent((e) => {
    if (e.type === 'admitted') admitted.push({ endpoint: e.endpoint, priority: e.priority, tenant: e.tenant });
    if (e.type === 'penalized') penalized.push(e.endpoint);
  });
  const store = new ResultsStore(redis, namespace);
  harvester = await startInngestHarvester({
    throttler,
    store,
    baseUrl: sim.url,
    settings: parseFleetSettings({ concurrency: 1, defaultPenaltyMs: 1000, requestTimeoutMs: 15_000 }),
    logger: silent,
    client: { isDev: true },
  });
  return { throttler, store, harvester, admitted, penalized };
}

/** A public creator whose bio carries at least two domains. */
function publicCreator() {
  return sim.graph.creators.find((c) => !c.private && c.domains.length >= 2)!;
}

describe('the example function harvests through the worker code path', () => {
  it('in Chromium, with the event class, recording the domains; the step token is spent on the page, never taken twice', async () => {
    const r = await rig();
    const creator = publicCreator();
    const run = await runToEnd(r.harvester.app.harvestProfile, { name: HARVEST_EVENT, data: { handle: `@${creator.handle}`, priority: 'high', tenant: 'acme' } });

    expect(run.error).toBeUndefined();
    const result = run.result as HarvestResult;
    expect(result.handle).toBe(creator.handle);
    expect(sorted(result.domains)).toEqual(sorted(creator.domains));
    expect(sorted((await r.store.profile(creator.handle))!.domains)).toEqual(sorted(creator.domains));

    // one token per request TikTok saw: the middleware's for the page, none taken again by the gate
    const profileRequests = sim.stats().endpoints.profile.requests;
    expect(profileRequests).toBeGreaterThan(0);
    expect(r.admitted.filter((a) => a.endpoint === 'tiktok.profile')).toHaveLength(profileRequests);
    expect(r.admitted.length).toBe(sim.stats().total);
    expect(new Set(r.admitted.map((a) => `${a.priority}/${a.tenant}`))).toEqual(new Set(['high/acme']));
  }, 60_000);

  it('a pushback penalizes the endpoint and defers the step with a durable sleep; the run then completes', async () => {
    const r = await rig();
    const creator = publicCreator();
    // the hidden bucket holds one token, refilled in 2 s: spend it, so the function's page is refused
    sim.setLimits({ limits: { profile: { ratePerSec: 0.5, burst: 1 } }, refill: true });
    expect((await fetch(tiktokUrls({ baseUrl: sim.url }).profile(creator.handle))).status).toBe(200);

    const run = await runToEnd(r.harvester.app.harvestProfile, { name: HARVEST_EVENT, data: { handle: creator.handle } });

    expect(run.error).toBeUndefined();
    expect(sorted((run.result as HarvestResult).domains)).toEqual(sorted(creator.domains));
    // the page, refused once, then served
    const { violations } = sim.stats().endpoints.profile;
    expect(violations).toBe(1);
    const sleeps = run.ops.filter((o) => o.op === 'Sleep');
    expect(sleeps.length).toBeGreaterThanOrEqual(1);
    // Inngest names a sleep op by its duration: whole seconds, the pause rounded up
    for (const s of sleeps) expect(sleepNameMs(s.name!)).toBeGreaterThanOrEqual(1000);
    // the deferred step returned its marker (no failed attempt), then the retry step ran
    expect(run.ops.filter((o) => o.error !== undefined)).toEqual([]);
    expect(run.ops.filter((o) => o.op === 'StepRun' && (o.data as { reason?: string } | undefined)?.reason === 'penalized').map((o) => (o.data as { endpoint: string }).endpoint)).toEqual(sleeps.map(() => 'tiktok.profile'));
    expect(r.penalized).toEqual(['tiktok.profile']);
  }, 60_000);

  it('a retried request takes its own token through ctx.throttle, from the gate, with the run\'s class', async () => {
    const r = await rig();
    const creator = publicCreator();
    // the page answers 503 once: the session retries it, as the worker does, with a new token
    sim.failNext('profile', 1);
    const run = await runToEnd(r.harvester.app.harvestProfile, { name: HARVEST_EVENT, data: { handle: creator.handle, priority: 'low', tenant: 'globex' } });
    expect(run.error).toBeUndefined();
    expect(sorted((run.result as HarvestResult).domains)).toEqual(sorted(creator.domains));
    expect(sim.stats().endpoints.profile).toMatchObject({ requests: 2, serverErrors: 1, served: 1 });
    // the middleware's token for the first try, ctx.throttle's (called from Playwright's route
    // callback, outside the step's async context) for the retry; a missing step context would
    // have refused it instead
    expect(r.admitted).toEqual([
      { endpoint: 'tiktok.profile', priority: 'low', tenant: 'globex' },
      { endpoint: 'tiktok.profile', priority: 'low', tenant: 'globex' },
    ]);
  }, 60_000);

  it('an account that does not exist fails the run once, as the worker fails the job for good', async () => {
    const r = await rig();
    const run = await runToEnd(r.harvester.app.harvestProfile, { name: HARVEST_EVENT, data: { handle: sim.graph.missingHandles[0]! } });
    expect(run.error?.message).toMatch(/account not found/);
    expect(run.error?.name).toBe('NonRetriableError');
  }, 60_000);
});

describe('/api/inngest on the admin server', () => {
  it('serves the functions without the bearer token, which still guards the rest of /api', async () => {
    const throttler = makeThrottler({ endpoints: { 'tiktok.profile': { rate: '1/s' } } });
    const app = createHarvestApp({ throttler, client: { isDev: true, logger: silent }, harvestProfile: async (handle) => handle });
    const server = createAdminServer({ throttler, token: 'secret-token', inngest: app, logger: silent });
    try {
      const introspection = await server.inject({ method: 'GET', url: '/api/inngest' });
      expect(introspection.statusCode).toBe(200);
      expect(introspection.json()).toMatchObject({ function_count: 1, mode: 'dev' });
      expect((await server.inject({ method: 'GET', url: '/api/endpoints' })).statusCode).toBe(401);
    } finally {
      await server.close();
    }
  });

  it('runs the browser-backed harvest for the Inngest server over HTTP: the step, then the result', async () => {
    const r = await rig();
    const creator = publicCreator();
    const server = createAdminServer({ throttler: r.throttler, token: 'secret-token', inngest: r.harvester.app, logger: silent });
    const event = { name: HARVEST_EVENT, data: { handle: creator.handle, tenant: 'acme' }, id: 'evt-1', ts: Date.now() };
    // what the Inngest server POSTs: the event, the memoized steps so far, the run's context
    const call = (steps: Record<string, unknown>) =>
      server.inject({
        method: 'POST',
        url: '/api/inngest?fnId=sluice-harvest-profile&stepId=step',
        payload: { event, events: [event], steps, ctx: { run_id: 'run-http-1', attempt: 0, disable_immediate_execution: false, use_api: false, stack: { stack: [], current: 0 } }, version: 1 },
      });
    try {
      const first = await call({});
      expect(first.statusCode).toBe(206);
      const [op] = first.json() as { id: string; op: string; name: string; data: HarvestResult }[];
      expect(op).toMatchObject({ op: 'StepRun', name: 'fetch-profile' });
      expect(sorted(op!.data.domains)).toEqual(sorted(creator.domains));

      const second = await call({ [op!.id]: { type: 'data', data: op!.data } });
      expect(second.statusCode).toBe(200);
      expect(second.json()).toEqual(op!.data);
      // the replay took no token: one per request TikTok saw
      expect(r.admitted.length).toBe(sim.stats().total);
      expect(r.admitted.every((a) => a.tenant === 'acme')).toBe(true);
    } finally {
      await server.close();
    }
  }, 60_000);

  it('refuses a dev-mode app (no signatures checked) on a non-loopback address, with the fix in the message', () => {
    const throttler = makeThrottler({ endpoints: { 'tiktok.profile': { rate: '1/s' } } });
    const app = createHarvestApp({ throttler, client: { isDev: true, logger: silent }, harvestProfile: async (handle) => handle });
    const create = () => createAdminServer({ throttler, token: 'secret-token', host: '0.0.0.0', inngest: app, logger: silent });
    expect(create).toThrow(InvalidConfigError);
    expect(create).toThrow(/INNGEST_SIGNING_KEY/);
  });

  it('`sluice admin --inngest` mounts the harvest function with its own Chromium', async () => {
    // with the Inngest dev server, as docs/inngest.md runs it
    process.env.INNGEST_DEV = '1';
    const admin = await adminCommand({ inngest: true, port: 0, redis: redisUrl(), handleSignals: false, logger: silent });
    try {
      const res = await fetch(`${admin.url}/api/inngest`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { function_count: number };
      expect(body.function_count).toBe(1);
    } finally {
      await admin.close();
      delete process.env.INNGEST_DEV;
    }
  }, 60_000);
});
