import { randomBytes } from 'node:crypto';
import { bullmqPrefix } from '../src/bullmq/index.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker, type DefaultJobOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, expectTypeOf, inject, it } from 'vitest';
import { InvalidPayloadError } from '../src/errors/index.js';
import { Keys } from '../src/keys.js';
import {
  DiscoveryJob,
  HarvestingJob,
  formatSource,
  parseJob,
  type DiscoveryJobInput,
  type HarvestingJobInput,
} from '../jobs/schemas.js';
import { createQueues, defaultJobOptions, pullOrder, QueueName, type SluiceQueues } from '../jobs/queues.js';
import {
  BacklogFullError,
  enqueueDiscovery,
  enqueueHarvesting,
  harvestDedupId,
  type EnqueuedJob,
  type EnqueueReport,
} from '../jobs/producers.js';

const good = { tenant: 'acme', priority: 'high' } as const;

function harvest(handle: string, extra: Partial<HarvestingJobInput> = {}): HarvestingJobInput {
  return { handle, ...good, source: { kind: 'hashtag', value: 'cats' }, ...extra };
}

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidPayloadError);
    expect((error as InvalidPayloadError).code).toBe('INVALID_PAYLOAD');
    return (error as Error).message;
  }
  throw new Error('expected InvalidPayloadError');
}

