/**
 * `sluice enqueue discovery|harvesting`: puts seeds or handles on the queues, through the
 * producers (validated, deduplicated per period). Seeds come from repeatable options and/or a
 * seeds file (`--file`, streamed, one seed per line, see jobs/seeds.ts) with a progress line on
 * stderr. Invalid lines of a file are listed on stderr and skipped; the valid ones are enqueued.
 *
 * `--priority` is the throttle's class and BullMQ's pull order (heavier classes first); a
 * duplicate that asks for a higher priority raises its job if it has not started, and the summary
 * says which. The summary ends with the queue's depth (jobs not yet started); `--max-backlog N`
 * (or SLUICE_MAX_BACKLOG) refuses to go above it, `--wait 5min` waits that long for room first.
 */
import { access } from 'node:fs/promises';
import { enqueueDiscovery, enqueueHarvesting, type EnqueueOptions, type EnqueueReport } from '../../../jobs/producers.js';
import { createQueues } from '../../../jobs/queues.js';
import { readSeedsFile } from '../../../jobs/seeds.js';
import type { DiscoveryJobInput, HarvestingJobInput, SeedInput } from '../../../jobs/schemas.js';
import { loadConfigFile, resolveNamespace } from '../../config/load.js';
import { InvalidPayloadError } from 'sluice';
import { connectRedis } from '../../fleet/redis.js';

export interface EnqueueCommonOptions {
  config?: string;
  redis?: string;
  /** Namespace. Default: SLUICE_NAMESPACE, then the config file's. */
  namespace?: string;
  /** Tenant of the jobs. Default `default`. */
  tenant?: string;
  /** Priority of the jobs. Default: the config's defaultPriority. */
  priority?: string;
  /** Refuse to fill the queue beyond this many jobs not yet started. Default: SLUICE_MAX_BACKLOG, else no limit. */
  maxBacklog?: number;
  /** With a backlog limit: wait this long (ms) for room before refusing. Default 0. */
  wait?: number;
  /** Where the summary and the progress go. Default process.stdout / process.stderr. */
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
}

export interface EnqueueDiscoveryOptions extends EnqueueCommonOptions {
  hashtag?: string[];
  keyword?: string[];
  creator?: string[];
  video?: string[];
  /** A seeds file. */
  file?: string;
  maxProfiles?: number;
}

export interface EnqueueHarvestingOptions extends EnqueueCommonOptions {
  handle?: string[];
}

function classOf(opts: EnqueueCommonOptions, priorities: string[], defaultPriority: string | undefined) {
  const priority = opts.priority ?? defaultPriority ?? (priorities.includes('normal') ? 'normal' : priorities[0]!);
  if (!priorities.includes(priority)) throw new InvalidPayloadError(`--priority "${priority}" is not one of the configured priorities: ${priorities.join(', ')}`);
  return { tenant: opts.tenant ?? 'default', priority };
}

/** A progress line that rewrites itself on a terminal and prints at most once a second elsewhere. */
function progressWriter(err: NodeJS.WritableStream, label: string) {
  const tty = (err as { isTTY?: boolean }).isTTY === true;
  let last = 0;
  return {
    update(done: number, total: number | undefined, final = false) {
      const now = Date.now();
      if (!final && now - last < (tty ? 100 : 1000)) return;
      last = now;
      const text = `${label}: ${done.toLocaleString('en-US')}${total ? ` / ${total.toLocaleString('en-US')}` : ''} read`;
      err.write(tty ? `\r${text}${final ? '\n' : ''}` : `${text}\n`);
    },
  };
}

