/**
 * Sluice on a real local Redis Cluster (3 masters, no replicas), through an ioredis `Cluster`.
 *
 * What this proves: every script call, MULTI and plain command of the throttle, and every BullMQ
 * script with the tagged prefix, run on a cluster without a single CROSSSLOT (counted by the
 * servers themselves, `INFO errorstats`, and by the clients); namespaces spread over slots that
 * different masters own, and each namespace's keys live on exactly one master. The control
 * experiment: BullMQ with its default prefix `bull` fails with CROSSSLOT on the same cluster.
 */
import { randomBytes } from 'node:crypto';
import { bullmqPrefix } from '../src/bullmq/index.js';
import calculateSlot from 'cluster-key-slot';
import { Queue, Worker } from 'bullmq';
import { Cluster } from 'ioredis';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createQueues, QueueName, type SluiceQueues } from '../jobs/queues.js';
import { enqueueHarvesting } from '../jobs/producers.js';
import { parseJob } from '../jobs/schemas.js';
import { Keys } from '../src/keys.js';
import { createThrottler, InvalidConfigError, type Admission, type Throttler, type ThrottlerOptions } from '../src/index.js';
import { startLocalCluster, useLocalCluster } from './support/cluster.js';
import { clusterOptions } from '../src/redis/connection.js';
import { logSink, until } from './support/helpers.js';
import { createAdminServer } from '../src/admin/server.js';
import { maxInWindow } from './support/processes.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const local = useLocalCluster();

// ---- what the servers count -----------------------------------------------------------------

type ErrorStats = Record<string, number>;

/**
 * Error replies, summed over the masters: `CROSSSLOT`, `MOVED`, `ASK`, `NOSCRIPT` by kind
 * (`INFO errorstats`), and every other failure by command (`INFO commandstats`: `rejected_calls`
 * are refused before running, e.g. CROSSSLOT; `failed_calls` failed while running, e.g. a script
 * touching a key another master owns). Not counted: the `CLIENT SETINFO` that ioredis 5.11 sends on
 * every connection, which Redis 7.0 does not know (two plain ERR per connection, harmless and
 * attributed to no command).
 */
async function errorStats(): Promise<ErrorStats> {
  const out: ErrorStats = {};
  const add = (k: string, n: number) => {
    if (n > 0) out[k] = (out[k] ?? 0) + n;
  };
  for (const r of local.direct) {
    for (const m of (await r.info('errorstats')).matchAll(/^errorstat_(CROSSSLOT|MOVED|ASK|NOSCRIPT|TRYAGAIN|CLUSTERDOWN):count=(\d+)/gm)) add(m[1]!, Number(m[2]));
    for (const m of (await r.info('commandstats')).matchAll(/^cmdstat_(\S+?):calls=.*rejected_calls=(\d+),failed_calls=(\d+)/gm)) {
      add(`${m[1]} rejected`, Number(m[2]));
      add(`${m[1]} failed`, Number(m[3]));
    }
  }
  return out;
}

function delta(before: ErrorStats, after: ErrorStats): ErrorStats {
  const out: ErrorStats = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}

/**
 * The tagged paths must cause no error reply at all: no CROSSSLOT, no MOVED/ASK (every key routed
 * to its owner at once), no failed or rejected command (e.g. a script touching a key of another
 * node). Only NOSCRIPT would be tolerated (ioredis's EVALSHA before its EVAL fallback).
 */
function expectNoClusterErrors(d: ErrorStats): void {
  const rest = Object.fromEntries(Object.entries(d).filter(([k]) => k !== 'NOSCRIPT' && k !== 'evalsha failed'));
  expect(rest).toEqual({});
  // NOSCRIPT is the only reason an EVALSHA may fail
  expect(d['evalsha failed'] ?? 0).toBeLessThanOrEqual(d.NOSCRIPT ?? 0);
}

/** The master that owns a slot, by CLUSTER SLOTS. */
async function ownerOf(slot: number): Promise<number> {
  const ranges = await local.direct[0]!.cluster('SLOTS');
  const range = ranges.find(([from, to]) => slot >= from && slot <= to);
  const master = range?.[2];
  if (!master) throw new Error(`no master owns slot ${slot}`);
  const index = local.cluster.nodes.findIndex((n) => n.port === Number(master[1]));
  if (index < 0) throw new Error(`slot ${slot} is owned by ${master[0]}:${master[1]}, not one of ours`);
  return index;
}

