/**
 * Producers: validate payloads and put them on the queues, at most once per period.
 *
 * Idempotence is carried by BullMQ deduplication keys, not by the job id. Decision, and why:
 * - A job id only deduplicates while the job's hash exists, and finished jobs are removed by count
 *   (see `defaultJobOptions`) to bound memory; with a million handles a day the id of a harvested
 *   handle would be gone long before its period ends.
 * - Period buckets in ids (`floor(now / period)`) let a handle be harvested twice a minute apart
 *   across a bucket boundary.
 * A deduplication key (`<prefix>:<queue>:de:<id>`) is one small string with a TTL of the period:
 * while it lives, adding the same handle or seed returns the existing job instead of a new one, even
 * after that job completed and was removed. Memory stays bounded (every key expires) and the window
 * slides from the first enqueue.
 *
 * Job ids stay readable (`h-<handle>-<stamp>`, `d-<kind>-<value>-<stamp>`) and unique per attempt,
 * so a duplicate is recognized exactly: BullMQ answers with the id of the job that already holds the
 * deduplication key, which differs from the id we proposed. Ids never contain `:` (BullMQ 6.7
 * refuses custom ids with `:` unless they split into exactly three parts, a legacy repeat-job
 * format) and never are plain integers (also refused). The current job of a handle is found with
 * `queue.getDeduplicationJobId(harvestDedupId(handle))`.
 *
 * Deduplication is per namespace, not per tenant: the results store is shared by the namespace, so
 * harvesting a profile once serves every tenant. The first enqueue's tenant wins; its priority wins
 * unless a re-enqueue asks for a higher one while the job has not started (waiting, prioritized or
 * delayed): then the job is raised (BullMQ's `changePriority`, and the payload's class for the
 * throttle) and the report counts it in `raised`. A job already running or finished keeps its
 * priority, and the report counts that in `notRaised`: never a silent drop.
 * A job that failed for good still holds its key until the period ends; to retry it sooner, call
 * `queue.removeDeduplicationKey(harvestDedupId(handle))` first.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { BulkJobOptions, JobType } from 'bullmq';
import { InvalidPayloadError } from 'sluice';
import { pullOrder, queuePriorities, QueueName, type DiscoveryQueue, type HarvestingQueue } from './queues.js';
import {
  parseJob,
  type DiscoveryJob,
  type DiscoveryJobInput,
  type HarvestingJob,
  type HarvestingJobInput,
  type JobKind,
  type JobPayloads,
  type Seed,
} from './schemas.js';

/** Default deduplication period: a handle or seed is enqueued at most once a day. */
export const DEFAULT_DEDUP_PERIOD_MS = 24 * 3600 * 1000;
/** Default number of jobs per `addBulk` call (one Redis pipeline). */
export const DEFAULT_CHUNK_SIZE = 1_000;

export interface EnqueueOptions {
  /**
   * Deduplication window in ms, counted from the first enqueue of a handle or seed. `0` dedupes
   * only while the job is waiting or running (BullMQ's simple mode). Default: 24 h.
   */
  periodMs?: number;
  /** Jobs per `addBulk` pipeline, 1-10000. Default: 1000. */
  chunkSize?: number;
  /**
   * Called after each chunk with the number of payloads handled so far (enqueued, duplicate or
   * invalid) and the total when known, so a CLI can draw a progress bar.
   */
  onProgress?: (done: number, total: number | undefined) => void;
  /** Total number of payloads, for iterables whose size is not known in advance (progress only). */
  total?: number;
  /**
   * The throttle's priority classes and their weights: a job's class sets BullMQ's pull order
   * (heaviest first, see `pullOrder`) and a class outside them is refused. Default: the
   * `priorities` the queue was created with (`createQueues`); without any, jobs are pulled in
   * arrival order.
   */
  priorities?: Readonly<Record<string, number>>;
  /**
   * Backpressure: the most jobs the queue may hold that no worker has started (waiting,
   * prioritized, delayed). Above it the call waits up to `waitMs` for room, then throws
   * {@link BacklogFullError}; what fitted before that is enqueued. Default: no limit.
   */
  maxBacklog?: number;
  /** How long to wait for room under `maxBacklog` before refusing, in ms. Default 0: refuse at once. */
  waitMs?: number;
  /** How often the backlog is read again while waiting for room, in ms. Default 1000. */
  pollMs?: number;
}

/** Outcome of enqueuing one payload. */
export interface EnqueuedJob {
  /** Id of the job that holds this handle or seed: the new job, or the existing one if a duplicate. */
  jobId: string;
  /** True when the handle or seed was already enqueued within the period: nothing new was added. */
  duplicate: boolean;
  /** A duplicate that asked for a higher priority: true if its job was raised, false if it had already started or finished. */
  raised?: boolean;
  /** Jobs in the queue that no worker has started yet (waiting, prioritized, delayed), after this call. */
  depth: number;
}

