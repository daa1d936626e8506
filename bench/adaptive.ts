/**
 * `npm run bench:adaptive`: hidden simulator limits at half the configured rate. An adaptive fleet
 * and a static one each run for 60 s (8 callers on tiktok.profile, penalizing on 429 as the workers
 * do); reported: when the served rate first reaches 80% of the hidden limit (5 s windows), the
 * served rate over the last 30 s, and violations after convergence.
 */
import { writeFileSync } from 'node:fs';
import { pino } from 'pino';
import { startEmbeddedRedis } from '../workers/embedded/redis-server.js';
import { createThrottler } from '../src/index.js';
import { startSimulator } from '../workers/simulator/index.js';
import { classifyResponse, tiktokUrls } from '../workers/tiktok/index.js';

const seconds = Number(process.argv.find((a) => a.startsWith('--seconds='))?.slice(10) ?? 60);
const configured = 40;
const hidden = configured / 2;

async function run(adaptive: boolean, redisUrl: string) {
  const sim = await startSimulator({ graph: { seed: 3, creators: 40 }, limits: { profile: { ratePerSec: hidden, burst: 5 } }, pageScripts: false });
  const t = createThrottler({
    redis: redisUrl,
    namespace: `bench-adaptive-${adaptive}`,
    endpoints: { 'tiktok.profile': { rate: `${configured}/s`, burst: 5, ...(adaptive ? { adaptive: true } : {}) } },
    logger: pino({ level: 'silent' }),
  });
  const urls = tiktokUrls({ baseUrl: sim.url });
  const handles = sim.graph.creators.map((c) => c.handle);
  const start = Date.now();
  const until = start + seconds * 1000;
  const served: number[] = [];
  const violations: number[] = [];
  await Promise.all(Array.from({ length: 8 }, async (_, w) => {
    let i = w;
    while (Date.now() < until) {
      await t.acquire('tiktok.profile');
      const res = await fetch(urls.userDetailApi({ uniqueId: handles[i++ % handles.length]! }));
      const v = classifyResponse({ status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() });
      const at = (Date.now() - start) / 1000;
      if (v.kind === 'rate-limited' || v.kind === 'captcha') {
        violations.push(at);
        await t.penalize('tiktok.profile', { retryAfterMs: v.retryAfterMs ?? 1000, reason: v.kind });
      } else served.push(at);
    }
  }));
  const finalRate = (await t.inspect('tiktok.profile')).effective.ratePerSec;
  await t.close();
  await sim.close();
  let reached: number | null = null;
  for (let s = 0; s + 5 <= seconds; s++) {
    const r = served.filter((x) => x >= s && x < s + 5).length / 5;
    if (r >= 0.8 * hidden) { reached = s + 5; break; }
  }
  const lastHalf = served.filter((x) => x >= seconds / 2).length / (seconds / 2);
  const after = reached ?? seconds;
  return { reached, lastHalf, violationsAfter: violations.filter((x) => x >= after).length, violationsTotal: violations.length, finalRate };
}

const server = process.env.REDIS_URL ? undefined : await startEmbeddedRedis();
const url = process.env.REDIS_URL ?? server!.url;
const a = await run(true, url);
const s = await run(false, url);
const table = [
  `Measured by \`npm run bench:adaptive\` (${seconds} s per fleet; configured ${configured}/s, simulator's hidden limit ${hidden}/s, 8 callers, ${new Date().toISOString().slice(0, 10)}).`,
  '',
  '| fleet | reached 80% of the hidden limit | served rate, last half | violations after that point | violations in all | effective rate at the end |',
  '|---|---|---|---|---|---|',
  `| adaptive | ${a.reached === null ? 'never' : `after ${a.reached} s`} | ${a.lastHalf.toFixed(1)}/s (${((100 * a.lastHalf) / hidden).toFixed(0)}%) | ${a.violationsAfter} | ${a.violationsTotal} | ${a.finalRate.toFixed(1)}/s |`,
  `| static | ${s.reached === null ? 'never' : `after ${s.reached} s`} | ${s.lastHalf.toFixed(1)}/s (${((100 * s.lastHalf) / hidden).toFixed(0)}%) | ${s.violationsAfter} | ${s.violationsTotal} | ${s.finalRate.toFixed(1)}/s |`,
  '',
].join('\n');
writeFileSync(new URL('./adaptive-results.md', import.meta.url), table);
console.log(table);
await server?.stop();
process.exit(0);
