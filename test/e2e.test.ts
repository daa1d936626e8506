/**
 * End to end: the demo orchestrator (real Redis, worker processes with real Chromium, the
 * simulator with hidden limits) harvests exactly the ground truth of its seeds without one limit
 * violation and without fetching a page twice while throttled; with the throttle disabled the
 * fleet sends what hidden limits refuse.
 *
 * The two runs no longer pull against each other: the unthrottled control used to need hidden
 * limits tight enough for a starved machine's slow fleet to trip, the throttled run limits loose
 * enough for its jitter, and one machine could fail either. The control now runs against limits
 * of its own (x0.05: one token per half minute or so, a burst of 1), where a page and the API call
 * its own script makes at once are already two requests for one token: it trips them however slow
 * the machine is, and the throttled run keeps the demo's margins.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { demoSection, DEMO_CONFIG_PATH } from '../workers/demo/config.js';
import { loadConfigFile } from '../workers/config/load.js';
import { runDemo } from '../workers/demo/orchestrator.js';
import { ResultsStore } from '../workers/results/store.js';
import { createGraph } from '../workers/simulator/index.js';
import { redisUrl } from './support/helpers.js';

const redis = new Redis(redisUrl());
afterAll(async () => {
  await redis.quit();
});

/** What the demo's seeds must reach, computed here from the graph alone. */
function expectedDomains(): string[] {
  const demo = demoSection(loadConfigFile(DEMO_CONFIG_PATH));
  const seeds = { hashtags: [] as string[], keywords: [] as string[], handles: [] as string[], videos: [] as string[] };
  for (const s of demo.parsedSeeds) {
    if (s.kind === 'hashtag') seeds.hashtags.push(s.value);
    else if (s.kind === 'keyword') seeds.keywords.push(s.value);
    else if (s.kind === 'creator') seeds.handles.push(s.value);
    else seeds.videos.push(s.value);
  }
  return createGraph(demo.simulator.graph).groundTruth(seeds).domains;
}

describe('demo run', () => {
  it('throttled: harvests exactly the ground-truth domains with zero simulator limit violations', async () => {
    const lines: string[] = [];
    // the config's 2 min cap is for people; a busy CI machine may need longer
    const summary = await runDemo({ redis: redisUrl(), durationMs: 240_000, onProgress: (l) => lines.push(l) });
    expect(summary.stoppedEarly, lines.slice(-3).join('\n')).toBe(false);
    expect(summary.jobsPending).toBe(0);
    expect(summary.simulatorViolations, JSON.stringify(summary.endpoints)).toBe(0);
    expect(summary.simulatorRequests).toBeGreaterThan(0);
    expect(summary.simulatorUnclassified).toBe(0);
    expect(summary.pagesFetchedTwice, summary.repeatedUrls.join(' ')).toBe(0);

    const harvested: string[] = [];
    for await (const d of new ResultsStore(redis, summary.namespace).domains()) harvested.push(d.domain);
    const expected = expectedDomains();
    expect(expected.length).toBeGreaterThan(10);
    expect(harvested.sort()).toEqual(expected);
    expect(summary.groundTruth).toMatchObject({ exact: true, missing: [], extra: [] });

    // the throttle saw every request the simulator saw (admission counters are fleet-wide)
    for (const e of Object.values(summary.endpoints)) {
      expect(e.violations).toBe(0);
      expect(e.admitted).toBeGreaterThanOrEqual(e.requests);
      // never below 1: every request found a token in the hidden bucket
      if (e.requests > 0) expect(e.simulatorMinTokens).toBeGreaterThanOrEqual(1 - 1e-9);
    }
    expect(lines.length).toBeGreaterThan(0);
  }, 330_000);

  it('unthrottled: the fleet sends what hidden limits refuse', async () => {
    // as long as the whole run if need be, but it stops at the first violation
    const summary = await runDemo({ redis: redisUrl(), throttle: false, simLimitFactor: 0.05, concurrency: 8, stopWhen: (s) => s.sim.violations > 0, onProgress: () => undefined });
    expect(summary.throttle).toBe(false);
    expect(summary.simulatorViolations, JSON.stringify(summary.endpoints)).toBeGreaterThan(0);
  }, 300_000);
});
