/**
 * Property tests (fast-check) of everything that crosses Sluice's boundary: names that end up in
 * Redis keys, job payloads, config files and runtime overrides.
 *
 * The claim for each: any input either is accepted and then keeps the invariants (keys inside the
 * namespace's slot, finite positive rates, normalized payloads), or is refused with the typed error
 * of its kind, whose message names the field. Never a crash, never a key outside the namespace.
 *
 * The Redis-backed properties run against a private redis-server started here (not the shared
 * test server), so "every key on the server" means the keys this file made.
 *
 * Bugs these properties found are pinned by regression tests at the end (they failed before the fix).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { bullmqPrefix } from '../src/bullmq/index.js';
import { ResultKeys } from '../workers/results/keys.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import calculateSlot from 'cluster-key-slot';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { z } from 'zod';
import { parseJob, type JobKind } from '../jobs/schemas.js';
import { loadConfigFile } from '../workers/config/load.js';
import { Name, ThrottlerConfig } from '../src/config/schema.js';
import { tokensPerMs, type Rate } from '../src/config/units.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../workers/embedded/redis-server.js';
import {
  CostAboveBurstError,
  createThrottler,
  InvalidConfigError,
  InvalidNameError,
  InvalidPayloadError,
  parseThrottlerConfig,
  SluiceError,
  UnknownEndpointError,
  type Throttler,
} from '../src/index.js';
import { assertName, Keys } from '../src/keys.js';

let server: EmbeddedRedis;
let redis: Redis;

beforeAll(async () => {
  server = await startEmbeddedRedis();
  redis = new Redis(server.url);
});

afterAll(async () => {
  await redis?.quit();
  await server?.stop();
});

const silent = pino({ level: 'silent' });

// ---- arbitraries -----------------------------------------------------------------------------

/** Characters that break keys or logs, next to ordinary and exotic ones. */
const NASTY = [
  '{', '}', '|', ' ', '\t', '\n', '\r', '\u0000', '\u001b', '\u001f', '\u007f', '\u00a0', '\u2028', '\u3000', '\ufeff',
  ':', '*', '?', '[', ']', '\\', '"', "'", '%', 'é', '日', '🚀', '\u200b', '\u0301', 'a', 'b', 'Z', '-', '.', '_', '0',
];

/** Property names of Object.prototype: once accepted as priorities (bug 2, see the end). */
const PROTOTYPE_NAMES = Object.getOwnPropertyNames(Object.prototype);

/**
 * Names: mostly-valid ones, nasty characters, any well-formed unicode, lengths around the limit
 * and far beyond, lone surrogates (bug 3) and Object.prototype's property names (bug 2).
 */
const nameArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9._:-]{0,15}$/) },
  { weight: 3, arbitrary: fc.string({ unit: fc.constantFrom(...NASTY), minLength: 0, maxLength: 10 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom('n\uD800', 'a\uDBFFb', '\uDC00', ...PROTOTYPE_NAMES) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 125, maxLength: 132 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '', 'x'.repeat(128), 'x'.repeat(129), 'x'.repeat(100_000), '🚀'.repeat(128), '🚀'.repeat(129),
      '{ns}', 'a}b', 'a{b', '{}', '}{', 'a|b', '|', ' lead', 'trail ', 'tab\there', 'nul\u0000', 'del\u007f', 'nbsp\u00a0',
      'line\u2028sep', 'bom\ufeff', 'zero\u200bwidth', 'café', '日本語', 'e\u0301', 'a:b:c', '*', '[a]', 'sluice:{x}:',
    ),
  },
);

/** Valid names, most of the time: a run of several names then often is valid as a whole. */
const mostlyValidName: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9._:-]{0,11}$/) },
  { weight: 1, arbitrary: fc.constantFrom('café', '日本語', '🚀', 'a:b:c', 'x'.repeat(128), '[a]*?') },
  { weight: 1, arbitrary: nameArb },
);

/** Mostly `valid`, sometimes anything `wild` (1 in `odds`): keeps both sides of a property exercised. */
function mostly<T, U>(valid: fc.Arbitrary<T>, wild: fc.Arbitrary<U>, odds = 8): fc.Arbitrary<T | U> {
  return fc.oneof({ weight: odds - 1, arbitrary: valid as fc.Arbitrary<T | U> }, { weight: 1, arbitrary: wild as fc.Arbitrary<T | U> });
}

/** An independent statement of the naming rule: 1-128 code points, well-formed, no blanks, braces, '|' or control characters. */
function expectedValid(s: string): boolean {
  const points = [...s];
  return (
    s.isWellFormed() &&
    points.length >= 1 &&
    points.length <= 128 &&
    points.every((c) => !'{}|'.includes(c) && !/\s/u.test(c) && c.codePointAt(0)! >= 0x20 && c.codePointAt(0) !== 0x7f)
  );
}

/** The Cluster slot of a string as Redis computes it: CRC16 over the UTF-8 bytes it receives. */
function serverSlot(key: string): number {
  return calculateSlot(Buffer.from(key, 'utf8') as unknown as string);
}

