import { script } from '../redis/scripts.js';
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

/** What a policy sends on every request, worked out once: the script's command name and ARGV[3..4]. */
interface PolicyCall {
  command: string;
  verb: string;
  a: string;
  b: string;
  /** ARGV[13..15], or none when the policy does not block (then, without quotas, ARGV ends at 4). */
  block: string[] | undefined;
}

const calls = new WeakMap<ResolvedPolicy, PolicyCall>();

function callOf(policy: ResolvedPolicy): PolicyCall {
  let c = calls.get(policy);
  if (c === undefined) {
    const verb = VERB[policy.algorithm];
    const s = script(verb);
    if (s.numberOfKeys !== 1) throw new Error(`${s.file} takes ${s.numberOfKeys} keys, the http limiter passes 1`);
    c = {
      command: s.command,
      verb,
      // as the script reads them back: String() of a double is its shortest exact decimal
      a: String(policy.a),
      b: String(policy.b),
      block: policy.block ? [String(policy.block.after), String(policy.block.withinMs), String(policy.block.forMs)] : undefined,
    };
    calls.set(policy, c);
  }
  return c;
}

type ScriptFn = (this: RedisConnection, ...args: (string | number)[]) => Promise<number[]>;

/** One request against one policy's key: one EVALSHA. `now` undefined: Redis TIME decides. */
export async function limit(redis: RedisConnection, stateKey: string, policy: ResolvedPolicy, now: number | undefined, cost = 1): Promise<LimitReply> {
  const c = callOf(policy);
  const fn = (redis as unknown as Record<string, ScriptFn | undefined>)[c.command];
  if (!fn) throw new Error(`script ${c.command} is not defined on this connection`);
  const nowArg = now === undefined ? '' : Math.floor(now);
  let r: number[];
  if (!policy.day && !policy.month && !c.block) {
    // the common case: ARGV ends at the algorithm's parameters (the script reads the rest as 0)
    r = await fn.call(redis, stateKey, nowArg, cost, c.a, c.b);
  } else {
    // boundaries come from the local clock (or the injected one); the script picks by its own
    const clock = now ?? Date.now();
    const day = policy.day ? calendarWindow('day', clock, policy.timeZone) : undefined;
    const month = policy.month ? calendarWindow('month', clock, policy.timeZone) : undefined;
    r = await fn.call(redis, stateKey, nowArg, cost, c.a, c.b,
      policy.day ?? 0, day?.start ?? 0, day?.end ?? 0, day?.nextEnd ?? 0,
      policy.month ?? 0, month?.start ?? 0, month?.end ?? 0, month?.nextEnd ?? 0,
      ...(c.block ?? []));
  }
  const verdict = STATUS[r[0]!];
  if (!verdict) throw new Error(`${c.verb} answered status ${String(r[0])}: a script of another Sluice version on this Redis?`);
  // the last six are left out when no quota and no block is in play (read as 0)
  const long = r.length > 5;
  return {
    verdict,
    remaining: r[1]!,
    resetMs: r[2]!,
    retryMs: r[3]!,
    now: r[4]!,
    blockedUntil: long ? r[5]! : 0,
    newlyBlocked: long && r[6] === 1,
    day: policy.day ? { used: r[7]!, end: r[8]! } : undefined,
    month: policy.month ? { used: r[9]!, end: r[10]! } : undefined,
  };
}
