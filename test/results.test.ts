import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { InvalidPayloadError } from '../src/errors/index.js';
import { ResultsStore, type PairInfo } from '../workers/results/store.js';
import { CSV_HEADER, csvField, exportResults } from '../workers/results/export.js';

const url = inject('redisUrl');
const opened: { redis: Redis; store: ResultsStore }[] = [];

function setup(pageSize?: number): { store: ResultsStore; redis: Redis; namespace: string } {
  const namespace = `res-${randomBytes(5).toString('hex')}`;
  const redis = new Redis(url);
  const store = new ResultsStore(redis, namespace, pageSize === undefined ? {} : { pageSize });
  opened.push({ redis, store });
  return { store, redis, namespace };
}

async function keysOf(redis: Redis, namespace: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `*${namespace}*`, 'COUNT', 1000);
    cursor = next;
    out.push(...batch);
  } while (cursor !== '0');
  return out.sort();
}

async function all<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** A Writable that keeps what it was given. */
function sink(): { out: Writable; text: () => string } {
  const chunks: string[] = [];
  const out = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(String(chunk));
      callback();
    },
  });
  return { out, text: () => chunks.join('') };
}

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();

afterEach(async () => {
  for (const { redis, store } of opened.splice(0)) {
    await store.clear();
    expect(await keysOf(redis, store.keys.namespace)).toEqual([]);
    await redis.quit();
  }
});

