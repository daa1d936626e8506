/**
 * The BullMQ side of a worker: one Worker per process, whose processor gives every job a fresh
 * browser context behind a throttle gate and runs the discovery or harvesting logic in it.
 *
 * How a job ends:
 * - returns: completed;
 * - JobDeferredError (the throttle's wait is too long, or TikTok pushed back): the job goes back to the
 *   queue with `job.moveToDelayed(until, token)` + `DelayedError`, which does NOT spend an attempt,
 *   and only this job waits: the queue is never paused (no `worker.rateLimit`), so jobs for other
 *   endpoints keep going;
 * - UnrecoverableError (invalid payload, unknown priority; the crawl's FinalOutcomeError: account or
 *   hashtag missing, mapped here once): failed at
 *   once, no retry; the worker goes on with the next job;
 * - anything else (transient errors past the in-job retries, Redis down): a failed attempt,
 *   retried by BullMQ with the queue's backoff.
 */
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Browser } from 'playwright';
import { enqueueDiscovery, enqueueHarvesting } from '../../jobs/producers.js';
import type { SluiceQueues } from '../../jobs/queues.js';
import { QueueName } from '../../jobs/queues.js';
import { parseJob, type DiscoveryJob, type DiscoveryResume, type HarvestingJob, type JobKind } from '../../jobs/schemas.js';
import { InvalidPayloadError } from 'sluice';
import { bullmqPrefix, deferJob } from 'sluice/bullmq';
import type { Logger } from 'sluice';
import type { ResultsStore } from '../results/store.js';
import type { Throttler } from 'sluice';
import { tiktokUrls } from '../tiktok/index.js';
import { JobDeferredError } from 'sluice';
import { FinalOutcomeError } from './errors.js';
import { discover, type DiscoveryResult, type FoundBatch } from './discovery.js';
import { coalescePenalties, ServerErrorWatch, type Exchange } from './gate.js';
import { harvest, type HarvestResult } from './harvesting.js';
import { ContextPool } from './pool.js';
import { Session } from './session.js';
import type { FleetSettings } from './settings.js';

export interface FleetWorkerOptions {
  kind: JobKind;
  /** BullMQ connection (ioredis with `maxRetriesPerRequest: null`); borrowed, not closed. */
  connection: Redis;
  namespace: string;
  browser: Browser;
  /** The throttler every request goes through; `null` disables the throttle (demo `--no-throttle`). */
  throttler: Throttler | null;
  /** Names of the throttler's priorities, to refuse a job with an unknown one up front. */
  priorities: readonly string[];
  /** TikTok's (or the simulator's) base URL. */
  baseUrl: string;
  settings: FleetSettings;
  /** Discovery: where found handles (and followed seeds) are enqueued. */
  queues?: Pick<SluiceQueues, 'discovery' | 'harvesting'>;
  /** Harvesting: where profiles are recorded. */
  store?: Pick<ResultsStore, 'recordProfile'>;
  logger: Logger;
  /** Worker name, stored on each job it processes (`job.processedBy`). */
  name?: string;
  /** Observer of every request sent to TikTok (tests, stats). */
  onExchange?: (exchange: Exchange) => void;
  /** Start fetching jobs at once. Default true. */
  autorun?: boolean;
}

export type FleetJobResult = DiscoveryResult | HarvestResult;

function parsePayload<K extends JobKind>(kind: K, data: unknown, priorities: readonly string[]) {
  let payload;
  try {
    payload = parseJob(kind, data);
  } catch (err) {
    if (err instanceof InvalidPayloadError) throw new UnrecoverableError(err.message);
    throw err;
  }
  if (!priorities.includes(payload.priority)) {
    throw new UnrecoverableError(`invalid ${kind} job: priority "${payload.priority}" is not one of ${priorities.join(', ')}`);
  }
  return payload;
}

/** Enqueues what a discovery job found: harvesting for every handle, and the followed seeds. */
function discoverySink(job: DiscoveryJob, options: FleetWorkerOptions, log: Logger): (batch: FoundBatch) => Promise<void> {
  const { queues, settings } = options;
  if (!queues) throw new Error('a discovery worker needs queues');
  const { tenant, priority, maxProfiles } = job;
  const report = (what: string, r: { invalid: { index: number; error: Error }[] }) => {
    for (const bad of r.invalid) log.warn({ what, error: bad.error.message }, 'found value refused by the producer');
  };
  return async ({ handles, hashtags }) => {
    // following creators: the harvesting job reads the profile page and hands the creator's list
    // on (followCreator), so the page is fetched once
    const followCreator = settings.follow.creators ? { followCreator: true } : {};
    if (handles.length > 0) {
      report('handle', await enqueueHarvesting(queues.harvesting, handles.map((handle) => ({ handle, tenant, priority, source: job.seed, ...followCreator }))));
    }
    const follow = settings.follow.hashtags ? hashtags.map((value) => ({ kind: 'hashtag' as const, value })) : [];
    if (follow.length > 0) {
      report('seed', await enqueueDiscovery(queues.discovery, follow.map((seed) => ({ seed, tenant, priority, ...(maxProfiles ? { maxProfiles } : {}) }))));
    }
  };
}

