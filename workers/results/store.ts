/**
 * The durable harvest results: which domains each profile's bio names, and which profiles name
 * each domain, with first and last seen times.
 *
 * Layout (all keys from `ResultKeys`, all under the namespace's results hash tag, so one MULTI can write
 * them on Cluster). Times are ms since the epoch.
 *
 * | key                    | type | member -> score / value                                   |
 * |------------------------|------|-----------------------------------------------------------|
 * | `profileIndex()`       | hash | handle -> JSON `{ nickname?, source?, lastSeen }`          |
 * | `profileDomains(h)`    | zset | domain -> first seen of the pair; `@` -> first seen of h   |
 * | `domainProfiles(d)`    | zset | handle -> last seen of the pair                           |
 * | `domainIndex()`        | zset | domain -> first seen of the domain                        |
 *
 * Why this shape: a record must be one MULTI with no read before it (a read-modify-write under
 * WATCH would retry endlessly with a fleet of workers recording at once). Sorted sets give that for
 * free: `ZADD LT` keeps the minimum (first seen), `ZADD GT` the maximum (last seen), whatever the
 * order in which records arrive, and adding a member twice changes nothing else. A domain's
 * last seen and profile count are derived (highest score and ZCARD of `domainProfiles(d)`), so they
 * can never drift. The one value kept "last write wins" is the profile's JSON (nickname, source,
 * last seen): a newer record replaces it, which is what a changing nickname needs; an older
 * backfill record would replace it too, so backfill oldest first. The member `@` cannot collide
 * with a domain (domains never contain `@`) and gives a profile its own first seen even when its
 * bio names no domain. (`src/keys.ts` describes these as sets and JSON hashes; the sorted sets are
 * a refinement of that with the same keys.)
 *
 * Reads scan with HSCAN/ZSCAN in pages (never KEYS, never a whole large set in one reply) and fetch
 * what a page needs in one pipeline. As with any SCAN, a listing taken while records are written
 * holds every member present throughout at least once.
 */
import type { Cluster, Redis } from 'ioredis';
import { assertName, InvalidPayloadError, RedisUnavailableError } from 'sluice';
import { ResultKeys } from './keys.js';

/** Member of `profileDomains(h)` holding the profile's own first seen. */
const PROFILE_MEMBER = '@';
/** Lowercase host names, IDN letters allowed; no `@`, blanks, braces or `|` (they end up in keys). */
const DOMAIN = /^[\p{L}\p{N}_-][\p{L}\p{N}_.-]{0,252}$/u;
const MAX_DOMAINS_PER_RECORD = 100;
const MAX_TEXT = 256;

/** One harvested profile, as a worker reports it. */
export interface ProfileRecord {
  /** TikTok handle, with or without `@`, any case (stored lowercase). */
  handle: string;
  /** Display name at harvest time; replaces the stored one. Up to 256 characters. */
  nickname?: string;
  /** Domains found in the bio (lowercased, deduplicated, trailing dot removed). May be empty. At most 100. */
  domains: readonly string[];
  /** Where the handle came from, e.g. `#cats` (see `formatSource` in `jobs/schemas.ts`). Up to 256 characters. */
  source?: string;
  /** When the profile was read. Default: now. */
  at?: number | Date;
}

export interface ProfileInfo {
  handle: string;
  nickname?: string;
  source?: string;
  firstSeen: number;
  lastSeen: number;
  /** Every domain ever seen on this profile, first seen first. */
  domains: string[];
}

export interface DomainInfo {
  domain: string;
  firstSeen: number;
  lastSeen: number;
  /** Number of profiles that named this domain. */
  profiles: number;
}

/** One (domain, profile) pair: this profile's bio named this domain between firstSeen and lastSeen. */
export interface PairInfo {
  domain: string;
  handle: string;
  nickname?: string;
  firstSeen: number;
  lastSeen: number;
}

export interface ResultCounts extends Record<string, number> {
  profiles: number;
  domains: number;
}

export interface ResultsStoreOptions {
  /** COUNT hint of each HSCAN/ZSCAN page, i.e. roughly how many items one round trip reads. Default: 500. */
  pageSize?: number;
}

interface ProfileMeta {
  nickname?: string;
  source?: string;
  lastSeen: number;
}

function refuse(message: string): never {
  throw new InvalidPayloadError(message);
}

function normalizeHandle(value: unknown): string {
  if (typeof value !== 'string') return refuse(`handle must be a string (received ${typeof value})`);
  const handle = value.trim().replace(/^@/u, '').toLowerCase();
  try {
    return assertName('handle', handle);
  } catch (error) {
    throw new InvalidPayloadError((error as Error).message, { cause: error });
  }
}