/** Numbers a JSON body or a careless caller could send. */
const numberArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: -5, max: 1000 }),
  fc.double(),
  fc.constantFrom(0, -0, -1, 0.5, 1e-9, 1e9, 1e12, Number.MAX_SAFE_INTEGER, NaN, Infinity, -Infinity),
  fc.string({ maxLength: 6 }),
  fc.constantFrom(null, true, [], {}),
);

/**
 * Rates: valid strings, garbage strings (zero intervals, hundreds of digits: bug 1), objects with
 * any numbers.
 */
const rateArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom('10/s', '50/min', '3/10s', '200 per second', '0/s', '1/h', '2.5/2 min', 'lots', '', '/s', '10/', '10/parsec', '-1/s', '1e3/s'),
  fc.stringMatching(/^\s?\d{1,6}(\.\d{1,3})?\s?(\/|per)\s?(\d{0,3})?\s?(ms|s|sec|m|min|h|hour|d|day|fortnight)\s?$/),
  fc.constantFrom('0/0s', '1/0s', `${'9'.repeat(400)}/s`, `1/${'9'.repeat(400)}s`),
  fc.string({ maxLength: 12 }),
  fc.record(
    {
      tokens: fc.oneof(fc.double({ min: 0, max: 1e9, noNaN: true }), numberArb),
      intervalMs: fc.oneof(fc.double({ min: 1e-3, max: 1e12, noNaN: true }), fc.constantFrom(0, -1, NaN, Infinity, -Infinity, null, '1000')),
    },
    { requiredKeys: [] },
  ),
  numberArb,
);

/** Durations: numbers, readable strings, garbage, hundreds of digits (bug 1). */
const durationArb: fc.Arbitrary<unknown> = fc.oneof(
  numberArb,
  fc.stringMatching(/^\s?\d{1,6}(\.\d{1,2})?\s?(ms|s|min|h|d|weeks)?\s?$/),
  fc.constantFrom(`${'9'.repeat(400)} ms`, `${'9'.repeat(400)}`),
  fc.string({ maxLength: 8 }),
);

// ---- typed outcomes --------------------------------------------------------------------------

/** Runs `f` and returns its value or its error, whichever: a property then asserts on the kind. */
async function outcome<T>(f: () => Promise<T> | T): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await f() };
  } catch (error) {
    return { ok: false, error };
  }
}

function expectOneOf(error: unknown, kinds: (abstract new (...args: never[]) => SluiceError)[]): void {
  const ok = kinds.some((k) => error instanceof k);
  if (!ok) throw new Error(`expected one of ${kinds.map((k) => k.name).join(', ')}, got ${String(error)}`, { cause: error });
}

// ---- names and keys --------------------------------------------------------------------------

