// A user's own Inngest function behind throttleMiddleware, run with @inngest/test (no server).
import { Inngest } from 'inngest';
import { InngestTestEngine } from '@inngest/test';
import { createThrottler } from 'sluice';
import { throttleMiddleware } from 'sluice/inngest';

const throttler = createThrottler({ redis: process.env.REDIS_URL, namespace: process.env.NS, endpoints: { 'partner.api': { rate: '20/s', burst: 1 } } });
const admitted = [];
throttler.onEvent((e) => e.type === 'admitted' && admitted.push(e.endpoint));
const inngest = new Inngest({ id: 'my-app', isDev: true, middleware: [throttleMiddleware(throttler, { steps: { 'call-partner': 'partner.api' } })] });
const fn = inngest.createFunction({ id: 'sync-order', triggers: [{ event: 'shop/order.created' }] }, async ({ event, step, throttle }) => {
  const a = await step.run('call-partner', async () => `order ${event.data.id} sent`);
  const b = await step.run('call-again', async () => (await throttle('partner.api')).endpoint);
  return { a, b };
});
try {
  const t = new InngestTestEngine({ function: fn, events: [{ name: 'shop/order.created', data: { id: 7 } }] });
  const { result, error } = await t.execute();
  console.log(JSON.stringify({ result, error: error ? String(error) : null, admitted }));
} finally {
  await throttler.close();
}