/** Keys matching a pattern, per master (SCAN on each server). */
async function keysPerNode(pattern: string): Promise<string[][]> {
  return Promise.all(
    local.direct.map(async (r) => {
      const out: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await r.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        out.push(...batch);
      } while (cursor !== '0');
      return out;
    }),
  );
}

/** A glob that matches a literal string (namespaces hold `{`, `}` only as the tag). */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

// ---- throttlers on the cluster ---------------------------------------------------------------

const opened: Throttler[] = [];
const clientErrors: string[] = [];

function clusterThrottler(options: Omit<ThrottlerOptions, 'redis'> & { redis?: ThrottlerOptions['redis'] }): Throttler {
  const t = createThrottler({
    namespace: `c-${randomBytes(5).toString('hex')}`,
    redis: { cluster: local.cluster.urls },
    logger: pino({ level: 'silent' }),
    ...options,
  });
  t.onEvent((e) => {
    if (e.type === 'redis-call' && !e.ok) clientErrors.push(`${e.endpoint} ${e.script} failed`);
    if (e.type === 'refused' && e.reason === 'redis-unavailable') clientErrors.push(`${e.endpoint}: redis unavailable`);
  });
  opened.push(t);
  return t;
}

afterEach(async () => {
  for (const t of opened.splice(0)) await t.close();
  // every client-side failure of a tagged path is a test failure
  expect(clientErrors.splice(0)).toEqual([]);
});

function slotSpread(admissions: Admission[]): number {
  const slots = admissions.map((a) => a.slot);
  return Math.max(...slots) - Math.min(...slots);
}

describe('the local cluster', () => {
  it('is a real cluster of 3 masters sharing all 16384 slots', async () => {
    expect(local.cluster.urls).toHaveLength(3);
    expect(local.cluster.urls.every((u) => !u.endsWith(':6379'))).toBe(true);
    for (const r of local.direct) {
      const info = String(await r.cluster('INFO'));
      expect(info).toMatch(/cluster_state:ok/);
      expect(info).toMatch(/cluster_slots_assigned:16384/);
      expect(info).toMatch(/cluster_size:3/);
    }
    const t = clusterThrottler({ endpoints: { e: { rate: '10/s' } } });
    expect(t.redis).toBeInstanceOf(Cluster);
  });
});

