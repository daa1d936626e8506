/**
 * Sluice in front of Inngest, proven with @inngest/test and a real Redis (no mocks of either).
 * `runToEnd` (test/support/inngest-server.ts) plays the Inngest server.
 */
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import Fastify from 'fastify';
import { Inngest, Middleware, RetryAfterError, type InngestFunction } from 'inngest';
import { InngestExecutionEngine } from 'inngest/internals';
import { InngestTestEngine, mockCtx } from '@inngest/test';
import { ThrottleTimeoutError, UnknownEndpointError, InvalidConfigError, type Admission, type Throttler } from '../src/index.js';
import {
  deferralDelayMs,
  isDeferralMarker,
  retryStepId,
  throttleMiddleware,
  waitStepId,
  type DeferralMarker,
  type ThrottleFn,
} from '../src/inngest/index.js';
import { createHarvestApp, HARVEST_EVENT, inngestHandler, type HarvestContext } from '../workers/inngest/harvest-app.js';
import { pino } from 'pino';
import { cleanup, logSink, makeThrottler } from './support/helpers.js';
import { runToEnd, Sdk, sleepNameMs, type RunOutcome, type SeenOp, type TransformCtx } from './support/inngest-server.js';

afterEach(cleanup);

const EP = 'tiktok.profile';
const hashId = (id: string): string => InngestExecutionEngine._internals.hashId(id);
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The SDK's context with the attempt counters of a given attempt (retriability reads them from ctx). */
const onAttempt = (attempt: number, maxAttempts: number): TransformCtx => (c) => ({ ...mockCtx(c), attempt, maxAttempts }) as ReturnType<TransformCtx>;
const silent = pino({ level: 'silent' });
/** Client options for tests: dev mode, and the SDK's own error logs kept off the test output. */
const quiet = { isDev: true, logger: silent, internalLogger: silent } as const;

/** Counts admissions per priority as the throttler reports them. */
function admissions(throttler: Throttler): { order: string[]; stop: () => void } {
  const order: string[] = [];
  const stop = throttler.onEvent((e) => {
    if (e.type === 'admitted') order.push(e.priority);
  });
  return { order, stop };
}

function profileThrottler(rate: string, burst = 1): Throttler {
  return makeThrottler({ endpoints: { [EP]: { rate, burst } }, priorities: { high: 3, normal: 2, low: 1 } });
}

describe('ctx.throttle', () => {
  it('is in the handler context, typed, and admits through the throttler with the event-mapped priority and tenant', async () => {
    const throttler = profileThrottler('100/s', 10);
    const seen: { priority: string; tenant: string }[] = [];
    throttler.onEvent((e) => {
      if (e.type === 'admitted') seen.push({ priority: e.priority, tenant: e.tenant });
    });
    const inngest = new Inngest({
      id: 'ctx-test',
      ...quiet,
      middleware: [throttleMiddleware(throttler, { logger: silent, priority: (e) => e.data.priority as string, tenant: (e) => e.data.tenant as string })],
    });
    const fn = inngest.createFunction({ id: 'uses-throttle', triggers: [{ event: 'test/run' }] }, async ({ step, throttle }) => {
      expectTypeOf(throttle).toEqualTypeOf<ThrottleFn>();
      const admission = await step.run('fetch', async () => {
        const a: Admission = await throttle(EP);
        return { endpoint: a.endpoint, queued: a.queued };
      });
      const override = await step.run('fetch-low', async () => (await throttle(EP, { priority: 'low' })).endpoint);
      return { admission, override, type: typeof throttle };
    });

    const run = await runToEnd(fn, { data: { priority: 'high', tenant: 'acme' } });
    expect(run.error).toBeUndefined();
    expect(run.result).toEqual({ admission: { endpoint: EP, queued: false }, override: EP, type: 'function' });
    expect(seen).toEqual([
      { priority: 'high', tenant: 'acme' },
      { priority: 'low', tenant: 'acme' },
    ]);
  });

  it('refuses outside step.run, where each replay would take another token', async () => {
    const throttler = profileThrottler('100/s', 10);
    const inngest = new Inngest({ id: 'outside', ...quiet, middleware: [throttleMiddleware(throttler, { logger: silent })] });
    const fn = inngest.createFunction({ id: 'outside', triggers: [{ event: 'test/run' }] }, async ({ throttle }) => throttle(EP));
    const run = await runToEnd(fn);
    expect(run.error?.name).toBe('ThrottleOutsideStepError');
    expect(run.error?.message).toMatch(/outside step\.run/);
  });

  it('rejects a steps table naming an unknown endpoint, and bad durations, when the middleware is created', () => {
    const throttler = profileThrottler('1/s');
    expect(() => throttleMiddleware(throttler, { steps: { fetch: 'tiktok.nope' } })).toThrow(UnknownEndpointError);
    expect(() => throttleMiddleware(throttler, { inlineWaitMs: 'soon' })).toThrow(InvalidConfigError);
    expect(() => throttleMiddleware(throttler, { inlineWaitMs: 'soon' })).toThrow(/inlineWaitMs.*"soon"/);
    expect(() => throttleMiddleware(throttler, { maxDeferMs: 200 })).toThrow(/maxDeferMs/);
    expect(() => throttleMiddleware(throttler, { priority: 'urgent' })).toThrow(/priority must be one of .*"urgent"/);
    expect(() => throttleMiddleware(throttler, { steps: { fetch: { endpoint: EP, priority: 'urgent' } } })).toThrow(/steps\["fetch"\]\.priority/);
  });
});

