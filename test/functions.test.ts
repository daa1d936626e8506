import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startEmbeddedRedis, type EmbeddedRedis } from '../workers/embedded/redis-server.js';
import { hoist, scripts } from '../src/redis/scripts.js';
import { logSink, makeThrottler } from './support/helpers.js';

/**
 * The scripts as Redis Functions: loaded once per server and called by FCALL, loaded again when
 * the server lost them, and run by EVALSHA where loading is not allowed. A private Redis: these
 * tests flush functions and add ACL users.
 */
let server: EmbeddedRedis;
let admin: Redis;
beforeAll(async () => {
  server = await startEmbeddedRedis();
  admin = new Redis(server.url);
});
afterAll(async () => {
  admin.disconnect();
  await server.stop();
});

async function calls(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const m of (await admin.info('commandstats')).matchAll(/^cmdstat_(eval|evalsha|fcall):calls=(\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

async function libraries(): Promise<string[]> {
  return ((await admin.call('FUNCTION', 'LIST', 'LIBRARYNAME', 'sluicefn_*')) as unknown[][]).map((l) => String(l[1])).sort();
}

describe('scripts as Redis Functions', () => {
  it('runs the fast and the queued path by FCALL only, and loads the libraries again after FUNCTION FLUSH', async () => {
    await admin.config('RESETSTAT');
    const t = makeThrottler({ redis: server.url, endpoints: { e: { rate: '50/s', burst: 1 } } });
    await Promise.all(Array.from({ length: 4 }, () => t.acquire('e')));
    expect(await libraries()).toEqual([...scripts().values()].flatMap((s) => (s.library ? [s.library.name] : [])).sort());
    const before = await calls();
    expect(before.fcall).toBeGreaterThan(0);
    expect(before.evalsha ?? 0).toBe(0);
    expect(before.eval ?? 0).toBe(0);

    await admin.call('FUNCTION', 'FLUSH');
    expect(await libraries()).toEqual([]);
    // the next calls find no function, load the libraries and go on: nobody sees the error
    await Promise.all(Array.from({ length: 3 }, () => t.acquire('e')));
    expect((await libraries()).length).toBeGreaterThan(0);
    expect((await calls()).evalsha ?? 0).toBe(0);
    await t.close();
  });

  it('a user not allowed to load functions runs the same scripts by EVALSHA, and the log says why', async () => {
    await admin.call('ACL', 'SETUSER', 'nofunctions', 'on', '>pw', '~*', '&*', '+@all', '-function');
    await admin.call('FUNCTION', 'FLUSH');
    await admin.config('RESETSTAT');
    const { logger, lines } = logSink();
    const t = makeThrottler({ redis: server.url.replace('redis://', 'redis://nofunctions:pw@'), endpoints: { e: { rate: '50/s', burst: 1 } }, logger });
    const admitted = await Promise.all(Array.from({ length: 4 }, () => t.acquire('e')));
    expect(admitted).toHaveLength(4);
    // queued ones were served in order, one slot apart (20 ms at 50/s)
    const slots = admitted.map((a) => a.slot).sort((a, b) => a - b);
    expect(slots[3]! - slots[0]!).toBeGreaterThanOrEqual(59);
    const c = await calls();
    // EVALSHA, and EVAL for the first call of each script (NOSCRIPT: this server had none)
    expect((c.evalsha ?? 0) + (c.eval ?? 0)).toBeGreaterThan(0);
    expect(c.fcall ?? 0).toBe(0);
    expect(await libraries()).toEqual([]);
    expect(lines.some((l) => /Redis Functions are not available/.test(String(l.msg)) && /NOPERM/.test(JSON.stringify(l.err)))).toBe(true);
    await t.close();
  });
});

describe('an include at a library\'s top level (hoist)', () => {
  it('keeps functions, assigns constants once and per-call state on every call, and refuses what it cannot split', () => {
    const once: string[] = [];
    const perCall: string[] = [];
    const out = hoist('x', "local LIMIT = 64\nlocal max, rcall = math.max, redis.call\nlocal seen, n = {}, 0\nlocal function f()\n  return seen[n]\nend", once, perCall);
    expect(out).toBe('local LIMIT\nlocal max, rcall\nlocal seen, n\nlocal function f()\n  return seen[n]\nend');
    expect(once).toEqual(['LIMIT = 64', 'max, rcall = math.max, redis.call']);
    expect(perCall).toEqual(['seen, n = {}, 0']);
    // run once per server, these would be shared between calls (or fail with no globals at load)
    expect(() => hoist('x', 'if ARGV[1] then x = 1 end', [], [])).toThrow(/lua\/includes\/x.lua:1: only local declarations/);
    expect(() => hoist('x', "local t = {\n  'a',\n}", [], [])).toThrow(/declared on one line/);
  });
});
