// A user's plain Node ESM script: the throttle against a real Redis, and the entry points of a
// user with BullMQ and Inngest load (sluice/admin and sluice/metrics need fastify / prom-client).
import { createThrottler, ThrottleTimeoutError } from 'sluice';
import { throttledProcessor, bullmqPrefix } from 'sluice/bullmq';
import { throttleMiddleware } from 'sluice/inngest';

const throttler = createThrottler({
  redis: process.env.REDIS_URL,
  namespace: process.env.NS,
  endpoints: { 'api.search': { rate: '10/s', burst: 2 } },
});
try {
  const first = await throttler.acquire('api.search');
  const second = await throttler.acquire('api.search');
  let refused = '';
  try {
    await throttler.acquire('api.search', { maxWaitMs: 1 });
  } catch (err) {
    refused = err instanceof ThrottleTimeoutError ? err.code : String(err);
  }
  console.log(JSON.stringify({
    admitted: [first.endpoint, second.endpoint],
    refused,
    entries: [typeof throttledProcessor, bullmqPrefix('x'), typeof throttleMiddleware],
  }));
} finally {
  await throttler.close();
}