describe('queued backoff', () => {
  it('serves a short wait inline, inside the step', async () => {
    const throttler = profileThrottler('5/s', 1);
    await throttler.acquire(EP); // empty the bucket: the next admission is about 200 ms away
    const inngest = new Inngest({ id: 'inline', ...quiet, middleware: [throttleMiddleware(throttler, { logger: silent, steps: { fetch: EP }, inlineWaitMs: 2000 })] });
    const fn = inngest.createFunction({ id: 'inline', triggers: [{ event: 'test/run' }] }, async ({ step }) => step.run('fetch', async () => 'done'));
    const run = await runToEnd(fn);
    expect(run.result).toBe('done');
    expect(run.ops.map((o) => o.op)).toEqual(['StepRun']);
    expect(run.requestMs[0]).toBeGreaterThan(100);
  });

  it('defers a step on a saturated endpoint with a durable sleep of the expected wait rounded up to whole seconds, then runs it', async () => {
    const throttler = profileThrottler('2/s', 1);
    const { logger, lines } = logSink();
    await throttler.acquire(EP);
    // five callers queue ahead without a deadline: about 2.5-3 s of backlog at 2/s
    const ahead = Array.from({ length: 5 }, () => throttler.acquire(EP));
    await delay(50);
    let handlerRuns = 0;
    const inngest = new Inngest({
      id: 'defer',
      ...quiet,
      middleware: [throttleMiddleware(throttler, { steps: { 'fetch-profile': EP }, inlineWaitMs: 1000, logger })],
    });
    const fn = inngest.createFunction({ id: 'defer', triggers: [{ event: 'test/run' }] }, async ({ step }) =>
      step.run('fetch-profile', async () => {
        handlerRuns++;
        return { profile: 'bob' };
      }),
    );

    const started = Date.now();
    const run = await runToEnd(fn);
    const elapsed = Date.now() - started;
    await Promise.all(ahead);

    expect(run.error).toBeUndefined();
    expect(run.result).toEqual({ profile: 'bob' });
    expect(handlerRuns).toBe(1);
    // step returns a marker (success), the run sleeps, the step runs again under a new id; on a
    // slow machine the retry may find the endpoint still saturated and defer once more
    const ops = run.ops.map((o) => [o.op, o.id]);
    expect(ops.slice(0, 3)).toEqual([
      ['StepRun', hashId('fetch-profile')],
      ['Sleep', hashId(waitStepId('fetch-profile', 1))],
      ['StepRun', hashId(retryStepId('fetch-profile', 1))],
    ]);
    expect(ops.length % 2).toBe(1);
    for (let k = 3; k < ops.length; k += 2) {
      const n = (k + 1) / 2;
      expect(ops.slice(k, k + 2)).toEqual([['Sleep', hashId(waitStepId('fetch-profile', n))], ['StepRun', hashId(retryStepId('fetch-profile', n))]]);
    }
    const marker = run.ops[0]!.data as DeferralMarker;
    expect(isDeferralMarker(marker)).toBe(true);
    expect(marker.reason).toBe('wait');
    expect(marker.expectedWaitMs).toBeGreaterThan(2000);
    expect(marker.expectedWaitMs).toBeLessThan(3600);
    // rounded UP to whole seconds, never down
    expect(marker.delayMs).toBe(Math.ceil(marker.expectedWaitMs! / 1000) * 1000);
    expect(marker.delayMs).toBeGreaterThanOrEqual(marker.expectedWaitMs!);
    // the sleep Inngest is told is exactly that delay
    expect(sleepNameMs(run.ops[1]!.name!)).toBe(marker.delayMs);
    // the deferring request did not hold the worker for the wait
    // the deferring request came back without waiting for the slot itself
    expect(run.requestMs[0]).toBeLessThan(marker.expectedWaitMs!);
    expect(elapsed).toBeGreaterThanOrEqual(marker.delayMs);
    expect(lines.some((l) => l.msg === 'step deferred: the run sleeps instead of holding a worker' && l.delayMs === marker.delayMs)).toBe(true);
  });

  it('defers an explicit ctx.throttle() inside a step the same way', async () => {
    const throttler = profileThrottler('2/s', 1);
    await throttler.acquire(EP);
    const ahead = Array.from({ length: 3 }, () => throttler.acquire(EP));
    await delay(50);
    const inngest = new Inngest({ id: 'explicit', ...quiet, middleware: [throttleMiddleware(throttler, { logger: silent, inlineWaitMs: 500 })] });
    const fn = inngest.createFunction({ id: 'explicit', triggers: [{ event: 'test/run' }] }, async ({ step, throttle }) =>
      step.run('manual', async () => {
        await throttle(EP);
        return 'ok';
      }),
    );
    const run = await runToEnd(fn);
    await Promise.all(ahead);
    expect(run.result).toBe('ok');
    expect(run.ops.map((o) => o.op)).toEqual(['StepRun', 'Sleep', 'StepRun']);
    expect(isDeferralMarker(run.ops[0]!.data)).toBe(true);
  });

  it('defers on a full queue too (backpressure is not a failure), by one inline window', async () => {
    const throttler = makeThrottler({ endpoints: { [EP]: { rate: '1/s', burst: 1, maxQueue: 2 } } });
    await throttler.acquire(EP);
    const ahead = Array.from({ length: 2 }, () => throttler.acquire(EP).catch(() => undefined));
    await delay(50);
    const inngest = new Inngest({ id: 'queue-full', ...quiet, middleware: [throttleMiddleware(throttler, { logger: silent, steps: { fetch: EP }, inlineWaitMs: 60_000 })] });
    const fn = inngest.createFunction({ id: 'queue-full', triggers: [{ event: 'test/run' }] }, async ({ step }) => step.run('fetch', async () => 'never now'));
    const out = await new Sdk({ function: fn }).request({});
    const ran = (out.result as unknown as { step: SeenOp }).step;
    expect(ran.op).toBe('StepRun');
    expect(ran.data).toMatchObject({ __sluice: 'sluice.deferred', reason: 'queue-full', expectedWaitMs: null, delayMs: 60_000 });
    void ahead;
  });

  it('after maxDeferrals a step waits inline for its turn instead of adding more steps to the run', async () => {
    const throttler = profileThrottler('2/s', 1);
    await throttler.acquire(EP);
    const ahead = Array.from({ length: 2 }, () => throttler.acquire(EP));
    await delay(50);
    const inngest = new Inngest({ id: 'max-deferrals', ...quiet, middleware: [throttleMiddleware(throttler, { logger: silent, steps: { fetch: EP }, inlineWaitMs: 200, maxDeferrals: 0 })] });
    const fn = inngest.createFunction({ id: 'max-deferrals', triggers: [{ event: 'test/run' }] }, async ({ step }) => step.run('fetch', async () => 'waited'));
    const run = await runToEnd(fn);
    await Promise.all(ahead);
    expect(run.result).toBe('waited');
    expect(run.ops.map((o) => o.op)).toEqual(['StepRun']);
    expect(run.requestMs[0]).toBeGreaterThan(1000);
  });

  it('after maxDeferrals the inline wait still ends before the invocation does: no token for a request a cut invocation cannot send', async () => {
    const throttler = profileThrottler('1/s', 1);
    await throttler.acquire(EP);
    // three callers ahead: about 3-4 s of backlog, longer than what is left of a 1.5 s invocation
    const ahead = Array.from({ length: 3 }, () => throttler.acquire(EP));
    await delay(50);
    const admitted: number[] = [];
    throttler.onEvent((e) => {
      if (e.type === 'admitted') admitted.push(Date.now());
    });
    let handlerRuns = 0;
    const inngest = new Inngest({
      id: 'invocation-bound',
      ...quiet,
      middleware: [throttleMiddleware(throttler, { logger: silent, steps: { fetch: EP }, inlineWaitMs: 200, maxDeferrals: 0, invocationTimeoutMs: 1500 })],
    });
    const fn = inngest.createFunction({ id: 'invocation-bound', triggers: [{ event: 'test/run' }] }, async ({ step }) =>
      step.run('fetch', async () => {
        handlerRuns++;
        return 'sent';
      }),
    );
    const run = await runToEnd(fn);
    await Promise.all(ahead);
    expect(run.result).toBe('sent');
    // the first invocation gave its place back and deferred, where it used to wait about 3.5 s inline
    const ops = run.ops.map((o) => o.op);
    expect(ops[0]).toBe('StepRun');
    expect(isDeferralMarker(run.ops[0]!.data)).toBe(true);
    expect(ops).toContain('Sleep');
    // no invocation waited past its own end, and the logical request took one token: 3 ahead + 1
    for (const ms of run.requestMs) expect(ms).toBeLessThan(1500);
    expect(handlerRuns).toBe(1);
    expect(admitted).toHaveLength(4);
  });

  it('rounds deferrals up to whole seconds, where the SDK floors (step.sleep(2001) sleeps "2s")', async () => {
    expect(deferralDelayMs(2001, 600_000)).toBe(3000);
    expect(deferralDelayMs(2000, 600_000)).toBe(2000);
    expect(deferralDelayMs(1, 600_000)).toBe(1000);
    expect(deferralDelayMs(0, 600_000)).toBe(1000);
    expect(deferralDelayMs(Infinity, 600_000)).toBe(600_000);
    expect(deferralDelayMs(3_600_000, 600_000)).toBe(600_000);

    const inngest = new Inngest({ id: 'sdk-floor', ...quiet });
    const fn = inngest.createFunction({ id: 'sleeps', triggers: [{ event: 'test/run' }] }, async ({ step }) => step.sleep('s', 2001));
    const out = await new Sdk({ function: fn }).request({});
    const steps = (out.result as unknown as { steps: SeenOp[] }).steps;
    expect(steps[0]).toMatchObject({ op: 'Sleep', name: '2s' });
  });
});