function normalizeDomain(value: unknown): string {
  if (typeof value !== 'string') return refuse(`domain must be a string (received ${typeof value})`);
  const domain = value.trim().toLowerCase().replace(/\.$/u, '');
  if (!DOMAIN.test(domain)) {
    return refuse(`domain ${JSON.stringify(domain.slice(0, 80))} is not a host name`);
  }
  return domain;
}

function optionalText(field: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > MAX_TEXT) {
    return refuse(`${field} must be a string of at most ${MAX_TEXT} characters`);
  }
  return value;
}

function timeOf(at: number | Date | undefined): number {
  const ms = at === undefined ? Date.now() : at instanceof Date ? at.getTime() : at;
  if (!Number.isSafeInteger(ms) || ms < 0) return refuse(`at must be a time in ms since the epoch (received ${String(at)})`);
  return ms;
}

/** Checks a pipeline's replies: ioredis reports per-command errors in them instead of rejecting. */
function replies(results: [Error | null, unknown][] | null): unknown[] {
  if (results === null) throw new RedisUnavailableError('results: transaction aborted');
  return results.map(([error, value]) => {
    if (error) throw new RedisUnavailableError(`results: ${error.message}`, { cause: error });
    return value;
  });
}

function parseMeta(json: string | null | undefined): ProfileMeta | undefined {
  if (json === null || json === undefined) return undefined;
  return JSON.parse(json) as ProfileMeta;
}

/** The durable (domain, profile) results of one namespace. */
export class ResultsStore {
  readonly keys: ResultKeys;
  private readonly pageSize: number;

  /**
   * @param redis a connection the store borrows (it never closes it).
   * @param namespace the Sluice namespace, or its `ResultKeys`.
   */
  constructor(
    private readonly redis: Redis | Cluster,
    namespace: string | ResultKeys,
    options: ResultsStoreOptions = {},
  ) {
    this.keys = typeof namespace === 'string' ? new ResultKeys(namespace) : namespace;
    this.pageSize = options.pageSize ?? 500;
  }

  /**
   * Records one harvested profile in one MULTI: idempotent (recording it again adds nothing and only
   * moves last seen), order-independent for first/last seen of pairs and domains.
   *
   * @throws InvalidPayloadError for a bad handle, domain, text or time; nothing is written.
   * @throws RedisUnavailableError when Redis fails.
   */
  async recordProfile(record: ProfileRecord): Promise<void> {
    const handle = normalizeHandle(record.handle);
    if (!Array.isArray(record.domains)) refuse('domains must be an array of host names');
    const domains = [...new Set(record.domains.map(normalizeDomain))];
    if (domains.length > MAX_DOMAINS_PER_RECORD) refuse(`at most ${MAX_DOMAINS_PER_RECORD} domains per profile (received ${domains.length})`);
    const at = timeOf(record.at);
    const meta: ProfileMeta = {
      nickname: optionalText('nickname', record.nickname),
      source: optionalText('source', record.source),
      lastSeen: at,
    };

    const multi = this.redis.multi();
    multi.hset(this.keys.profileIndex(), handle, JSON.stringify(meta));
    multi.zadd(this.keys.profileDomains(handle), 'LT', at, PROFILE_MEMBER, ...domains.flatMap((d) => [at, d]));
    if (domains.length > 0) {
      multi.zadd(this.keys.domainIndex(), 'LT', ...domains.flatMap((d) => [at, d]));
      for (const domain of domains) multi.zadd(this.keys.domainProfiles(domain), 'GT', at, handle);
    }
    let results: [Error | null, unknown][] | null;
    try {
      results = await multi.exec();
    } catch (error) {
      throw new RedisUnavailableError(`results: could not record ${handle}: ${(error as Error).message}`, { cause: error });
    }
    replies(results);
  }

  /** One profile, or `undefined` if it was never recorded. */
  async profile(handle: string): Promise<ProfileInfo | undefined> {
    const [info] = await this.profileInfos([normalizeHandle(handle)]);
    return info;
  }

  /** Every recorded profile, in no particular order, one page per round trip. */
  async *profiles(): AsyncGenerator<ProfileInfo> {
    for await (const page of this.scanPages('hscan', this.keys.profileIndex())) {
      const handles: string[] = [];
      for (let i = 0; i < page.length; i += 2) handles.push(page[i]!);
      yield* await this.profileInfos(handles);
    }
  }

  /** Every domain with its first/last seen and profile count, in no particular order. */
  async *domains(): AsyncGenerator<DomainInfo> {
    for await (const page of this.scanPages('zscan', this.keys.domainIndex())) {
      const pipeline = this.redis.pipeline();
      const entries: { domain: string; firstSeen: number }[] = [];
      for (let i = 0; i < page.length; i += 2) {
        const domain = page[i]!;
        entries.push({ domain, firstSeen: Number(page[i + 1]) });
        pipeline.zcard(this.keys.domainProfiles(domain));
        pipeline.zrange(this.keys.domainProfiles(domain), -1, -1, 'WITHSCORES');
      }
      const values = replies(await pipeline.exec());
      for (const [i, entry] of entries.entries()) {
        const last = values[2 * i + 1] as string[];
        yield { ...entry, profiles: values[2 * i] as number, lastSeen: last.length > 1 ? Number(last[1]) : entry.firstSeen };
      }
    }
  }