describe('the throttle through an ioredis Cluster', () => {
  it('fast path: a burst is admitted at once in one script call; the keys live on the one master that owns {ns}', async () => {
    const before = await errorStats();
    // 1/min: no token comes back during the test, however slow the machine
    const t = clusterThrottler({ endpoints: { e: { rate: '1/min', burst: 5 } } });
    const admissions = await Promise.all(Array.from({ length: 5 }, () => t.acquire('e')));
    expect(admissions.every((a) => !a.queued)).toBe(true);
    expect(slotSpread(admissions)).toBeLessThan(5);
    expect(t.calls).toBe(1);
    expect(await t.tryAcquire('e')).toBe(false);

    const owner = await ownerOf(calculateSlot(`{${t.keys.namespace}}`));
    const perNode = await keysPerNode(`${globEscape(t.keys.prefix)}*`);
    expect(perNode[owner]!.length).toBeGreaterThan(0);
    perNode.forEach((keys, i) => {
      if (i !== owner) expect(keys).toEqual([]);
    });
    for (const key of perNode[owner]!) {
      expect(key.startsWith(t.keys.prefix)).toBe(true);
      expect(Number(await local.direct[owner]!.cluster('KEYSLOT', key))).toBe(calculateSlot(`{${t.keys.namespace}}`));
    }
    expectNoClusterErrors(delta(before, await errorStats()));
  });

  it('reservations: several callers inside the horizon get exact slots from one call', async () => {
    const t = clusterThrottler({ endpoints: { e: { rate: '10/s', burst: 1 } }, horizonMs: 1000 });
    const [a, b, c] = await Promise.all([t.acquire('e'), t.acquire('e'), t.acquire('e')]);
    expect(b!.slot - a!.slot).toBeCloseTo(100, 0);
    expect(c!.slot - b!.slot).toBeCloseTo(100, 0);
    expect(t.calls).toBe(1);
  });

  it('queued path: 3 clients x 10 callers beyond the horizon are all admitted, never above b + r*window', async () => {
    const before = await errorStats();
    const ns = `c-${randomBytes(5).toString('hex')}`;
    const config = { namespace: ns, endpoints: { e: { rate: '50/s', burst: 5 } }, horizonMs: 50 };
    // three throttlers, three Cluster connections, three owners: as three processes would be
    const clients = [clusterThrottler(config), clusterThrottler(config), clusterThrottler(config)];
    // a process stalled past its slot (a loaded machine) writes the slot off and queues again: Redis counts both
    let requeuedLate = 0;
    for (const t of clients) t.onEvent((e) => void (e.type === 'requeued-late' && requeuedLate++));
    const started = Date.now();
    const admissions = (await Promise.all(clients.map((t) => Promise.all(Array.from({ length: 10 }, () => t.acquire('e')))))).flat();
    expect(admissions).toHaveLength(30);
    expect(admissions.filter((a) => a.queued).length).toBeGreaterThan(10);
    // 30 admissions at 50/s after a burst of 5: about 0.5 s; never faster than the bucket allows
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    const slots = admissions.map((a) => a.slot);
    expect(maxInWindow(slots, 200)).toBeLessThanOrEqual(5 + 10 + 1);
    // 30 admissions need (30 - burst) / rate = 500 ms of Redis time at least
    expect(Math.max(...slots) - Math.min(...slots)).toBeGreaterThanOrEqual(490);
    const s = await clients[0]!.inspect('e');
    expect(s.counters.admitted).toBe(30 + requeuedLate);
    expect(s.queued).toBe(0);
    expectNoClusterErrors(delta(before, await errorStats()));
  });

  it('fair queue: weights 3:1 from two clients share the rate 3:1 while both are queued', async () => {
    const ns = `c-${randomBytes(5).toString('hex')}`;
    const config = { namespace: ns, endpoints: { e: { rate: '50/s', burst: 1 } }, horizonMs: 40 };
    const highs = clusterThrottler(config);
    const lows = clusterThrottler(config);
    const high = Promise.all(Array.from({ length: 24 }, () => highs.acquire('e', { priority: 'high' })));
    const low = Promise.all(Array.from({ length: 24 }, () => lows.acquire('e', { priority: 'low', tenant: 'other' })));
    const all = [
      ...(await high).map((a) => ({ ...a, cls: 'high' })),
      ...(await low).map((a) => ({ ...a, cls: 'low' })),
    ].sort((x, y) => x.slot - y.slot);
    // the first few go first-come-first-served (burst and horizon); then tags decide
    const window = all.filter((a) => a.queued).slice(0, 24);
    const highShare = window.filter((a) => a.cls === 'high').length;
    // 3:1 of 24 is 18
    expect(highShare).toBeGreaterThanOrEqual(16);
    expect(highShare).toBeLessThanOrEqual(20);
    // low never starves while high is queued
    expect(window.slice(0, 12).some((a) => a.cls === 'low')).toBe(true);
  });

  it('penalize pauses one endpoint fleet-wide; another client of the namespace waits, the other endpoint does not', async () => {
    const before = await errorStats();
    const ns = `c-${randomBytes(5).toString('hex')}`;
    const config = { namespace: ns, endpoints: { a: { rate: '100/s', burst: 10 }, b: { rate: '100/s', burst: 10 } } };
    const t = clusterThrottler(config);
    const other = clusterThrottler(config);
    const { pausedUntil } = await t.penalize('a', { retryAfterMs: 400, reason: '429' });
    const [a, b] = await Promise.all([other.acquire('a'), other.acquire('b')]);
    expect(b.waitedMs).toBeLessThan(250);
    expect(a.waitedMs).toBeGreaterThan(250);
    expect(a.slot).toBeGreaterThanOrEqual(pausedUntil);
    expect((await t.inspect('a')).counters.penalties).toBe(1);
    expect((await t.inspect('b')).counters.penalties).toBe(0);
    expectNoClusterErrors(delta(before, await errorStats()));
  });

  it('configure, inspect and the audit log (a MULTI over two keys of the slot) work; bad patches are refused', async () => {
    const before = await errorStats();
    const t = clusterThrottler({ endpoints: { e: { rate: '10/s', burst: 2 } } });
    await t.acquire('e');
    await t.configure('e', { rate: '100/s', burst: 7, weights: { low: 2 } }, { actor: 'ops' });
    const s = await t.inspect('e');
    expect(s.configured.ratePerSec).toBeCloseTo(10, 6);
    expect(s.effective.ratePerSec).toBeCloseTo(100, 6);
    expect(s.effective.burst).toBe(7);
    expect(s.overrides).toMatchObject({ burst: '7', 'w:low': '2' });
    expect(s.ttls.bucket).toBeGreaterThan(0);
    const log = await t.auditLog();
    expect(log[0]).toMatchObject({ actor: 'ops', endpoint: 'e', change: 'configure' });
    await expect(t.configure('e', { rate: 'lots' })).rejects.toBeInstanceOf(InvalidConfigError);
    await expect(t.configure('e', { burst: -1 })).rejects.toThrow(/burst/);
    // the new rate and burst are what admit now: after 120 ms at 100/s the bucket holds its burst of 7
    await sleep(120);
    const burst = await Promise.all(Array.from({ length: 8 }, () => t.tryAcquire('e')));
    expect(burst.filter(Boolean).length).toBe(7);
    await t.resetOverrides('e');
    expect((await t.inspect('e')).overrides).toEqual({});
    expectNoClusterErrors(delta(before, await errorStats()));
  });

  it('pause holds callers until resume; the waiting caller is then admitted from the queue', async () => {
    const before = await errorStats();
    const t = clusterThrottler({ endpoints: { a: { rate: '100/s', burst: 10 }, b: { rate: '100/s', burst: 10 } } });
    await t.pause('a', { actor: 'ops', reason: 'incident' });
    expect(await t.tryAcquire('a')).toBe(false);
    expect(await t.tryAcquire('b')).toBe(true);
    const waiting = t.acquire('a');
    await sleep(100);
    expect((await t.inspect('a')).paused).toBe(Infinity);
    await t.resume('a', { actor: 'ops' });
    const adm = await waiting;
    expect(adm.queued).toBe(true);
    expect(adm.waitedMs).toBeGreaterThanOrEqual(90);
    expect((await t.inspect('a')).paused).toBeNull();
    expectNoClusterErrors(delta(before, await errorStats()));
  });
});

