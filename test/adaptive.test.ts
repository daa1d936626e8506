import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../workers/simulator/index.js';
import { coalescePenalties } from '../workers/fleet/gate.js';
import { classifyResponse, tiktokUrls } from '../workers/tiktok/index.js';
import { cleanup, logSink, makeThrottler } from './support/helpers.js';
import { readEndpointState, writeEndpointState } from './support/endpoint-state.js';

afterEach(cleanup);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('adaptive rate (AIMD)', () => {
  it('a penalty cuts the effective rate once per quiet period, then quiet periods raise it back', async () => {
    const sink = logSink();
    const t = makeThrottler({ endpoints: { e: { rate: '100/s', burst: 10, adaptive: { quietMs: 200, increase: 0.1 } } }, logger: sink.logger });
    await t.acquire('e');
    await t.penalize('e', { retryAfterMs: 10, reason: 'HTTP 429' });
    await t.penalize('e', { retryAfterMs: 10, reason: 'HTTP 429 (same burst, another worker)' });
    let s = await t.inspect('e');
    expect(s.effective.ratePerSec).toBeCloseTo(50);
    expect(s.adaptive).toMatchObject({ ceilingPerSec: expect.closeTo(100), ratePerSec: expect.closeTo(50) });
    expect(sink.lines.filter((l) => l.msg === 'adaptive rate cut')).toHaveLength(1);
    // quiet periods: half the way up to 90% of the rate that tripped, then additive probing
    const seen: number[] = [];
    for (let i = 0; i < 12; i++) {
      // callers use the rate through each period: an unused quiet period raises nothing (below)
      const until = Date.now() + 220;
      await Promise.all(Array.from({ length: 8 }, async () => {
        while (Date.now() < until) await t.acquire('e');
      }));
      seen.push((await t.inspect('e')).effective.ratePerSec);
    }
    expect(seen[0], seen.join(' ')).toBeCloseTo(70);
    expect(seen[1]).toBeGreaterThan(79.9);
    expect(seen[1]).toBeLessThanOrEqual(90.0001);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]! - 1e-9);
    expect(seen.at(-1), seen.join(' ')).toBeCloseTo(100); // bounded by the configured rate
    expect(sink.lines.some((l) => l.msg === 'adaptive rate raised' && l.endpoint === 'e')).toBe(true);
  });

  describe('probing past the last ceiling (time moved by rewriting the bucket\'s clocks, no sleeps)', () => {
    // quiet period 10 s, step 10/s, cut by half; `quiet(ms)` moves the endpoint's clocks (last
    // penalty, last raise, pause end) `ms` into the past, then one acquire gives it the chance to raise
    function setup(maxHoldMs?: number) {
      const adaptive = { quietMs: 10_000, increase: 0.1, decreaseFactor: 0.5, ...(maxHoldMs === undefined ? {} : { maxHoldMs }) };
      const t = makeThrottler({ endpoints: { e: { rate: '100/s', burst: 10, adaptive } } });
      const redis = t.redis as Redis;
      const key = t.keys.bucket('e');
      async function age(ms: number, used = true) {
        const { lp, la, pu, aw, aa, er } = await readEndpointState(redis, key);
        const back = (x: number) => (x > 0 ? x - ms : 0);
        // and the moved time counts as used at the effective rate (see the under-used test below)
        await writeEndpointState(redis, key, { lp: back(lp!), la: back(la!), pu: back(pu!), aw: back(aw!), aa: aa! - (used ? er! * ms : 0) });
      }
      async function quiet(ms: number) {
        await age(ms);
        await t.acquire('e');
        return (await t.inspect('e')).adaptive!;
      }
      const trip = async () => (await t.penalize('e', { retryAfterMs: 1 }), (await t.inspect('e')).adaptive!);
      return { t, age, quiet, trip };
    }

    it('a quiet period the fleet did not use raises nothing, and starts over', async () => {
      const { t, age, quiet, trip } = setup();
      await t.acquire('e');
      expect((await trip()).ratePerSec).toBeCloseTo(50);
      // ten seconds with one admission: nobody learned whether 70/s would be refused
      await age(10_001, false);
      await t.acquire('e');
      expect((await t.inspect('e')).adaptive!.ratePerSec).toBeCloseTo(50);
      // the period that began there, used at the effective rate, raises it
      expect((await quiet(10_001)).ratePerSec).toBeCloseTo(70);
    });

    it('holds below the last ceiling 4x longer with each penalty in a row; a probe that finds room resets the hold', async () => {
      const { t, age, quiet, trip } = setup();
      await t.acquire('e');
      expect(await trip()).toMatchObject({ ratePerSec: expect.closeTo(50), ceilingPerSec: expect.closeTo(100), probeBackoff: 0 });
      await age(10_001);
      // a second penalty before any probe found room: the next probe will wait 4x longer
      expect(await trip()).toMatchObject({ ratePerSec: expect.closeTo(25), ceilingPerSec: expect.closeTo(50), probeBackoff: 1 });
      // fast recovery: half the way to 90% of the ceiling, then there
      expect((await quiet(10_001)).ratePerSec).toBeCloseTo(35);
      expect((await quiet(10_001)).ratePerSec).toBeCloseTo(45);
      // backoff 1: the plateau holds 4 quiet periods, then a probe past the ceiling
      expect((await quiet(10_001)).ratePerSec).toBeCloseTo(45);
      expect((await quiet(29_000)).ratePerSec).toBeCloseTo(45);
      expect((await quiet(1_001)).ratePerSec).toBeCloseTo(55);
      // which trips: 16 quiet periods next time
      expect(await trip()).toMatchObject({ ratePerSec: expect.closeTo(27.5), ceilingPerSec: expect.closeTo(55), probeBackoff: 2 });
      expect((await quiet(10_001)).ratePerSec).toBeCloseTo(38.5);
      expect((await quiet(10_001)).ratePerSec).toBeCloseTo(49.5);
      expect((await quiet(150_000)).ratePerSec).toBeCloseTo(49.5);
      expect((await quiet(10_001)).ratePerSec).toBeCloseTo(59.5);
      // the limit was raised meanwhile (no trip): past the ceiling the step doubles, and passing it
      // by 15% proves the room: the backoff resets and the rate is back at the configured one soon
      expect(await quiet(10_001)).toMatchObject({ ratePerSec: expect.closeTo(69.5), probeBackoff: 0 });
      expect((await quiet(10_001)).ratePerSec).toBeCloseTo(84);
      expect((await quiet(10_001)).ratePerSec).toBeCloseTo(100);
      // a later penalty starts the backoff again from one quiet period
      expect(await trip()).toMatchObject({ ratePerSec: expect.closeTo(50), probeBackoff: 1 });
    });

    it('the hold stops growing at maxHoldMs (64 quiet periods by default)', async () => {
      for (const [maxHoldMs, top] of [[undefined, 3], [40_000, 1]] as const) {
        const { t, quiet, trip } = setup(maxHoldMs);
        await t.acquire('e');
        await trip(); // ceiling 100, rate 50
        for (let level = 1; level <= 5; level++) {
          // climb back: recovery to the plateau (90), hold, then probe (100: capped by the configured rate)
          let s = await quiet(10_001);
          for (let i = 0; i < 8 && s.ratePerSec < 89.9; i++) s = await quiet(10_001);
          expect(s.ratePerSec).toBeCloseTo(90);
          const hold = Math.min(10_000 * 4 ** (level - 1), maxHoldMs ?? 640_000);
          expect((await quiet(hold - 1_000)).ratePerSec).toBeCloseTo(90);
          expect((await quiet(1_001)).ratePerSec, `level ${level}`).toBeCloseTo(100);
          expect(await trip()).toMatchObject({ probeBackoff: Math.min(level, top) });
        }
      }
    });

    it('a quiet period at the configured rate ends the backoff too', async () => {
      const { t, age, quiet, trip } = setup();
      await t.acquire('e');
      await trip();
      await age(10_001);
      expect(await trip()).toMatchObject({ ceilingPerSec: expect.closeTo(50), probeBackoff: 1 });
      // an operator lowers the rate under the plateau: the rate sits at the configured one
      await t.configure('e', { rate: '20/s' });
      expect(await quiet(10_001)).toMatchObject({ probeBackoff: 0 });
    });
  });

  it('an idle endpoint remembers the rate it learned, past the time its bucket would refill', async () => {
    const t = makeThrottler({ leaseMs: 1000, endpoints: { e: { rate: '100/s', burst: 1, adaptive: { quietMs: 60_000 } } } });
    await t.acquire('e');
    await t.penalize('e', { retryAfterMs: 10, reason: 'HTTP 429' });
    expect((await t.inspect('e')).effective.ratePerSec).toBeCloseTo(50);
    // the endpoint's keys used to expire horizon + lease + pause + 1 s (about 3.1 s here) after the last call
    await sleep(4500);
    const s = await t.inspect('e');
    expect(s.effective.ratePerSec).toBeCloseTo(50);
    expect(s.adaptive).toMatchObject({ ceilingPerSec: expect.closeTo(100) });
  });

  it('never cuts below minFraction of the configured rate, and a fixed endpoint is never cut', async () => {
    const t = makeThrottler({
      endpoints: { a: { rate: '100/s', adaptive: { quietMs: 1, minFraction: 0.2 } }, fixed: { rate: '100/s' } },
    });
    for (let i = 0; i < 6; i++) {
      await t.penalize('a', { retryAfterMs: 1 });
      await t.penalize('fixed', { retryAfterMs: 1 });
      await sleep(3);
    }
    expect((await t.inspect('a')).effective.ratePerSec).toBeCloseTo(20);
    expect((await t.inspect('fixed')).effective.ratePerSec).toBeCloseTo(100);
    expect((await t.inspect('fixed')).adaptive).toBeNull();
  });

  it('the fleet sends one penalty per pause from a process: the 429s its jobs meet together do not stack', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '10/s', burst: 1 } } });
    let now = 1_000;
    const gate = coalescePenalties(t, () => now);
    const penalized: number[] = [];
    t.onEvent((ev) => {
      if (ev.type === 'penalized') penalized.push(ev.retryAfterMs);
    });
    // five jobs admitted together meet five 429s: one pause, not five stacked into the bucket's debt
    await Promise.all(Array.from({ length: 5 }, () => gate.penalize('e', { retryAfterMs: 2_000 })));
    expect(penalized).toEqual([2_000]);
    const paused = await t.inspect('e');
    expect(paused.tokens).toBeGreaterThan(-21); // one pause's debt: 2 s x 10/s (and the refill since)
    now += 2_001;
    await gate.penalize('e', { retryAfterMs: 1_000 });
    expect(penalized).toEqual([2_000, 1_000]);
  });

  describe('against the simulator\'s hidden limit', () => {
    let sim: Simulator;
    beforeAll(async () => {
      sim = await startSimulator({ graph: { seed: 7, creators: 20 }, limits: { profile: { ratePerSec: 20, burst: 4 } }, pageScripts: false });
    });
    afterAll(async () => sim.close());

    async function drive(adaptive: boolean, ms: number): Promise<{ violationsLate: number; rateLate: number; servedLate: number }> {
      sim.resetStats();
      const t = makeThrottler({
        endpoints: { 'tiktok.profile': { rate: '40/s', burst: 4, ...(adaptive ? { adaptive: { quietMs: 500, increase: 0.05 } } : {}) } },
      });
      const urls = tiktokUrls({ baseUrl: sim.url });
      const handles = sim.graph.creators.map((c) => c.handle);
      const until = Date.now() + ms;
      const lateFrom = Date.now() + ms / 2;
      let violationsLate = 0;
      let servedLate = 0;
      const rates: number[] = [];
      const sampler = setInterval(() => {
        if (Date.now() >= lateFrom) void t.inspect('tiktok.profile').then((s) => rates.push(s.effective.ratePerSec));
      }, 200);
      await Promise.all(
        Array.from({ length: 8 }, async (_, w) => {
          let i = w;
          while (Date.now() < until) {
            await t.acquire('tiktok.profile');
            const res = await fetch(urls.userDetailApi({ uniqueId: handles[i++ % handles.length]! }));
            const verdict = classifyResponse({ status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() });
            const late = Date.now() >= lateFrom;
            if (verdict.kind === 'rate-limited' || verdict.kind === 'captcha') {
              if (late) violationsLate++;
              if (adaptive) await t.penalize('tiktok.profile', { retryAfterMs: verdict.retryAfterMs ?? 1000, reason: verdict.kind });
            } else if (late) servedLate++;
          }
        }),
      );
      clearInterval(sampler);
      const rateLate = rates.reduce((a, b) => a + b, 0) / rates.length;
      return { violationsLate, rateLate, servedLate };
    }

    it('follows hidden limits that move both ways: down when they tighten, back up when they relax', async () => {
      // its own simulator: 40/s, tightened to 2/s at 1.5 s (far under what 8 callers send even on a
      // busy machine), relaxed to 40/s again at 5 s
      const moving = await startSimulator({
        graph: { seed: 7, creators: 20 },
        limits: { profile: { ratePerSec: 40, burst: 4 } },
        limitSchedule: [{ atMs: 1_500, limitFactor: 0.05 }, { atMs: 5_000, limitFactor: 1 }],
        pageScripts: false,
      });
      try {
        // holds below the last ceiling of at most 4 quiet periods: the default (64) would find the
        // relaxed limit only after the run (the price of tripping a static limit seldom)
        const t = makeThrottler({ endpoints: { 'tiktok.profile': { rate: '40/s', burst: 4, adaptive: { quietMs: 300, increase: 0.05, maxHoldMs: 1_200 } } } });
        // 8 callers of one process, penalizing as the fleet's gate does (one penalty per pause)
        const gate = coalescePenalties(t);
        const urls = tiktokUrls({ baseUrl: moving.url });
        const handles = moving.graph.creators.map((c) => c.handle);
        const start = Date.now();
        const rates: Array<{ t: number; r: number }> = [];
        const sampler = setInterval(() => void t.inspect('tiktok.profile').then((s) => rates.push({ t: Date.now() - start, r: s.effective.ratePerSec })), 100);
        await Promise.all(
          Array.from({ length: 8 }, async (_, w) => {
            let i = w;
            while (Date.now() - start < 9_000) {
              await t.acquire('tiktok.profile');
              const res = await fetch(urls.userDetailApi({ uniqueId: handles[i++ % handles.length]! }));
              const verdict = classifyResponse({ status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() });
              if (verdict.kind === 'rate-limited') await gate.penalize('tiktok.profile', { retryAfterMs: verdict.retryAfterMs ?? 1000, reason: verdict.kind });
            }
          }),
        );
        clearInterval(sampler);
        const tight = rates.filter((x) => x.t > 4_000 && x.t < 5_000).map((x) => x.r);
        const relaxed = rates.filter((x) => x.t > 7_500).map((x) => x.r);
        expect(moving.limitHistory().map((h) => h.limitFactor)).toEqual([1, 0.05, 1]);
        // down: well under the configured 40/s while the limit is 2/s
        expect(Math.max(...tight), tight.join(' ')).toBeLessThan(25);
        // and up again once it relaxed
        expect(Math.max(...relaxed), relaxed.join(' ')).toBeGreaterThan(Math.max(...tight) * 1.5);
      } finally {
        await moving.close();
      }
    }, 30_000);

    it('adaptive mode settles near the hidden limit with few violations; a static fleet keeps violating', async () => {
      const adaptive = await drive(true, 8_000);
      const fixed = await drive(false, 4_000);
      // hidden limit 20/s, configured 40/s: in its second half, adaptive runs near the hidden limit
      // (a sawtooth around it: probing above, cut below), well under the static fleet's 40/s
      expect(adaptive.rateLate).toBeGreaterThan(12);
      expect(adaptive.rateLate).toBeLessThan(30);
      expect(fixed.rateLate).toBeCloseTo(40);
      // the static fleet violates about half its requests in its second half; adaptive only a few
      expect(fixed.violationsLate).toBeGreaterThan(20);
      expect(adaptive.violationsLate).toBeLessThan(fixed.violationsLate / 4);
      expect(adaptive.servedLate).toBeGreaterThan(0);
    }, 30_000);
  });
});