describe('ResultsStore', () => {
  it('records a profile: profile -> domains and domain -> profiles, under one hash tag', async () => {
    const { store, redis, namespace } = setup();
    await store.recordProfile({ handle: '@Alice', nickname: 'Alice A', domains: ['Example.COM.', 'shop.io', 'example.com'], source: '#cats', at: T0 });

    expect(await store.profile('alice')).toEqual({
      handle: 'alice',
      nickname: 'Alice A',
      source: '#cats',
      firstSeen: T0,
      lastSeen: T0,
      domains: ['example.com', 'shop.io'],
    });
    expect(await store.counts()).toEqual({ profiles: 1, domains: 2 });
    expect(await all(store.profilesFor('EXAMPLE.com'))).toEqual([
      { domain: 'example.com', handle: 'alice', nickname: 'Alice A', firstSeen: T0, lastSeen: T0 },
    ]);
    const keys = await keysOf(redis, namespace);
    expect(keys).toHaveLength(5);
    for (const key of keys) expect(key.startsWith(`sluice:{${namespace}:results}:`)).toBe(true);
  });

  it('is idempotent: recording again adds nothing and moves only last seen', async () => {
    const { store, redis, namespace } = setup();
    const record = { handle: 'bob', nickname: 'Bob', domains: ['a.com', 'b.com'], at: T0 };
    await store.recordProfile(record);
    const keysBefore = await keysOf(redis, namespace);
    await store.recordProfile(record);
    await store.recordProfile({ ...record, at: T0 + 5_000 });

    expect(await keysOf(redis, namespace)).toEqual(keysBefore);
    expect(await store.counts()).toEqual({ profiles: 1, domains: 2 });
    expect(await store.profile('bob')).toMatchObject({ firstSeen: T0, lastSeen: T0 + 5_000, domains: ['a.com', 'b.com'] });
    expect(await all(store.profilesFor('a.com'))).toEqual([
      { domain: 'a.com', handle: 'bob', nickname: 'Bob', firstSeen: T0, lastSeen: T0 + 5_000 },
    ]);
    expect((await all(store.domains())).sort((x, y) => x.domain.localeCompare(y.domain))).toEqual([
      { domain: 'a.com', firstSeen: T0, lastSeen: T0 + 5_000, profiles: 1 },
      { domain: 'b.com', firstSeen: T0, lastSeen: T0 + 5_000, profiles: 1 },
    ]);
  });

  it('keeps first/last seen of pairs and domains right when records arrive out of order', async () => {
    const { store } = setup();
    await store.recordProfile({ handle: 'carol', domains: ['x.com'], at: T0 + 2_000 });
    await store.recordProfile({ handle: 'carol', domains: ['x.com'], at: T0 }); // an older record, late
    await store.recordProfile({ handle: 'dan', domains: ['x.com'], at: T0 + 1_000 });

    const pairs = (await all(store.profilesFor('x.com'))).sort((a, b) => a.handle.localeCompare(b.handle));
    expect(pairs).toEqual([
      { domain: 'x.com', handle: 'carol', firstSeen: T0, lastSeen: T0 + 2_000 },
      { domain: 'x.com', handle: 'dan', firstSeen: T0 + 1_000, lastSeen: T0 + 1_000 },
    ]);
    expect(await all(store.domains())).toEqual([{ domain: 'x.com', firstSeen: T0, lastSeen: T0 + 2_000, profiles: 2 }]);
    expect((await store.profile('carol'))?.firstSeen).toBe(T0);
  });

  it('keeps domains a profile no longer names, with their own last seen; a new nickname replaces the old', async () => {
    const { store } = setup();
    await store.recordProfile({ handle: 'erin', nickname: 'Old', domains: ['old.com'], at: T0 });
    await store.recordProfile({ handle: 'erin', nickname: 'New', domains: ['new.com'], at: T0 + 60_000 });
    expect(await store.profile('erin')).toEqual({
      handle: 'erin',
      nickname: 'New',
      firstSeen: T0,
      lastSeen: T0 + 60_000,
      domains: ['old.com', 'new.com'],
    });
    expect(await all(store.profilesFor('old.com'))).toEqual([
      { domain: 'old.com', handle: 'erin', nickname: 'New', firstSeen: T0, lastSeen: T0 },
    ]);
  });

  it('records a profile whose bio names no domain', async () => {
    const { store } = setup();
    await store.recordProfile({ handle: 'quiet', domains: [], at: T0 });
    expect(await store.profile('quiet')).toEqual({ handle: 'quiet', firstSeen: T0, lastSeen: T0, domains: [] });
    expect(await store.counts()).toEqual({ profiles: 1, domains: 0 });
    expect(await store.profile('never-seen')).toBeUndefined();
  });

  it.each([
    ['a handle with a blank', { handle: 'a b', domains: [] }, 'handle name "a b" is not valid'],
    ['a handle with braces', { handle: '{x}', domains: [] }, 'not valid'],
    ['a domain with a blank', { handle: 'ok', domains: ['a b.com'] }, 'domain "a b.com" is not a host name'],
    ['a domain with @', { handle: 'ok', domains: ['me@x.com'] }, 'is not a host name'],
    ['domains that are not an array', { handle: 'ok', domains: 'x.com' as never }, 'domains must be an array'],
    ['a nickname too long', { handle: 'ok', domains: [], nickname: 'n'.repeat(257) }, 'nickname must be a string of at most 256'],
    ['a bad time', { handle: 'ok', domains: [], at: Number.NaN }, 'at must be a time in ms'],
  ])('refuses %s and writes nothing', async (_label, record, text) => {
    const { store, redis, namespace } = setup();
    await expect(store.recordProfile(record)).rejects.toThrow(InvalidPayloadError);
    await expect(store.recordProfile(record)).rejects.toThrow(text);
    expect(await keysOf(redis, namespace)).toEqual([]);
  });

  it('lists large sets page by page, each item once', async () => {
    const { store } = setup(10);
    const domains = ['a.com', 'b.com', 'c.com'];
    await Promise.all(
      Array.from({ length: 300 }, (_, i) => store.recordProfile({ handle: `p${i}`, domains: domains.slice(0, 1 + (i % 3)), at: T0 + i })),
    );
    const profiles = await all(store.profiles());
    expect(profiles).toHaveLength(300);
    expect(new Set(profiles.map((p) => p.handle)).size).toBe(300);
    expect(profiles.find((p) => p.handle === 'p5')).toEqual({ handle: 'p5', firstSeen: T0 + 5, lastSeen: T0 + 5, domains: ['a.com', 'b.com', 'c.com'] });

    const forA = await all(store.profilesFor('a.com'));
    expect(forA).toHaveLength(300);
    expect(new Set(forA.map((p) => p.handle)).size).toBe(300);
    expect(await all(store.profilesFor('c.com'))).toHaveLength(100);
    const pairs = await all(store.pairs());
    expect(pairs).toHaveLength(300 + 200 + 100);
    expect(await store.counts()).toEqual({ profiles: 300, domains: 3 });
  });
});