describe('names that end up in keys', () => {
  it('assertName accepts exactly the valid names and refuses the rest with a short InvalidNameError', () => {
    fc.assert(
      fc.property(nameArb, fc.constantFrom('namespace', 'endpoint', 'tenant', 'priority'), (name, kind) => {
        if (expectedValid(name)) {
          expect(assertName(kind, name)).toBe(name);
        } else {
          let error: unknown;
          try {
            assertName(kind, name);
          } catch (e) {
            error = e;
          }
          expect(error).toBeInstanceOf(InvalidNameError);
          const err = error as InvalidNameError;
          expect(err.code).toBe('INVALID_NAME');
          expect(err.message).toContain(`${kind} name `);
          expect(err.message).toMatch(/is not valid: use 1-128 characters without spaces, braces or '\|'$/);
          // a 100 000-character name does not flood the log
          expect(err.message.length).toBeLessThan(400);
        }
        // the config schema's rule is the same rule
        expect(Name.safeParse(name).success).toBe(expectedValid(name));
      }),
      { numRuns: 800 },
    );
  });

  it("every key of valid names starts with the namespace prefix and hashes to the namespace's slot", () => {
    fc.assert(
      fc.property(nameArb, nameArb, nameArb, (ns, endpoint, tenant) => {
        fc.pre(expectedValid(ns) && expectedValid(endpoint) && expectedValid(tenant));
        const k = new Keys(ns);
        const prefix = `sluice:{${ns}}:`;
        expect(k.prefix).toBe(prefix);
        const keys = [
          k.config(endpoint), k.bucket(endpoint), k.queue(endpoint), k.mailbox(endpoint),
          k.leases(), k.shadow(endpoint), k.global(), k.tenants(), k.tenantConfig(), k.stats(endpoint), k.audit(), k.endpoints(),
          ...k.script(endpoint),
        ];
        const slot = serverSlot(`{${ns}}`);
        for (const key of keys) {
          expect(key.startsWith(prefix)).toBe(true);
          expect(serverSlot(key)).toBe(slot);
          // the client computes the same slot as the server
          expect(calculateSlot(key)).toBe(slot);
        }
        // BullMQ and results keys carry a tag of their own, still named after the namespace
        expect(bullmqPrefix(k.namespace)).toBe(`sluice:{${ns}:bull}`);
        expect(serverSlot(`${bullmqPrefix(k.namespace)}:harvesting:wait`)).toBe(serverSlot(`{${ns}:bull}`));
        expect(new ResultKeys(k.namespace).profileDomains(tenant).startsWith(`sluice:{${ns}:results}:`)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('different valid endpoints never share a key, even as bytes', () => {
    fc.assert(
      fc.property(nameArb, nameArb, nameArb, (ns, e1, e2) => {
        fc.pre(expectedValid(ns) && expectedValid(e1) && expectedValid(e2) && e1 !== e2);
        const k = new Keys(ns);
        const of = (e: string) => [k.config(e), k.bucket(e), k.queue(e), k.stats(e), k.shadow(e), k.mailbox(e)];
        const all = [...of(e1), ...of(e2)].map((key) => Buffer.from(key).toString('hex'));
        expect(new Set(all).size).toBe(all.length);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses invalid names in Keys and in the config with typed errors', () => {
    fc.assert(
      fc.property(nameArb, (name) => {
        fc.pre(!expectedValid(name));
        expect(() => new Keys(name)).toThrow(InvalidNameError);
        for (const config of [
          { namespace: name, endpoints: { e: { rate: '1/s' } } },
          { endpoints: { [name]: { rate: '1/s' } } },
          { endpoints: { e: { rate: '1/s' } }, tenants: { [name]: { rate: '1/s' } } },
          { endpoints: { e: { rate: '1/s' } }, priorities: { [name]: 1 } },
          { endpoints: { e: { rate: '1/s' } }, defaultTenant: name },
        ]) {
          expect(() => parseThrottlerConfig(config)).toThrow(InvalidConfigError);
        }
      }),
      { numRuns: 200 },
    );
  });
});

// ---- random acquires with random names against a real Redis ----------------------------------

describe('random acquires with random names on a real redis-server', () => {
  it('every call resolves or throws a typed error; every key on the server belongs to a namespace that was used', async () => {
    const namespaces = new Set<string>();
    let admitted = 0;
    let refusedByName = 0;

    const op = fc.record({
      kind: fc.oneof(
        { weight: 12, arbitrary: fc.constant('tryAcquire' as const) },
        { weight: 1, arbitrary: fc.constantFrom('penalize' as const, 'pause' as const, 'bypass' as const, 'configure' as const) },
      ),
      endpoint: fc.oneof({ weight: 5, arbitrary: fc.constant('e') }, { weight: 1, arbitrary: nameArb }),
      tenant: fc.option(mostlyValidName, { nil: undefined }),
      priority: fc.option(fc.oneof({ weight: 4, arbitrary: fc.constantFrom('high', 'low') }, { weight: 1, arbitrary: nameArb }), { nil: undefined }),
      cost: fc.option(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(1, 2, 0.5, 1e-6, 100) }, { weight: 1, arbitrary: numberArb }), { nil: undefined }),
      ms: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 1, max: 30 }) }, { weight: 1, arbitrary: numberArb }),
    });

    await fc.assert(
      fc.asyncProperty(
        mostlyValidName,
        fc.uniqueArray(mostlyValidName, { minLength: 0, maxLength: 2 }),
        fc.uniqueArray(mostlyValidName, { minLength: 0, maxLength: 2 }),
        fc.uniqueArray(mostlyValidName, { minLength: 0, maxLength: 2 }),
        fc.array(op, { minLength: 1, maxLength: 12 }),
        async (namespace, extraEndpoints, tenantNames, priorityNames, ops) => {
          const config = {
            namespace,
            redis,
            logger: silent,
            endpoints: Object.fromEntries([['e', { rate: '200/s', burst: 3 }], ...extraEndpoints.map((e) => [e, { rate: '100/s', burst: 2 }])]),
            tenants: Object.fromEntries(tenantNames.map((t) => [t, { rate: '50/s', burst: 2 }])),
            priorities: { high: 3, low: 1, ...Object.fromEntries(priorityNames.map((p) => [p, 2])) },
            defaultPriority: 'low',
            global: { rate: '1000/s', burst: 20 },
          };
          const allNames = [namespace, ...extraEndpoints, ...tenantNames, ...priorityNames];
          const made = await outcome(() => createThrottler(config));
          if (!made.ok) {
            expect(made.error).toBeInstanceOf(InvalidConfigError);
            expect(allNames.some((n) => !expectedValid(n))).toBe(true);
            return;
          }
          expect(allNames.every(expectedValid)).toBe(true);
          const t: Throttler = made.value;
          namespaces.add(namespace);
          try {
            for (const o of ops) {
              const known = o.endpoint in config.endpoints && Object.hasOwn(config.endpoints, o.endpoint);
              const options = { tenant: o.tenant, priority: o.priority, cost: o.cost as number };
              let r: Awaited<ReturnType<typeof outcome>>;
              switch (o.kind) {
                case 'tryAcquire':
                  r = await outcome(() => t.tryAcquire(o.endpoint, options));
                  if (r.ok) {
                    expect(typeof r.value).toBe('boolean');
                    expect(known).toBe(true);
                    expect(o.tenant === undefined || expectedValid(o.tenant)).toBe(true);
                    expect(o.priority === undefined || o.priority in config.priorities).toBe(true);
                    if (r.value) admitted++;
                  } else {
                    expectOneOf(r.error, [InvalidNameError, InvalidConfigError, UnknownEndpointError, CostAboveBurstError]);
                    if (r.error instanceof InvalidNameError) refusedByName++;
                    if (r.error instanceof UnknownEndpointError) expect(known).toBe(false);
                  }
                  break;
                case 'penalize':
                  r = await outcome(() => t.penalize(o.endpoint, { retryAfterMs: o.ms as number }));
                  if (!r.ok) expectOneOf(r.error, [InvalidConfigError, UnknownEndpointError]);
                  break;
                case 'pause':
                  r = await outcome(() => t.pause(o.endpoint, { durationMs: o.ms as number }));
                  if (!r.ok) expectOneOf(r.error, [InvalidConfigError, UnknownEndpointError]);
                  break;
                case 'bypass':
                  r = await outcome(() => t.setBypass(o.endpoint, o.tenant ?? 'default', { ttlMs: o.ms as number }));
                  if (!r.ok) expectOneOf(r.error, [InvalidNameError, InvalidConfigError, UnknownEndpointError]);
                  break;
                case 'configure':
                  r = await outcome(() => t.configure(o.endpoint, { burst: o.ms as number }));
                  if (!r.ok) expectOneOf(r.error, [InvalidConfigError, UnknownEndpointError]);
                  break;
              }
            }
          } finally {
            await t.close();
          }
        },
      ),
      { numRuns: 60 },
    );

    // the run did exercise both sides
    expect(namespaces.size).toBeGreaterThan(5);
    expect(admitted).toBeGreaterThan(10);
    expect(refusedByName).toBeGreaterThan(0);

    // SCAN the whole private server: every key belongs to one of the namespaces, in its slot, with a TTL
    const prefixes = [...namespaces].map((ns) => ({ ns, prefix: `sluice:{${ns}}:` }));
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    expect(keys.length).toBeGreaterThan(10);
    for (const key of keys) {
      const owner = prefixes.find((p) => key.startsWith(p.prefix));
      expect(owner, `key ${JSON.stringify(key)} belongs to no namespace used`).toBeDefined();
      expect(serverSlot(key)).toBe(serverSlot(`{${owner!.ns}}`));
      // memory: every key has a TTL (-1 would be a key that lives forever)
      expect(await redis.pttl(key), `key ${JSON.stringify(key)} has no TTL`).toBeGreaterThan(0);
    }
  });
});

// ---- job payloads ----------------------------------------------------------------------------

const JOB_FIELDS: Record<JobKind, string[]> = {
  discovery: ['seed', 'tenant', 'priority', 'maxProfiles'],
  harvesting: ['handle', 'tenant', 'priority', 'source'],
};

const seedArb = mostly(
  fc.record(
    {
      kind: mostly(fc.constantFrom('hashtag', 'keyword', 'creator', 'video', 'manual'), fc.constantFrom('HASHTAG', '', 'x', 1)),
      value: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom('#cats', 'cats', '@Creator_1', 'cooking  tips', '7234567890123456789', 'https://www.tiktok.com/@u/video/7234567890123456789', 'https://vm.tiktok.com/ZM1/', '', '日本語', '#Ünïcödé') },
        { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...NASTY), maxLength: 30 }) },
        { weight: 1, arbitrary: fc.string({ maxLength: 120 }) },
        { weight: 1, arbitrary: numberArb },
      ),
    },
    { requiredKeys: ['kind', 'value'] },
  ),
  fc.jsonValue({ maxDepth: 2 }),
);

