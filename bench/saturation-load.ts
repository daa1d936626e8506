/**
 * The saturation scenario of `npm run bench` (4 processes x 32 callers, burst 20) against
 * REDIS_URL, for instruction counts of redis-server under callgrind
 * (`bash bench/script-instructions.sh saturation`): prints the admissions. T (ms, default 8000), RATE (default
 * 100/s: redis-server under valgrind keeps up with that), NS (the namespace).
 *
 *   REDIS_URL=redis://127.0.0.1:7000 npx tsx bench/saturation-load.ts
 */
import { runLoadProcesses } from '../test/support/processes.js';

const T = Number(process.env.T ?? 8000);
const rate = process.env.RATE ?? '100/s';
const { results } = await runLoadProcesses(Array.from({ length: 4 }, () => ({
  redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', namespace: process.env.NS ?? 'saturation', endpoint: 'e', rate, burst: 20, callers: 32, durationMs: T,
})));
console.log(results.reduce((s, r) => s + r.count, 0));
