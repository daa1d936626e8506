import { Redis, Cluster, type RedisOptions } from 'ioredis';

/** Where the throttler's Redis is: a URL, an ioredis instance (Redis or Cluster), cluster nodes, or Sentinels. */
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

/** Connects to Redis from what the user gave; a given instance is used as is and left open on close. */
export function connect(input: RedisInput | undefined, options: RedisOptions = {}): OwnedConnection {
  if (input instanceof Redis || input instanceof Cluster) return { redis: input, owned: false };
  if (typeof input === 'object' && 'cluster' in input) {
    const nodes = input.cluster.map((url) => {
      const u = new URL(url);
      return { host: u.hostname, port: Number(u.port || 6379) };
    });
    return { redis: new Cluster(nodes, { redisOptions: { ...DEFAULTS, ...input.options, ...options } }), owned: true };
  }
  if (typeof input === 'object' && 'sentinels' in input) {
    return { redis: new Redis({ ...DEFAULTS, ...input.options, ...options, sentinels: input.sentinels, name: input.name }), owned: true };
  }
  const url = input ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  return { redis: new Redis(url, { ...DEFAULTS, ...options }), owned: true };
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
