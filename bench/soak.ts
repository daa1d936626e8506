/**
 * Soak benchmark: does anything grow when the throttle runs at saturation for a long time?
 *
 *   npx tsx bench/soak.ts [--minutes 10] [--drain-seconds 90]
 *
 * 4 load processes (bench/soak-process.ts) x 32 callers acquire in a loop against one endpoint at
 * 200/s (burst 20), two at priority high, two at low, each its own tenant, on a private
 * redis-server started here. Every 10 s it samples each process's RSS and heapUsed (after a full
 * GC in the process) and Redis's `used_memory` and `DBSIZE`. At the end it prints a markdown table
 * (start, middle, end, slope per minute over the whole run and over its second half, where start-up
 * effects are gone) and writes it to bench/soak-results.md. After the processes close, it waits for
 * the namespace's keys to expire (design: idle namespaces return to zero keys).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startEmbeddedRedis } from '../workers/embedded/redis-server.js';
import type { SoakDone, SoakSample, SoakSpec } from './soak-process.js';

const CHILD = fileURLToPath(new URL('./soak-process.ts', import.meta.url));
const RESULTS = fileURLToPath(new URL('./soak-results.md', import.meta.url));
const SAMPLE_MS = 10_000;
const PROCESSES = 4;
const CALLERS = 32;
const RATE = 200;
const BURST = 20;

function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!(value > 0 && Number.isFinite(value))) throw new Error(`${name} takes a positive number, received ${process.argv[i + 1]}`);
  return value;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A load process and a way to ask it for one JSON line. */
interface Child {
  process: ChildProcess;
  ask(line: string): Promise<unknown>;
  ready: Promise<unknown>;
}

function startChild(spec: SoakSpec): Child {
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', CHILD, JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const waiting: { resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + String(d)).slice(-4000)));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const next = waiting.shift();
    try {
      next?.resolve(JSON.parse(line));
    } catch (err) {
      next?.reject(new Error(`load process printed ${line.slice(0, 200)}`, { cause: err }));
    }
  });
  child.on('exit', (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`load process exited ${code}: ${stderr.slice(-2000)}`));
  });
  const expect = () => new Promise<unknown>((resolve, reject) => waiting.push({ resolve, reject }));
  const ready = expect();
  return {
    process: child,
    ready,
    ask(line: string) {
      const answer = expect();
      child.stdin!.write(`${line}\n`);
      return answer;
    },
  };
}

interface Point {
  /** Seconds since the common start. */
  t: number;
  procs: { rss: number; heapUsed: number; admitted: number; calls: number; errors: number }[];
  usedMemory: number;
  dbsize: number;
}

async function redisMemory(redis: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

const MB = 1024 * 1024;
const fmt = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : String(n));
const signed = (n: number, d = 2) => (Number.isFinite(n) ? `${n >= 0 ? '+' : ''}${n.toFixed(d)}` : String(n));

