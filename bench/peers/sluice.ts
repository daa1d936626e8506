/**
 * Child process for Sluice: one throttler per process (as the workers run it), priorities
 * high 3 / normal 2 / low 1, the default horizon (100 ms) and failure policy.
 */
import { pino } from 'pino';
import { createThrottler } from '../../src/index.js';
import { runChild } from './child.js';

await runChild(async (spec) => {
  const throttler = createThrottler({
    redis: spec.redis,
    namespace: spec.key,
    endpoints: { e: { rate: `${spec.rate}/s`, burst: spec.burst } },
    priorities: { high: 3, normal: 2, low: 1 },
    logger: pino({ level: 'warn' }, pino.destination(2)),
  });
  await throttler.inspect('e'); // connected and scripts loaded before the start
  return {
    acquire: async (cls) => ({ slot: (await throttler.acquire('e', { priority: cls })).slot }),
    close: () => throttler.close(),
  };
});
