// A user's own BullMQ worker with sluice/bullmq: one job completes, one is refused upstream once
// (429), deferred without spending an attempt, then completes.
import { Queue, Worker, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { createThrottler } from 'sluice';
import { throttledProcessor, bullmqPrefix, UpstreamLimitError } from 'sluice/bullmq';

const connection = new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: null });
const prefix = bullmqPrefix(process.env.NS);
const throttler = createThrottler({ redis: process.env.REDIS_URL, namespace: process.env.NS, endpoints: { 'shop.api': { rate: '50/s', burst: 5 } } });
const queue = new Queue('fetch', { connection, prefix });
const eventsConnection = connection.duplicate();
const events = new QueueEvents('fetch', { connection: eventsConnection, prefix });
const calls = {};
const worker = new Worker(
  'fetch',
  throttledProcessor({
    throttler,
    endpoint: 'shop.api',
    process: async (job) => {
      calls[job.name] = (calls[job.name] ?? 0) + 1;
      if (job.name === 'refused-once' && calls[job.name] === 1) throw new UpstreamLimitError('shop.api', 300, '429');
      return `${job.name} done`;
    },
  }),
  { connection, prefix, concurrency: 2 },
);
try {
  await events.waitUntilReady();
  const jobs = await queue.addBulk([{ name: 'plain', data: {} }, { name: 'refused-once', data: {}, opts: { attempts: 1 } }]);
  const results = await Promise.all(jobs.map((j) => j.waitUntilFinished(events, 20_000)));
  const refused = await queue.getJob(jobs[1].id);
  console.log(JSON.stringify({ results, calls, attemptsMade: refused.attemptsMade, penalties: (await throttler.inspect('shop.api')).counters.penalties }));
} finally {
  await worker.close();
  await events.close();
  await queue.obliterate({ force: true });
  await queue.close();
  await throttler.close();
  connection.disconnect();
  eventsConnection.disconnect();
}
