import { Redis, Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';
import { InvalidConfigError } from '../errors/index.js';
import type { Logger } from '../logger.js';

/**
 * Where the throttler's Redis is: a URL, an ioredis instance (Redis or Cluster), cluster nodes, or
 * Sentinels. Cluster node URLs carry the credentials and TLS of every node
 * (`rediss://user:password@host:port`): they must all agree, since a cluster has one of each.
 */
export type RedisInput =
  | string
  | Redis
  | Cluster
  | { cluster: string[]; options?: RedisOptions }
  | { sentinels: { host: string; port: number }[]; name: string; options?: RedisOptions };

export interface OwnedConnection {
  redis: Redis | Cluster;
  /** True when Sluice created the connection and must close it. */
  owned: boolean;
}

const DEFAULTS: RedisOptions = {
  // the lane retries on its own terms (failure policy); a command must not hang for minutes inside ioredis
  maxRetriesPerRequest: 2,
  enableAutoPipelining: false,
  // reconnect soon after Redis returns (jittered, so a fleet does not reconnect in one instant):
  // with failure policy 'local', every moment some processes are back and others are not, the
  // fleet admits a little over the rate
  retryStrategy: (times: number) => Math.min(times * 50, 300) + Math.floor(Math.random() * 100),
};

/**
 * Connects to Redis from what the user gave; a given instance is used as is and left open on close.
 * With a logger, checks once connected that Redis will not evict Sluice's keys (`checkEviction`).
 */
export function connect(input: RedisInput | undefined, options: RedisOptions = {}, log?: Logger): OwnedConnection {
  const conn = open(input, options);
  if (log) whenReady(conn.redis, () => void checkEviction(conn.redis, log));
  return conn;
}

function open(input: RedisInput | undefined, options: RedisOptions): OwnedConnection {
  if (input instanceof Redis || input instanceof Cluster) return { redis: input, owned: false };
  if (typeof input === 'object' && 'cluster' in input) {
    const { nodes, options: clusterOpts } = clusterOptions(input.cluster, { ...input.options, ...options });
    return { redis: new Cluster(nodes, clusterOpts), owned: true };
  }
  if (typeof input === 'object' && 'sentinels' in input) {
    return { redis: new Redis({ ...DEFAULTS, ...input.options, ...options, sentinels: input.sentinels, name: input.name }), owned: true };
  }
  const url = input ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  return { redis: new Redis(url, { ...DEFAULTS, ...options }), owned: true };
}

/**
 * What `new Cluster()` gets for cluster node URLs: the nodes, and in `redisOptions` (which ioredis
 * uses for every node, including those it discovers) the username, password and TLS the URLs
 * carry. Explicit `options` win over the URLs. Refuses URLs that disagree, a scheme other than
 * `redis:`/`rediss:`, and a database other than 0 (a cluster has only database 0).
 */
export function clusterOptions(urls: readonly string[], options: RedisOptions = {}): { nodes: { host: string; port: number }[]; options: ClusterOptions } {
  if (urls.length === 0) throw new InvalidConfigError('redis.cluster: give at least one node URL, e.g. rediss://user:password@10.0.0.1:6379');
  const parsed = urls.map((url) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new InvalidConfigError(`redis.cluster: "${redactUrl(url)}" is not a URL; expected redis://[user:password@]host:port or rediss://... for TLS`);
    }
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
      throw new InvalidConfigError(`redis.cluster: "${redactUrl(url)}" has scheme ${u.protocol}; use redis:// or rediss:// (TLS)`);
    }
    if (u.pathname !== '' && u.pathname !== '/' && u.pathname !== '/0') {
      throw new InvalidConfigError(`redis.cluster: "${redactUrl(url)}" selects database ${u.pathname.slice(1)}; a Redis Cluster has only database 0`);
    }
    return {
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: Number(u.port || 6379),
      username: decodeURIComponent(u.username),
      password: decodeURIComponent(u.password),
      tls: u.protocol === 'rediss:',
    };
  });
  const first = parsed[0]!;
  const odd = parsed.find((p) => p.username !== first.username || p.password !== first.password || p.tls !== first.tls);
  if (odd) {
    throw new InvalidConfigError(
      `redis.cluster: the node URLs disagree on ${odd.tls !== first.tls ? 'TLS (redis:// and rediss:// mixed)' : 'credentials'}; every node of a cluster takes the same user, password and TLS`,
    );
  }
  const fromUrls: RedisOptions = {
    ...(first.username ? { username: first.username } : {}),
    ...(first.password ? { password: first.password } : {}),
    ...(first.tls ? { tls: {} } : {}),
  };
  return { nodes: parsed.map(({ host, port }) => ({ host, port })), options: { redisOptions: { ...DEFAULTS, ...fromUrls, ...options } } };
}

function whenReady(redis: Redis | Cluster, run: () => void): void {
  if (redis.status === 'ready') run();
  else redis.once('ready', run);
}

/** Policies under which Redis may delete keys Sluice still needs (its keys carry TTLs, so `volatile-*` too). */
const EVICTING = /^(allkeys|volatile)-/;

/**
 * Reads `maxmemory-policy` on the server (every master of a cluster) and warns when Redis may
 * evict Sluice's keys under memory pressure: a bucket evicted is a full bucket (a burst the
 * upstream sees), a queue evicted strands its waiters. Where CONFIG is disabled or not permitted
 * (managed Redis, ACLs), says at debug level that it could not check: that is no fault.
 */
export async function checkEviction(redis: Redis | Cluster, log: Logger): Promise<void> {
  const servers = redis instanceof Cluster ? redis.nodes('master') : [redis];
  for (const server of servers) {
    const where = `${server.options.host ?? '127.0.0.1'}:${server.options.port ?? 6379}`;
    let policy: string | undefined;
    try {
      const reply = (await server.config('GET', 'maxmemory-policy')) as unknown as string[];
      policy = reply[1];
    } catch (err) {
      log.debug({ server: where, err: { message: (err as Error).message } }, 'could not read maxmemory-policy (CONFIG disabled or not permitted): eviction not checked');
      continue;
    }
    if (policy !== undefined && EVICTING.test(policy)) {
      log.warn(
        { server: where, maxmemoryPolicy: policy },
        `Redis may EVICT Sluice's keys: maxmemory-policy is ${policy}. Under memory pressure a bucket could be deleted (refilled: a burst upstream) ` +
          'or a queue dropped (its callers stranded). Set maxmemory-policy noeviction on this Redis, or give Sluice a Redis of its own',
      );
    } else {
      log.debug({ server: where, maxmemoryPolicy: policy }, 'maxmemory-policy keeps Sluice keys');
    }
  }
}

/** A Redis URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unreadable URL)';
  }
}
