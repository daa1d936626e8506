/**
 * The common half of every peer's child process (bench/peers/<peer>.ts): N callers per class
 * acquire in a loop, each admission timestamped, and the ioredis commands this process sends are
 * counted on the client side. The other half, the peer's adapter, is the only code that differs.
 *
 * Protocol with the parent (bench/peers/run.ts), one line each:
 *   child stdout `ready`      the adapter is connected (nothing it sent so far is measured)
 *   parent stdin `start <ms>` every caller starts at that wall-clock time
 *   child stdout `stopped`    every caller has stopped (the parent reads Redis's counters now)
 *   parent stdin `close`      close the adapter, print the result as one JSON line, exit; sent
 *                             before `stopped` when callers are stuck, which the result counts
 */
import { Redis } from 'ioredis';

export type ClassName = 'high' | 'low' | 'normal';

export interface ChildSpec {
  redis: string;
  /** The limiter's key / id / namespace, fresh for every scenario. */
  key: string;
  /** Tokens per second. */
  rate: number;
  burst: number;
  /** Caller groups: each runs `callers` loops of acquire for `durationMs` from the common start. */
  classes: { cls: ClassName; callers: number; durationMs: number }[];
  /** The first process of a scenario: started alone, before the others (bottleneck clears its datastore). */
  first?: boolean;
  /** A peer-specific variant (the naive bucket: 'client-clock'). */
  variant?: string;
  /** Report counts only, not every admission's time (the throughput run admits hundreds of thousands). */
  countOnly?: boolean;
}

export interface Adapter {
  /**
   * Resolves when the caller may send its request; resolves with the admission time when it is
   * not the moment of resolving (bottleneck runs the job, then frees it in Redis, then resolves).
   */
  acquire(cls: ClassName): Promise<number | void | { at?: number; slot: number }>;
  close(): Promise<void>;
}

export interface ChildResult {
  /** Admission times (ms since the epoch, sub-ms) by class. */
  admissions: Partial<Record<ClassName, number[]>>;
  /** The slots the limiter granted (Redis time), for a peer that reserves slots and says so (Sluice). */
  slots: number[];
  /** For those: how long after its slot each caller was let go (ms). */
  lateMs: number[];
  /** Callers still waiting for an admission when the parent gave up on them. */
  stuck: number;
  /** Admissions by class, including those of calls that were waiting at the stop time (always reported, also with countOnly). */
  counts: Partial<Record<ClassName, number>>;
  /** ioredis commands this process sent between start and stop (every connection, every command). */
  commands: number;
  errors: Record<string, number>;
}

export function now(): number {
  return performance.timeOrigin + performance.now();
}

// Count every command any ioredis connection of this process sends (bottleneck and
// rate-limiter-flexible take the same ioredis module; pipelines and MULTI go through here too).
let counting = false;
let commands = 0;
const proto = Redis.prototype as unknown as { sendCommand: (...args: unknown[]) => unknown };
const original = proto.sendCommand;
proto.sendCommand = function (this: unknown, ...args: unknown[]) {
  if (counting) commands++;
  return original.apply(this, args);
};

function lines(): AsyncIterator<string> {
  let buffer = '';
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d: string) => {
    buffer += d;
    let i;
    while ((i = buffer.indexOf('\n')) >= 0) {
      queue.push(buffer.slice(0, i));
      buffer = buffer.slice(i + 1);
    }
    wake?.();
  });
  return {
    async next() {
      while (queue.length === 0) await new Promise<void>((r) => (wake = r));
      return { value: queue.shift()!, done: false };
    },
  };
}

/** Runs the child side of a scenario with the peer's adapter. */
export async function runChild(create: (spec: ChildSpec) => Promise<Adapter>): Promise<never> {
  const spec = JSON.parse(process.argv[2]!) as ChildSpec;
  const adapter = await create(spec);
  const input = lines();
  process.stdout.write('ready\n');
  const startAt = Number((await input.next()).value.split(' ')[1]);
  await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now())));
  counting = true;
  const admissions: ChildResult['admissions'] = {};
  const counts: ChildResult['counts'] = {};
  const slots: number[] = [];
  const lateMs: number[] = [];
  const errors: Record<string, number> = {};
  let active = 0;
  const callersDone = Promise.all(
    spec.classes.flatMap(({ cls, callers, durationMs }) => {
      const times = (admissions[cls] ??= []);
      counts[cls] ??= 0;
      const stopAt = startAt + durationMs;
      const keep = !spec.countOnly;
      return Array.from({ length: callers }, async () => {
        active++;
        while (Date.now() < stopAt) {
          try {
            const got = await adapter.acquire(cls);
            const t = now();
            const at = typeof got === 'object' ? (got.at ?? t) : typeof got === 'number' ? got : t;
            counts[cls]!++;
            if (!keep) continue;
            times.push(at);
            if (typeof got === 'object') {
              slots.push(got.slot);
              lateMs.push(at - got.slot);
            }
          } catch (err) {
            const name = (err as Error).name || 'Error';
            errors[name] = (errors[name] ?? 0) + 1;
            await new Promise((r) => setTimeout(r, 50));
          }
        }
        active--;
      });
    }),
  );
  const closeAsked = input.next();
  const first = await Promise.race([callersDone.then(() => 'stopped' as const), closeAsked.then(() => 'close' as const)]);
  counting = false;
  const stuck = active;
  if (first === 'stopped') {
    process.stdout.write('stopped\n');
    await closeAsked;
  }
  await Promise.race([adapter.close().catch(() => undefined), new Promise((r) => setTimeout(r, 3_000))]);
  // exit only once the (large) line is flushed to the pipe
  process.stdout.write(`${JSON.stringify({ admissions, counts, slots, lateMs, stuck, commands, errors } satisfies ChildResult)}\n`, () => process.exit(0));
  return new Promise<never>(() => undefined);
}