const jobArb = (kind: JobKind): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    {
      weight: 4,
      arbitrary: fc.record(
        {
          seed: seedArb,
          source: seedArb,
          handle: mostly(
            fc.oneof(fc.constantFrom('@Cats', 'cats', 'a.b_c', ' @x ', 'x'.repeat(25), '@', ''), fc.stringMatching(/^@?[A-Za-z0-9_.]{1,26}$/)),
            fc.oneof(fc.string({ maxLength: 30 }), numberArb),
          ),
          tenant: mostly(mostlyValidName, numberArb),
          priority: mostly(fc.oneof(fc.constantFrom('high', 'normal'), mostlyValidName), numberArb),
          maxProfiles: mostly(fc.integer({ min: -2, max: 200_000 }), numberArb),
          extra: fc.jsonValue({ maxDepth: 1 }),
        },
        { requiredKeys: kind === 'harvesting' ? ['handle', 'tenant', 'priority', 'source'] : ['seed', 'tenant', 'priority'] },
      ),
    },
    { weight: 1, arbitrary: fc.anything({ maxDepth: 2, withNullPrototype: true, withBoxedValues: true, withMap: true, withSet: true, withDate: true, withSparseArray: true }) },
  );

describe('job payloads', () => {
  it.each(['discovery', 'harvesting'] as const)('parseJob(%s, anything) is a normalized payload or an InvalidPayloadError naming each field', (kind) => {
    let valid = 0;
    let invalid = 0;
    fc.assert(
      fc.property(jobArb(kind), (data) => {
        let parsed: unknown;
        try {
          parsed = parseJob(kind, data);
        } catch (error) {
          invalid++;
          expect(error).toBeInstanceOf(InvalidPayloadError);
          const err = error as InvalidPayloadError;
          expect(err.code).toBe('INVALID_PAYLOAD');
          expect(err.message.startsWith(`invalid ${kind} job: `)).toBe(true);
          expect(err.cause).toBeInstanceOf(z.ZodError);
          for (const issue of (err.cause as z.ZodError).issues) {
            const path = issue.path.map(String).join('.') || '(payload)';
            expect(err.message).toContain(`${path}: `);
            if (issue.path.length) expect(JOB_FIELDS[kind]).toContain(String(issue.path[0]));
          }
          return;
        }
        valid++;
        // normalized: parsing again changes nothing
        expect(parseJob(kind, parsed)).toEqual(parsed);
        const job = parsed as { tenant: string; priority: string; handle?: string };
        // tenant and priority are safe to put in keys
        expect(assertName('tenant', job.tenant)).toBe(job.tenant);
        expect(assertName('priority', job.priority)).toBe(job.priority);
        if (kind === 'harvesting') expect(job.handle).toMatch(/^[a-z0-9_.]{1,24}$/);
        // unknown keys are stripped
        expect(Object.keys(parsed as object).every((k) => JOB_FIELDS[kind].includes(k))).toBe(true);
      }),
      { numRuns: 800 },
    );
    expect(valid).toBeGreaterThan(20);
    expect(invalid).toBeGreaterThan(100);
  });
});

