import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { AbortError, type Admission } from '../src/index.js';
import { cleanup, makeThrottler, until } from './support/helpers.js';

afterEach(cleanup);

// Alike requests of one call that must queue, without deadlines, share one ticket (a bundle, see
// lua/includes/fairQueue.lua): at most what the rate pays in one horizon, here 20/s x 200 ms = 4.
describe('bundles: alike requests share a ticket', () => {
  it('one ticket per four queued requests, each served at its own slot, in order', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '20/s', burst: 1 } }, horizonMs: 200 });
    const redis = t.redis as Redis;
    await t.pause('e');
    const waiting = Array.from({ length: 16 }, () => t.acquire('e'));
    await until('queued', async () => (await t.inspect('e')).queued === 16);
    const members = await redis.zrange(t.keys.queue('e'), 0, -1);
    expect(members).toHaveLength(4);
    await t.resume('e');
    const admissions = await Promise.all(waiting);
    expect(admissions.every((a) => a.queued)).toBe(true);
    const slots = admissions.map((a) => a.slot);
    // one token every 50 ms (Redis time: the machine's load does not move it), in the callers' order
    for (let i = 1; i < slots.length; i++) expect(slots[i]! - slots[i - 1]!).toBeGreaterThanOrEqual(49.9);
    expect((await t.inspect('e')).queued).toBe(0);
  });

  it("a bundle is no larger than what the slowest bucket charged pays in one horizon (here the tenant's budget)", async () => {
    // 10/s x 200 ms = 2 per bundle; without budget 4 (the endpoint's 20/s), at 1/s none
    const t = makeThrottler({ endpoints: { e: { rate: '20/s', burst: 1 } }, horizonMs: 200, tenants: { acme: { rate: '10/s', burst: 1 }, slow: { rate: '1/s', burst: 1 } } });
    const redis = t.redis as Redis;
    await t.pause('e');
    const waiting = [
      ...Array.from({ length: 4 }, () => t.acquire('e', { tenant: 'acme' })),
      ...Array.from({ length: 3 }, () => t.acquire('e', { tenant: 'slow' })),
    ];
    await until('queued', async () => (await t.inspect('e')).queued === 7);
    const counts = (await redis.zrange(t.keys.queue('e'), 0, -1)).map((m) => `${m.split('|')[4]}:${m.split('|')[9] ?? '1'}`);
    expect(counts.sort()).toEqual(['acme:2', 'acme:2', 'slow:1', 'slow:1', 'slow:1']);
    await t.resume('e');
    for (const slow of waiting.slice(4)) slow.catch(() => undefined); // still waiting at close()
    const slots = (await Promise.all(waiting.slice(0, 4))).map((a) => a.slot);
    // the tenant's 10/s holds: 100 ms apart, bundle or not
    for (let i = 1; i < slots.length; i++) expect(slots[i]! - slots[i - 1]!).toBeGreaterThanOrEqual(99);
  }, 15_000);

  it('a bundle promoted by another process reaches its owner through the mailbox, a slot for each caller', async () => {
    const t1 = makeThrottler({ endpoints: { e: { rate: '20/s', burst: 1 } }, horizonMs: 200 });
    const t2 = makeThrottler({ endpoints: { e: { rate: '20/s', burst: 1 } }, horizonMs: 200, namespace: t1.keys.namespace });
    const redis = t1.redis as Redis;
    await t1.pause('e');
    const waiting = Array.from({ length: 4 }, () => t1.acquire('e'));
    await until('queued', async () => (await t1.inspect('e')).queued === 4);
    await t1.resume('e');
    // t2's call promotes t1's bundle (its own request cannot go now) and posts it to t1, which
    // learns of it on its next call (its heartbeat: a quarter of a second away)
    expect(await t2.tryAcquire('e')).toBe(false);
    const posted = await redis.hgetall(t1.keys.script('e')[3]!);
    const mail = Object.entries(posted).find(([field]) => field.startsWith(`${t1.owner}|`));
    const admissions = await Promise.all(waiting);
    const slots = admissions.map((a) => a.slot);
    for (let i = 1; i < slots.length; i++) expect(slots[i]! - slots[i - 1]!).toBeGreaterThanOrEqual(49);
    // four slots, whole ms rounded up (never early); unless t1's heartbeat came between t2's call
    // and the read (a fraction of a ms out of every quarter second)
    if (mail !== undefined) {
      expect(mail[1]).toMatch(/^\d+,\d+,\d+,\d+@\d+$/);
      expect(slots).toEqual(mail[1].split('@')[0]!.split(',').map(Number));
    }
  });

  it('a caller that gives up inside a bundle: the others are served, its slot is given back', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '20/s', burst: 1 } }, horizonMs: 200 });
    const redis = t.redis as Redis;
    await t.pause('e');
    const ac = new AbortController();
    const waiting = Array.from({ length: 4 }, (_, i) => t.acquire('e', i === 2 ? { signal: ac.signal } : {}));
    await until('queued', async () => (await t.inspect('e')).queued === 4);
    expect(await redis.zcard(t.keys.queue('e'))).toBe(1);
    const before = (await t.inspect('e')).counters.admitted;
    ac.abort();
    await expect(waiting[2]).rejects.toBeInstanceOf(AbortError);
    // the bundle keeps its place for the three still waiting
    expect(await redis.zcard(t.keys.queue('e'))).toBe(1);
    await t.resume('e');
    const served = await Promise.all([waiting[0]!, waiting[1]!, waiting[3]!]);
    expect(served.every((a) => a.queued)).toBe(true);
    // promoted as four, the aborted one's future slot (100 ms after the first) refunded
    await until('the slot given back', async () => (await t.inspect('e')).counters.admitted === before + 3, 5_000);
  });

  it('when every caller of a bundle gives up, the ticket leaves the queue', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '20/s', burst: 1 } }, horizonMs: 200 });
    const redis = t.redis as Redis;
    await t.pause('e');
    const ac = new AbortController();
    const waiting = Array.from({ length: 3 }, () => t.acquire('e', { signal: ac.signal }).catch((e: unknown) => e));
    await until('queued', async () => (await t.inspect('e')).queued === 3);
    expect(await redis.zcard(t.keys.queue('e'))).toBe(1);
    ac.abort();
    for (const outcome of await Promise.all(waiting)) expect(outcome).toBeInstanceOf(AbortError);
    await until('the ticket given back', async () => (await redis.zcard(t.keys.queue('e'))) === 0, 5_000);
    expect((await t.inspect('e')).queued).toBe(0);
  });

  it('a bundle whose rate fell to zero after it queued waits: none of its callers goes without a slot', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '20/s', burst: 2 } }, horizonMs: 200, leaseMs: 3_000 });
    const redis = t.redis as Redis;
    await t.pause('e');
    let admitted = 0;
    const waiting = Array.from({ length: 4 }, () => t.acquire('e').then((a) => { admitted++; return a; }));
    await until('queued', async () => (await t.inspect('e')).queued === 4);
    expect(await redis.zcard(t.keys.queue('e'))).toBe(1);
    // two tokens in the bucket, no rate: the bundle's last two requests would have no slot
    await t.configure('e', { rate: '0/s' });
    await t.resume('e');
    for (let i = 0; i < 3; i++) expect(await t.tryAcquire('e')).toBe(false); // calls that promote
    await new Promise((r) => setTimeout(r, 300));
    expect(admitted).toBe(0);
    await t.configure('e', { rate: '20/s' });
    expect(await Promise.all(waiting)).toHaveLength(4);
  });

  it('a bundle gone from the queue without a word: every caller in it queues again and is served', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '20/s', burst: 1 } }, horizonMs: 200, leaseMs: 3_000 });
    const redis = t.redis as Redis;
    await t.pause('e');
    const waiting: Promise<Admission>[] = Array.from({ length: 3 }, () => t.acquire('e'));
    await until('queued', async () => (await t.inspect('e')).queued === 3);
    const [member] = await redis.zrange(t.keys.queue('e'), 0, -1);
    expect(member!.split('|')).toHaveLength(10); // seq|owner|...|aliveUntil|count
    await redis.zrem(t.keys.queue('e'), member!);
    // the heartbeat (a third of the lease) finds it gone; its callers queue again, as a bundle again
    await until('queued again', async () => (await redis.zrange(t.keys.queue('e'), 0, -1)).some((m) => m !== member), 10_000);
    await t.resume('e');
    const admissions = await Promise.all(waiting);
    expect(admissions).toHaveLength(3);
  });
});
