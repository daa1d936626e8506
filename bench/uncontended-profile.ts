/**
 * `npm run bench` section 2 alone, for profiling the client's per-acquire cost: one process, 64
 * callers, a rate it never reaches. `npx tsx bench/uncontended-profile.ts [seconds] [runs]`; with
 * REDIS_URL set it uses that Redis, else a private one; METRICS=1 adds the Prometheus metrics. Profile with
 * `node --cpu-prof --import tsx bench/uncontended-profile.ts`.
 */
import { loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { startEmbeddedRedis } from '../workers/embedded/redis-server.js';
import { createThrottler } from '../src/index.js';
import { createMetrics } from '../src/metrics/index.js';

const seconds = Number(process.argv[2] ?? 3);
const runs = Number(process.argv[3] ?? 3);
const server = process.env.REDIS_URL ? undefined : await startEmbeddedRedis();
const url = process.env.REDIS_URL ?? server!.url;
const t = createThrottler({ redis: url, namespace: `bench-unc-${process.pid}`, endpoints: { e: { rate: '100000000/s', burst: 100000000 } }, logger: pino({ level: 'silent' }) });
// METRICS=1: with this process's Prometheus metrics counting every admission, as a worker would
const metrics = process.env.METRICS === '1' ? createMetrics({ throttler: t, fleet: false }) : undefined;
await t.acquire('e');
const probe = new Redis(url);
const redisCpuMs = async () => {
  const info = await probe.info('cpu');
  return (Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1]) + Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1])) * 1000;
};
const cpu = () => process.cpuUsage();
for (let r = 0; r < runs; r++) {
  const callsBefore = t.calls;
  const redisBefore = await redisCpuMs();
  const nodeBefore = cpu();
  const until = Date.now() + seconds * 1000;
  let n = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (Date.now() < until) { await t.acquire('e'); n++; }
  }));
  const perSec = n / ((performance.now() - started) / 1000);
  const redisUs = ((await redisCpuMs()) - redisBefore) * 1000 / n;
  const c = process.cpuUsage(nodeBefore);
  const nodeUs = (c.user + c.system) / n;
  console.log(`run ${r + 1}: ${Math.round(perSec)} admissions/s, ${((t.calls - callsBefore) / n).toFixed(4)} script calls per admission, CPU per admission: Node ${nodeUs.toFixed(2)} µs, Redis ${redisUs.toFixed(2)} µs, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}
metrics?.close();
await t.close();
probe.disconnect();
await server?.stop();