// ---- config ----------------------------------------------------------------------------------

const CONFIG_FIELDS = Object.keys(ThrottlerConfig.shape);

/** Rates, valid most of the time. */
const mostlyValidRate = mostly(fc.constantFrom('10/s', '50/min', '3/10s', '200 per second', '0/s', { tokens: 5, intervalMs: 1000 }), rateArb);
const mostlyValidNumber = (valid: fc.Arbitrary<number>) => mostly(valid, numberArb);

const bucketArb = fc.record({ rate: mostlyValidRate, burst: mostlyValidNumber(fc.integer({ min: 1, max: 100 })) }, { requiredKeys: ['rate'] });

/** Config fields are many: each is wild only 1 time in 25, so a fair share of whole configs is valid. */
const rarely = <T, U>(valid: fc.Arbitrary<T>, wild: fc.Arbitrary<U>) => mostly(valid, wild, 25);
const rarelyBadNumber = (valid: fc.Arbitrary<number>) => rarely(valid, numberArb);
const rarelyBadName = rarely(fc.stringMatching(/^[a-z0-9][a-z0-9._:-]{0,11}$/), fc.oneof(mostlyValidName, nameArb));

const configArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  {
    weight: 6,
    arbitrary: fc.record(
      {
        namespace: rarely(rarelyBadName, numberArb),
        endpoints: rarely(
          fc.dictionary(
            rarelyBadName,
            fc.record(
              {
                rate: mostlyValidRate,
                burst: rarelyBadNumber(fc.integer({ min: 1, max: 100 })),
                maxQueue: rarelyBadNumber(fc.integer({ min: 1, max: 1000 })),
                adaptive: rarely(
                  fc.oneof(fc.boolean(), fc.constant({ decreaseFactor: 0.5, quietMs: '5 s' })),
                  fc.oneof(fc.record({ decreaseFactor: numberArb, quietMs: durationArb, increase: numberArb, minFraction: numberArb }, { requiredKeys: [] }), numberArb),
                ),
              },
              { requiredKeys: ['rate'] },
            ),
            { minKeys: 1, maxKeys: 2 },
          ),
          fc.oneof(numberArb, fc.constant({})),
        ),
        priorities: rarely(
          fc.dictionary(rarelyBadName, rarelyBadNumber(fc.constantFrom(1, 2, 3, 0.5)), { minKeys: 1, maxKeys: 3 }),
          numberArb,
        ),
        defaultPriority: fc.constantFrom('<first>', '<first>', '<first>', 'high', '', 'nope'),
        defaultTenant: rarely(rarelyBadName, numberArb),
        global: rarely(bucketArb, numberArb),
        tenants: rarely(fc.dictionary(rarelyBadName, bucketArb, { maxKeys: 2 }), numberArb),
        horizonMs: rarely(fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.constantFrom('100 ms', '1 s', '2min')), durationArb),
        maxQueue: rarelyBadNumber(fc.integer({ min: 1, max: 1e6 })),
        leaseMs: rarely(fc.oneof(fc.integer({ min: 0, max: 1e5 }), fc.constantFrom('30 s', '1 min')), durationArb),
        failurePolicy: rarely(fc.constant('closed'), fc.constantFrom('open', 'local', 1)),
        unknownField: fc.jsonValue({ maxDepth: 1 }),
      },
      { requiredKeys: ['endpoints'] },
    ).map((c) => {
      // mostly a priority that exists: the first configured one, or the default set's `normal`
      if (c.defaultPriority === '<first>') {
        const first = c.priorities && typeof c.priorities === 'object' ? Object.keys(c.priorities)[0] : 'normal';
        return { ...c, defaultPriority: first ?? 'normal' };
      }
      return c;
    }),
  },
);

