/**
 * `npm run bench:adaptive [-- --seconds=300] [--adaptive='{"quietMs":10000}'] [--out=file.md]`: the fleet's adaptive settings (tiktok.profile as
 * shipped in config/demo.yml) against the simulator's hidden limit, without browsers: 8 callers
 * acquire, fetch, classify the answer as the gate does and penalize every push-back. Cases run at
 * once, each with its own simulator and namespace:
 *
 * - `0.5x`: hidden limit at half the configured rate, adaptive and (for contrast) static;
 * - `2x`: hidden limit at twice the configured rate (the throttle is the only limit);
 * - `moving`: hidden limit 1.25x, tightened to 0.5x at 40% of the run, relaxed to 1x at 70%.
 *
 * Reported per case: when the effective rate first reached 0.8x the hidden limit (after the start
 * and after each change), the share of 1 s samples within [0.8, 1.05]x the limit after the first
 * 60 s (after each change: from the change + 60 s), the rate served against the limit, and the
 * violations after the first 60 s (per 5 minutes).
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { pino } from 'pino';
import { createThrottler, type EndpointConfig } from 'sluice';
import { loadConfigFile } from '../workers/config/load.js';
import { DEMO_CONFIG_PATH } from '../workers/demo/config.js';
import { startEmbeddedRedis } from '../workers/embedded/redis-server.js';
import { coalescePenalties, PUSHBACK_KINDS } from '../workers/fleet/gate.js';
import { startSimulator } from '../workers/simulator/index.js';
import { classifyResponse, tiktokUrls } from '../workers/tiktok/index.js';

const seconds = Number(process.argv.find((a) => a.startsWith('--seconds='))?.slice(10) ?? 300);
const ENDPOINT = 'tiktok.profile';
const fromConfig = loadConfigFile(DEMO_CONFIG_PATH).throttle.endpoints[ENDPOINT] as EndpointConfig & { rate: { tokens: number; intervalMs: number } };
// `--adaptive='{"decreaseFactor":0.8,"quietMs":10000}'` tries other settings (merged over the shipped ones)
const override = process.argv.find((a) => a.startsWith('--adaptive='))?.slice(11);
const shipped = override ? { ...fromConfig, adaptive: { ...(typeof fromConfig.adaptive === 'object' ? fromConfig.adaptive : {}), ...(JSON.parse(override) as object) } } : fromConfig;
const out = process.argv.find((a) => a.startsWith('--out='))?.slice(6);
const configuredPerSec = (shipped.rate.tokens / shipped.rate.intervalMs) * 1000;

interface Case {
  name: string;
  adaptive: boolean;
  /** Hidden limit over configured rate, from t = 0 and at each change (seconds). */
  steps: Array<{ at: number; ratio: number }>;
}

const CASES: Case[] = [
  { name: '0.5x', adaptive: true, steps: [{ at: 0, ratio: 0.5 }] },
  { name: '0.5x static', adaptive: false, steps: [{ at: 0, ratio: 0.5 }] },
  { name: '2x', adaptive: true, steps: [{ at: 0, ratio: 2 }] },
  { name: 'moving', adaptive: true, steps: [{ at: 0, ratio: 1.25 }, { at: Math.round(seconds * 0.4), ratio: 0.5 }, { at: Math.round(seconds * 0.7), ratio: 1 }] },
];

interface Sample {
  t: number;
  effective: number;
  hidden: number;
}

