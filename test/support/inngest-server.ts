/**
 * Plays the Inngest server for @inngest/test: @inngest/test 1.0 runs one SDK request at a time
 * and does not model sleeps or retries, so `runToEnd` feeds each request's outcome (step output,
 * sleep done, targeted step) into the next request, really waits out sleeps, and keeps every op
 * it saw.
 */
import type { InngestFunction } from 'inngest';
import { InngestTestEngine } from '@inngest/test';

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** @inngest/test types `ctx` from inngest's CJS typings; name its own to stay on one side of the dual package. */
export type TransformCtx = NonNullable<InngestTestEngine.Options['transformCtx']>;

/** `"1m5s"` -> 65000: how Inngest names a sleep op. */
export function sleepNameMs(name: string): number {
  const unit: Record<string, number> = { w: 604_800_000, d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 };
  let total = 0;
  for (const [, n, u] of name.matchAll(/(\d+)([wdhms])/g)) total += Number(n) * unit[u!]!;
  return total;
}

export interface SeenOp {
  op: string;
  id: string;
  name?: string;
  data?: unknown;
  error?: unknown;
}

export interface RunOutcome {
  result?: unknown;
  error?: { name?: string; message?: string };
  ops: SeenOp[];
  /** Wall time of each SDK request, in order. */
  requestMs: number[];
}

/** An engine whose single-request method is callable: one call = one request from the Inngest server. */
export class Sdk extends InngestTestEngine {
  request(options: InngestTestEngine.InlineOptions) {
    return this.individualExecution(options);
  }
}

/** Plays the Inngest server until the run ends or a step fails (a failed step would be retried: we stop and report it). */
export async function runToEnd(
  fn: InngestFunction.Like,
  options: { data?: Record<string, unknown>; name?: string; transformCtx?: TransformCtx } = {},
): Promise<RunOutcome> {
  const sdk = new Sdk({
    function: fn,
    events: [{ name: options.name ?? 'test/run', data: options.data ?? {} }],
    ...(options.transformCtx ? { transformCtx: options.transformCtx } : {}),
  });
  const memo: InngestTestEngine.MockedStep[] = [];
  const ops: SeenOp[] = [];
  const requestMs: number[] = [];
  let disableImmediateExecution = false;
  const remember = (id: string, data: unknown) => memo.push({ id, idIsHashed: true, handler: () => data });
  const request = async (targetStepId?: string) => {
    const started = Date.now();
    const out = await sdk.request({ steps: [...memo], disableImmediateExecution, ...(targetStepId ? { targetStepId } : {}) });
    requestMs.push(Date.now() - started);
    return out.result as { type: string; data?: unknown; error?: RunOutcome['error']; step?: SeenOp; steps?: SeenOp[] };
  };
  for (let i = 0; i < 100; i++) {
    const r = await request();
    if (r.type === 'function-resolved') return { result: r.data, ops, requestMs };
    if (r.type === 'function-rejected') return { error: r.error!, ops, requestMs };
    if (r.type === 'step-ran') {
      const s = r.step!;
      ops.push({ op: s.op, id: s.id, data: s.data, error: s.error });
      if (s.error !== undefined) return { error: s.error as RunOutcome['error'], ops, requestMs };
      remember(s.id, s.data);
      continue;
    }
    if (r.type !== 'steps-found') throw new Error(`unexpected checkpoint ${r.type}`);
    const found = r.steps!;
    if (found.length > 1) disableImmediateExecution = true;
    let sleepMs = 0;
    for (const s of found) {
      ops.push({ op: s.op, id: s.id, ...(s.name !== undefined ? { name: s.name } : {}) });
      if (s.op === 'Sleep') {
        sleepMs = Math.max(sleepMs, sleepNameMs(s.name!));
      } else if (s.op === 'StepPlanned') {
        // the server runs each planned step in a request of its own, aimed at it
        const ran = await request(s.id);
        if (ran.type !== 'step-ran') throw new Error(`targeted step answered ${ran.type}`);
        ops.push({ op: ran.step!.op, id: ran.step!.id, data: ran.step!.data, error: ran.step!.error });
        if (ran.step!.error !== undefined) return { error: ran.step!.error as RunOutcome['error'], ops, requestMs };
        remember(ran.step!.id, ran.step!.data);
      }
    }
    if (sleepMs > 0) await delay(sleepMs);
    for (const s of found) if (s.op === 'Sleep') remember(s.id, null);
  }
  throw new Error('run did not end within 100 requests');
}

