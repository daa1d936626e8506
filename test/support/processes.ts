import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LoadResult, LoadSpec } from './load-process.js';

const LOAD = fileURLToPath(new URL('./load-process.ts', import.meta.url));

/**
 * Runs load processes (real OS processes); once every one is ready, they all start at the same
 * moment (`startAt`, returned) so slow process start-up on a busy machine cannot eat the run.
 */
export async function runLoadProcesses(specs: LoadSpec[], onStart?: (startAt: number) => void): Promise<{ startAt: number; results: LoadResult[] }> {
  const started = specs.map((spec) => startLoadProcess(spec));
  await Promise.all(started.map((s) => s.ready));
  const startAt = Date.now() + 200;
  for (const s of started) s.start(startAt);
  onStart?.(startAt);
  return { startAt, results: await Promise.all(started.map((s) => s.done)) };
}

function startLoadProcess(spec: LoadSpec): { ready: Promise<void>; start(at: number): void; done: Promise<LoadResult> } {
  const child = spawn(process.execPath, ['--import', 'tsx', LOAD, JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => (markReady = r));
  const done = new Promise<LoadResult>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      if (out.startsWith('ready\n')) markReady();
    });
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`load process exited ${code}: ${err.slice(-2000)}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!) as LoadResult);
      } catch (e) {
        reject(new Error(`load process printed no result: ${out.slice(-500)} ${err.slice(-1000)}`, { cause: e }));
      }
    });
  });
  done.catch(() => markReady());
  return { ready, done, start: (at) => child.stdin.end(`${at}\n`) };
}

/** The most admissions in any window of `windowMs` (sliding over the sorted times). */
export function maxInWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < sorted.length; hi++) {
    while (sorted[hi]! - sorted[lo]! >= windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

export function countBetween(times: number[], from: number, to: number): number {
  return times.filter((t) => t >= from && t < to).length;
}

/**
 * Replays request times through a token bucket (`ratePerMs`, `capacity`, full at the start), as
 * an upstream counting them would: returns the deepest debt in tokens (0 = it never refused one).
 */
export function bucketDebt(times: number[], ratePerMs: number, capacity: number): { debt: number; at: number } {
  const sorted = [...times].sort((a, b) => a - b);
  let tokens = capacity;
  let last = sorted[0] ?? 0;
  let worst = { debt: 0, at: NaN };
  for (const t of sorted) {
    tokens = Math.min(capacity, tokens + (t - last) * ratePerMs) - 1;
    last = t;
    if (-tokens > worst.debt) worst = { debt: -tokens, at: t };
  }
  return worst;
}

/**
 * Starts `node --import tsx <script> <JSON spec>` and resolves with the first match of `ready` on
 * its stdout (the process says it listens); rejects, with its stderr's tail, if it exits first.
 * The child stops when its stdin ends.
 */
export function startReadyProcess(script: string, spec: object, ready: RegExp): Promise<{ child: ChildProcess; ready: RegExpExecArray }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      const m = ready.exec(out);
      if (m) resolve({ child, ready: m });
    });
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.once('exit', (code) => reject(new Error(`${script} exited ${code}: ${err.slice(-2000)}`)));
  });
}
