/**
 * The demo's summary figures and HTML report, from a made-up series of snapshots (no Redis, no
 * browsers): what the issue asks the run to show is computed from what the simulator and the
 * throttle saw, and the report stands alone.
 */
import { describe, expect, it } from 'vitest';
import { fitWorkers } from '../workers/demo/config.js';
import type { Snapshot } from '../workers/demo/progress.js';
import { renderReport } from '../workers/demo/report.js';
import { buildSummary, formatSummary, type SummaryInput } from '../workers/demo/summary.js';
import { REFUSALS, SIM_KEYS, type KeyStats, type SimStats } from '../workers/simulator/index.js';
import { TIKTOK_ENDPOINTS, type TikTokEndpoint } from '../workers/tiktok/index.js';

const T0 = 1_700_000_000_000;
const per = <V>(f: (e: TikTokEndpoint) => V) => Object.fromEntries(TIKTOK_ENDPOINTS.map((e) => [e, f(e)])) as Record<TikTokEndpoint, V>;

function keyStats(requests: number, violations: number, firstAt: number | null): KeyStats {
  return {
    requests,
    served: requests - violations,
    violations,
    serverErrors: 0,
    repeats: 0,
    minTokens: null,
    refusals: Object.fromEntries(REFUSALS.map((r) => [r, 0])) as KeyStats['refusals'],
    pages: 0,
    api: requests,
    firstAt,
    lastAt: firstAt,
  };
}

/** Profile traffic from 20 s on; one violation at 50 s (before settling), one at 100 s (after). */
function snapshot(sec: number): Snapshot {
  const at = T0 + sec * 1000;
  const active = sec >= 20;
  const violations = (sec >= 50 ? 1 : 0) + (sec >= 100 ? 1 : 0);
  const endpoints = Object.fromEntries(SIM_KEYS.map((k) => [k, keyStats(0, 0, null)])) as SimStats['endpoints'];
  endpoints.profile = keyStats(active ? sec - 20 : 0, violations, active ? T0 + 20_000 : null);
  if (sec >= 100) endpoints.profile.repeats = 1;
  return {
    at,
    jobs: { discovery: { completed: 1, failed: 0, pending: 0, delayed: 0 }, harvesting: { completed: sec, failed: 0, pending: 1, delayed: 0 } },
    profiles: sec,
    domains: Math.floor(sec / 2),
    admitted: per(() => 0),
    penalties: per((e) => (e === 'tiktok.profile' ? violations : 0)),
    // the limit drops from 1/s to 0.5/s at 90 s; the throttle follows at 95 s
    effectivePerSec: per((e) => (e === 'tiktok.profile' ? (sec < 95 ? 0.9 : 0.45) : 0.5)),
    // video has a hidden limit but gets no request: its ratio is not sampled
    hiddenPerSec: per((e) => (e === 'tiktok.profile' ? (sec < 90 ? 1 : 0.5) : e === 'tiktok.video' ? 0.3 : null)),
    sim: {
      total: endpoints.profile.requests,
      unclassified: 0,
      violations,
      repeats: endpoints.profile.repeats,
      repeatedUrls: sec >= 100 ? ['/@someone'] : [],
      firstAt: active ? T0 + 20_000 : null,
      lastAt: at,
      endpoints,
    },
  };
}

function input(): SummaryInput {
  const series = Array.from({ length: 181 }, (_, s) => snapshot(s));
  return {
    namespace: 'ns',
    throttle: true,
    simLimitFactor: 1,
    startedAt: T0,
    stoppedEarly: false,
    final: series.at(-1)!,
    series,
    configuredPerSec: per((e) => (e === 'tiktok.profile' ? 1 : 0.5)),
    effectivePerSec: per(() => null),
    adaptiveEndpoints: [...TIKTOK_ENDPOINTS],
    simLimits: { profile: { ratePerSec: 0.5, burst: 2 }, video: { ratePerSec: 0.3, burst: 2 } },
    penaltiesByKind: { 'rate-limited': 1, captcha: 1 },
    lateRequeued: { 'tiktok.profile': 2 },
    limitHistory: [
      { from: T0, limitFactor: 1 },
      { from: T0 + 90_000, limitFactor: 0.5 },
    ],
    harvestedDomains: ['a.com'],
    truth: { creators: ['x'], domains: ['a.com'] },
    logDir: '/tmp/x',
  };
}

describe('demo summary and report', () => {
  it('gives domains per hour, violations once settled, penalties by kind and pages fetched twice', () => {
    const s = buildSummary(input());
    expect(s.domainsPerHour).toBe(1800); // 90 domains in 180 s
    expect(s.violations).toBe(2);
    // settled = 60 s after the first request (at 20 s): only the violation at 100 s counts
    expect(s.endpoints['tiktok.profile'].violationsAfter60s).toBe(1);
    expect(s.endpoints['tiktok.profile'].penalties).toBe(2);
    expect(s.penaltiesByKind).toEqual({ 'rate-limited': 1, captcha: 1 });
    expect(s.pagesFetchedTwice).toBe(1);
    expect(s.repeatedUrls).toEqual(['/@someone']);
    expect(s.limitSchedule).toEqual([{ atMs: 0, limitFactor: 1 }, { atMs: 90_000, limitFactor: 0.5 }]);
    // samples from 80 s on, less the 60 s after the change at 90 s: 80-90 s (0.9) and 150-180 s (0.9)
    expect(s.endpoints['tiktok.profile'].effectiveVsHidden).toEqual({ min: 0.9, max: 0.9, inBand: 1 });
    expect(s.endpoints['tiktok.search'].effectiveVsHidden).toBeNull();
    expect(s.endpoints['tiktok.video'].effectiveVsHidden).toBeNull();
    expect(formatSummary(s)).toMatch(/1800 domains\/hour; pages fetched twice: 1/);
  });

  it('writes one self-contained HTML file with an SVG chart per endpoint that saw traffic', () => {
    const i = input();
    const html = renderReport(buildSummary(i), i.series, T0);
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html).not.toMatch(/<script|<link |src=|href="http/i);
    expect(html.match(/<svg /g)).toHaveLength(1);
    for (const cls of ['effective', 'hidden', 'achieved']) expect(html).toMatch(new RegExp(`<path class="${cls}" d="M`));
    expect(html.match(/class="penalty"/g)).toHaveLength(2);
    expect(html).toContain('pages fetched twice 1');
  });
});

describe('demo worker processes', () => {
  it('one process per queue per two cores, with the jobs at once of the configured processes', () => {
    expect(fitWorkers({ discovery: 2, harvesting: 2 }, 4, 2)).toEqual({ discovery: { processes: 1, concurrency: 8 }, harvesting: { processes: 1, concurrency: 8 } });
    expect(fitWorkers({ discovery: 2, harvesting: 2 }, 4, 1)).toEqual({ discovery: { processes: 1, concurrency: 8 }, harvesting: { processes: 1, concurrency: 8 } });
    expect(fitWorkers({ discovery: 2, harvesting: 3 }, 4, 4)).toEqual({ discovery: { processes: 2, concurrency: 4 }, harvesting: { processes: 2, concurrency: 6 } });
    expect(fitWorkers({ discovery: 2, harvesting: 2 }, 4, 16)).toEqual({ discovery: { processes: 2, concurrency: 4 }, harvesting: { processes: 2, concurrency: 4 } });
  });
});