/** A batch item refused at enqueue; nothing was added for it. */
export interface RefusedPayload {
  /** Position of the item in the batch (0-based). */
  index: number;
  error: InvalidPayloadError;
}

/**
 * Outcome of enqueuing a batch. Decision: a batch is not all-or-nothing; the valid items are
 * enqueued and the invalid ones listed, because one bad line must not block a million-seed import.
 */
export interface EnqueueReport {
  enqueued: number;
  /** Already enqueued within the period: nothing new added (the raised ones included). */
  duplicates: number;
  /** Duplicates whose waiting job was raised to the higher priority they asked for. */
  raised: number;
  /** Duplicates that asked for a higher priority, but whose job had already started or finished. */
  notRaised: number;
  invalid: RefusedPayload[];
  /** Jobs in the queue that no worker has started yet (waiting, prioritized, delayed), after this call. */
  depth: number;
}

/**
 * The queue already holds `maxBacklog` jobs not yet started and no room came within `waitMs`.
 * A producer's cue to slow down, not a failure: `report` tells what was enqueued before it.
 */
export class BacklogFullError extends Error {
  readonly code = 'BACKLOG_FULL';
  constructor(
    readonly queue: string,
    readonly depth: number,
    readonly maxBacklog: number,
    /** What the call enqueued before the backlog filled up. */
    readonly report: EnqueueReport,
  ) {
    super(
      `queue "${queue}" holds ${depth} jobs not yet started (max backlog ${maxBacklog}): ` +
        `${report.enqueued} enqueued, the rest refused; retry later, or wait for room`,
    );
    this.name = 'BacklogFullError';
  }
}

/** States in which a job has not started: its priority can still change the order it is pulled in. */
const NOT_STARTED = new Set(['waiting', 'prioritized', 'delayed', 'waiting-children']);
/** Job counts that make up the backlog. */
const BACKLOG_TYPES: JobType[] = ['waiting', 'prioritized', 'delayed'];

/** Deduplication id of a handle (normalized: lowercase, no `@`). */
export function harvestDedupId(handle: string): string {
  return `h-${handle}`;
}

/**
 * Deduplication id of a seed (normalized by the schema). Keywords are compared case-insensitively,
 * the other kinds are lowercase or numeric already.
 */
export function discoveryDedupId(seed: Seed): string {
  return `d-${seed.kind}-${seed.value.toLowerCase()}`;
}