describe('exportResults', () => {
  async function smallSet(store: ResultsStore) {
    await store.recordProfile({ handle: 'alice', nickname: 'Alice', domains: ['a.com'], at: T0 });
    await store.recordProfile({ handle: 'bob', nickname: 'Bob, "the" builder', domains: ['a.com', 'b.com'], at: T0 + 1_000 });
    await store.recordProfile({ handle: 'bob', nickname: 'Bob, "the" builder', domains: ['a.com', 'b.com'], at: T0 + 3_000 });
    await store.recordProfile({ handle: 'carol', nickname: '=HYPERLINK("http://x")', domains: ['b.com'], at: T0 + 2_000 });
    await store.recordProfile({ handle: 'dan', nickname: 'line one\nline two', domains: ['c.com'], at: T0 + 4_000 });
    await store.recordProfile({ handle: 'erin', domains: ['c.com'], at: T0 + 5_000 });
  }

  /** Scan order is not a contract: compare the header, then the rows in sorted order. */
  function rowsOf(text: string, header: boolean): string[] {
    expect(text.endsWith('\n')).toBe(true);
    // Split on newlines outside quotes: a quoted nickname may hold one of its own.
    const rows: string[] = [];
    let row = '';
    let quoted = false;
    for (const char of text) {
      if (char === '"') quoted = !quoted;
      if (char === '\n' && !quoted) {
        rows.push(row);
        row = '';
      } else row += char;
    }
    expect(row).toBe('');
    if (header) expect(rows.shift()).toBe(CSV_HEADER);
    return rows.sort();
  }

  it('writes CSV: header, one row per (domain, profile) pair, escaped, formulas neutralized', async () => {
    const { store } = setup();
    await smallSet(store);
    const { out, text } = sink();
    expect(await exportResults(store, { format: 'csv', out })).toEqual({ rows: 6 });
    expect(rowsOf(text(), true)).toEqual(
      [
        `a.com,alice,Alice,${iso(T0)},${iso(T0)}`,
        `a.com,bob,"Bob, ""the"" builder",${iso(T0 + 1_000)},${iso(T0 + 3_000)}`,
        `b.com,bob,"Bob, ""the"" builder",${iso(T0 + 1_000)},${iso(T0 + 3_000)}`,
        `b.com,carol,"'=HYPERLINK(""http://x"")",${iso(T0 + 2_000)},${iso(T0 + 2_000)}`,
        `c.com,dan,"line one\nline two",${iso(T0 + 4_000)},${iso(T0 + 4_000)}`,
        `c.com,erin,,${iso(T0 + 5_000)},${iso(T0 + 5_000)}`,
      ].sort(),
    );
    expect(out.writableEnded).toBe(false);
  });

  it('writes CSV formulas untouched when asked', async () => {
    const { store } = setup();
    await store.recordProfile({ handle: 'carol', nickname: '=1+1', domains: ['b.com'], at: T0 });
    const { out, text } = sink();
    await exportResults(store, { format: 'csv', out, neutralizeFormulas: false });
    expect(text()).toBe(`${CSV_HEADER}\nb.com,carol,=1+1,${iso(T0)},${iso(T0)}\n`);
  });

  it('escapes CSV fields per RFC 4180', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('cr\rlf')).toBe('"cr\rlf"');
    expect(csvField('-5')).toBe("'-5");
    expect(csvField('@x')).toBe("'@x");
    expect(csvField('+1', false)).toBe('+1');
    expect(csvField('')).toBe('');
  });

  it('writes JSON Lines: one object per pair, nickname null when unknown', async () => {
    const { store } = setup();
    await smallSet(store);
    const { out, text } = sink();
    expect(await exportResults(store, { format: 'jsonl', out })).toEqual({ rows: 6 });
    const lines = text().trimEnd().split('\n');
    expect(lines).toHaveLength(6);
    const rows = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    rows.sort((a, b) => `${String(a.domain)} ${String(a.handle)}`.localeCompare(`${String(b.domain)} ${String(b.handle)}`));
    expect(rows).toEqual([
      { domain: 'a.com', handle: 'alice', nickname: 'Alice', firstSeen: iso(T0), lastSeen: iso(T0) },
      { domain: 'a.com', handle: 'bob', nickname: 'Bob, "the" builder', firstSeen: iso(T0 + 1_000), lastSeen: iso(T0 + 3_000) },
      { domain: 'b.com', handle: 'bob', nickname: 'Bob, "the" builder', firstSeen: iso(T0 + 1_000), lastSeen: iso(T0 + 3_000) },
      { domain: 'b.com', handle: 'carol', nickname: '=HYPERLINK("http://x")', firstSeen: iso(T0 + 2_000), lastSeen: iso(T0 + 2_000) },
      { domain: 'c.com', handle: 'dan', nickname: 'line one\nline two', firstSeen: iso(T0 + 4_000), lastSeen: iso(T0 + 4_000) },
      { domain: 'c.com', handle: 'erin', nickname: null, firstSeen: iso(T0 + 5_000), lastSeen: iso(T0 + 5_000) },
    ]);
    // The raw line is exactly JSON.stringify of the object: no extra fields, fixed key order.
    expect(lines).toContain(
      `{"domain":"c.com","handle":"erin","nickname":null,"firstSeen":"${iso(T0 + 5_000)}","lastSeen":"${iso(T0 + 5_000)}"}`,
    );
  });

  it('writes only a header for an empty store', async () => {
    const { store } = setup();
    const csv = sink();
    expect(await exportResults(store, { format: 'csv', out: csv.out })).toEqual({ rows: 0 });
    expect(csv.text()).toBe(`${CSV_HEADER}\n`);
    const jsonl = sink();
    await exportResults(store, { format: 'jsonl', out: jsonl.out });
    expect(jsonl.text()).toBe('');
  });

  it('waits for a slow destination (backpressure) and loses nothing', async () => {
    const { store } = setup(50);
    await Promise.all(
      Array.from({ length: 2_000 }, (_, i) =>
        store.recordProfile({ handle: `user${i}`, nickname: `A rather long nickname number ${i}`, domains: ['big.com'], at: T0 + i }),
      ),
    );
    const chunks: string[] = [];
    let drains = 0;
    const out = new Writable({
      highWaterMark: 1024,
      write(chunk, _encoding, callback) {
        chunks.push(String(chunk));
        void sleep(1).then(() => callback());
      },
    });
    out.on('drain', () => (drains += 1));
    expect(await exportResults(store, { format: 'csv', out })).toEqual({ rows: 2_000 });
    const lines = chunks.join('').trimEnd().split('\n');
    expect(lines).toHaveLength(2_001);
    expect(new Set(lines.slice(1).map((line) => line.split(',')[1])).size).toBe(2_000);
    expect(drains).toBeGreaterThan(0);
  });

  it('refuses an unknown format', async () => {
    const { store } = setup();
    const pairs: PairInfo[] = [];
    await expect(exportResults({ pairs: async function* () { yield* pairs; } }, { format: 'xml' as never, out: sink().out })).rejects.toThrow(
      'format must be "csv" or "jsonl"',
    );
    expect(await store.counts()).toEqual({ profiles: 0, domains: 0 });
  });
});