async function withQueues<T>(opts: EnqueueCommonOptions, fn: (q: ReturnType<typeof createQueues>, file: ReturnType<typeof loadConfigFile>) => Promise<T>): Promise<T> {
  const file = loadConfigFile(opts.config);
  const redis = await connectRedis(opts.redis ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const queues = createQueues({ connection: redis, namespace: resolveNamespace(file, opts.namespace), priorities: file.throttle.priorities });
  try {
    return await fn(queues, file);
  } finally {
    await queues.close().catch(() => undefined);
    await redis.quit().catch(() => redis.disconnect());
  }
}

/** The producer's backpressure options from the flags and SLUICE_MAX_BACKLOG. */
function backpressure(opts: EnqueueCommonOptions): Pick<EnqueueOptions, 'maxBacklog' | 'waitMs'> {
  const env = process.env.SLUICE_MAX_BACKLOG;
  let maxBacklog = opts.maxBacklog;
  if (maxBacklog === undefined && env !== undefined && env !== '') {
    maxBacklog = Number(env);
    if (!(Number.isSafeInteger(maxBacklog) && maxBacklog >= 1)) throw new InvalidPayloadError(`SLUICE_MAX_BACKLOG must be a whole number >= 1 (received ${JSON.stringify(env)})`);
  }
  if (opts.wait !== undefined && maxBacklog === undefined) throw new InvalidPayloadError('--wait needs a backlog limit to wait under: give --max-backlog N (or SLUICE_MAX_BACKLOG)');
  return { ...(maxBacklog !== undefined ? { maxBacklog } : {}), ...(opts.wait !== undefined ? { waitMs: opts.wait } : {}) };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function report(out: NodeJS.WritableStream, err: NodeJS.WritableStream, kind: string, r: EnqueueReport, lineOf: (i: number) => string, priority: string): void {
  for (const bad of r.invalid) err.write(`skipped ${lineOf(bad.index)}: ${bad.error.message}\n`);
  out.write(`enqueued ${plural(r.enqueued, `${kind} job`)} (${plural(r.duplicates, 'duplicate')} skipped, ${r.invalid.length} invalid)\n`);
  if (r.raised > 0) out.write(`raised ${plural(r.raised, 'waiting duplicate')} to priority ${priority}\n`);
  if (r.notRaised > 0) out.write(`kept ${plural(r.notRaised, 'duplicate')} at its old priority: already running or done (priority ${priority} not applied)\n`);
  out.write(`queue ${kind}: ${plural(r.depth, 'job')} not yet started\n`);
}

/** `sluice enqueue discovery`. Resolves with the producer's report. */
export async function enqueueDiscoveryCommand(opts: EnqueueDiscoveryOptions): Promise<EnqueueReport> {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const direct: SeedInput[] = [
    ...(opts.hashtag ?? []).map((value) => ({ kind: 'hashtag' as const, value })),
    ...(opts.keyword ?? []).map((value) => ({ kind: 'keyword' as const, value })),
    ...(opts.creator ?? []).map((value) => ({ kind: 'creator' as const, value })),
    ...(opts.video ?? []).map((value) => ({ kind: 'video' as const, value })),
  ];
  if (direct.length === 0 && !opts.file) throw new InvalidPayloadError('nothing to enqueue: give --hashtag, --keyword, --creator, --video or --file');
  if (opts.file) {
    await access(opts.file).catch((e: Error) => {
      throw new InvalidPayloadError(`cannot read seeds file ${opts.file}: ${e.message}`);
    });
  }
  return withQueues(opts, async (queues, file) => {
    const { tenant, priority } = classOf(opts, Object.keys(file.throttle.priorities ?? {}), file.throttle.defaultPriority);
    const extra = opts.maxProfiles !== undefined ? { maxProfiles: opts.maxProfiles } : {};
    const job = (seed: unknown): DiscoveryJobInput => ({ seed: seed as SeedInput, tenant, priority, ...extra });
    const fileErrors: string[] = [];
    const lines: string[] = [];
    async function* payloads(): AsyncGenerator<DiscoveryJobInput> {
      for (const seed of direct) {
        lines.push(`${seed.kind} ${JSON.stringify(seed.value)}`);
        yield job(seed);
      }
      if (!opts.file) return;
      for await (const entry of readSeedsFile(opts.file)) {
        if ('error' in entry) {
          fileErrors.push(`skipped ${entry.error.message}`);
          continue;
        }
        lines.push(`line ${entry.line}`);
        yield job(entry.seed);
      }
    }
    const progress = progressWriter(err, `seeds from ${opts.file}`);
    // a progress line only for files: they can hold millions of seeds
    const r = await enqueueDiscovery(queues.discovery, payloads(), {
      ...backpressure(opts),
      ...(opts.file ? { onProgress: (done: number, total: number | undefined) => progress.update(done + fileErrors.length, total) } : {}),
    });
    if (opts.file) progress.update(lines.length + fileErrors.length, undefined, true);
    for (const e of fileErrors) err.write(`${e}\n`);
    report(out, err, 'discovery', r, (i) => lines[i] ?? `item ${i + 1}`, priority);
    if (r.enqueued + r.duplicates === 0 && fileErrors.length + r.invalid.length > 0) {
      throw new InvalidPayloadError('no valid seed to enqueue');
    }
    return r;
  });
}

/** `sluice enqueue harvesting --handle h`: profiles to harvest directly (source `manual:cli`). */
export async function enqueueHarvestingCommand(opts: EnqueueHarvestingOptions): Promise<EnqueueReport> {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const handles = opts.handle ?? [];
  if (handles.length === 0) throw new InvalidPayloadError('nothing to enqueue: give --handle (repeatable)');
  return withQueues(opts, async (queues, file) => {
    const { tenant, priority } = classOf(opts, Object.keys(file.throttle.priorities ?? {}), file.throttle.defaultPriority);
    const payloads: HarvestingJobInput[] = handles.map((handle) => ({ handle, tenant, priority, source: { kind: 'manual', value: 'cli' } }));
    const r = await enqueueHarvesting(queues.harvesting, payloads, backpressure(opts));
    report(out, err, 'harvesting', r, (i) => `handle ${JSON.stringify(handles[i])}`, priority);
    if (r.enqueued + r.duplicates === 0) throw new InvalidPayloadError('no valid handle to enqueue');
    return r;
  });
}
