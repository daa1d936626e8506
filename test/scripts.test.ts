import { afterEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { run } from '../src/redis/scripts.js';
import { splitAcquireReply } from '../src/redis/acquire-reply.js';
import { readEndpointState, writeEndpointState } from './support/endpoint-state.js';
import { cleanup, makeThrottler, namespaceKeys, newRedis, until } from './support/helpers.js';

/** Contract tests of the Lua scripts' edge cases, talking to them directly where the client would hide them. */
afterEach(cleanup);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function acquireArgs(t: ReturnType<typeof makeThrottler>, owner: string, opts: { ratePerMs: number; burst: number; horizonMs?: number; leaseMs?: number; ticketsOut?: '0' | '1' | '2'; requests: { cost?: number; maxWait?: number; tenant?: string; priority?: string; weight?: number; tenantRate?: number; tenantBurst?: number }[] }) {
  const keys = t.keys;
  const ep = 'e';
  const args: (string | number)[] = [ep, owner, opts.ratePerMs, opts.burst, opts.horizonMs ?? 10, 1000, opts.leaseMs ?? 30_000, opts.ticketsOut ?? '0', '', '', '', t.configVersion, opts.requests.length];
  // a group of one per request (first id, count 1)
  opts.requests.forEach((r, i) => args.push(i + 1, 1, r.cost ?? 1, r.maxWait ?? -1, r.tenant ?? 'default', r.priority ?? 'normal', r.weight ?? 2, r.tenantRate ?? '', r.tenantBurst ?? ''));
  args.push(0); // no tickets to check
  return { keys: keys.script(ep), args };
}

describe('acquire-9 contract', () => {
  it('replies one flat array, split back into header, results, mailbox, lost and audit', () => {
    const header = [1, 2, 3, 4, '', '', 0, 0, '', 0];
    // one request reserved; a promotion of this run (millionths) and one posted (decimal); one lost member
    const flat = [...header, '', 5, 7, 0, 1_500_000, '', '', 4, '000000000001', 1_234_500_000, '000000000002', '12.5', '000000000003|aaaa'];
    expect(splitAcquireReply(flat)).toEqual([header, [7, 0, 1_500_000, '', ''], ['000000000001', '1234.5', '000000000002', '12.5'], ['000000000003|aaaa'], '']);
  });

  it('serves a group of alike requests as that many requests, one after another, each under its own id', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '10/s', burst: 1 } } });
    const a = acquireArgs(t, 'cafe02', { ratePerMs: 0.01, burst: 1, horizonMs: 1000, requests: [] });
    // one group: ids 5, 6, 7, cost 1, no deadline; then a lone request of another tenant (id 8)
    a.args.splice(12, 1, 2, 5, 3, 1, -1, 'default', 'normal', 2, '', '', 8, 1, 1, -1, 'other', 'normal', 2, '', '');
    const reply = splitAcquireReply(await run<unknown[]>(t.redis as Redis, 'acquire', a.keys, a.args));
    const results = reply[1]!;
    expect(results.filter((_, i) => i % 5 === 0)).toEqual([5, 6, 7, 8]);
    expect(results.filter((_, i) => i % 5 === 1)).toEqual([0, 0, 0, 0]);
    // burst 1 at 10/s: each request's slot 100 ms after the one before, the group's as the lone one's
    const slots = results.filter((_, i) => i % 5 === 2).map((v) => Number(v) / 1e6);
    for (let i = 1; i < 4; i++) expect(slots[i]! - slots[i - 1]!).toBeCloseTo(100, 0);
  });

  it('drops a dead owner\'s ticket when its turn comes and hands the slot on', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '20/s', burst: 1 } }, horizonMs: 50 });
    const redis = t.redis as Redis;
    // a process that queues a ticket and dies: its lease runs out, nobody renews it
    const dead = acquireArgs(t, 'deadbeef', { ratePerMs: 0.02, burst: 1, leaseMs: 100, requests: [{}, {}] });
    const reply = splitAcquireReply(await run<unknown[]>(redis, 'acquire', dead.keys, dead.args));
    expect(reply[1]![1]).toBe(0); // the first was reserved
    expect(reply[1]![6]).toBe(1); // the second queued
    await sleep(150);
    const adm = await t.acquire('e');
    expect(adm).toBeDefined();
    const s = await t.inspect('e');
    expect(s.counters.dropped).toBe(1);
    expect(s.queued).toBe(0);
  });

  it('expires a ticket whose deadline cannot be met and tells its owner', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '20/s', burst: 1 } } });
    const redis = t.redis as Redis;
    const owner = 'cafe01';
    const a = acquireArgs(t, owner, { ratePerMs: 0.02, burst: 1, requests: [{}, { maxWait: 200 }] });
    const reply = splitAcquireReply(await run<unknown[]>(redis, 'acquire', a.keys, a.args));
    expect(reply[1]![6]).toBe(1);
    // the operator slows the endpoint: the queued ticket can no longer make its deadline
    await t.configure('e', { rate: '1/min' });
    const claim = acquireArgs(t, owner, { ratePerMs: 0.02, burst: 1, ticketsOut: '1', requests: [] });
    const again = splitAcquireReply(await run<unknown[]>(redis, 'acquire', claim.keys, claim.args));
    expect(again[2]).toEqual([expect.stringMatching(/^0+\d+$/), 'x']);
    expect((await t.inspect('e')).counters.timeouts).toBe(1);
  });

  it('survives a clock that goes backwards: no refill, no NaN, no over-admission', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '10/s', burst: 2 } } });
    const redis = t.redis as Redis;
    // the bucket was last written "in the future" (a failover to a node whose clock is behind)
    const future = Date.now() + 60_000;
    await redis.hset(t.keys.bucket('e'), { t: '0.5', ts: String(future), r: '0.01', b: '2' });
    expect(await t.tryAcquire('e')).toBe(false);
    const s = await t.inspect('e');
    expect(s.tokens).toBeCloseTo(0.5, 5);
    const adm = await t.acquire('e', { maxWaitMs: 1000 });
    expect(Number.isFinite(adm.slot)).toBe(true);
  });

  it('refunds only future slots (cancel-9)', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '1/min', burst: 1 } } });
    const redis = t.redis as Redis;
    const k = t.keys;
    const keys = k.script('e');
    await t.acquire('e');
    const before = (await t.inspect('e')).tokens;
    const nowMs = Number((await redis.time())[0]) * 1000;
    const [past] = await run<number[]>(redis, 'cancel', keys, [1 / 60_000, 1, '', '', '', t.configVersion, 1, 'r', nowMs - 5000, 1, 'default']);
    expect(past).toBe(0);
    expect((await t.inspect('e')).tokens).toBeLessThan(before + 0.01);
    const [future] = await run<number[]>(redis, 'cancel', keys, [1 / 60_000, 1, '', '', '', t.configVersion, 1, 'r', nowMs + 5000, 1, 'default']);
    expect(future).toBe(2);
    // refunds never lift the bucket over its burst
    expect((await t.inspect('e')).tokens).toBeLessThanOrEqual(1);
  });

  it('gives every key a TTL, and an idle namespace returns to zero keys', async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '50/s', burst: 2 } }, horizonMs: 20, leaseMs: 1000, tenants: { acme: { rate: '50/s', burst: 2 } }, global: { rate: '100/s', burst: 5 } });
    const redis = t.redis as Redis;
    await Promise.all(Array.from({ length: 12 }, (_, i) => t.acquire('e', { tenant: i % 2 ? 'acme' : 'other', priority: i % 3 ? 'high' : 'low' })));
    const waiting = t.acquire('e');
    const keys = await namespaceKeys(redis, t.keys.namespace);
    expect(keys.length).toBeGreaterThan(2);
    for (const key of keys) expect(await redis.pttl(key), key).toBeGreaterThan(0);
    await waiting;
    await t.close();
    const probe = newRedis();
    // keys outlive a full bucket by horizon + lease + 1 s: about 3 s here
    await until('every key of the idle namespace expired', async () => (await namespaceKeys(probe, t.keys.namespace)).length === 0, 10_000);
    await probe.quit();
  });

  it("keeps the endpoint's hash small while tenants come and go and the endpoint never idles", async () => {
    // each round: three callers of a new tenant, two of them queued (the horizon is 1 ms), then
    // the queue empties; every round leaves a class field of a past busy period behind
    const t = makeThrottler({ endpoints: { e: { rate: '500/s', burst: 1 } }, horizonMs: 1 });
    const redis = t.redis as Redis;
    let queuedRounds = 0;
    for (let i = 0; i < 100; i++) {
      const before = (await t.inspect('e')).counters.queued;
      await Promise.all(Array.from({ length: 3 }, () => t.acquire('e', { tenant: `tenant-${i}` })));
      if ((await t.inspect('e')).counters.queued > before) queuedRounds++;
    }
    expect(queuedRounds).toBeGreaterThan(64);
    const fields = await redis.hkeys(t.keys.bucket('e'));
    expect(fields.filter((f) => f.startsWith('c|')).length).toBeGreaterThan(0);
    expect(fields.length).toBeLessThanOrEqual(64 + 8);
  });

  it("hands a promotion to its owner through the endpoint's mailbox, and sweeps mail nobody came for", async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '20/s', burst: 1 } } });
    const redis = t.redis as Redis;
    // owner a: one reserved, one queued (50 ms away, beyond the 10 ms horizon)
    const a = acquireArgs(t, 'aaaa', { ratePerMs: 0.02, burst: 1, requests: [{}, {}] });
    const queued = splitAcquireReply(await run<unknown[]>(redis, 'acquire', a.keys, a.args));
    expect(queued[1]![6]).toBe(1);
    const seq = String(queued[1]![7]).split('|')[0];
    // mail of a process long gone, posted when the namespace was young
    const mailbox = t.keys.mailbox('e');
    for (let i = 0; i < 70; i++) await redis.hset(mailbox, `dead|${String(i).padStart(12, '0')}`, 'x@1000');
    await sleep(60);
    // owner b's call promotes a's ticket: posted to the mailbox, a's flag raised
    const b = acquireArgs(t, 'bbbb', { ratePerMs: 0.02, burst: 1, requests: [] });
    await run(redis, 'acquire', b.keys, b.args);
    expect(await redis.hget(mailbox, `aaaa|${seq}`)).toMatch(/^[\d.]+@\d+$/);
    // a's next call reads it (its flag says mail waits), and the stale mail goes with it
    const again = acquireArgs(t, 'aaaa', { ratePerMs: 0.02, burst: 1, ticketsOut: '1', requests: [] });
    const reply = splitAcquireReply(await run<unknown[]>(redis, 'acquire', again.keys, again.args));
    expect(reply[2]).toEqual([seq, expect.stringMatching(/^[\d.]+$/)]);
    const left = await redis.hkeys(mailbox);
    expect(left.filter((f) => f.startsWith('dead|'))).toEqual([]);
    expect(left.filter((f) => f.startsWith('aaaa|'))).toEqual([]);
    expect(await redis.pttl(mailbox)).toBeGreaterThan(0);
  });

  it("reads and writes the endpoint's packed fields in the order EP_FIELDS lists", async () => {
    // the order is written out three times in endpoint.lua (the list, loadEndpoint's constructor,
    // packEndpoint): a field out of place reads or writes another field's value
    const t = makeThrottler({ endpoints: { e: { rate: '10/s', burst: 5 } } });
    const redis = t.redis as Redis;
    await t.acquire('e');
    const key = t.keys.bucket('e');
    const marks = { adm: 101, qd: 102, to: 103, qf: 104, dr: 105, pen: 106, dw: 107, byp: 108, sw: 109 };
    await writeEndpointState(redis, key, marks);
    // read through the constructor
    expect((await t.inspect('e')).counters).toMatchObject({
      admitted: 101, queued: 102, timeouts: 103, queueFull: 104, dropped: 105, penalties: 106, wouldWait: 107, bypassed: 108,
    });
    // written back through packEndpoint: a penalty changes pen and the bucket's clocks, nothing else here
    await t.penalize('e', { retryAfterMs: 1 });
    expect(await readEndpointState(redis, key)).toMatchObject({ ...marks, pen: 107 });
  });

  it("reads the endpoint's state again when another writer changed it since the run before (a Function keeps the table it saved)", async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '10/s', burst: 5 } } });
    const redis = t.redis as Redis;
    const key = t.keys.bucket('e');
    await t.acquire('e');
    await t.acquire('e');
    await writeEndpointState(redis, key, { adm: 500 });
    await t.acquire('e');
    expect((await t.inspect('e')).counters.admitted).toBe(501);
    // the state is this script's own save again: the kept table counts on
    await t.acquire('e');
    expect((await readEndpointState(redis, key)).adm).toBe(502);
  });

  it("keeps the tenants' hash to about the tenants in use while tenants come and go", async () => {
    const t = makeThrottler({ endpoints: { e: { rate: '1000/s', burst: 1000 } } });
    const redis = t.redis as Redis;
    const tenants = t.keys.tenants();
    const call = (tenant: string) => {
      const a = acquireArgs(t, 'aaaa', { ratePerMs: 1, burst: 1000, leaseMs: 100, requests: [{ tenant, tenantRate: 1, tenantBurst: 1 }] });
      return run(redis, 'acquire', a.keys, a.args);
    };
    for (let i = 0; i < 100; i++) await call(`old-${i}`);
    expect(await redis.hlen(tenants)).toBe(101); // and '|x', the hash's expiry
    // a full bucket's field runs out after its refill + 1 s, the keys' TTL (horizon + lease + 1 s)
    // and half that again of slack: 2.7 s here
    await sleep(3_000);
    for (let i = 0; i < 100; i++) await call(`new-${i}`);
    // each new field samples 4 others: about 7 stale fields of 100 are expected to remain
    expect(await redis.hlen(tenants)).toBeLessThanOrEqual(101 + 30);
    expect(await redis.pttl(tenants)).toBeGreaterThan(0);
  });
});
