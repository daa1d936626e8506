/**
 * What one acquire costs Redis, split by command: a private redis-server, one process, two loads.
 *
 *   npx tsx bench/script-cost.ts [--admissions N]
 *
 *   fast    one caller, one request per call, a rate never reached (the fast path)
 *   queued  32 callers at 200/s burst 20 (every caller waits in the fair queue)
 *
 * Per admission: script calls, the commands Redis ran (INFO commandstats, those inside the script
 * included), Redis CPU (INFO cpu); per script call: the script's own µs (commandstats usec of
 * FCALL or EVALSHA, which includes the commands it runs). Redis shares the cores with this process and
 * whatever else runs: compare runs made side by side, and read the load average printed beside them.
 */
import { loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createThrottler } from 'sluice';
import { startEmbeddedRedis } from '../workers/embedded/redis-server.js';

const argv = process.argv.slice(2);
const N = Number(argv.includes('--admissions') ? argv[argv.indexOf('--admissions') + 1] : 3000);

const server = await startEmbeddedRedis();
const redis = new Redis(server.url);

async function cpuSec(): Promise<number> {
  const info = await redis.info('cpu');
  const num = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return num('used_cpu_sys') + num('used_cpu_user');
}

async function run(mode: 'fast' | 'queued'): Promise<void> {
  await redis.flushall();
  const throttler = createThrottler({
    redis: server.url,
    namespace: `cost-${mode}`,
    endpoints: { e: mode === 'fast' ? { rate: '1000000/s', burst: 1_000_000 } : { rate: '200/s', burst: 20 } },
    logger: pino({ level: 'warn' }),
  });
  await throttler.inspect('e'); // connected, scripts loaded
  await redis.config('RESETSTAT');
  const cpu0 = await cpuSec();
  if (mode === 'fast') {
    for (let i = 0; i < N; i++) await throttler.acquire('e');
  } else {
    let started = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (started++ < N) await throttler.acquire('e');
    }));
  }
  const cpu = (await cpuSec()) - cpu0;
  const stats = await redis.info('commandstats');
  await throttler.close();
  let all = 0;
  let scriptCalls = 0;
  let scriptUsec = 0;
  const by: [string, number][] = [];
  for (const m of stats.matchAll(/cmdstat_([^:]+):calls=(\d+),usec=(\d+)/g)) {
    const [name, calls, usec] = [m[1]!, Number(m[2]), Number(m[3])];
    if (name === 'info' || name.startsWith('config')) continue;
    all += calls;
    by.push([name, calls]);
    if (name === 'evalsha' || name === 'eval' || name === 'fcall') { scriptCalls += calls; scriptUsec += usec; }
  }
  by.sort((a, b) => b[1] - a[1]);
  console.log(`${mode}: ${N} admissions, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`  script calls / admission ${(scriptCalls / N).toFixed(2)}, Redis commands / admission ${(all / N).toFixed(1)}, Redis CPU ms / admission ${((1000 * cpu) / N).toFixed(3)}, script µs / call ${(scriptUsec / scriptCalls).toFixed(1)}`);
  console.log(`  by command, per admission: ${by.map(([n, c]) => `${n} ${(c / N).toFixed(2)}`).join(', ')}`);
}

try {
  await run('fast');
  await run('queued');
} finally {
  redis.disconnect();
  await server.stop();
}
