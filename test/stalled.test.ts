/**
 * A harvesting worker process killed with -9 in the middle of a job loses nothing: BullMQ's
 * stalled-job check in the surviving worker hands the job on, every job completes exactly once,
 * and the results hold each profile once.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { bullmqPrefix } from '../src/bullmq/index.js';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { enqueueHarvesting } from '../jobs/producers.js';
import { createQueues, type SluiceQueues } from '../jobs/queues.js';
import { DEMO_CONFIG_PATH } from '../workers/demo/config.js';
import { isReady, logTail, spawnWorker, stopWorker, type WorkerProcess } from '../workers/demo/workers.js';
import { Keys } from '../src/keys.js';
import { ResultsStore } from '../workers/results/store.js';
import { startSimulator, type Simulator } from '../workers/simulator/index.js';
import { redisUrl, testNamespace, until } from './support/helpers.js';

let dir: string;
let sim: Simulator;
let redis: Redis;
let queues: SluiceQueues;
let events: QueueEvents;
const namespace = testNamespace('stalled');
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-stalled-'));
  // the demo's config, with a slow profile rate so jobs are still running when one worker dies
  const config = parse(readFileSync(DEMO_CONFIG_PATH, 'utf8')) as Record<string, any>;
  config.throttle.endpoints['tiktok.profile'] = { rate: '3/s', burst: 1 };
  config.fleet = { ...config.fleet, concurrency: 2, maxWaitMs: '60 s', lockDurationMs: '5 s', stalledIntervalMs: '1 s' };
  writeFileSync(join(dir, 'config.yml'), stringify(config));
  sim = await startSimulator({ graph: { seed: 'stalled', creators: 14 } });
  redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  queues = createQueues({ connection: redis, namespace });
  events = new QueueEvents('harvesting', { connection: redis.duplicate(), prefix: bullmqPrefix(namespace) });
  await events.waitUntilReady();
});

afterAll(async () => {
  await Promise.all(workers.map((w) => stopWorker(w, 5_000)));
  await events?.close();
  await queues?.discovery.obliterate({ force: true }).catch(() => undefined);
  await queues?.harvesting.obliterate({ force: true }).catch(() => undefined);
  await new ResultsStore(redis, namespace).clear().catch(() => undefined);
  await queues?.close();
  await redis?.quit();
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

const waitFor = <T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> =>
  until(what, probe, timeoutMs, () => workers.map((w) => `${w.label}:\n${logTail(w, 5)}`).join('\n'));

it('kill -9 of a worker mid-job: every job completes exactly once, no duplicate and no lost result', async () => {
  const env = { configPath: join(dir, 'config.yml'), redisUrl: redisUrl(), namespace, baseUrl: sim.url, throttle: true };
  for (const label of ['victim', 'survivor']) workers.push(spawnWorker('harvesting', label, env, join(dir, `${label}.log`)));
  const [victim, survivor] = workers as [WorkerProcess, WorkerProcess];
  await waitFor('both workers ready', async () => isReady(victim) && isReady(survivor), 90_000);

  const completions = new Map<string, number>();
  events.on('completed', ({ jobId }) => completions.set(jobId, (completions.get(jobId) ?? 0) + 1));
  const creators = sim.graph.creators.slice(0, 12);
  const report = await enqueueHarvesting(
    queues.harvesting,
    creators.map((c) => ({ handle: c.handle, tenant: 'acme', priority: 'normal', source: { kind: 'manual', value: 'stalled-test' } })),
  );
  expect(report.enqueued).toBe(creators.length);

  const victimName = `harvesting-${hostname()}-${victim.child.pid}`;
  const survivorName = `harvesting-${hostname()}-${survivor.child.pid}`;
  const interrupted = await waitFor('the victim holds an active job', async () => {
    const active = await queues.harvesting.getActive();
    return active.find((j) => j.processedBy === victimName);
  }, 60_000);
  victim.child.kill('SIGKILL');
  expect(await victim.exit).toBe('SIGKILL');

  await waitFor('every job completed', async () => (await queues.harvesting.getJobCountByTypes('completed')) === creators.length, 90_000);
  expect(await queues.harvesting.getJobCountByTypes('failed')).toBe(0);
  await waitFor('completion events', async () => completions.size === creators.length, 10_000);

  // the interrupted job was handed to the survivor and completed there, once
  const handedOn = (await queues.harvesting.getJob(interrupted.id!))!;
  expect(await handedOn.getState()).toBe('completed');
  expect(handedOn.processedBy).toBe(survivorName);
  for (const count of completions.values()) expect(count).toBe(1);

  const store = new ResultsStore(redis, namespace);
  expect((await store.counts()).profiles).toBe(creators.length);
  for (const c of creators) expect((await store.profile(c.handle))!.domains.sort()).toEqual([...c.domains].sort());
  const expectedDomains = new Set(creators.flatMap((c) => c.domains));
  expect((await store.counts()).domains).toBe(expectedDomains.size);

  // the survivor still shuts down gracefully
  expect(await stopWorker(survivor)).toBe(0);
}, 240_000);