describe('retry attempts', () => {
  /** The alternative: the step throws RetryAfterError with the throttler's estimate. */
  function retryAfterFunction(throttler: Throttler) {
    const inngest = new Inngest({ id: 'retry-after', ...quiet });
    return inngest.createFunction({ id: 'retry-after', triggers: [{ event: 'test/run' }] }, async ({ step }) =>
      step.run('fetch-profile', async () => {
        try {
          await throttler.acquire(EP, { maxWaitMs: 1000 });
        } catch (err) {
          if (err instanceof ThrottleTimeoutError && err.expectedWaitMs !== undefined) throw new RetryAfterError('throttled', err.expectedWaitMs);
          throw err;
        }
        return 'fetched';
      }),
    );
  }

  it('RetryAfterError is a failed attempt: retried with a whole-second Retry-After while attempts remain, a permanent failure on the last', async () => {
    const throttler = profileThrottler('1/s', 1);
    await throttler.acquire(EP);
    // queued ahead; never admitted in this test: cleanup closes the throttler, which rejects them
    const ahead = Array.from({ length: 3 }, () => throttler.acquire(EP).catch(() => undefined));
    await delay(50);
    const fn = retryAfterFunction(throttler);

    const first = await new Sdk({ function: fn, transformCtx: onAttempt(0, 4) }).request({});
    const r1 = first.result as { type: string; retriable?: unknown; step?: SeenOp };
    expect(r1.step?.op).toBe('StepError'); // an error op: the server counts an attempt and retries
    expect(r1.retriable).toMatch(/^\d+$/); // Retry-After, whole seconds

    const last = await new Sdk({ function: fn, transformCtx: onAttempt(3, 4) }).request({});
    const r2 = last.result as { type: string; retriable?: unknown; step?: SeenOp };
    expect(r2.step?.op).toBe('StepFailed'); // the SDK checks attempts before RetryAfterError: the run fails
    expect(r2.retriable).toBe(false);
    void ahead;
  });

  it('the sleep deferral uses no attempt: on the LAST attempt a throttled step is still deferred and the run completes', async () => {
    const throttler = profileThrottler('1/s', 1);
    await throttler.acquire(EP);
    const ahead = Array.from({ length: 2 }, () => throttler.acquire(EP));
    await delay(50);
    const inngest = new Inngest({ id: 'last-attempt', ...quiet, middleware: [throttleMiddleware(throttler, { logger: silent, steps: { 'fetch-profile': EP }, inlineWaitMs: 1000 })] });
    const fn = inngest.createFunction({ id: 'last-attempt', retries: 0, triggers: [{ event: 'test/run' }] }, async ({ step, attempt }) => {
      const out = await step.run('fetch-profile', async () => 'fetched');
      return { out, attempt };
    });
    // attempt 0 of maxAttempts 1: any failed attempt now would be final
    const run = await runToEnd(fn, { transformCtx: onAttempt(0, 1) });
    await Promise.all(ahead);
    expect(run.error).toBeUndefined();
    expect(run.result).toEqual({ out: 'fetched', attempt: 0 });
    expect(run.ops.map((o) => o.op)).toEqual(['StepRun', 'Sleep', 'StepRun']);
    expect(run.ops.some((o) => o.op === 'StepError' || o.op === 'StepFailed')).toBe(false);
  });

  it('a request no retry can fix (unknown priority from the event) fails the step once, not maxAttempts times', async () => {
    const throttler = profileThrottler('100/s', 10);
    const inngest = new Inngest({ id: 'bad-priority', ...quiet, middleware: [throttleMiddleware(throttler, { logger: silent, steps: { fetch: EP }, priority: (e) => e.data.priority as string })] });
    const fn = inngest.createFunction({ id: 'bad-priority', triggers: [{ event: 'test/run' }] }, async ({ step }) => step.run('fetch', async () => 1));
    const run = await runToEnd(fn, { data: { priority: 'urgent' } });
    expect(run.ops.at(-1)?.op).toBe('StepFailed');
    expect(run.error?.message).toMatch(/unknown priority "urgent"/);
  });
});

