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
 * harvesting a profile once serves every tenant. The first enqueue's tenant and priority win.
 * A job that failed for good still holds its key until the period ends; to retry it sooner, call
 * `queue.removeDeduplicationKey(harvestDedupId(handle))` first.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { BulkJobOptions } from 'bullmq';
import { InvalidPayloadError } from 'sluice';
import { QueueName, type DiscoveryQueue, type HarvestingQueue } from './queues.js';
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
}

/** Outcome of enqueuing one payload. */
export interface EnqueuedJob {
  /** Id of the job that holds this handle or seed: the new job, or the existing one if a duplicate. */
  jobId: string;
  /** True when the handle or seed was already enqueued within the period: nothing new was added. */
  duplicate: boolean;
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
  duplicates: number;
  invalid: RefusedPayload[];
}

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

/** The slice of a BullMQ queue the producers use (a `Queue` of the right data type). */
interface AddableQueue<T> {
  readonly name: string;
  add(name: string, data: T, opts?: BulkJobOptions & { jobId?: string }): Promise<{ id?: string | undefined }>;
  addBulk(jobs: { name: string; data: T; opts?: BulkJobOptions }[]): Promise<{ id?: string | undefined }[]>;
}

function checkOptions(options: EnqueueOptions): { periodMs: number; chunkSize: number } {
  const periodMs = options.periodMs ?? DEFAULT_DEDUP_PERIOD_MS;
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isSafeInteger(periodMs) || periodMs < 0) {
    throw new RangeError(`periodMs must be a whole number of ms >= 0 (received ${String(options.periodMs)})`);
  }
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1 || chunkSize > 10_000) {
    throw new RangeError(`chunkSize must be a whole number from 1 to 10000 (received ${String(options.chunkSize)})`);
  }
  return { periodMs, chunkSize };
}

function checkQueue(queue: { name: string }, kind: JobKind): void {
  // A discovery payload on the harvesting queue would be refused by every worker, after retries.
  if (queue.name !== QueueName[kind]) {
    throw new TypeError(`a ${kind} job needs the "${QueueName[kind]}" queue, got "${queue.name}"`);
  }
}

function request<K extends JobKind>(plan: Plan<K>, data: JobPayloads[K], periodMs: number): AddRequest<JobPayloads[K]> {
  return {
    name: plan.kind,
    data,
    opts: {
      jobId: plan.jobId(data),
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
  const { periodMs } = checkOptions(options);
  checkQueue(queue, plan.kind);
  const add = request(plan, parseJob(plan.kind, payload), periodMs);
  const job = await queue.add(add.name, add.data, add.opts);
  const jobId = job.id ?? add.opts.jobId;
  return { jobId, duplicate: jobId !== add.opts.jobId };
}

async function enqueueMany<K extends JobKind>(
  queue: AddableQueue<JobPayloads[K]>,
  plan: Plan<K>,
  payloads: Iterable<unknown> | AsyncIterable<unknown>,
  options: EnqueueOptions,
): Promise<EnqueueReport> {
  const { periodMs, chunkSize } = checkOptions(options);
  checkQueue(queue, plan.kind);
  const total = options.total ?? (Array.isArray(payloads) ? payloads.length : undefined);
  const report: EnqueueReport = { enqueued: 0, duplicates: 0, invalid: [] };
  let chunk: AddRequest<JobPayloads[K]>[] = [];
  let seen = 0;

  const flush = async () => {
    if (chunk.length > 0) {
      const requests = chunk;
      chunk = [];
      const jobs = await queue.addBulk(requests);
      requests.forEach((req, i) => {
        // BullMQ returns the id of the job holding the deduplication key: ours if it is new.
        if (jobs[i]?.id === req.opts.jobId) report.enqueued += 1;
        else report.duplicates += 1;
      });
    }
    options.onProgress?.(seen, total);
  };

  for await (const payload of payloads) {
    const index = seen;
    seen += 1;
    try {
      chunk.push(request(plan, parseJob(plan.kind, payload), periodMs));
    } catch (error) {
      if (!(error instanceof InvalidPayloadError)) throw error;
      report.invalid.push({ index, error });
    }
    if (chunk.length >= chunkSize) await flush();
  }
  await flush();
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