describe('job schemas', () => {
  it('normalizes good discovery payloads of every seed kind', () => {
    expect(parseJob('discovery', { seed: { kind: 'hashtag', value: ' #Cats ' }, ...good })).toEqual({
      seed: { kind: 'hashtag', value: 'cats' },
      ...good,
    });
    expect(parseJob('discovery', { seed: { kind: 'hashtag', value: '#猫_2024' }, ...good }).seed.value).toBe('猫_2024');
    expect(parseJob('discovery', { seed: { kind: 'keyword', value: '  Cooking \t tips ' }, ...good }).seed.value).toBe(
      'Cooking tips',
    );
    expect(parseJob('discovery', { seed: { kind: 'creator', value: '@Some.One_' }, ...good }).seed.value).toBe('some.one_');
    const video = parseJob('discovery', {
      seed: { kind: 'video', value: 'https://www.tiktok.com/@someone/video/7234567890123456789?lang=en' },
      ...good,
      maxProfiles: 500,
    });
    expect(video).toEqual({ seed: { kind: 'video', value: '7234567890123456789' }, ...good, maxProfiles: 500 });
  });

  it('strips unknown keys instead of refusing them (an older worker reading a newer payload)', () => {
    expect(parseJob('harvesting', { ...harvest('@Bob'), future: 1 })).toEqual({
      handle: 'bob',
      ...good,
      source: { kind: 'hashtag', value: 'cats' },
    });
  });

  it('accepts a manual source and renders sources in seeds-file syntax', () => {
    const job = parseJob('harvesting', harvest('bob', { source: { kind: 'manual', value: 'import:leads.csv' } }));
    expect(job.source).toEqual({ kind: 'manual', value: 'import:leads.csv' });
    expect(formatSource({ kind: 'hashtag', value: 'cats' })).toBe('#cats');
    expect(formatSource({ kind: 'creator', value: 'bob' })).toBe('@bob');
    expect(formatSource({ kind: 'keyword', value: 'a b' })).toBe('keyword:a b');
    expect(formatSource({ kind: 'video', value: '123456' })).toBe('video:123456');
    expect(formatSource(job.source)).toBe('manual:import:leads.csv');
  });

  it.each([
    ['a handle with a blank', harvest('bad handle'), 'handle: must be 1-24 letters', '"bad handle"'],
    ['a handle of 25 characters', harvest('a'.repeat(25)), 'handle: must be 1-24', `"${'a'.repeat(25)}"`],
    ['an empty handle', harvest('@'), 'handle: must be 1-24', 'received ""'],
    ['a non-ASCII handle', harvest('josé'), 'handle:', '"josé"'],
    ['a tenant with braces', harvest('bob', { tenant: '{x}' }), "tenant: must be 1-128 characters without spaces, braces or '|'", '"{x}"'],
    ['a tenant with a blank', harvest('bob', { tenant: 'a b' }), 'tenant:', '"a b"'],
    ['a priority with |', harvest('bob', { priority: 'a|b' }), 'priority:', '"a|b"'],
    ['a priority of 129 characters', harvest('bob', { priority: 'p'.repeat(129) }), 'priority:', 'received "ppp'],
    ['a missing priority', { handle: 'bob', tenant: 'acme', source: { kind: 'manual', value: 'x' } }, 'priority: missing', 'invalid harvesting job: priority: missing'],
    ['an unknown source kind', harvest('bob', { source: { kind: 'podcast', value: 'x' } as never }), 'source.kind:', 'received "podcast"'],
    ['an empty manual source', harvest('bob', { source: { kind: 'manual', value: ' ' } }), 'source.value: must not be empty', 'received'],
  ])('refuses %s with the field and the value received', (_label, payload, field, received) => {
    const text = message(() => parseJob('harvesting', payload));
    expect(text).toMatch(/^invalid harvesting job: /);
    expect(text).toContain(field);
    expect(text).toContain(received);
  });

  it.each([
    ['an unknown seed kind', { seed: { kind: 'sound', value: 'x' } }, 'seed.kind:', '"sound"'],
    ['a hashtag with a blank', { seed: { kind: 'hashtag', value: '#a b' } }, 'seed.value: must be 1-100 letters', '"a b"'],
    ['an empty keyword', { seed: { kind: 'keyword', value: '   ' } }, 'seed.value: must be 1-100 characters', 'received ""'],
    ['a keyword with a control character', { seed: { kind: 'keyword', value: 'a\u0000b' } }, 'seed.value:', 'received'],
    ['a short link', { seed: { kind: 'video', value: 'https://vm.tiktok.com/ZMabc/' } }, 'resolve short links first', 'vm.tiktok.com'],
    ['a video URL of another site', { seed: { kind: 'video', value: 'https://example.com/video/123456' } }, 'seed.value:', 'example.com'],
    ['maxProfiles 0', { seed: { kind: 'hashtag', value: 'a' }, maxProfiles: 0 }, 'maxProfiles: must be at least 1', 'received 0'],
    ['maxProfiles 1.5', { seed: { kind: 'hashtag', value: 'a' }, maxProfiles: 1.5 }, 'maxProfiles: must be a whole number', 'received 1.5'],
    ['maxProfiles above the limit', { seed: { kind: 'hashtag', value: 'a' }, maxProfiles: 1e6 }, 'maxProfiles: must be at most 100000', 'received 1000000'],
  ])('refuses a discovery payload with %s', (_label, partial, field, received) => {
    const text = message(() => parseJob('discovery', { ...good, ...partial }));
    expect(text).toMatch(/^invalid discovery job: /);
    expect(text).toContain(field);
    expect(text).toContain(received);
  });

  it('lists every bad field of one payload, and refuses non-objects', () => {
    const text = message(() => parseJob('harvesting', { handle: 'a b', tenant: '', priority: 3, source: null }));
    expect(text).toContain('handle:');
    expect(text).toContain('tenant:');
    expect(text).toContain('priority:');
    expect(text).toContain('source:');
    expect(message(() => parseJob('discovery', null))).toContain('(payload): expected object (received null)');
    expect(message(() => parseJob('discovery', 'cats'))).toContain('received "cats"');
  });

  it('keeps the ZodError as cause and cuts long values short', () => {
    try {
      parseJob('harvesting', harvest('x'.repeat(500)));
    } catch (error) {
      expect((error as Error).cause).toBeDefined();
      expect((error as Error).message.length).toBeLessThan(300);
      return;
    }
    throw new Error('expected a refusal');
  });

  it('types: the schema is the type', () => {
    expectTypeOf(parseJob<'discovery'>).returns.toEqualTypeOf<DiscoveryJob>();
    expectTypeOf(parseJob<'harvesting'>).returns.toEqualTypeOf<HarvestingJob>();
    expectTypeOf<HarvestingJob['handle']>().toEqualTypeOf<string>();
    expectTypeOf<DiscoveryJob['seed']['kind']>().toEqualTypeOf<'hashtag' | 'keyword' | 'creator' | 'video'>();
    expectTypeOf<DiscoveryJob['maxProfiles']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<DiscoveryJobInput>().toHaveProperty('seed');
  });
});