describe('namespaces spread over the cluster', () => {
  /** Namespaces whose slot is owned by each master in turn. */
  async function oneNamespacePerMaster(): Promise<string[]> {
    const found: (string | undefined)[] = local.cluster.nodes.map(() => undefined);
    for (let i = 0; i < 500 && found.some((f) => f === undefined); i++) {
      const ns = `spread-${randomBytes(4).toString('hex')}`;
      const owner = await ownerOf(calculateSlot(`{${ns}}`));
      found[owner] ??= ns;
    }
    if (found.some((f) => f === undefined)) throw new Error('could not find a namespace for every master');
    return found as string[];
  }

  it('each namespace works through one shared Cluster connection, its keys on its own master only', async () => {
    const before = await errorStats();
    const shared = new Cluster(local.cluster.nodes.map((n) => ({ host: n.host, port: n.port })));
    try {
      const namespaces = await oneNamespacePerMaster();
      const slots = namespaces.map((ns) => calculateSlot(`{${ns}}`));
      expect(new Set(slots).size).toBe(3);
      const throttlers = namespaces.map((namespace) => clusterThrottler({ namespace, redis: shared, endpoints: { e: { rate: '20/s', burst: 2 } } }));
      // three namespaces at once: a burst of 2, then reservations and the queue, in each
      const results = await Promise.all(throttlers.map((t) => Promise.all(Array.from({ length: 6 }, () => t.acquire('e')))));
      for (const [i, t] of throttlers.entries()) {
        expect(results[i]).toHaveLength(6);
        const s = await t.inspect('e');
        expect(s.counters.admitted).toBe(6);
        await t.configure('e', { burst: 3 });
        expect((await t.inspect('e')).effective.burst).toBe(3);
        const perNode = await keysPerNode(`${globEscape(t.keys.prefix)}*`);
        const holders = perNode.flatMap((keys, node) => (keys.length ? [node] : []));
        expect(holders).toEqual([i]);
        expect(perNode[i]!.every((k) => k.startsWith(t.keys.prefix))).toBe(true);
      }
      // a throttler given an instance leaves it open
      for (const t of throttlers) await t.close();
      expect(await shared.ping()).toBe('PONG');
      expectNoClusterErrors(delta(before, await errorStats()));
    } finally {
      shared.disconnect();
    }
  });
});

