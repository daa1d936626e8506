/**
 * One fleet process of the referee benchmark (`bench/referee.ts`): `callers` loops that acquire a
 * token and send one request to the referee (nginx `limit_req`), for `seconds`. Prints one JSON
 * line: how many requests the referee admitted (200) and refused (429), and the let-go lateness.
 */
import { pino } from 'pino';
import { createThrottler } from '../src/index.js';

const spec = JSON.parse(process.argv[2]!) as { redis: string; namespace: string; rate: string; burst: number; callers: number; seconds: number; url: string; lateToleranceMs?: number };
const throttler = createThrottler({
  redis: spec.redis,
  namespace: spec.namespace,
  endpoints: { referee: { rate: spec.rate, burst: spec.burst } },
  ...(spec.lateToleranceMs !== undefined ? { lateToleranceMs: spec.lateToleranceMs } : {}),
  logger: pino({ level: 'warn' }, pino.destination(2)),
});
const statuses: Record<number, number> = {};
// warm connections (one per caller) before the first token: the referee judges the throttle, not TCP set-up
await Promise.all(Array.from({ length: spec.callers }, () => fetch(new URL('/warm', spec.url)).then((r) => r.arrayBuffer())));
let maxLateMs = 0;
let firstAt = Infinity;
let lastAt = 0;
const refusedAt: { at: number; slot: number; lateMs: number }[] = [];
const end = Date.now() + spec.seconds * 1000;
await Promise.all(
  Array.from({ length: spec.callers }, async () => {
    while (Date.now() < end) {
      const a = await throttler.acquire('referee');
      maxLateMs = Math.max(maxLateMs, a.lateMs);
      firstAt = Math.min(firstAt, Date.now());
      lastAt = Date.now();
      const res = await fetch(spec.url);
      await res.arrayBuffer();
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      if (res.status === 429) refusedAt.push({ at: Date.now(), slot: a.slot, lateMs: Math.round(a.lateMs * 10) / 10 });
    }
  }),
);
await throttler.close();
process.stdout.write(`${JSON.stringify({ statuses, maxLateMs, firstAt, lastAt, refusedAt })}\n`);
