/**
 * The two BullMQ queues of a Sluice namespace and their default job options.
 *
 * Queues always get the tagged prefix from `bullmqPrefix()` (`sluice:{ns:bull}`): BullMQ's
 * scripts touch several keys of a queue at once, and its default prefix `bull` would put them in
 * different Cluster slots (CROSSSLOT). Workers must use the same prefix:
 * `new Worker(QueueName.harvesting, fn, { connection, prefix: bullmqPrefix(ns) })`.
 */
import { Queue, type ConnectionOptions, type DefaultJobOptions } from 'bullmq';
import { bullmqPrefix } from 'sluice/bullmq';
import type { DiscoveryJob, HarvestingJob } from './schemas.js';

/** Queue names; also the job names used inside each queue. */
export const QueueName = {
  discovery: 'discovery',
  harvesting: 'harvesting',
} as const;
export type QueueName = (typeof QueueName)[keyof typeof QueueName];

export type DiscoveryQueue = Queue<DiscoveryJob, unknown, 'discovery'>;
export type HarvestingQueue = Queue<HarvestingJob, unknown, 'harvesting'>;
/** The queue type of each queue name. */
export interface QueueByName {
  discovery: DiscoveryQueue;
  harvesting: HarvestingQueue;
}

/**
 * Default job options of both queues.
 *
 * - `attempts: 5` with exponential backoff from 5 s (5, 10, 20, 40 s) and 50% jitter: a TikTok
 *   hiccup hits many jobs at once, and without jitter their retries would all land on the same
 *   millisecond and trip the rate limit again.
 * - Finished jobs are kept for inspection but bounded by age and count, so a fleet harvesting
 *   millions of profiles a day keeps a bounded queue in Redis. Deduplication does not depend on
 *   these jobs being kept (see `producers.ts`).
 */
export const defaultJobOptions: Readonly<DefaultJobOptions> = Object.freeze({
  attempts: 5,
  backoff: { type: 'exponential', delay: 5_000, jitter: 0.5 },
  /** One day, at most 10 000 completed jobs. */
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  /** A week to look into failures, at most 50 000 failed jobs. */
  removeOnFail: { age: 7 * 24 * 3600, count: 50_000 },
});

export interface QueueFactoryOptions {
  /**
   * BullMQ connection: an ioredis instance (shared: `close()` on the queue leaves it open) or
   * connection options (the queue owns its connection).
   */
  connection: ConnectionOptions;
  /** The Sluice namespace: selects the tagged BullMQ prefix. */
  namespace: string;
  /** Overrides merged over {@link defaultJobOptions}, key by key. */
  defaultJobOptions?: DefaultJobOptions;
  /**
   * The throttle's priority classes and their weights (`throttle.priorities` of the config): the
   * producers turn a job's class into BullMQ's pull order with them (see {@link pullOrder}).
   * Default: none, jobs are pulled first in, first out whatever their class.
   */
  priorities?: Readonly<Record<string, number>>;
}

/** The priority classes each queue was created with, for the producers (a BullMQ Queue has no slot for them). */
const prioritiesOf = new WeakMap<object, Readonly<Record<string, number>>>();

/** The priority classes a queue was created with by {@link createQueue}, if any. */
export function queuePriorities(queue: object): Readonly<Record<string, number>> | undefined {
  return prioritiesOf.get(queue);
}

/**
 * BullMQ's job `priority` for each class: the heaviest class is 1 (pulled first), the next 2, and
 * so on; classes of equal weight share a number. BullMQ pulls jobs without a priority before any
 * prioritized job, so every job of a queue with classes gets one.
 */
export function pullOrder(priorities: Readonly<Record<string, number>>): Map<string, number> {
  const weights = [...new Set(Object.values(priorities))].sort((a, b) => b - a);
  return new Map(Object.entries(priorities).map(([name, w]) => [name, weights.indexOf(w) + 1]));
}

/** Creates one queue of a namespace with the tagged prefix and the default job options. */
export function createQueue<N extends QueueName>(name: N, options: QueueFactoryOptions): QueueByName[N] {
  const queue = new Queue(name, {
    connection: options.connection,
    prefix: bullmqPrefix(options.namespace),
    defaultJobOptions: { ...defaultJobOptions, ...options.defaultJobOptions },
  }) as QueueByName[N];
  if (options.priorities) prioritiesOf.set(queue, options.priorities);
  return queue;
}

export interface SluiceQueues {
  discovery: DiscoveryQueue;
  harvesting: HarvestingQueue;
  /** Closes both queues (and their connections unless the connection was a shared instance). */
  close(): Promise<void>;
}

/** Creates both queues of a namespace. */
export function createQueues(options: QueueFactoryOptions): SluiceQueues {
  const discovery = createQueue(QueueName.discovery, options);
  const harvesting = createQueue(QueueName.harvesting, options);
  return {
    discovery,
    harvesting,
    async close() {
      await Promise.all([discovery.close(), harvesting.close()]);
    },
  };
}