describe("keyLayout 'endpoint': one namespace's endpoints spread over the masters", () => {
  /** Script calls (EVAL, EVALSHA, FCALL) each master has run (INFO commandstats). */
  async function scriptCalls(): Promise<number[]> {
    return Promise.all(local.direct.map(async (r) => {
      let n = 0;
      for (const m of (await r.info('commandstats')).matchAll(/^cmdstat_(eval|evalsha|fcall):calls=(\d+)/gm)) n += Number(m[2]);
      return n;
    }));
  }

  it('30 endpoints at saturation: every master serves 20-45% of the script calls, each endpoint in its own slot, no cluster error', async () => {
    // a fixed namespace: which master owns which endpoint is then the same on every run (12/9/9)
    const namespace = 'layout';
    const endpoints = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`e${i}`, { rate: '20/s', burst: 2 }]));
    const before = await errorStats();
    const calls0 = await scriptCalls();
    const throttlers = [0, 1].map(() => clusterThrottler({ namespace, keyLayout: 'endpoint', endpoints }));
    const stopAt = Date.now() + 1_500;
    let admitted = 0;
    await Promise.all(throttlers.flatMap((t) => Object.keys(endpoints).flatMap((e) => Array.from({ length: 3 }, async () => {
      while (Date.now() < stopAt) {
        await t.acquire(e);
        admitted++;
      }
    }))));
    const calls = (await scriptCalls()).map((n, i) => n - calls0[i]!);
    const total = calls.reduce((a, b) => a + b, 0);
    expect(admitted).toBeGreaterThan(30 * 20);
    for (const n of calls) {
      expect(n / total).toBeGreaterThanOrEqual(0.2);
      expect(n / total).toBeLessThanOrEqual(0.45);
    }
    const t = throttlers[0]!;
    // each endpoint's keys on the master that owns its own tag; the namespace's audit log on {namespace}'s
    for (const e of ['e0', 'e7', 'e29']) {
      const slot = calculateSlot(t.keys.bucket(e));
      expect(slot).toBe(calculateSlot(`{${namespace}|${e}}`));
      expect(await local.direct[await ownerOf(slot)]!.exists(t.keys.bucket(e))).toBe(1);
    }
    await t.configure('e3', { burst: 3 });
    expect((await t.inspect('e3')).effective.burst).toBe(3);
    expect((await t.auditLog(1))[0]?.endpoint).toBe('e3');
    expectNoClusterErrors(delta(before, await errorStats()));
  }, 60_000);

  it('refuses what endpoints would have to share: a global cap, tenant budgets', async () => {
    expect(() => clusterThrottler({ keyLayout: 'endpoint', endpoints: { e: { rate: '1/s' } }, global: { rate: '10/s' } })).toThrow(InvalidConfigError);
    expect(() => clusterThrottler({ keyLayout: 'endpoint', endpoints: { e: { rate: '1/s' } }, tenants: { acme: { rate: '1/s' } } })).toThrow(InvalidConfigError);
    const t = clusterThrottler({ keyLayout: 'endpoint', endpoints: { e: { rate: '1/s' } } });
    await expect(t.setTenantBudget('acme', { rate: '1/s' })).rejects.toBeInstanceOf(InvalidConfigError);
  });
});

