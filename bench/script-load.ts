/**
 * A fixed acquire workload against REDIS_URL, for instruction counts of redis-server under
 * callgrind (bench/script-instructions.sh): `fast` (one caller, a rate never reached), `batch` (64
 * callers, a rate never reached: alike requests go as one group), `queued` (16 callers at 100/s,
 * burst 10) or `peers` (the same 16 callers in 4 throttlers, as 4 processes would be: a promotion
 * mostly goes to another owner, through the mailbox), N admissions.
 *
 *   REDIS_URL=redis://127.0.0.1:7000 npx tsx bench/script-load.ts fast 1000
 */
import { pino } from 'pino';
import { createThrottler } from 'sluice';

const [mode = 'fast', count = '500'] = process.argv.slice(2);
const n = Number(count);
const throttlers = Array.from({ length: mode === 'peers' ? 4 : 1 }, () => createThrottler({
  redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  namespace: `script-load-${mode}`,
  endpoints: { e: mode === 'fast' || mode === 'batch' ? { rate: '1000000/s', burst: 1_000_000 } : { rate: '100/s', burst: 10 } },
  logger: pino({ level: 'warn' }),
}));
for (const t of throttlers) await t.inspect('e');
if (mode === 'fast') {
  for (let i = 0; i < n; i++) await throttlers[0]!.acquire('e');
} else {
  let started = 0;
  await Promise.all(Array.from({ length: mode === 'batch' ? 64 : 16 }, async (_, i) => {
    const t = throttlers[i % throttlers.length]!;
    while (started++ < n) await t.acquire('e');
  }));
}
await Promise.all(throttlers.map((t) => t.close()));