describe('where admission is taken', () => {
  it('when the handler runs, not when the step is discovered: parallel steps take one token each', async () => {
    const throttler = profileThrottler('100/s', 20);
    const { order, stop } = admissions(throttler);
    let runs = 0;
    let discoveries = 0;
    // what a wrapStep-based gate would see: every fresh step.run, each time a request reaches it
    class DiscoveryProbe extends Middleware.BaseMiddleware {
      readonly id = 'probe';
      override async wrapStep({ next, stepInfo }: Middleware.WrapStepArgs) {
        if (stepInfo.stepType === 'run' && !stepInfo.memoized) discoveries++;
        return next();
      }
    }
    const inngest = new Inngest({
      id: 'parallel',
      ...quiet,
      middleware: [DiscoveryProbe, throttleMiddleware(throttler, { logger: silent, steps: (id) => (id.startsWith('fetch-') ? EP : undefined) })],
    });
    const fn = inngest.createFunction({ id: 'parallel', triggers: [{ event: 'test/run' }] }, async ({ step }) => {
      const handles = ['a', 'b', 'c'];
      return Promise.all(handles.map((h) => step.run(`fetch-${h}`, async () => (runs++, h))));
    });
    const run = await runToEnd(fn);
    stop();
    expect(run.result).toEqual(['a', 'b', 'c']);
    // every request re-discovers all three steps; only the targeted handler acquires
    expect(run.ops.filter((o) => o.op === 'StepPlanned')).toHaveLength(3);
    expect(runs).toBe(3);
    expect(order).toHaveLength(3);
    // 3 in the first request, then 3, 2 and 1 in the targeted ones (this driver runs them one after
    // another; the real server runs them at once: 3 + 3 x 3): a gate there would take 9 tokens, not 3
    expect(discoveries).toBe(9);
  });
});