describe('BullMQ on the cluster', () => {
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  /** BullMQ wants maxRetriesPerRequest null on the connections of its workers. */
  function bullConnection(): Cluster {
    const c = new Cluster(local.cluster.nodes.map((n) => ({ host: n.host, port: n.port })), { redisOptions: { maxRetriesPerRequest: null } });
    closers.push(async () => c.disconnect());
    return c;
  }

  it('with the tagged prefix, queues add and a worker (same prefix) processes jobs behind the throttle: zero CROSSSLOT', async () => {
    const before = await errorStats();
    const namespace = `bull-${randomBytes(4).toString('hex')}`;
    const keys = new Keys(namespace);
    const throttler = clusterThrottler({ namespace, endpoints: { profile: { rate: '50/s', burst: 5 } } });
    const queues: SluiceQueues = createQueues({ connection: bullConnection(), namespace });
    closers.push(() => queues.close());
    const workerErrors: string[] = [];
    const processed: string[] = [];
    const worker = new Worker(
      QueueName.harvesting,
      async (job) => {
        const data = parseJob('harvesting', job.data);
        await throttler.acquire('profile', { tenant: data.tenant, priority: data.priority });
        processed.push(data.handle);
        return 'ok';
      },
      { connection: bullConnection(), prefix: bullmqPrefix(keys.namespace), concurrency: 8 },
    );
    worker.on('error', (e) => workerErrors.push(String(e)));
    closers.push(() => worker.close());

    const handles = Array.from({ length: 20 }, (_, i) => `user_${i}`);
    const report = await enqueueHarvesting(
      queues.harvesting,
      handles.map((handle) => ({ handle, tenant: 'acme', priority: 'normal', source: { kind: 'manual', value: 'test' } })),
    );
    expect(report).toMatchObject({ enqueued: 20, duplicates: 0, invalid: [] });
    // a second enqueue of the same handles is deduplicated (BullMQ's dedup script on the cluster)
    const again = await enqueueHarvesting(queues.harvesting, [{ handle: 'user_0', tenant: 'acme', priority: 'normal', source: { kind: 'manual', value: 'test' } }]);
    expect(again).toMatchObject({ enqueued: 0, duplicates: 1 });

    const deadline = Date.now() + 20_000;
    while (processed.length < 20 && Date.now() < deadline) await sleep(50);
    expect(processed.sort()).toEqual([...handles].sort());
    expect(await queues.harvesting.getJobCounts('completed', 'failed', 'wait')).toMatchObject({ completed: 20, failed: 0, wait: 0 });
    expect((await throttler.inspect('profile')).counters.admitted).toBe(20);
    expect(workerErrors).toEqual([]);

    // every BullMQ key of the namespace sits in the one slot of `{ns:bull}`
    const bullSlot = calculateSlot(bullmqPrefix(keys.namespace));
    const perNode = await keysPerNode(`${globEscape(bullmqPrefix(keys.namespace))}*`);
    const all = perNode.flat();
    expect(all.length).toBeGreaterThan(20);
    expect(all.every((k) => calculateSlot(k) === bullSlot)).toBe(true);
    expect(perNode.filter((k) => k.length > 0)).toHaveLength(1);
    const d = delta(before, await errorStats());
    expect(d.CROSSSLOT ?? 0).toBe(0);
    expectNoClusterErrors(d);
  });

  it("with BullMQ's default prefix `bull`, the same queue fails with CROSSSLOT (the tag is what makes it work)", async () => {
    const before = await errorStats();
    const name = `harvesting-${randomBytes(3).toString('hex')}`;
    const queue = new Queue(name, { connection: bullConnection() });
    const queueErrors: string[] = [];
    queue.on('error', (e) => queueErrors.push(String(e)));
    closers.push(() => queue.close());
    // the queue's keys (`bull:<name>:wait`, `bull:<name>:meta`, `bull:<name>:id`...) hash to different slots
    const slots = new Set(['wait', 'meta', 'id', 'events', 'active'].map((k) => calculateSlot(`bull:${name}:${k}`)));
    expect(slots.size).toBeGreaterThan(1);

    await expect(queue.add('x', { handle: 'a' })).rejects.toThrow(/CROSSSLOT/);

    // a worker with the default prefix cannot fetch a job: it reports CROSSSLOT from its loop
    const worker = new Worker(name, async () => 'never', { connection: bullConnection(), autorun: false });
    const firstError = new Promise<string>((resolve) => worker.once('error', (e) => resolve(String(e))));
    worker.on('error', () => undefined);
    void worker.run().catch(() => undefined);
    closers.push(() => worker.close(true));
    expect(await firstError).toMatch(/CROSSSLOT/);
    await worker.close(true);

    const d = delta(before, await errorStats());
    expect(d.CROSSSLOT ?? 0).toBeGreaterThanOrEqual(2);
  });
});