function finiteRate(rate: Rate): boolean {
  const perMs = tokensPerMs(rate);
  return Number.isFinite(perMs) && perMs >= 0 && rate.intervalMs > 0;
}

/** Every number in the parsed config is finite, every rate finite and >= 0, every name valid. */
function expectSaneConfig(c: ThrottlerConfig, options: { defaultPriority: boolean } = { defaultPriority: true }): void {
  expect(expectedValid(c.namespace)).toBe(true);
  expect(expectedValid(c.defaultTenant)).toBe(true);
  expect(Object.keys(c.endpoints).length).toBeGreaterThan(0);
  for (const [name, ep] of Object.entries(c.endpoints)) {
    expect(expectedValid(name)).toBe(true);
    expect(finiteRate(ep.rate as Rate)).toBe(true);
    if (ep.burst !== undefined) expect(ep.burst > 0 && Number.isFinite(ep.burst)).toBe(true);
    if (ep.maxQueue !== undefined) expect(Number.isInteger(ep.maxQueue) && ep.maxQueue > 0).toBe(true);
  }
  for (const [name, w] of Object.entries(c.priorities)) {
    expect(expectedValid(name)).toBe(true);
    expect(w > 0 && Number.isFinite(w)).toBe(true);
  }
  for (const [name, b] of Object.entries(c.tenants)) {
    expect(expectedValid(name)).toBe(true);
    expect(finiteRate(b.rate as Rate)).toBe(true);
  }
  if (c.global) expect(finiteRate(c.global.rate as Rate)).toBe(true);
  if (options.defaultPriority && c.defaultPriority !== undefined) expect(Object.hasOwn(c.priorities, c.defaultPriority)).toBe(true);
  for (const ms of [c.horizonMs, c.leaseMs]) expect(Number.isFinite(ms) && ms >= 0).toBe(true);
  expect(Number.isInteger(c.maxQueue) && c.maxQueue > 0).toBe(true);
}

/** Each zod issue of the input appears in the message as `path: `. */
function expectNamesFields(message: string, input: unknown): void {
  const result = ThrottlerConfig.safeParse(input);
  if (result.success) {
    // the only refusal after a successful schema parse: defaultPriority not among the priorities
    expect(message).toMatch(/defaultPriority ".*" is not one of the priorities/);
    return;
  }
  for (const issue of result.error.issues) {
    // an unknown key is named itself, not the object holding it: that is what the caller must fix
    const paths = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path.map(String), k].join('.')) : [issue.path.map(String).join('.') || '(root)'];
    for (const path of paths) expect(message).toContain(path);
    expect(message).toMatch(new RegExp(`${paths.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join(', ')}: `));
    if (issue.path.length) expect(CONFIG_FIELDS).toContain(String(issue.path[0]));
  }
}