describe('priorities under contention', () => {
  it('two functions sharing an endpoint, high=3 and low=1, get 3:1 of the admissions', async () => {
    const throttler = profileThrottler('40/s', 1);
    const { order, stop } = admissions(throttler);
    const inngest = new Inngest({
      id: 'fair',
      ...quiet,
      middleware: [throttleMiddleware(throttler, { logger: silent, steps: { 'fetch-profile': EP }, priority: (e) => e.data.priority as string, inlineWaitMs: 20_000 })],
    });
    const make = (id: string) =>
      inngest.createFunction({ id, triggers: [{ event: `test/${id}` }] }, async ({ step }) => step.run('fetch-profile', async () => id));
    const high = make('harvest-high');
    const low = make('harvest-low');

    const per = 60;
    const runs: Promise<RunOutcome>[] = [];
    for (let i = 0; i < per; i++) {
      runs.push(runToEnd(high, { name: 'test/harvest-high', data: { priority: 'high' } }));
      runs.push(runToEnd(low, { name: 'test/harvest-low', data: { priority: 'low' } }));
    }
    const outcomes = await Promise.all(runs);
    stop();
    expect(outcomes.every((o) => o.error === undefined)).toBe(true);
    expect(order).toHaveLength(2 * per);
    // while both classes are queued (high runs out after about 80 admissions), skipping the first
    // few that the reservation horizon serves in arrival order
    const window = order.slice(8, 72);
    const h = window.filter((p) => p === 'high').length;
    const l = window.filter((p) => p === 'low').length;
    expect(h / l).toBeGreaterThan(2.5);
    expect(h / l).toBeLessThan(3.5);
  }, 30_000);
});

