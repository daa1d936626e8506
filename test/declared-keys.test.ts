import { afterEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { Keys, type KeyLayout } from '../src/keys.js';
import { run } from '../src/redis/scripts.js';
import { cleanup, makeThrottler, newRedis, redisUrl, testNamespace, until } from './support/helpers.js';

/**
 * Every key a script touches is declared in KEYS: the scripts run under an ACL user that may touch
 * only the keys Sluice declares (the scripts' KEYS, plus the namespace-wide keys the client writes
 * itself), and Redis refuses any other key a script builds, with NOPERM and an ACL LOG entry.
 */
afterEach(cleanup);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function restrictedUser(admin: Redis, keys: Keys, endpoints: string[], functions = true): Promise<{ url: string; user: string }> {
  const user = `declared-${keys.namespace}`;
  const allowed = new Set([keys.live(), keys.audit(), keys.endpoints()]);
  for (const e of endpoints) for (const k of [...keys.script(e), keys.stats(e)]) allowed.add(k);
  // the patterns are globs: escape what a key could hold of * ? [ ] \
  const patterns = [...allowed].map((k) => `~${k.replace(/[*?[\]\\]/g, '\\$&')}`);
  // without FUNCTION, the scripts run by EVALSHA (see src/redis/scripts.ts): both paths are checked
  await admin.call('ACL', 'SETUSER', user, 'reset', 'on', '>pw', '+@all', ...(functions ? [] : ['-function']), '&*', ...patterns);
  const url = new URL(redisUrl());
  url.username = user;
  url.password = 'pw';
  return { url: url.toString(), user };
}

async function denials(admin: Redis, user: string): Promise<string[]> {
  const log = (await admin.call('ACL', 'LOG', '128')) as unknown[][];
  const out: string[] = [];
  for (const entry of log) {
    const fields: Record<string, unknown> = {};
    for (let i = 0; i < entry.length; i += 2) fields[String(entry[i])] = entry[i + 1];
    // keys only: without FUNCTION the loader's FUNCTION LIST is refused, as meant
    if (fields.username === user && fields.reason === 'key') out.push(`${String(fields.reason)} ${String(fields.object)} (${String(fields.context)})`);
  }
  return out;
}

describe.each<KeyLayout>(['namespace', 'endpoint'])("scripts touch only the keys they declare (layout '%s')", (layout) => {
  it.each([['Functions', true], ['EVALSHA', false]] as const)('fast path, queue, promotion of another owner\'s ticket, a dead owner, parents, shadow, cancel, penalize, inspect (%s)', async (_how, functions) => {
    const admin = newRedis();
    const namespace = testNamespace('acl');
    const keys = new Keys(namespace, layout);
    const { url, user } = await restrictedUser(admin, keys, ['e', 'f'], functions);
    try {
      const parents = layout === 'namespace'
        ? { global: { rate: '1000/s', burst: 50 }, tenants: { acme: { rate: '500/s', burst: 5 } } }
        : {};
      const options = { namespace, keyLayout: layout, redis: url, leaseMs: 1_000, horizonMs: 10, endpoints: { e: { rate: '20/s', burst: 1 }, f: { rate: '5/s', burst: 1 } }, ...parents };
      const t1 = makeThrottler(options);
      const t2 = makeThrottler(options);
      // fast path, with the global cap and a configured tenant budget charged
      await t1.acquire('e', { tenant: 'acme' });
      if (layout === 'namespace') await t1.setTenantBudget('other', { rate: '200/s', burst: 3 });
      await t1.setShadow('e', { rate: '10/s', burst: 1 });
      // both owners queue: each one's calls promote the other's tickets (mailbox, leases)
      const queued = Array.from({ length: 8 }, (_, i) => (i % 2 ? t1 : t2).acquire('e', { tenant: i % 3 ? 'acme' : 'other', maxWaitMs: 5_000 }));
      // a slow endpoint: tickets outlive 2/3 of the lease, so promote asks for their owners' leases
      const slow = Array.from({ length: 4 }, (_, i) => (i % 2 ? t1 : t2).acquire('f', { tenant: 'acme' }));
      // a cancel: the ticket leaves the queue and refunds nothing
      const controller = new AbortController();
      const cancelled = t1.acquire('e', { signal: controller.signal, tenant: 'other' }).catch((e: unknown) => e);
      await sleep(20);
      controller.abort();
      expect(await cancelled).toBeInstanceOf(Error);
      await Promise.all([...queued, ...slow]);
      // a dead owner's ticket: queued by a raw call whose lease nobody renews, dropped by t2's call
      const k = keys.script('e');
      const args = ['e', 'deadbeef', 0.02, 1, 10, 1000, 100, '0', layout === 'namespace' ? 1 : '', layout === 'namespace' ? 50 : '', '', t1.configVersion, 2];
      // two requests as one group: ids 1 and 2
      args[args.length - 1] = 1;
      args.push(1, 2, 1, -1, 'acme', 'normal', 2, '', '');
      args.push(0);
      await run(t1.redis, 'acquire', k, args);
      await sleep(150);
      await until('the dead owner\'s ticket dropped', async () => {
        await t2.acquire('e', { tenant: 'acme' });
        return (await t2.inspect('e')).counters.dropped >= 1;
      }, 5_000);
      // a reservation handed back (cancel refunds the parents), a penalty, inspect
      await t1.penalize('e', { retryAfterMs: 50 });
      const late = new AbortController();
      const refunded = t2.acquire('e', { signal: late.signal, tenant: 'acme' }).catch((e: unknown) => e);
      late.abort();
      await refunded;
      expect((await t1.inspect('e')).counters.penalties).toBe(1);
      await t1.close();
      await t2.close();
      expect(await denials(admin, user)).toEqual([]);
    } finally {
      await admin.call('ACL', 'DELUSER', user);
      await admin.quit();
    }
  }, 30_000);

  it('would catch a key built inside a script', async () => {
    const admin = newRedis();
    const keys = new Keys(testNamespace('acl'), layout);
    const { user } = await restrictedUser(admin, keys, ['e']);
    const restricted = newRedis();
    try {
      await restricted.call('AUTH', user, 'pw');
      // what the old layout did: a tenant's bucket named after the tenant, built from a declared key
      await expect(restricted.eval("return redis.call('HGET', KEYS[1] .. ':acme', 'p')", 1, keys.tenants('e'))).rejects.toThrow(/can't access|NOPERM/i);
      expect((await denials(admin, user)).join('\n')).toContain(`${keys.tenants('e')}:acme`);
    } finally {
      await restricted.quit();
      await admin.call('ACL', 'DELUSER', user);
      await admin.quit();
    }
  });
});
