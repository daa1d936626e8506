import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../workers/simulator/index.js';
import { classifyResponse, tiktokUrls } from '../workers/tiktok/index.js';
import { cleanup, logSink, makeThrottler } from './support/helpers.js';

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
      await sleep(220);
      await t.acquire('e');
      seen.push((await t.inspect('e')).effective.ratePerSec);
    }
    expect(seen[0], seen.join(' ')).toBeCloseTo(70);
    expect(seen[1]).toBeGreaterThan(79.9);
    expect(seen[1]).toBeLessThanOrEqual(90.0001);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]! - 1e-9);
    expect(seen.at(-1), seen.join(' ')).toBeCloseTo(100); // bounded by the configured rate
    expect(sink.lines.some((l) => l.msg === 'adaptive rate raised' && l.endpoint === 'e')).toBe(true);
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