/**
 * The creator's videos, after its profile was harvested: a creator discovery job that starts at
 * the first list page from the secUid the page gave (it never fetches the profile page itself).
 * Nothing to list for a private creator or one without videos.
 */
async function followCreator(job: HarvestingJob, harvested: HarvestResult, options: FleetWorkerOptions): Promise<void> {
  if (harvested.private || harvested.secUid === undefined || harvested.videoCount === 0) return;
  if (!options.queues) throw new Error('a harvesting worker that follows creators needs queues');
  await enqueueDiscovery(options.queues.discovery, {
    seed: { kind: 'creator', value: job.handle },
    tenant: job.tenant,
    priority: job.priority,
    resume: { list: 'items', cursor: '0', secUid: harvested.secUid, found: 0 },
  });
}

/** Creates the BullMQ worker of one queue; every job runs in its own gated browser context. */
export function createFleetWorker(options: FleetWorkerOptions): Worker {
  const { kind, settings } = options;
  const urls = tiktokUrls({ baseUrl: options.baseUrl });
  const log = options.logger.child({ component: 'worker', queue: kind });
  const pool = new ContextPool(options.browser, settings.concurrency);
  pool.warm();
  // 5xx bursts are seen across the jobs of this process, not within one job
  const serverErrors = new ServerErrorWatch();
  // and the jobs' push-backs of one moment are one penalty, not one each
  const throttler = options.throttler === null ? null : coalescePenalties(options.throttler);

  const processor = async (job: Job, token?: string): Promise<FleetJobResult> => {
    const payload = parsePayload(kind, job.data, options.priorities);
    const jobLog = log.child({ jobId: job.id });
    const startedAt = Date.now();
    const session = await Session.open(pool, {
      throttler,
      baseUrl: options.baseUrl,
      priority: payload.priority,
      tenant: payload.tenant,
      maxWaitMs: settings.maxWaitMs,
      defaultPenaltyMs: settings.defaultPenaltyMs,
      requestTimeoutMs: settings.requestTimeoutMs,
      requestRetries: settings.requestRetries,
      assetHosts: settings.assetHosts,
      logger: jobLog,
      onExchange: options.onExchange,
      serverErrors,
    });
    const openedMs = Date.now() - startedAt;
    let checkpoint: DiscoveryResume | undefined;
    try {
      let result: FleetJobResult;
      if (kind === 'discovery') {
        const data = payload as DiscoveryJob;
        result = await discover(data, {
          session,
          urls,
          sink: discoverySink(data, options, jobLog),
          defaultMaxProfiles: settings.maxProfiles,
          followMentions: settings.follow.mentions,
          onCheckpoint: (resume) => (checkpoint = resume),
        });
      } else {
        if (!options.store) throw new Error('a harvesting worker needs a results store');
        const data = payload as HarvestingJob;
        const harvested = await harvest(data, { session, urls, store: options.store });
        if (data.followCreator) await followCreator(data, harvested, options);
        result = harvested;
      }
      jobLog.info({ ms: Date.now() - startedAt, openedMs, requests: session.gate.counters, result }, 'job done');
      return result;
    } catch (err) {
      if (checkpoint) {
        // the next attempt goes on reading the list from here
        await job.updateData({ ...(job.data as DiscoveryJob), resume: checkpoint }).catch((e: unknown) => jobLog.warn({ err: e }, 'could not save where the job stopped'));
        jobLog.info({ resume: checkpoint }, 'saved where the job stopped');
      }
      if (err instanceof JobDeferredError) {
        jobLog.info({ endpoint: err.endpoint, reason: err.reason, delayMs: err.delayMs }, 'job deferred');
        return deferJob(job, token, err.delayMs);
      }
      if (err instanceof FinalOutcomeError) throw new UnrecoverableError(err.message);
      throw err;
    } finally {
      session.close();
    }
  };

  const worker = new Worker(QueueName[kind], processor, {
    connection: options.connection,
    prefix: bullmqPrefix(options.namespace),
    concurrency: settings.concurrency,
    lockDuration: settings.lockDurationMs,
    stalledInterval: settings.stalledIntervalMs,
    autorun: options.autorun ?? true,
    ...(options.name ? { name: options.name } : {}),
  });
  worker.on('failed', (job, err) => {
    log.warn({ jobId: job?.id, attemptsMade: job?.attemptsMade, err: err.message, final: err instanceof UnrecoverableError || err.name === 'UnrecoverableError' }, 'job failed');
  });
  worker.on('error', (err) => log.error({ err }, 'worker error'));
  worker.on('closed', () => void pool.close());
  return worker;
}