describe('producers (real Redis, real BullMQ)', () => {
  const url = inject('redisUrl');
  const opened: { queues: SluiceQueues; redis: Redis; namespace: string }[] = [];
  const closers: (() => Promise<unknown>)[] = [];

  function setup(defaults: DefaultJobOptions = {}, priorities?: Record<string, number>): { queues: SluiceQueues; redis: Redis; keys: Keys } {
    const namespace = `jobs-${randomBytes(5).toString('hex')}`;
    const redis = new Redis(url);
    const queues = createQueues({ connection: redis, namespace, defaultJobOptions: defaults, ...(priorities ? { priorities } : {}) });
    opened.push({ queues, redis, namespace });
    return { queues, redis, keys: new Keys(namespace) };
  }

  /** Every key of a namespace, whatever its tag (SCAN, not KEYS). */
  async function keysOf(redis: Redis, namespace: string): Promise<string[]> {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `*${namespace}*`, 'COUNT', 1000);
      cursor = next;
      out.push(...batch);
    } while (cursor !== '0');
    return out;
  }

  function worker(queue: string, keys: Keys, onJob: (data: HarvestingJob) => void = () => undefined): Worker {
    const connection = new Redis(url, { maxRetriesPerRequest: null });
    const w = new Worker(queue, async (job) => (onJob(job.data as HarvestingJob), 'ok'), { connection, prefix: bullmqPrefix(keys.namespace) });
    closers.push(async () => {
      await w.close();
      await connection.quit();
    });
    return w;
  }

  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
    for (const { queues, redis, namespace } of opened.splice(0)) {
      await queues.discovery.obliterate({ force: true });
      await queues.harvesting.obliterate({ force: true });
      await queues.close();
      // Obliterate leaves the deduplication keys (they expire on their own); a test leaves nothing.
      const left = await keysOf(redis, namespace);
      if (left.length > 0) await redis.del(...left);
      expect(await keysOf(redis, namespace)).toEqual([]);
      await redis.quit();
    }
  });

  it('creates both queues with the tagged prefix and the default job options', async () => {
    const { queues, redis, keys } = setup();
    expect(queues.discovery.name).toBe(QueueName.discovery);
    expect(queues.harvesting.name).toBe(QueueName.harvesting);
    expect(queues.harvesting.opts.prefix).toBe(bullmqPrefix(keys.namespace));
    expect(bullmqPrefix(keys.namespace)).toBe(`sluice:{${keys.namespace}:bull}`);

    const { jobId } = await enqueueHarvesting(queues.harvesting, harvest('alice'));
    await enqueueDiscovery(queues.discovery, { seed: { kind: 'hashtag', value: 'cats' }, ...good });
    const job = await queues.harvesting.getJob(jobId);
    expect(job?.opts.attempts).toBe(5);
    expect(job?.opts.backoff).toEqual({ type: 'exponential', delay: 5_000, jitter: 0.5 });
    expect(job?.opts.removeOnComplete).toEqual(defaultJobOptions.removeOnComplete);
    expect(job?.opts.removeOnFail).toEqual(defaultJobOptions.removeOnFail);

    // Every key written for this namespace lives under the tagged prefix: one Cluster slot.
    const written = await keysOf(redis, keys.namespace);
    expect(written.length).toBeGreaterThan(3);
    for (const key of written) expect(key.startsWith(`${bullmqPrefix(keys.namespace)}:`)).toBe(true);
    expect(written).toContain(`${bullmqPrefix(keys.namespace)}:harvesting:de:h-alice`);
    expect(written).toContain(`${bullmqPrefix(keys.namespace)}:discovery:de:d-hashtag-cats`);
  });

  it('enqueues a handle once per period: same handle in another spelling is a duplicate', async () => {
    const { queues, redis, keys } = setup();
    const first = await enqueueHarvesting(queues.harvesting, harvest('Alice.B'));
    expect(first.duplicate).toBe(false);
    expect(first.jobId).toMatch(/^h-alice\.b-[0-9a-z]+$/);
    expect(first.jobId).not.toContain(':');

    const again = await enqueueHarvesting(queues.harvesting, harvest('@alice.b', { tenant: 'other' }));
    expect(again).toMatchObject({ jobId: first.jobId, duplicate: true });
    expectTypeOf(again).toEqualTypeOf<EnqueuedJob>();

    expect(await queues.harvesting.count()).toBe(1);
    const job = await queues.harvesting.getJob(first.jobId);
    expect(job?.data).toEqual({ handle: 'alice.b', ...good, source: { kind: 'hashtag', value: 'cats' } });
    expect(await queues.harvesting.getDeduplicationJobId(harvestDedupId('alice.b'))).toBe(first.jobId);

    // The deduplication key expires with the period (default 24 h): memory stays bounded.
    const ttl = await redis.pttl(`${bullmqPrefix(keys.namespace)}:harvesting:de:h-alice.b`);
    expect(ttl).toBeGreaterThan(24 * 3600 * 1000 - 60_000);
    expect(ttl).toBeLessThanOrEqual(24 * 3600 * 1000);
  });

  it('still dedupes after the job completed and was removed (does not rely on job retention)', async () => {
    // Retention so short the job hash is gone as soon as it completes.
    const { queues, keys } = setup({ removeOnComplete: true });
    const first = await enqueueHarvesting(queues.harvesting, harvest('carol'));
    const w = worker(QueueName.harvesting, keys);
    const done = new Promise<void>((resolve) => w.on('completed', () => resolve()));
    await done;
    // Give moveToFinished its turn to remove the job hash.
    for (let i = 0; i < 50 && (await queues.harvesting.getJob(first.jobId)); i++) await sleep(20);
    expect(await queues.harvesting.getJob(first.jobId)).toBeUndefined();

    const again = await enqueueHarvesting(queues.harvesting, harvest('carol'));
    expect(again).toMatchObject({ jobId: first.jobId, duplicate: true });
  });

  it('enqueues the handle again once the period has passed', async () => {
    const { queues } = setup();
    const first = await enqueueHarvesting(queues.harvesting, harvest('dave'), { periodMs: 200 });
    expect((await enqueueHarvesting(queues.harvesting, harvest('dave'), { periodMs: 200 })).duplicate).toBe(true);
    await sleep(300);
    const later = await enqueueHarvesting(queues.harvesting, harvest('dave'), { periodMs: 200 });
    expect(later.duplicate).toBe(false);
    expect(later.jobId).not.toBe(first.jobId);
    expect(await queues.harvesting.count()).toBe(2);
  });

  it('periodMs 0 dedupes only while the job is pending', async () => {
    const { queues, keys } = setup();
    const first = await enqueueHarvesting(queues.harvesting, harvest('erin'), { periodMs: 0 });
    expect((await enqueueHarvesting(queues.harvesting, harvest('erin'), { periodMs: 0 })).jobId).toBe(first.jobId);
    const w = worker(QueueName.harvesting, keys);
    await new Promise<void>((resolve) => w.on('completed', () => resolve()));
    await w.close();
    const after = await enqueueHarvesting(queues.harvesting, harvest('erin'), { periodMs: 0 });
    expect(after.duplicate).toBe(false);
  });

  it('dedupes discovery seeds by normalized kind and value', async () => {
    const { queues } = setup();
    const seed = (kind: string, value: string) => ({ seed: { kind, value }, ...good }) as DiscoveryJobInput;
    const report = await enqueueDiscovery(queues.discovery, [
      seed('hashtag', '#Cats'),
      seed('hashtag', 'cats'),
      seed('keyword', 'Cooking  Tips'),
      seed('keyword', 'cooking tips'),
      seed('keyword', 'time: 10 min'),
      seed('creator', '@Bob'),
      seed('creator', 'bob'),
      seed('video', '7234567890123456789'),
      seed('video', 'https://www.tiktok.com/@x/video/7234567890123456789'),
      seed('hashtag', 'bob'),
    ]);
    expect(report).toMatchObject({ enqueued: 6, duplicates: 4, invalid: [] });
    const ids = (await queues.discovery.getJobs(['waiting'])).map((job) => job.id ?? '');
    expect(ids).toHaveLength(6);
    for (const id of ids) expect(id).not.toContain(':');
    // The keyword with ':' gets a digest in its id rather than the raw text.
    expect(ids.filter((id) => id.startsWith('d-keyword-'))).toHaveLength(2);
  });

  it('refuses an invalid single payload with InvalidPayloadError and adds nothing', async () => {
    const { queues } = setup();
    await expect(enqueueHarvesting(queues.harvesting, harvest('not valid'))).rejects.toThrow(InvalidPayloadError);
    await expect(enqueueDiscovery(queues.discovery, { seed: { kind: 'hashtag', value: '' }, ...good })).rejects.toThrow(
      /seed\.value: must be 1-100 letters/,
    );
    expect(await queues.harvesting.count()).toBe(0);
    expect(await queues.discovery.count()).toBe(0);
  });

  it('refuses the wrong queue', async () => {
    const { queues } = setup();
    await expect(enqueueHarvesting(queues.discovery as never, harvest('alice'))).rejects.toThrow(
      'a harvesting job needs the "harvesting" queue, got "discovery"',
    );
  });

  it('bulk: enqueues the valid items, lists the invalid ones by index, counts duplicates', async () => {
    const { queues } = setup();
    const items: unknown[] = [
      harvest('a1'),
      harvest('a2'),
      harvest('a3'),
      harvest('bad one'),
      harvest('A1'), // duplicate of a1 inside the batch
      harvest('a4'),
      harvest('a5'),
      { handle: 'a6' },
      harvest('a6'),
      harvest('a7'),
    ];
    const report = await enqueueHarvesting(queues.harvesting, items, { chunkSize: 3 });
    expectTypeOf(report).toEqualTypeOf<EnqueueReport>();
    expect(report.enqueued).toBe(7);
    expect(report.duplicates).toBe(1);
    expect(report.invalid.map((item) => item.index)).toEqual([3, 7]);
    expect(report.invalid[0]?.error).toBeInstanceOf(InvalidPayloadError);
    expect(report.invalid[0]?.error.message).toContain('handle: must be 1-24');
    expect(report.invalid[0]?.error.message).toContain('"bad one"');
    expect(report.invalid[1]?.error.message).toContain('tenant:');
    expect(await queues.harvesting.count()).toBe(7);
    const handles = (await queues.harvesting.getJobs(['waiting'])).map((job) => job.data.handle).sort();
    expect(handles).toEqual(['a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7']);
  });

  it('bulk: reports progress per chunk, with the total of an array', async () => {
    const { queues } = setup();
    const calls: [number, number | undefined][] = [];
    const items = Array.from({ length: 2_500 }, (_, i) => harvest(`p${i}`));
    const report = await enqueueHarvesting(queues.harvesting, items, {
      chunkSize: 1_000,
      onProgress: (done, total) => calls.push([done, total]),
    });
    expect(report).toMatchObject({ enqueued: 2_500, duplicates: 0, invalid: [] });
    expect(calls).toEqual([
      [1_000, 2_500],
      [2_000, 2_500],
      [2_500, 2_500],
    ]);
    expect(await queues.harvesting.count()).toBe(2_500);

    // Re-running the same import is safe: everything is a duplicate.
    const rerun = await enqueueHarvesting(queues.harvesting, items);
    expect(rerun).toMatchObject({ enqueued: 0, duplicates: 2_500, invalid: [] });
    expect(await queues.harvesting.count()).toBe(2_500);
  });

  it('bulk: accepts an async iterable, total from the options or unknown', async () => {
    const { queues } = setup();
    async function* seeds() {
      for (let i = 0; i < 5; i++) yield { seed: { kind: 'keyword', value: `word ${i}` }, ...good };
      yield { seed: { kind: 'nope', value: 'x' }, ...good };
    }
    const unknownTotal: [number, number | undefined][] = [];
    const report = await enqueueDiscovery(queues.discovery, seeds(), {
      chunkSize: 2,
      onProgress: (done, total) => unknownTotal.push([done, total]),
    });
    expect(report.enqueued).toBe(5);
    expect(report.invalid.map((item) => item.index)).toEqual([5]);
    expect(report.invalid[0]?.error.message).toContain('seed.kind:');
    expect(unknownTotal).toEqual([
      [2, undefined],
      [4, undefined],
      [6, undefined],
    ]);

    const withTotal: (number | undefined)[] = [];
    await enqueueDiscovery(queues.discovery, seeds(), { total: 6, onProgress: (_done, total) => withTotal.push(total) });
    expect(withTotal).toEqual([6]);
  });

  const CLASSES = { high: 3, normal: 2, low: 1 };

  it('pull order: a job of a heavier priority class is pulled first (BullMQ job priority)', async () => {
    expect([...pullOrder({ low: 1, high: 3, normal: 2, urgent: 3 })].sort()).toEqual([['high', 1], ['low', 3], ['normal', 2], ['urgent', 1]]);
    const { queues, keys } = setup({}, CLASSES);
    await enqueueHarvesting(queues.harvesting, [harvest('l1', { priority: 'low' }), harvest('n1', { priority: 'normal' }), harvest('h1', { priority: 'high' }), harvest('l2', { priority: 'low' })]);
    expect((await queues.harvesting.getJobs(['prioritized'])).map((j) => [j.data.handle, j.priority]).sort()).toEqual([['h1', 1], ['l1', 3], ['l2', 3], ['n1', 2]]);
    const order: string[] = [];
    const w = worker(QueueName.harvesting, keys, (d) => order.push(d.handle));
    await new Promise<void>((resolve) => w.on('completed', () => order.length === 4 && resolve()));
    expect(order).toEqual(['h1', 'n1', 'l1', 'l2']);
  });

  it('pull order: a class outside the configured ones is refused, and an explicit map wins over the queue', async () => {
    const { queues } = setup({}, CLASSES);
    await expect(enqueueHarvesting(queues.harvesting, harvest('x', { priority: 'urgent' }))).rejects.toThrow(/priority "urgent" is not one of high, normal, low/);
    const r = await enqueueHarvesting(queues.harvesting, [harvest('y', { priority: 'urgent' })], { priorities: { urgent: 9, high: 3 } });
    expect(r).toMatchObject({ enqueued: 1, invalid: [] });
    expect((await queues.harvesting.getJobs(['prioritized']))[0]?.priority).toBe(1);
  });

  it('a re-enqueue with a higher priority raises the waiting job, and says so; a started or finished job is reported, not raised', async () => {
    const { queues, keys } = setup({ removeOnComplete: true }, CLASSES);
    const first = await enqueueHarvesting(queues.harvesting, harvest('slow', { priority: 'low' }));
    await enqueueHarvesting(queues.harvesting, harvest('other', { priority: 'normal' }));
    // same or lower priority: a plain duplicate
    expect(await enqueueHarvesting(queues.harvesting, harvest('slow', { priority: 'low' }))).toEqual({ jobId: first.jobId, duplicate: true, depth: 2 });
    const raised = await enqueueHarvesting(queues.harvesting, [harvest('slow', { priority: 'high' })]);
    expect(raised).toEqual({ enqueued: 0, duplicates: 1, raised: 1, notRaised: 0, invalid: [], depth: 2 });
    const job = await queues.harvesting.getJob(first.jobId);
    expect(job?.priority).toBe(1);
    expect(job?.data.priority).toBe('high');
    const order: string[] = [];
    const w = worker(QueueName.harvesting, keys, (d) => order.push(d.handle));
    await new Promise<void>((resolve) => w.on('completed', () => order.length === 2 && resolve()));
    expect(order).toEqual(['slow', 'other']);
    for (let i = 0; i < 50 && (await queues.harvesting.getJob(first.jobId)); i++) await sleep(20);
    // finished (and removed) while its deduplication key still runs: cannot be raised, and the report says so
    const late = await enqueueHarvesting(queues.harvesting, harvest('other', { priority: 'high' }));
    expect(late).toMatchObject({ duplicate: true, raised: false, depth: 0 });
  });

  it('backpressure: reports the depth, refuses above maxBacklog with what fitted, waits for room with waitMs', async () => {
    const { queues, keys } = setup();
    expect(await enqueueHarvesting(queues.harvesting, [harvest('b1'), harvest('b2')])).toMatchObject({ enqueued: 2, depth: 2 });
    const refused = await enqueueHarvesting(queues.harvesting, [harvest('b3'), harvest('b4'), harvest('b5')], { maxBacklog: 3 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BacklogFullError);
    const err = refused as BacklogFullError;
    expect(err).toMatchObject({ code: 'BACKLOG_FULL', queue: 'harvesting', depth: 3, maxBacklog: 3, report: { enqueued: 1 } });
    expect(err.message).toMatch(/queue "harvesting" holds 3 jobs not yet started \(max backlog 3\): 1 enqueued/);
    expect(await queues.harvesting.count()).toBe(3);
    await expect(enqueueHarvesting(queues.harvesting, harvest('b6'), { maxBacklog: 3 })).rejects.toThrow(BacklogFullError);
    // with a wait, the call goes on as workers make room
    const waiting = enqueueHarvesting(queues.harvesting, [harvest('b7'), harvest('b8'), harvest('b9'), harvest('b10')], { maxBacklog: 3, waitMs: 60_000, pollMs: 20 });
    worker(QueueName.harvesting, keys);
    expect(await waiting).toMatchObject({ enqueued: 4, duplicates: 0 });
  });

  it('refuses nonsense options before touching Redis', async () => {
    const { queues } = setup();
    await expect(enqueueHarvesting(queues.harvesting, [harvest('x')], { chunkSize: 0 })).rejects.toThrow(RangeError);
    await expect(enqueueHarvesting(queues.harvesting, harvest('x'), { periodMs: -1 })).rejects.toThrow(/periodMs/);
    await expect(enqueueHarvesting(queues.harvesting, harvest('x'), { maxBacklog: 0 })).rejects.toThrow(/maxBacklog/);
    expect(await queues.harvesting.count()).toBe(0);
  });
});