describe('cluster node URLs keep their credentials and TLS', () => {
  it('builds the options every node gets from the URLs: user, password (decoded), TLS; explicit options win', () => {
    const built = clusterOptions(['rediss://svc:p%40ss@10.0.0.1:7000', 'rediss://svc:p%40ss@[::1]:7001/0']);
    expect(built.nodes).toEqual([{ host: '10.0.0.1', port: 7000 }, { host: '::1', port: 7001 }]);
    expect(built.options.redisOptions).toMatchObject({ username: 'svc', password: 'p@ss', tls: {} });
    const plain = clusterOptions(['redis://:secret@h:6379']).options.redisOptions!;
    expect(plain).toMatchObject({ password: 'secret' });
    expect(plain).not.toHaveProperty('tls');
    expect(plain).not.toHaveProperty('username');
    expect(clusterOptions(['rediss://u:p@h:1'], { tls: { servername: 'redis.internal' } }).options.redisOptions!.tls).toEqual({ servername: 'redis.internal' });
    expect(() => clusterOptions(['rediss://u:p@a:1', 'redis://u:p@b:1'])).toThrow(/TLS/);
    expect(() => clusterOptions(['redis://u:p@a:1', 'redis://u:q@b:1'])).toThrow(/credentials/);
    expect(() => clusterOptions(['redis://a:1/2'])).toThrow(/database 2/);
    expect(() => clusterOptions(['http://a:1'])).toThrow(InvalidConfigError);
    expect(() => clusterOptions(['redis://:hunter2@a:1', 'nope'])).toThrow(/not a URL/);
    expect(() => clusterOptions([])).toThrow(InvalidConfigError);
  });

  it('a throttler reaches a password-protected cluster through { cluster: urls with the password }, and checks every master for eviction', async () => {
    const guarded = await startLocalCluster({ password: 'cl-secret' });
    const { logger, lines } = logSink();
    const throttler = createThrottler({
      redis: { cluster: guarded.urls.map((u) => u.replace('redis://', 'redis://default:cl-secret@')) },
      namespace: `auth-${randomBytes(4).toString('hex')}`,
      endpoints: { e: { rate: '10/s', burst: 2 } },
      logger,
    });
    try {
      const admitted = await throttler.acquire('e', { maxWaitMs: 5_000 });
      expect(admitted.degraded).toBeUndefined();
      expect((await throttler.inspect('e')).counters.admitted).toBe(1);
      // CONFIG GET on each master, through the credentials the URLs carried
      const checked = await until('the eviction check on every master', async () => {
        const servers = lines.filter((l) => l.msg === 'maxmemory-policy keeps Sluice keys').map((l) => l.server);
        return servers.length === guarded.nodes.length && servers;
      }, 10_000);
      expect(new Set(checked)).toEqual(new Set(guarded.nodes.map((n) => `${n.host}:${n.port}`)));
    } finally {
      await throttler.close();
      await guarded.stop();
    }
  }, 60_000);
});

describe('the admin server on a misdirected cluster node', () => {
  it("answers 503 without echoing the MOVED reply's host:port", async () => {
    const namespace = `moved-${randomBytes(4).toString('hex')}`;
    const slot = calculateSlot(namespace);
    const ranges = await local.direct[0]!.cluster('SLOTS');
    const owner = ranges.find(([lo, hi]) => slot >= lo && slot <= hi)![2]![1];
    const wrong = local.cluster.nodes.find((n) => n.port !== owner)!;
    const throttler = createThrottler({ redis: `redis://${wrong.host}:${wrong.port}`, namespace, endpoints: { e: { rate: '10/s' } }, logger: pino({ level: 'silent' }) });
    const app = createAdminServer({ throttler, token: 't', logger: pino({ level: 'silent' }) });
    try {
      const res = await app.inject({ method: 'GET', url: '/api/endpoints', headers: { authorization: 'Bearer t' } });
      expect(res.statusCode).toBe(503);
      expect(res.json().error).toBe('redis_unavailable');
      expect(res.body).not.toMatch(/MOVED|127\.0\.0\.1|:\d{4,5}/);
    } finally {
      await app.close();
      await throttler.close();
    }
  });
});