async function run(c: Case, redisUrl: string) {
  const hiddenAt = (t: number) => [...c.steps].reverse().find((s) => s.at <= t)!.ratio * configuredPerSec;
  const sim = await startSimulator({
    graph: { seed: 3, creators: 40 },
    limits: { profile: { ratePerSec: configuredPerSec, burst: 2 } },
    limitFactor: c.steps[0]!.ratio,
    limitSchedule: c.steps.slice(1).map((s) => ({ atMs: s.at * 1000, limitFactor: s.ratio })),
    pageScripts: false,
  });
  const fixed = { rate: shipped.rate, ...(shipped.burst !== undefined ? { burst: shipped.burst } : {}) };
  const t = createThrottler({
    redis: redisUrl,
    namespace: `bench-adaptive-${c.name.replace(/\W/g, '')}-${Date.now()}`,
    endpoints: { [ENDPOINT]: c.adaptive ? shipped : fixed },
    logger: pino({ level: 'silent' }),
  });
  // one worker process's callers: their push-backs of one moment are one penalty, as in the gate
  const gate = coalescePenalties(t);
  const urls = tiktokUrls({ baseUrl: sim.url });
  const handles = sim.graph.creators.map((x) => x.handle);
  const start = Date.now();
  const until = start + seconds * 1000;
  const served: number[] = [];
  const violations: number[] = [];
  const samples: Sample[] = [];
  const sampler = setInterval(() => {
    const at = (Date.now() - start) / 1000;
    void t.inspect(ENDPOINT).then((s) => samples.push({ t: at, effective: s.effective.ratePerSec, hidden: hiddenAt(at) }), () => undefined);
  }, 1000);
  await Promise.all(
    Array.from({ length: 8 }, async (_, w) => {
      let i = w;
      while (Date.now() < until) {
        try {
          await t.acquire(ENDPOINT, { maxWaitMs: 5_000 });
        } catch {
          continue; // a long wait: the job would be deferred; try again
        }
        const res = await fetch(urls.userDetailApi({ uniqueId: handles[i++ % handles.length]! }));
        const url = res.url;
        const v = classifyResponse({ status: res.status, headers: Object.fromEntries(res.headers), body: await res.text(), url });
        const at = (Date.now() - start) / 1000;
        if (PUSHBACK_KINDS.has(v.kind)) {
          violations.push(at);
          await gate.penalize(ENDPOINT, { retryAfterMs: v.retryAfterMs ?? 3_000, reason: `${v.kind} (${v.reason})` });
        } else served.push(at);
      }
    }),
  );
  clearInterval(sampler);
  await t.close();
  await sim.close();

  const periods = c.steps.map((s, k) => ({ from: s.at, to: c.steps[k + 1]?.at ?? seconds, hidden: s.ratio * configuredPerSec }));
  const perPeriod = periods.map((p) => {
    const reached = samples.find((s) => s.t >= p.from && s.t < p.to && s.effective >= 0.8 * p.hidden && s.effective <= 1.05 * p.hidden);
    const steady = samples.filter((s) => s.t >= p.from + 60 && s.t < p.to);
    const inBand = steady.length ? steady.filter((s) => s.effective >= 0.8 * s.hidden && s.effective <= 1.05 * s.hidden).length / steady.length : null;
    const steadySpan = Math.max(0, p.to - (p.from + 60));
    const servedRate = steadySpan > 0 ? served.filter((x) => x >= p.from + 60 && x < p.to).length / steadySpan : null;
    const late = violations.filter((x) => x >= p.from + 60 && x < p.to).length;
    return {
      hidden: p.hidden,
      reachedAfter: reached ? Math.round(reached.t - p.from) : null,
      inBand,
      servedOfHidden: servedRate === null ? null : servedRate / p.hidden,
      servedOfConfigured: servedRate === null ? null : servedRate / configuredPerSec,
      violationsLate: late,
      per5min: steadySpan > 0 ? (late * 300) / steadySpan : null,
    };
  });
  return { name: c.name, adaptive: c.adaptive, perPeriod, violationsTotal: violations.length };
}

const load = loadavg().map((x) => x.toFixed(1)).join(' ');
const server = process.env.REDIS_URL ? undefined : await startEmbeddedRedis();
const url = process.env.REDIS_URL ?? server!.url;
const results = await Promise.all(CASES.map((c) => run(c, url)));
const loadAfter = loadavg().map((x) => x.toFixed(1)).join(' ');
const pct = (x: number | null) => (x === null ? '-' : `${Math.round(x * 100)}%`);
const rows = results.flatMap((r) =>
  r.perPeriod.map(
    (p, k) =>
      `| ${r.name}${r.perPeriod.length > 1 ? ` (period ${k + 1})` : ''} | ${r.adaptive ? 'adaptive' : 'static'} | ${p.hidden.toFixed(2)}/s (${(p.hidden / configuredPerSec).toFixed(2)}x) | ${p.reachedAfter === null ? 'never' : `${p.reachedAfter} s`} | ${pct(p.inBand)} | ${pct(p.servedOfHidden)} of hidden, ${pct(p.servedOfConfigured)} of configured | ${p.violationsLate} (${p.per5min === null ? '-' : p.per5min.toFixed(1)} per 5 min) |`,
  ),
);
const table = [
  `Measured by \`npm run bench:adaptive -- --seconds=${seconds}${override ? ` --adaptive='${override}'` : ''}\` (${ENDPOINT} ${override ? 'from' : 'as shipped in'} config/demo.yml: configured ${configuredPerSec}/s, ` +
    `adaptive ${JSON.stringify(shipped.adaptive)}; 8 callers; hidden burst 2; ${new Date().toISOString().slice(0, 10)}; load average ${load} before, ${loadAfter} after, 2 cores).`,
  '',
  '| case | fleet | hidden limit | effective within [0.8, 1.05]x after | share of samples in band (from +60 s) | served (from +60 s) | violations from +60 s |',
  '|---|---|---|---|---|---|---|',
  ...rows,
  '',
].join('\n');
writeFileSync(out ?? new URL('./adaptive-results.md', import.meta.url), table);
console.log(table);
await server?.stop();
process.exit(0);