async function main(): Promise<void> {
  const minutes = numberArg('--minutes', 10);
  const drainSeconds = numberArg('--drain-seconds', 90);
  const durationMs = minutes * 60_000;
  const server = await startEmbeddedRedis();
  const redis = new Redis(server.url);
  const namespace = 'soak';
  const children: Child[] = [];
  try {
    for (let i = 0; i < PROCESSES; i++) {
      children.push(
        startChild({
          redis: server.url,
          namespace,
          endpoint: 'e',
          rate: `${RATE}/s`,
          burst: BURST,
          callers: CALLERS,
          priority: i % 2 === 0 ? 'high' : 'low',
          tenant: `tenant-${i}`,
        }),
      );
    }
    await Promise.all(children.map((c) => c.ready));
    await Promise.all(children.map((c) => c.ask('go')));
    const startedAt = Date.now();
    console.error(`soak: ${PROCESSES} processes x ${CALLERS} callers at ${RATE}/s (burst ${BURST}) for ${minutes} min, sampling every ${SAMPLE_MS / 1000} s`);

    const points: Point[] = [];
    const sample = async () => {
      const procs = (await Promise.all(children.map((c) => c.ask('sample')))) as SoakSample[];
      const point: Point = {
        t: (Date.now() - startedAt) / 1000,
        procs: procs.map((p) => ({ rss: p.rss, heapUsed: p.heapUsed, admitted: p.admitted, calls: p.calls, errors: p.errors })),
        usedMemory: await redisMemory(redis),
        dbsize: await redis.dbsize(),
      };
      points.push(point);
      const admitted = point.procs.reduce((n, p) => n + p.admitted, 0);
      console.error(
        `t=${fmt(point.t, 0)}s admitted=${admitted} rss=[${point.procs.map((p) => fmt(p.rss / MB, 1)).join(', ')}] MB ` +
          `heap=[${point.procs.map((p) => fmt(p.heapUsed / MB, 1)).join(', ')}] MB redis=${fmt(point.usedMemory / MB, 2)} MB keys=${point.dbsize}`,
      );
    };
    // samples on a fixed grid from the start, so the slope's time axis is honest
    for (let k = 0; k * SAMPLE_MS <= durationMs; k++) {
      await sleep(Math.max(0, startedAt + k * SAMPLE_MS - Date.now()));
      await sample();
    }
    const ranMs = Date.now() - startedAt;

    const done = (await Promise.all(children.map((c) => c.ask('stop')))) as SoakDone[];
    const keysAfterClose = await redis.dbsize();
    const drainStart = Date.now();
    let drainedAfter: number | null = null;
    while (Date.now() - drainStart < drainSeconds * 1000) {
      if ((await redis.dbsize()) === 0) {
        drainedAfter = (Date.now() - drainStart) / 1000;
        break;
      }
      await sleep(1000);
    }
    const keysLeft = await redis.dbsize();
    const leftNames = keysLeft > 0 ? (await redis.scan('0', 'COUNT', 100))[1].slice(0, 10) : [];

    // ---- the table ----
    const mid = points.reduce((best, p) => (Math.abs(p.t - ranMs / 2000) < Math.abs(best.t - ranMs / 2000) ? p : best), points[0]!);
    const first = points[0]!;
    const last = points[points.length - 1]!;
    const tMin = points.map((p) => p.t / 60);
    const half = points.filter((p) => p.t >= last.t / 2);
    const halfMin = half.map((p) => p.t / 60);
    const rows: string[][] = [];
    const series = (name: string, unit: string, value: (p: Point) => number, d = 2) => {
      const ys = points.map(value);
      rows.push([name, `${fmt(value(first), d)}`, `${fmt(value(mid), d)}`, `${fmt(value(last), d)}`, `${signed(slope(tMin, ys), d + 1)} ${unit}/min`, `${signed(slope(halfMin, half.map(value)), d + 1)} ${unit}/min`]);
    };
    for (let i = 0; i < PROCESSES; i++) {
      series(`process ${i + 1} RSS (MB)`, 'MB', (p) => p.procs[i]!.rss / MB, 1);
      series(`process ${i + 1} heapUsed after GC (MB)`, 'MB', (p) => p.procs[i]!.heapUsed / MB, 2);
    }
    series('Redis used_memory (MB)', 'MB', (p) => p.usedMemory / MB, 3);
    series('Redis DBSIZE (keys)', 'keys', (p) => p.dbsize, 0);
    // admissions per second over each sampling interval (the first row has no interval)
    const rateAt = (p: Point) => {
      const i = points.indexOf(p);
      if (i === 0) return NaN;
      const prev = points[i - 1]!;
      const sum = (q: Point) => q.procs.reduce((n, x) => n + x.admitted, 0);
      return (sum(p) - sum(prev)) / (p.t - prev.t);
    };
    const rated = points.slice(1);
    const rates = rated.map(rateAt);
    rows.push([
      'admissions/s (all processes, per interval)',
      fmt(rateAt(points[1] ?? first), 1),
      fmt(rateAt(mid === first ? (points[1] ?? first) : mid), 1),
      fmt(rateAt(last), 1),
      `${signed(slope(rated.map((p) => p.t / 60), rates), 2)} /s/min`,
      `${signed(slope(rated.filter((p) => p.t >= last.t / 2).map((p) => p.t / 60), rated.filter((p) => p.t >= last.t / 2).map(rateAt)), 2)} /s/min`,
    ]);

    const admitted = done.reduce((n, d) => n + d.admitted, 0);
    const calls = done.reduce((n, d) => n + d.calls, 0);
    const errors = done.reduce((n, d) => n + d.errors, 0);
    const utilization = admitted / ((ranMs / 1000) * RATE + BURST);
    const table = [
      '| series | start | middle | end | slope (whole run) | slope (2nd half) |',
      '|---|---|---|---|---|---|',
      ...rows.map((r) => `| ${r.join(' | ')} |`),
    ].join('\n');
    const md = [
      `# Soak: ${PROCESSES} processes x ${CALLERS} callers at saturation for ${minutes} min`,
      '',
      `Measured by \`npx tsx bench/soak.ts --minutes ${minutes}\` on ${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}, ` +
        `Redis ${(/redis_version:(\S+)/.exec(await redis.info('server'))?.[1]) ?? '?'}, ${new Date().toISOString().slice(0, 10)}.`,
      `One endpoint at ${RATE}/s, burst ${BURST}; processes 1 and 3 at priority high, 2 and 4 at low; one tenant each. ` +
        `Samples every ${SAMPLE_MS / 1000} s (${points.length} samples, start = t 0 s, middle = t ${fmt(mid.t, 0)} s, end = t ${fmt(last.t, 0)} s); ` +
        'heapUsed is read after a full GC in the process. Slopes are least-squares fits; the second half leaves out start-up (JIT, pools, first GCs).',
      '',
      table,
      '',
      `- admitted ${admitted} in ${fmt(ranMs / 1000, 1)} s: ${fmt(100 * utilization, 1)}% of rate x T + burst; ` +
        `script calls per admission ${fmt(calls / admitted, 3)}; caller errors ${errors}${done.find((d) => d.lastError) ? ` (last: ${done.find((d) => d.lastError)!.lastError})` : ''}.`,
      `- after the processes closed: ${keysAfterClose} keys; ` +
        (drainedAfter !== null ? `0 keys ${fmt(drainedAfter, 0)} s later (every key has a TTL).` : `${keysLeft} keys still there after ${drainSeconds} s: ${leftNames.join(', ')}`),
      '',
    ].join('\n');
    console.log(md);
    writeFileSync(RESULTS, md);
    console.error(`written to ${RESULTS}`);
  } finally {
    for (const c of children) if (c.process.exitCode === null) c.process.kill('SIGKILL');
    await redis.quit().catch(() => redis.disconnect());
    await server.stop();
  }
}

await main();