  /** The profiles whose bio named `domain`, with the pair's first/last seen, in no particular order. */
  async *profilesFor(domain: string): AsyncGenerator<PairInfo> {
    const name = normalizeDomain(domain);
    for await (const page of this.scanPages('zscan', this.keys.domainProfiles(name))) {
      const pipeline = this.redis.pipeline();
      for (let i = 0; i < page.length; i += 2) {
        pipeline.zscore(this.keys.profileDomains(page[i]!), name);
        pipeline.hget(this.keys.profileIndex(), page[i]!);
      }
      const values = replies(await pipeline.exec());
      for (let i = 0; i < page.length; i += 2) {
        const handle = page[i]!;
        const lastSeen = Number(page[i + 1]);
        const first = values[i] as string | null;
        const meta = parseMeta(values[i + 1] as string | null);
        const pair: PairInfo = { domain: name, handle, firstSeen: first === null ? lastSeen : Number(first), lastSeen };
        if (meta?.nickname !== undefined) pair.nickname = meta.nickname;
        yield pair;
      }
    }
  }

  /** Every (domain, profile) pair, domain by domain. What the export writes. */
  async *pairs(): AsyncGenerator<PairInfo> {
    for await (const page of this.scanPages('zscan', this.keys.domainIndex())) {
      for (let i = 0; i < page.length; i += 2) yield* this.profilesFor(page[i]!);
    }
  }

  /** Number of profiles and domains recorded: two O(1) commands. */
  async counts(): Promise<ResultCounts> {
    const values = replies(await this.redis.pipeline().hlen(this.keys.profileIndex()).zcard(this.keys.domainIndex()).exec());
    return { profiles: values[0] as number, domains: values[1] as number };
  }

  /**
   * Deletes every result of the namespace, page by page. For tests and admin resets: records
   * written concurrently may survive.
   */
  async clear(): Promise<void> {
    for await (const page of this.scanPages('hscan', this.keys.profileIndex())) {
      const keys: string[] = [];
      for (let i = 0; i < page.length; i += 2) keys.push(this.keys.profileDomains(page[i]!));
      if (keys.length > 0) await this.unlink(keys);
    }
    for await (const page of this.scanPages('zscan', this.keys.domainIndex())) {
      const keys: string[] = [];
      for (let i = 0; i < page.length; i += 2) keys.push(this.keys.domainProfiles(page[i]!));
      if (keys.length > 0) await this.unlink(keys);
    }
    await this.unlink([this.keys.profileIndex(), this.keys.domainIndex()]);
  }

  private async unlink(keys: string[]): Promise<void> {
    // One command per key: same slot anyway, and a pipeline keeps it one round trip.
    const pipeline = this.redis.pipeline();
    for (const key of keys) pipeline.unlink(key);
    replies(await pipeline.exec());
  }

  /** Pages of `[member, value, member, value, …]` from HSCAN or ZSCAN. */
  private async *scanPages(command: 'hscan' | 'zscan', key: string): AsyncGenerator<string[]> {
    let cursor = '0';
    do {
      const [next, page] = await this.redis[command](key, cursor, 'COUNT', this.pageSize);
      cursor = next;
      if (page.length > 0) yield page;
    } while (cursor !== '0');
  }

  private async profileInfos(handles: string[]): Promise<ProfileInfo[]> {
    if (handles.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const handle of handles) {
      pipeline.hget(this.keys.profileIndex(), handle);
      pipeline.zrange(this.keys.profileDomains(handle), 0, -1, 'WITHSCORES');
    }
    const values = replies(await pipeline.exec());
    const infos: ProfileInfo[] = [];
    handles.forEach((handle, i) => {
      const meta = parseMeta(values[2 * i] as string | null);
      if (meta === undefined) return;
      const scored = values[2 * i + 1] as string[];
      const domains: string[] = [];
      let firstSeen = meta.lastSeen;
      for (let j = 0; j < scored.length; j += 2) {
        if (scored[j] === PROFILE_MEMBER) firstSeen = Number(scored[j + 1]);
        else domains.push(scored[j]!);
      }
      const info: ProfileInfo = { handle, firstSeen, lastSeen: meta.lastSeen, domains };
      if (meta.nickname !== undefined) info.nickname = meta.nickname;
      if (meta.source !== undefined) info.source = meta.source;
      infos.push(info);
    });
    return infos;
  }
}
