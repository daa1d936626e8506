import { calendarWindow } from './calendar.js';
import type { Algorithm, ResolvedPolicy } from './options.js';

/**
 * The arguments and replies of `lua/httpLimit-n.lua`, one item (one request against one policy's
 * key) at a time; src/http/batch.ts gathers the items into calls. Nobody else reads the tuple.
 */

/** The script's number for each algorithm (its `ALGORITHMS` table). */
const ALGORITHM: Record<Algorithm, string> = { 'token-bucket': '1', gcra: '2', 'sliding-window': '3', 'fixed-window': '4' };

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

/** What a policy sends for every item, worked out once. */
interface PolicyCall {
  algorithm: string;
  a: string;
  b: string;
  /** No quota and no blocking: the item is 4 arguments after its count, else 15. */
  plain: boolean;
  /** The three blocking arguments ('0' when the policy does not block). */
  block: [string, string, string];
}

const calls = new WeakMap<ResolvedPolicy, PolicyCall>();

function callOf(policy: ResolvedPolicy): PolicyCall {
  let c = calls.get(policy);
  if (c === undefined) {
    c = {
      algorithm: ALGORITHM[policy.algorithm],
      // as the script reads them back: String() of a double is its shortest exact decimal
      a: String(policy.a),
      b: String(policy.b),
      plain: !policy.day && !policy.month && !policy.block,
      block: policy.block ? [String(policy.block.after), String(policy.block.withinMs), String(policy.block.forMs)] : ['0', '0', '0'],
    };
    calls.set(policy, c);
  }
  return c;
}

/**
 * Appends one item's arguments to a call's ARGV. `now` undefined: Redis TIME decides, and the
 * calendar boundaries come from the local clock (the script picks among them by its own).
 */
export function pushItem(args: (string | number)[], policy: ResolvedPolicy, now: number | undefined, cost: number): void {
  const c = callOf(policy);
  if (c.plain) {
    args.push('4', c.algorithm, cost, c.a, c.b);
    return;
  }
  const clock = now ?? Date.now();
  const day = policy.day ? calendarWindow('day', clock, policy.timeZone) : undefined;
  const month = policy.month ? calendarWindow('month', clock, policy.timeZone) : undefined;
  args.push('15', c.algorithm, cost, c.a, c.b,
    policy.day ?? 0, day?.start ?? 0, day?.end ?? 0, day?.nextEnd ?? 0,
    policy.month ?? 0, month?.start ?? 0, month?.end ?? 0, month?.nextEnd ?? 0,
    c.block[0], c.block[1], c.block[2]);
}

/** One item's tuple, decoded; throws on a status this version does not know. */
export function decodeItem(policy: ResolvedPolicy, r: number[]): LimitReply {
  const verdict = STATUS[r[0]!];
  if (!verdict) {
    // -8: this item's Redis commands failed (the others of its call were decided)
    if (r[0] === -8) throw new Error(`Redis could not decide on this key: ${String(r[1])}`);
    throw new Error(`httpLimit answered status ${String(r[0])}: a script of another Sluice version on this Redis?`);
  }
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
