import type { RedisConnection } from './options.js';
import { HttpKeys, keyPart } from './keys.js';

/**
 * What the admin API reads and changes: blocks in force (listed, lifted) and quota usage. Plain
 * functions of a connection and a namespace, so the admin server needs no limiter instance.
 */

/** A key as the limiter was given it, or already as stored (`~digest`, as listBlocked shows it). */
function storedPart(key: string): string {
  return key.startsWith('~') ? key : keyPart(key);
}

export interface BlockedKey {
  policy: string;
  /** The client key as stored (a digest `~...` when the key was long or unusual). */
  key: string;
  /** End of the block (ms since the epoch). */
  until: number;
}

/** Blocks in force, soonest end first. Ended blocks are dropped from the index on the way. */
export async function listBlocked(redis: RedisConnection, namespace: string, now = Date.now()): Promise<BlockedKey[]> {
  const keys = new HttpKeys(namespace);
  await redis.zremrangebyscore(keys.blocked(), '-inf', now);
  const raw = await redis.zrangebyscore(keys.blocked(), now, '+inf', 'WITHSCORES');
  const out: BlockedKey[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const member = raw[i]!;
    const sep = member.indexOf('|');
    out.push({ policy: member.slice(0, sep), key: member.slice(sep + 1), until: Number(raw[i + 1]) });
  }
  return out;
}

/** Lifts the block of one key (as given to the limiter, or as listed). Resolves true when a block was in force. */
export async function liftBlock(redis: RedisConnection, namespace: string, policy: string, key: string): Promise<boolean> {
  const keys = new HttpKeys(namespace);
  const part = storedPart(key);
  const removed = await redis.hdel(keys.stateOfPart(policy, part), 'bu', 'rs', 'rn');
  await redis.zrem(keys.blocked(), keys.blockedMember(policy, part));
  return removed > 0;
}

export interface QuotaUsage {
  day: { used: number; resetsAt: number } | null;
  month: { used: number; resetsAt: number } | null;
}

/** Quota usage of one key under one policy, as the last admitted request left it. */
export async function quotaUsage(redis: RedisConnection, namespace: string, policy: string, key: string, now = Date.now()): Promise<QuotaUsage> {
  const state = new HttpKeys(namespace).stateOfPart(policy, storedPart(key));
  const [de, dc, me, mc] = await redis.hmget(state, 'de', 'dc', 'me', 'mc');
  const read = (end: string | null | undefined, used: string | null | undefined) => (end !== null && Number(end) > now ? { used: Number(used), resetsAt: Number(end) } : null);
  return { day: read(de, dc), month: read(me, mc) };
}
