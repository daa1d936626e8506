import { script } from '../redis/scripts.js';
import type { RedisConnection, ResolvedPolicy } from './options.js';
import { decodeItem, pushItem, type LimitReply } from './script.js';

/**
 * Gathers the limit checks of one event-loop turn into one call of `lua/httpLimit-n.lua` (as the
 * throttle's lane does for acquires): the requests parsed in one poll phase go to Redis as one
 * EVALSHA, decided in order, each against its own key, so a request still costs at most one round
 * trip and, under load, well under one script call. The call leaves on setImmediate, once the
 * turn's I/O callbacks have run: a lone request is not held back by a timer.
 */

/** Items per call at most: a call blocks Redis while it runs, so a large turn is split. */
const MAX_ITEMS = 100;

interface Item {
  key: string;
  policy: ResolvedPolicy;
  now: number | undefined;
  cost: number;
  resolve: (reply: LimitReply) => void;
  reject: (err: unknown) => void;
}

type ScriptFn = (this: RedisConnection, ...args: (string | number)[]) => Promise<number[][]>;

export class LimitBatcher {
  private pending: Item[] = [];
  private readonly fn: ScriptFn;
  /** On a Cluster a call's keys must share a slot: only checks of one key go together there. */
  private readonly cluster: boolean;

  constructor(private readonly redis: RedisConnection) {
    const command = script('httpLimit').command;
    const fn = (redis as unknown as Record<string, ScriptFn | undefined>)[command];
    if (!fn) throw new Error(`script ${command} is not defined on this connection`);
    this.fn = fn;
    this.cluster = redis.isCluster;
  }

  /** One request against one policy's key. `now` undefined: Redis TIME decides. Rejects when the call fails. */
  limit(key: string, policy: ResolvedPolicy, now: number | undefined, cost = 1): Promise<LimitReply> {
    return new Promise((resolve, reject) => {
      if (this.pending.push({ key, policy, now, cost, resolve, reject }) === 1) setImmediate(this.flush);
    });
  }

  /** Sends what is pending now (the scheduled flush then finds nothing); close() calls it before the connection goes. */
  readonly flush = (): void => {
    const items = this.pending;
    if (items.length === 0) return;
    this.pending = [];
    if (!this.cluster && items.every((i) => i.now === items[0]!.now)) {
      if (items.length <= MAX_ITEMS) this.send(items);
      else for (let from = 0; from < items.length; from += MAX_ITEMS) this.send(items.slice(from, from + MAX_ITEMS));
      return;
    }
    // one clock per call: checks under an injected clock go with those of the same time; on a
    // Cluster, with those of the same key (one key, one slot: no slot table needed)
    const groups = new Map<string, Item[]>();
    for (const item of items) {
      const id = `${this.cluster ? item.key : ''}\n${item.now ?? ''}`;
      const group = groups.get(id);
      if (group === undefined) groups.set(id, [item]);
      else group.push(item);
    }
    for (const group of groups.values()) {
      for (let from = 0; from < group.length; from += MAX_ITEMS) this.send(group.slice(from, from + MAX_ITEMS));
    }
  };

  private send(items: Item[]): void {
    const n = items.length;
    const now = items[0]!.now;
    const args: (string | number)[] = [n];
    for (let i = 0; i < n; i++) args.push(items[i]!.key);
    args.push(now === undefined ? '' : Math.floor(now));
    for (let i = 0; i < n; i++) pushItem(args, items[i]!.policy, now, items[i]!.cost);
    let call: Promise<number[][]>;
    try {
      call = this.fn.apply(this.redis, args);
    } catch (err) {
      // never thrown out of the setImmediate callback: the checks fail as a failed call would
      for (const item of items) item.reject(err);
      return;
    }
    call.then(
      (replies) => {
        for (let i = 0; i < n; i++) {
          const item = items[i]!;
          try {
            item.resolve(decodeItem(item.policy, replies[i]!));
          } catch (err) {
            item.reject(err);
          }
        }
      },
      // every check of the call gets the failure it would have had alone
      (err: unknown) => {
        for (const item of items) item.reject(err);
      },
    );
  }
}