describe('example: harvest one profile', () => {
  it('acquires tiktok.profile with the event priority and tenant, then calls the injected harvestProfile', async () => {
    const throttler = profileThrottler('100/s', 10);
    const seen: { endpoint: string; priority: string; tenant: string }[] = [];
    throttler.onEvent((e) => {
      if (e.type === 'admitted') seen.push({ endpoint: e.endpoint, priority: e.priority, tenant: e.tenant });
    });
    const calls: { handle: string; ctx: Pick<HarvestContext, 'tenant' | 'priority'> }[] = [];
    const app = createHarvestApp({
      throttler,
      client: quiet,
      throttle: { logger: silent },
      harvestProfile: async (handle, ctx) => {
        calls.push({ handle, ctx: { tenant: ctx.tenant, priority: ctx.priority } });
        return { handle, domains: ['example.com'] };
      },
    });
    const run = await runToEnd(app.harvestProfile, { name: HARVEST_EVENT, data: { handle: '@bob', priority: 'high', tenant: 'acme' } });
    expect(run.error).toBeUndefined();
    expect(run.result).toEqual({ handle: '@bob', domains: ['example.com'] });
    expect(calls).toEqual([{ handle: '@bob', ctx: { tenant: 'acme', priority: 'high' } }]);
    expect(seen).toEqual([{ endpoint: EP, priority: 'high', tenant: 'acme' }]);
  });

  it('serves the functions at /api/inngest from fastify 5', async () => {
    const throttler = profileThrottler('1/s');
    const app = createHarvestApp({ throttler, client: quiet, throttle: { logger: silent }, harvestProfile: async (handle) => handle });
    const server = Fastify();
    server.route({ method: ['GET', 'POST', 'PUT'], url: '/api/inngest', handler: inngestHandler(app) });
    try {
      const res = await server.inject({ method: 'GET', url: '/api/inngest' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ function_count: 1, mode: 'dev' });
    } finally {
      await server.close();
    }
  });
});