describe('config', () => {
  it('parseThrottlerConfig(anything) is a sane config or an InvalidConfigError naming each field', () => {
    let valid = 0;
    let invalid = 0;
    fc.assert(
      fc.property(configArb, (input) => {
        let config: ThrottlerConfig;
        try {
          config = parseThrottlerConfig(input);
        } catch (error) {
          invalid++;
          expect(error).toBeInstanceOf(InvalidConfigError);
          const message = (error as Error).message;
          expect(message.startsWith('invalid throttler config: ')).toBe(true);
          expectNamesFields(message, input);
          return;
        }
        valid++;
        expectSaneConfig(config);
      }),
      { numRuns: 600 },
    );
    expect(valid).toBeGreaterThan(20);
    expect(invalid).toBeGreaterThan(100);
  });

  it('a YAML config file with anything in it loads, or fails with InvalidConfigError naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-props-'));
    try {
      let valid = 0;
      const fileArb = fc.oneof(
        { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
        { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...NASTY, ':', '- ', '\n  ', '&a', '*a', '#'), maxLength: 40 }) },
        {
          weight: 4,
          arbitrary: fc
            .record(
              { namespace: rarely(rarelyBadName, numberArb), tiktokBaseUrl: rarely(fc.oneof(fc.constant('http://127.0.0.1:9'), fc.webUrl()), fc.string()), throttle: configArb },
              { requiredKeys: ['throttle'] },
            )
            .map((o) => toYaml(o)),
        },
      );
      fc.assert(
        fc.property(fileArb, (text) => {
          const path = join(dir, 'sluice.yml');
          writeFileSync(path, text);
          let file: ReturnType<typeof loadConfigFile>;
          try {
            file = loadConfigFile(path);
          } catch (error) {
            expect(error).toBeInstanceOf(InvalidConfigError);
            expect((error as Error).message).toMatch(new RegExp(`^(cannot read config|invalid config) ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
            return;
          }
          valid++;
          expect(expectedValid(file.namespace)).toBe(true);
          expectSaneConfig({ ...file.throttle, namespace: file.namespace } as ThrottlerConfig);
        }),
        { numRuns: 150 },
      );
      expect(valid).toBeGreaterThan(5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- runtime overrides (admin bodies) --------------------------------------------------------

describe('runtime overrides', () => {
  it('configure(endpoint, anything) resolves or rejects with InvalidConfigError, and the rate stays finite and >= 0', async () => {
    const t = createThrottler({ redis, logger: silent, namespace: `props-${Date.now().toString(36)}`, endpoints: { e: { rate: '10/s', burst: 4 } } });
    const patchArb: fc.Arbitrary<unknown> = fc.oneof(
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
      {
        weight: 5,
        arbitrary: fc.record(
          {
            rate: mostlyValidRate,
            burst: mostly(fc.double({ min: 1e-3, max: 1e9, noNaN: true }), numberArb),
            maxQueue: mostly(fc.integer({ min: 1, max: 1e7 }), numberArb),
            weights: mostly(
              fc.dictionary(mostly(fc.constantFrom('high', 'normal', 'low'), nameArb), mostlyValidNumber(fc.integer({ min: 1, max: 10 })), { maxKeys: 2 }),
              numberArb,
            ),
          },
          { requiredKeys: [] },
        ),
      },
    );
    let resolved = 0;
    let rejected = 0;
    try {
      await fc.assert(
        fc.asyncProperty(patchArb, async (patch) => {
          const r = await outcome(() => t.configure('e', patch as never));
          if (r.ok) resolved++;
          else {
            rejected++;
            expect(r.error).toBeInstanceOf(InvalidConfigError);
            expect((r.error as Error).message).toMatch(/^(invalid override for "e": |ttlMs )/);
          }
          const s = await t.inspect('e');
          expect(Number.isFinite(s.effective.ratePerSec) && s.effective.ratePerSec >= 0).toBe(true);
          expect(Number.isFinite(s.effective.burst) && s.effective.burst > 0).toBe(true);
          expect(Number.isInteger(s.effective.maxQueue) && s.effective.maxQueue > 0).toBe(true);
          expect(Number.isFinite(s.tokens)).toBe(true);
          // an accepted rate is the rate in force
          const p = patch as { rate?: unknown };
          if (r.ok && p && typeof p === 'object' && 'rate' in p && p.rate !== undefined) {
            const parsed = ThrottlerConfig.shape.endpoints.parse({ e: { rate: p.rate } }).e!.rate as Rate;
            expect(s.effective.ratePerSec).toBeCloseTo(tokensPerMs(parsed) * 1000, 6);
          }
          await t.resetOverrides('e');
        }),
        { numRuns: 150 },
      );
    } finally {
      await t.close();
    }
    expect(resolved).toBeGreaterThan(5);
    expect(rejected).toBeGreaterThan(20);
  });
});

// ---- known bugs (each asserts the correct behaviour, and fails today) ---------------------------

describe('regressions: bugs these properties found', () => {
  // bug 1: a rate (or duration) whose value is not finite is accepted. "0/0s" is 0 tokens per
  // 0 ms (NaN), "1/0s" and 400 digits are Infinity; stored in the override hash as "NaN" or
  // "Infinity", the effective rate reads NaN and the endpoint admits everything (fails open).
  for (const rate of ['0/0s', '1/0s', `${'9'.repeat(400)}/s`] as const) {
    it(`configure refuses the rate ${rate.slice(0, 12)} with InvalidConfigError (today: accepted, the endpoint fails open)`, async () => {
      const t = createThrottler({ redis, logger: silent, namespace: `bug1-${Math.random().toString(36).slice(2)}`, endpoints: { e: { rate: '10/s', burst: 2 } } });
      try {
        await expect(t.configure('e', { rate })).rejects.toBeInstanceOf(InvalidConfigError);
      } finally {
        // whatever happened, the throttle must still hold: burst 2, so not 5 of 5
        const admitted = (await Promise.all(Array.from({ length: 5 }, () => t.tryAcquire('e')))).filter(Boolean).length;
        await t.close();
        expect(admitted).toBeLessThanOrEqual(2);
      }
    });
  }
  it('configure refuses { tokens: 1, intervalMs: 1e-320 } (today: rate Infinity, then NaN)', async () => {
    const t = createThrottler({ redis, logger: silent, namespace: `bug1o-${Math.random().toString(36).slice(2)}`, endpoints: { e: { rate: '10/s' } } });
    try {
      await expect(t.configure('e', { rate: { tokens: 1, intervalMs: 1e-320 } })).rejects.toBeInstanceOf(InvalidConfigError);
    } finally {
      await t.close();
    }
  });
  it('a config file rate "10/0s" is refused (today: accepted, NaN rate)', () => {
    expect(() => parseThrottlerConfig({ endpoints: { e: { rate: '10/0s' } } })).toThrow(InvalidConfigError);
  });
  it('a config duration of 400 digits is refused (today: horizonMs Infinity)', () => {
    expect(() => parseThrottlerConfig({ endpoints: { e: { rate: '1/s' } }, horizonMs: `${'9'.repeat(400)} ms` })).toThrow(InvalidConfigError);
  });

  // bug 2: priorities are looked up with `this.config.priorities[priority]`, so the names of
  // Object.prototype ("toString", "constructor"...) pass the "unknown priority" check. Queued, the
  // script then fails on a nil weight and every caller of the same batch gets a raw ReplyError.
  it('acquire refuses priority "toString" with InvalidNameError (today: admitted)', async () => {
    const t = createThrottler({ redis, logger: silent, namespace: `bug2-${Math.random().toString(36).slice(2)}`, endpoints: { e: { rate: '10/s' } } });
    try {
      await expect(t.acquire('e', { priority: 'toString' })).rejects.toBeInstanceOf(InvalidNameError);
    } finally {
      await t.close();
    }
  });
  it('a bad priority in a batch does not fail the other callers (today: all get a Lua ReplyError)', async () => {
    const t = createThrottler({ redis, logger: silent, namespace: `bug2b-${Math.random().toString(36).slice(2)}`, endpoints: { e: { rate: '10/s', burst: 1 } }, horizonMs: 20 });
    try {
      await t.acquire('e');
      const [bad, good] = await Promise.allSettled([t.acquire('e', { priority: 'constructor', maxWaitMs: 2_000 }), t.acquire('e', { priority: 'normal', maxWaitMs: 2_000 })]);
      expect(good.status).toBe('fulfilled');
      expect(bad.status === 'rejected' && bad.reason instanceof InvalidNameError).toBe(true);
    } finally {
      await t.close();
    }
  });

  // bug 3: names may hold lone surrogates. Redis receives them as U+FFFD, so distinct names
  // become the same key ("n\uD800" and "n\uDBFF" share a namespace), and the client's slot
  // (cluster-key-slot encodes them differently) is not the server's slot: MOVED on a cluster.
  it('two namespaces differing only in a lone surrogate do not share keys', async () => {
    const config = { redis, logger: silent, endpoints: { e: { rate: '10/s' } } };
    const tag = Math.random().toString(36).slice(2);
    const a = await outcome(() => createThrottler({ ...config, namespace: `n${tag}\uD800` }));
    const b = await outcome(() => createThrottler({ ...config, namespace: `n${tag}\uDBFF` }));
    if (!a.ok || !b.ok) {
      // refusing lone surrogates is a fix too
      if (a.ok) await a.value.close();
      if (b.ok) await b.value.close();
      expect(a.ok || a.error instanceof InvalidConfigError).toBe(true);
      expect(b.ok || b.error instanceof InvalidConfigError).toBe(true);
      return;
    }
    try {
      await a.value.configure('e', { burst: 3 });
      expect((await b.value.inspect('e')).overrides).toEqual({});
      expect(calculateSlot(a.value.keys.prefix)).toBe(serverSlot(a.value.keys.prefix));
    } finally {
      await a.value.close();
      await b.value.close();
    }
  });

  // bug 6: loadConfigFile (workers/config/load.ts) parses with the SluiceFile schema only, so the
  // check parseThrottlerConfig adds (defaultPriority among the priorities) is skipped: a bad file
  // loads, and the error comes later from createThrottler, without the file's name.
  it('loadConfigFile refuses a defaultPriority that is not a priority (today: loads)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-bug6-'));
    try {
      const path = join(dir, 'sluice.yml');
      writeFileSync(path, 'throttle:\n  endpoints:\n    e:\n      rate: 10/s\n  defaultPriority: nope\n');
      expect(() => loadConfigFile(path)).toThrow(InvalidConfigError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // bug 4: describeIssues (src/config/schema.ts) shows the received value with
  // JSON.stringify, which throws on a BigInt or a cycle: a TypeError escapes instead of
  // InvalidConfigError.
  it('configure with a BigInt burst rejects with InvalidConfigError (today: TypeError)', async () => {
    const t = createThrottler({ redis, logger: silent, namespace: `bug4-${Math.random().toString(36).slice(2)}`, endpoints: { e: { rate: '10/s' } } });
    try {
      await expect(t.configure('e', { burst: 10n as unknown as number })).rejects.toBeInstanceOf(InvalidConfigError);
    } finally {
      await t.close();
    }
  });
  it('a config with a cyclic value is refused with InvalidConfigError (today: TypeError)', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => parseThrottlerConfig({ endpoints: { e: { rate: cyclic } } })).toThrow(InvalidConfigError);
  });

  // bug 5: showValue (jobs/schemas.ts) falls back to String(value), which throws on an
  // object without a prototype: parseJob throws a TypeError instead of InvalidPayloadError.
  it('parseJob refuses a null-prototype field holding a BigInt with InvalidPayloadError (today: TypeError)', () => {
    const odd = Object.assign(Object.create(null) as object, { x: 1n });
    expect(() => parseJob('harvesting', { handle: 'cats', tenant: odd, priority: 'normal', source: { kind: 'manual', value: 'x' } })).toThrow(InvalidPayloadError);
  });
});
