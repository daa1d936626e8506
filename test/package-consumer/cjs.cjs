// A user's CommonJS script: require() of the entry points, and one admission against Redis.
const { createThrottler } = require('sluice');
const { bullmqPrefix } = require('sluice/bullmq');
const { throttleMiddleware } = require('sluice/inngest');

(async () => {
  const throttler = createThrottler({ redis: process.env.REDIS_URL, namespace: process.env.NS, endpoints: { 'api.cjs': { rate: '5/s' } } });
  const admission = await throttler.acquire('api.cjs');
  await throttler.close();
  console.log(JSON.stringify({ admitted: admission.endpoint, entries: [bullmqPrefix('y'), typeof throttleMiddleware] }));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
