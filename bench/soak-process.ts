/**
 * One load process of the soak benchmark (`bench/soak.ts`): N callers acquire in a loop, as fast
 * as the throttle lets them, until told to stop. It answers the parent on stdin/stdout, one JSON
 * line per request (and `{ type: 'ready' }` once connected):
 *   `go\n`     -> starts the callers, answers { type: 'going' }
 *   `sample\n` -> { type: 'sample', rss, heapUsed, heapTotal, external, admitted, calls, errors }
 *                 (after a full GC, so heapUsed is the live heap, not garbage awaiting collection)
 *   `stop\n`   -> stops the callers, closes the throttler, prints { type: 'done', ... } and exits.
 * Started with `--expose-gc`; without it the sample is taken without a GC.
 */
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import { createThrottler } from '../src/index.js';

export interface SoakSpec {
  redis: string;
  namespace: string;
  endpoint: string;
  rate: string;
  burst: number;
  callers: number;
  priority: string;
  tenant: string;
}

export interface SoakSample {
  type: 'sample';
  at: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  admitted: number;
  calls: number;
  errors: number;
}

export interface SoakDone {
  type: 'done';
  admitted: number;
  calls: number;
  errors: number;
  lastError: string | null;
}

const spec = JSON.parse(process.argv[2]!) as SoakSpec;
const throttler = createThrottler({
  redis: spec.redis,
  namespace: spec.namespace,
  endpoints: { [spec.endpoint]: { rate: spec.rate, burst: spec.burst } },
  priorities: { high: 3, normal: 2, low: 1 },
  logger: pino({ level: 'warn' }, pino.destination(2)),
});

let admitted = 0;
let errors = 0;
let lastError: string | null = null;
let stopping = false;

const gc = (globalThis as { gc?: () => void }).gc;
const send = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);

async function caller(): Promise<void> {
  while (!stopping) {
    try {
      await throttler.acquire(spec.endpoint, { priority: spec.priority, tenant: spec.tenant });
      admitted++;
    } catch (err) {
      if (stopping) break;
      errors++;
      lastError = String(err);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

await throttler.inspect(spec.endpoint);
send({ type: 'ready' });
let callers: Promise<void>[] = [];

for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'go') {
    callers = Array.from({ length: spec.callers }, caller);
    send({ type: 'going' });
  } else if (line === 'sample') {
    gc?.();
    const m = process.memoryUsage();
    send({ type: 'sample', at: Date.now(), rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, admitted, calls: throttler.calls, errors } satisfies SoakSample);
  } else if (line === 'stop') {
    stopping = true;
    // close() rejects the callers still waiting (ThrottlerClosedError) and gives their places back
    await throttler.close();
    await Promise.allSettled(callers);
    send({ type: 'done', admitted, calls: throttler.calls, errors, lastError } satisfies SoakDone);
    process.exit(0);
  }
}
