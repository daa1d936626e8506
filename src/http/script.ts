import { run } from '../redis/scripts.js';
import { calendarWindow } from './calendar.js';
import type { Algorithm, RedisConnection, ResolvedPolicy } from './options.js';

const VERB: Record<Algorithm, string> = {
  'token-bucket': 'httpTokenBucket',
  gcra: 'httpGcra',
  'sliding-window': 'httpSlidingWindow',
  'fixed-window': 'httpFixedWindow',
};

export type Verdict = 'admitted' | 'limited' | 'quota-day' | 'quota-month' | 'blocked';
const STATUS: Record<number, Verdict> = { 1: 'admitted', 0: 'limited', [-1]: 'quota-day', [-2]: 'quota-month', [-3]: 'blocked' };

/** One script reply, decoded (lua/includes/httpLimit.lua documents the tuple). */
export interface LimitReply {
  verdict: Verdict;
  /** Requests the rate admits now. */
  remaining: number;
  /** Until the rate is fully available again. */
  resetMs: number;
  /** Until this request would be admitted (0 when admitted). */
  retryMs: number;
  day: { used: number; end: number } | undefined;
  month: { used: number; end: number } | undefined;
  /** End of a block in force (ms), or 0. */
  blockedUntil: number;
  /** This request's refusal started the block. */
  newlyBlocked: boolean;
  /** The script's clock (ms). */
  now: number;
}

/** One request against one policy's key: one EVALSHA. `now` undefined: Redis TIME decides. */
export async function limit(redis: RedisConnection, stateKey: string, policy: ResolvedPolicy, now: number | undefined, cost = 1): Promise<LimitReply> {
  // boundaries come from the local clock (or the injected one); the script picks by its own
  const clock = now ?? Date.now();
  const day = policy.day ? calendarWindow('day', clock, policy.timeZone) : undefined;
  const month = policy.month ? calendarWindow('month', clock, policy.timeZone) : undefined;
  const r = await run<number[]>(redis, VERB[policy.algorithm], [stateKey], [
    now === undefined ? '' : Math.floor(now),
    cost,
    policy.a,
    policy.b,
    policy.day ?? 0, day?.start ?? 0, day?.end ?? 0, day?.nextEnd ?? 0,
    policy.month ?? 0, month?.start ?? 0, month?.end ?? 0, month?.nextEnd ?? 0,
    policy.block?.after ?? 0, policy.block?.withinMs ?? 0, policy.block?.forMs ?? 0,
  ]);
  const n = (i: number) => Number(r[i]);
  const verdict = STATUS[n(0)];
  if (!verdict) throw new Error(`${VERB[policy.algorithm]} answered status ${String(r[0])}: a script of another Sluice version on this Redis?`);
  return {
    verdict,
    remaining: n(1),
    resetMs: n(2),
    retryMs: n(3),
    day: policy.day ? { used: n(4), end: n(5) } : undefined,
    month: policy.month ? { used: n(6), end: n(7) } : undefined,
    blockedUntil: n(8),
    newlyBlocked: n(9) === 1,
    now: n(10),
  };
}
