/**
 * Where Redis's time goes at saturation (the scenario of `npm run bench`: 4 processes x 32 callers,
 * 200/s, burst 20), per admission: Redis CPU split into system and user time, and each command's
 * count and µs (INFO commandstats; the commands a script runs are inside its FCALL's µs too).
 * A private Redis; its idle CPU over 5 s is printed first, for scale.
 *
 *   npx tsx bench/saturation-profile.ts            (T=5000 for a shorter run)
 */
import { Redis } from 'ioredis';
import { startEmbeddedRedis } from '../workers/embedded/redis-server.js';
import { runLoadProcesses } from '../test/support/processes.js';

const T = Number(process.env.T ?? 10_000);
const server = await startEmbeddedRedis();
const redis = new Redis(server.url);
const cpu = async () => {
  const info = await redis.info('cpu');
  const read = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)![1]) * 1000;
  return { sys: read('used_cpu_sys'), user: read('used_cpu_user') };
};
const idle0 = await cpu();
await new Promise((r) => setTimeout(r, 5_000));
const idle1 = await cpu();
console.log(`idle 5 s: system ${(idle1.sys - idle0.sys).toFixed(1)} ms, user ${(idle1.user - idle0.user).toFixed(1)} ms`);
await redis.config('RESETSTAT');
const before = await cpu();
const { results } = await runLoadProcesses(Array.from({ length: 4 }, () => ({ redis: server.url, namespace: 'profile', endpoint: 'e', rate: '200/s', burst: 20, callers: 32, durationMs: T })));
const after = await cpu();
const total = results.reduce((s, r) => s + r.count, 0);
const rows = [...(await redis.info('commandstats')).matchAll(/cmdstat_([a-z|_-]+):calls=(\d+),usec=(\d+)/g)]
  .filter((m) => !['info', 'config|resetstat'].includes(m[1]!) && Number(m[2]) / total >= 0.005)
  .map((m) => ({ name: m[1]!.toUpperCase(), n: Number(m[2]) / total, us: Number(m[3]) / total }))
  .sort((a, b) => b.us - a.us);
console.log(`${total} admissions in ${T / 1000} s; Redis CPU per admission: ${((after.sys - before.sys + after.user - before.user) / total).toFixed(3)} ms (system ${((after.sys - before.sys) / total).toFixed(3)}, user ${((after.user - before.user) / total).toFixed(3)})`);
console.log(`per admission: ${rows.map((r) => `${r.name} ${r.n.toFixed(2)} (${r.us.toFixed(1)} µs)`).join(', ')}`);
await redis.quit();
await server.stop();