/** Unique per attempt: time for readability and ordering, random bits for two adds in one ms. */
function stamp(): string {
  return `${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
}

/** Keyword text may hold `:` or blanks, which job ids must not: it is replaced by a short digest. */
function seedIdPart(seed: Seed): string {
  if (seed.kind !== 'keyword') return seed.value;
  return createHash('sha1').update(seed.value.toLowerCase()).digest('hex').slice(0, 12);
}

interface AddRequest<T> {
  name: string;
  data: T;
  opts: BulkJobOptions & { jobId: string };
}

/** How one job kind becomes a BullMQ add request. */
interface Plan<K extends JobKind> {
  kind: K;
  jobId(data: JobPayloads[K]): string;
  dedupId(data: JobPayloads[K]): string;
}

const discoveryPlan: Plan<'discovery'> = {
  kind: 'discovery',
  jobId: (data) => `d-${data.seed.kind}-${seedIdPart(data.seed)}-${stamp()}`,
  dedupId: (data) => discoveryDedupId(data.seed),
};

const harvestingPlan: Plan<'harvesting'> = {
  kind: 'harvesting',
  jobId: (data) => `h-${data.handle}-${stamp()}`,
  dedupId: (data) => harvestDedupId(data.handle),
};

/** The slice of a BullMQ job the producers use. */
interface ExistingJob<T> {
  data: T;
  priority: number;
  getState(): Promise<string>;
  updateData(data: T): Promise<void>;
  changePriority(opts: { priority: number }): Promise<void>;
}

/** The slice of a BullMQ queue the producers use (a `Queue` of the right data type). */
interface AddableQueue<T> {
  readonly name: string;
  add(name: string, data: T, opts?: BulkJobOptions & { jobId?: string }): Promise<{ id?: string | undefined }>;
  addBulk(jobs: { name: string; data: T; opts?: BulkJobOptions }[]): Promise<{ id?: string | undefined }[]>;
  getJob(id: string): Promise<ExistingJob<T> | undefined>;
  getJobCounts(...types: JobType[]): Promise<Record<string, number>>;
}

interface Checked {
  periodMs: number;
  chunkSize: number;
  /** BullMQ priority per class, when the classes are known. */
  order: Map<string, number> | undefined;
  maxBacklog: number | undefined;
  waitMs: number;
  pollMs: number;
}

function checkOptions(queue: object, options: EnqueueOptions): Checked {
  const periodMs = options.periodMs ?? DEFAULT_DEDUP_PERIOD_MS;
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const { maxBacklog, waitMs = 0, pollMs = 1_000 } = options;
  if (maxBacklog !== undefined && !(Number.isSafeInteger(maxBacklog) && maxBacklog >= 1)) {
    throw new RangeError(`maxBacklog must be a whole number >= 1 (received ${String(maxBacklog)})`);
  }
  if (!(Number.isFinite(waitMs) && waitMs >= 0)) throw new RangeError(`waitMs must be a number of ms >= 0 (received ${String(waitMs)})`);
  if (!(Number.isFinite(pollMs) && pollMs >= 1)) throw new RangeError(`pollMs must be a number of ms >= 1 (received ${String(pollMs)})`);
  const priorities = options.priorities ?? queuePriorities(queue);
  if (!Number.isSafeInteger(periodMs) || periodMs < 0) {
    throw new RangeError(`periodMs must be a whole number of ms >= 0 (received ${String(options.periodMs)})`);
  }
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1 || chunkSize > 10_000) {
    throw new RangeError(`chunkSize must be a whole number from 1 to 10000 (received ${String(options.chunkSize)})`);
  }
  return { periodMs, chunkSize, order: priorities ? pullOrder(priorities) : undefined, maxBacklog, waitMs, pollMs };
}

/** Jobs of the queue no worker has started. */
async function depthOf(queue: AddableQueue<unknown>): Promise<number> {
  const counts = await queue.getJobCounts(...BACKLOG_TYPES);
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/**
 * How many of `want` jobs may be added now under the backlog limit; waits for room up to
 * `waitMs`, then throws BacklogFullError with what was enqueued so far.
 */
async function room(queue: AddableQueue<unknown>, want: number, c: Checked, report: EnqueueReport, started: number): Promise<number> {
  if (c.maxBacklog === undefined) return want;
  for (;;) {
    const depth = await depthOf(queue);
    if (depth < c.maxBacklog) return Math.min(want, c.maxBacklog - depth);
    const left = started + c.waitMs - Date.now();
    if (left <= 0) throw new BacklogFullError(queue.name, depth, c.maxBacklog, { ...report, depth });
    await new Promise((resolve) => setTimeout(resolve, Math.min(c.pollMs, left)));
  }
}

/**
 * A duplicate asked for a higher priority than its job has: raise the job if it has not started
 * (payload class first, so a worker that pulls it meanwhile throttles it in the new class).
 * Undefined when there was nothing to raise.
 */
async function raiseDuplicate<T extends { priority: string }>(queue: AddableQueue<T>, jobId: string, req: AddRequest<T>): Promise<boolean | undefined> {
  const wanted = req.opts.priority;
  if (wanted === undefined) return undefined;
  const job = await queue.getJob(jobId);
  // gone: finished and removed, while its deduplication key still runs
  if (!job) return false;
  // 0: added without classes, which BullMQ pulls before any prioritized job: nothing to gain
  if (job.priority === 0 || job.priority <= wanted) return undefined;
  if (!NOT_STARTED.has(await job.getState())) return false;
  await job.updateData({ ...job.data, priority: req.data.priority });
  await job.changePriority({ priority: wanted });
  return true;
}

function checkQueue(queue: { name: string }, kind: JobKind): void {
  // A discovery payload on the harvesting queue would be refused by every worker, after retries.
  if (queue.name !== QueueName[kind]) {
    throw new TypeError(`a ${kind} job needs the "${QueueName[kind]}" queue, got "${queue.name}"`);
  }
}

function request<K extends JobKind>(plan: Plan<K>, data: JobPayloads[K], c: Checked): AddRequest<JobPayloads[K]> {
  const { periodMs, order } = c;
  const priority = order?.get(data.priority);
  if (order && priority === undefined) {
    throw new InvalidPayloadError(`invalid ${plan.kind} job: priority "${data.priority}" is not one of ${[...order.keys()].join(', ')}`);
  }
  return {
    name: plan.kind,
    data,
    opts: {
      jobId: plan.jobId(data),
      ...(priority !== undefined ? { priority } : {}),
      // ttl 0 would be sent as "no ttl", which is BullMQ's simple mode: the intended meaning of 0.
      deduplication: periodMs > 0 ? { id: plan.dedupId(data), ttl: periodMs } : { id: plan.dedupId(data) },
    },
  };
}

function isBatch(value: unknown): value is Iterable<unknown> | AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && (Symbol.iterator in value || Symbol.asyncIterator in value);
}

async function enqueueOne<K extends JobKind>(
  queue: AddableQueue<JobPayloads[K]>,
  plan: Plan<K>,
  payload: unknown,
  options: EnqueueOptions,
): Promise<EnqueuedJob> {
  const c = checkOptions(queue, options);
  checkQueue(queue, plan.kind);
  const add = request(plan, parseJob(plan.kind, payload), c);
  await room(queue, 1, c, { enqueued: 0, duplicates: 0, raised: 0, notRaised: 0, invalid: [], depth: 0 }, Date.now());
  const job = await queue.add(add.name, add.data, add.opts);
  const jobId = job.id ?? add.opts.jobId;
  const duplicate = jobId !== add.opts.jobId;
  const raised = duplicate ? await raiseDuplicate(queue, jobId, add) : undefined;
  return { jobId, duplicate, ...(raised !== undefined ? { raised } : {}), depth: await depthOf(queue) };
}

async function enqueueMany<K extends JobKind>(
  queue: AddableQueue<JobPayloads[K]>,
  plan: Plan<K>,
  payloads: Iterable<unknown> | AsyncIterable<unknown>,
  options: EnqueueOptions,
): Promise<EnqueueReport> {
  const c = checkOptions(queue, options);
  const { chunkSize } = c;
  checkQueue(queue, plan.kind);
  const started = Date.now();
  const total = options.total ?? (Array.isArray(payloads) ? payloads.length : undefined);
  const report: EnqueueReport = { enqueued: 0, duplicates: 0, raised: 0, notRaised: 0, invalid: [], depth: 0 };
  let chunk: AddRequest<JobPayloads[K]>[] = [];
  let seen = 0;

  const flush = async () => {
    while (chunk.length > 0) {
      const requests = chunk.splice(0, await room(queue, chunk.length, c, report, started));
      const jobs = await queue.addBulk(requests);
      const raises = requests.map((req, i) => {
        const id = jobs[i]?.id;
        // BullMQ returns the id of the job holding the deduplication key: ours if it is new.
        if (id === req.opts.jobId) {
          report.enqueued += 1;
          return undefined;
        }
        report.duplicates += 1;
        return id === undefined ? undefined : raiseDuplicate(queue, id, req);
      });
      for (const raised of await Promise.all(raises)) {
        if (raised === true) report.raised += 1;
        else if (raised === false) report.notRaised += 1;
      }
    }
    options.onProgress?.(seen, total);
  };

  for await (const payload of payloads) {
    const index = seen;
    seen += 1;
    try {
      chunk.push(request(plan, parseJob(plan.kind, payload), c));
    } catch (error) {
      if (!(error instanceof InvalidPayloadError)) throw error;
      report.invalid.push({ index, error });
    }
    if (chunk.length >= chunkSize) await flush();
  }
  await flush();
  report.depth = await depthOf(queue);
  return report;
}

/**
 * Enqueues discovery jobs, at most one per seed within the period.
 *
 * One payload: resolves to `{ jobId, duplicate }` and throws `InvalidPayloadError` if it is
 * invalid. An array or (async) iterable: added with `addBulk` in chunks, resolves to
 * `{ enqueued, duplicates, invalid }`; invalid items are listed and skipped, the others added.
 * A Redis error rejects the call; re-running the same batch is safe (duplicates are skipped).
 */
export function enqueueDiscovery(queue: DiscoveryQueue, payload: DiscoveryJobInput, options?: EnqueueOptions): Promise<EnqueuedJob>;
export function enqueueDiscovery(
  queue: DiscoveryQueue,
  payloads: Iterable<unknown> | AsyncIterable<unknown>,
  options?: EnqueueOptions,
): Promise<EnqueueReport>;
export function enqueueDiscovery(
  queue: DiscoveryQueue,
  payloads: unknown,
  options: EnqueueOptions = {},
): Promise<EnqueuedJob | EnqueueReport> {
  const q = queue as unknown as AddableQueue<DiscoveryJob>;
  return isBatch(payloads) ? enqueueMany(q, discoveryPlan, payloads, options) : enqueueOne(q, discoveryPlan, payloads, options);
}

/**
 * Enqueues harvesting jobs, at most one per handle within the period. Same contract as
 * {@link enqueueDiscovery}: one payload or a batch.
 */
export function enqueueHarvesting(queue: HarvestingQueue, payload: HarvestingJobInput, options?: EnqueueOptions): Promise<EnqueuedJob>;
export function enqueueHarvesting(
  queue: HarvestingQueue,
  payloads: Iterable<unknown> | AsyncIterable<unknown>,
  options?: EnqueueOptions,
): Promise<EnqueueReport>;
export function enqueueHarvesting(
  queue: HarvestingQueue,
  payloads: unknown,
  options: EnqueueOptions = {},
): Promise<EnqueuedJob | EnqueueReport> {
  const q = queue as unknown as AddableQueue<HarvestingJob>;
  return isBatch(payloads) ? enqueueMany(q, harvestingPlan, payloads, options) : enqueueOne(q, harvestingPlan, payloads, options);
}
