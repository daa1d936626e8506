/**
 * Side by side: Sluice, bottleneck, rate-limiter-flexible and a naive Lua token bucket with
 * sleep-and-retry, in ONE run against ONE private redis-server, each peer in its own OS processes
 * (bench/peers/<peer>.ts, sharing bench/peers/child.ts).
 *
 *   npx tsx bench/peers/run.ts            full run, writes docs/benchmarks.md
 *   npx tsx bench/peers/run.ts --quick    short run (< 3 min) to check it works; prints the tables,
 *                                         writes nothing unless --out <file> is given
 *
 * Scenarios (every scenario runs each peer in turn; Redis is flushed and CONFIG RESETSTAT before
 * each peer, so every figure is that peer's alone):
 *   1. saturation    4 processes x 32 callers, 200/s burst 20: utilization, worst 1 s window,
 *                    Redis commands and Redis CPU per admission
 *   2. throughput    1 process x 50 callers, a rate never reached, vs redis-benchmark's EVALSHA ceiling
 *   3. fairness      high vs low both saturating (split: 2 processes each; mixed: both classes in
 *                    each of 4 processes), then high stops: the low class's utilization alone
 *   4. lateness      5/s burst 5, 2 processes x 10 callers: gaps between admissions vs the ideal 200 ms
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startEmbeddedRedis } from '../../workers/embedded/redis-server.js';
import { countBetween, maxInWindow } from '../../test/support/processes.js';
import type { ChildResult, ChildSpec, ClassName } from './child.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const outIndex = argv.indexOf('--out');
const out = outIndex >= 0 ? argv[outIndex + 1] : quick ? undefined : fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url));
const scenarios = argv.includes('--scenario') ? argv[argv.indexOf('--scenario') + 1]!.split(',') : undefined;
const only = argv.includes('--peer') ? argv[argv.indexOf('--peer') + 1]!.split(',') : undefined;

interface Peer {
  name: string;
  label: string;
  /** The child script, bench/peers/<file>.ts (default: name). */
  file?: string;
  variant?: string;
}

const ALL_PEERS: Peer[] = [
  { name: 'sluice', label: 'Sluice' },
  { name: 'bottleneck', label: 'bottleneck 2.19.5' },
  { name: 'rate-limiter-flexible', label: 'rate-limiter-flexible 11.4' },
  { name: 'naive', label: 'naive Lua bucket + sleep/retry' },
];
const PEERS = ALL_PEERS.filter((p) => !only || only.includes(p.name));
/** Saturation only: the naive script as first published, with the caller's clock. */
const CLIENT_CLOCK: Peer = { name: 'naive-client-clock', file: 'naive', variant: 'client-clock', label: "naive bucket with the caller's clock (as published)" };

const D = quick
  ? { sat: 3_000, tp: 2_000, fair: 3_000, alone: 2_000, late: 5_000, benchN: 50_000 }
  : { sat: 10_000, tp: 5_000, fair: 10_000, alone: 5_000, late: 20_000, benchN: 200_000 };

let redis: Redis;
let url: string;
let scenarioSeq = 0;

// ---------------------------------------------------------------- children

interface Child {
  ready: Promise<void>;
  stopped: Promise<void>;
  done: Promise<ChildResult>;
  send(line: string): void;
  kill(): void;
  /** The tail of its stderr, for a report. */
  stderr(): string;
}

function startChild(peer: Peer, spec: ChildSpec): Child {
  const file = fileURLToPath(new URL(`./${peer.file ?? peer.name}.ts`, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', file, JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let head = '';
  let err = '';
  const marks: Record<string, () => void> = {};
  const mark = (name: string) => new Promise<void>((r) => (marks[name] = r));
  const ready = mark('ready');
  const stopped = mark('stopped');
  let stoppedSeen = false;
  const done = new Promise<ChildResult>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      chunks.push(d);
      // only the short lines before the result are protocol: stop looking once `stopped` came
      if (stoppedSeen) return;
      head += d.toString();
      for (const line of head.split('\n')) {
        marks[line]?.();
        if (line === 'stopped') stoppedSeen = true;
      }
      if (head.length > 10_000) head = head.slice(-100);
    });
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('close', (code) => {
      const out = Buffer.concat(chunks).toString();
      const fail = new Error(`${peer.name} child exited ${code}: ${err.slice(-2000)} ${out.slice(-500)}`);
      if (code !== 0) return reject(fail);
      try {
        resolve(JSON.parse(out.slice(out.lastIndexOf('\n', out.length - 2) + 1)) as ChildResult);
      } catch {
        reject(fail);
      }
    });
  });
  // a child that dies early must not leave the parent waiting for its marks
  done.catch(() => {
    marks.ready?.();
    marks.stopped?.();
  });
  return {
    ready,
    stopped,
    done,
    send: (line) => child.stdin.write(`${line}\n`),
    kill: () => child.kill('SIGKILL'),
    stderr: () => err.slice(-1000),
  };
}

interface RedisFigures {
  /** INFO commandstats: every command Redis ran, those run inside scripts included (our INFO / CONFIG excluded). */
  serverCommands: number;
  /** EVAL / EVALSHA / FCALL only. */
  scriptCalls: number;
  /** INFO cpu: used_cpu_sys + used_cpu_user, seconds. */
  cpuSec: number;
  /** INFO commandstats by command (the same counts as serverCommands, split). */
  byCommand: Record<string, number>;
}

async function redisCpu(): Promise<number> {
  const info = await redis.info('cpu');
  const num = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return num('used_cpu_sys') + num('used_cpu_user');
}

async function commandStats(): Promise<{ all: number; scripts: number; byCommand: Record<string, number> }> {
  const info = await redis.info('commandstats');
  let all = 0;
  let scripts = 0;
  const byCommand: Record<string, number> = {};
  for (const m of info.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) {
    const name = m[1]!;
    const calls = Number(m[2]);
    if (name === 'info' || name.startsWith('config')) continue; // the benchmark's own probes
    all += calls;
    byCommand[name] = calls;
    if (/^(eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro)$/.test(name)) scripts += calls;
  }
  return { all, scripts, byCommand };
}

/** How long after its last caller should have stopped a process is given before it counts as stuck. */
const STUCK_AFTER_MS = 30_000;

interface Outcome {
  /** The machine's 1-minute load average when the peer's run ended (other work shares the cores). */
  load: number;
  /** Callers still waiting STUCK_AFTER_MS after the end, and in how many processes. */
  stuck: { callers: number; processes: number };
  startAt: number;
  results: ChildResult[];
  redis: RedisFigures;
  admissions: number;
  clientCommands: number;
}

/** Starts the processes (the first alone), resets Redis's counters, runs them from one start time. */
async function runScenario(peer: Peer, specs: Omit<ChildSpec, 'redis' | 'key'>[]): Promise<Outcome> {
  const t0 = Date.now();
  await redis.flushall();
  const key = `peers-${++scenarioSeq}-${peer.name}`;
  const full = specs.map((s, i): ChildSpec => ({ ...s, redis: url, key, first: i === 0, ...(peer.variant ? { variant: peer.variant } : {}) }));
  // bottleneck's first limiter clears the datastore: the others join once it is up
  const first = startChild(peer, full[0]!);
  if (peer.name === 'bottleneck') await first.ready;
  const children = [first, ...full.slice(1).map((s) => startChild(peer, s))];
  await Promise.all(children.map((c) => c.ready));
  await redis.config('RESETSTAT');
  const cpu0 = await redisCpu();
  const startAt = Date.now() + 300;
  for (const c of children) c.send(`start ${startAt}`);
  // a peer whose callers never get through must not hang the benchmark: give up after a grace
  const longest = Math.max(...specs.flatMap((s) => s.classes.map((c) => c.durationMs)));
  let giveUp: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(children.map((c) => c.stopped)),
    new Promise<void>((r) => (giveUp = setTimeout(r, Math.max(0, startAt + longest + STUCK_AFTER_MS - Date.now())))),
  ]);
  clearTimeout(giveUp);
  const stats = await commandStats();
  const cpuSec = (await redisCpu()) - cpu0;
  const load = loadavg()[0]!;
  for (const c of children) c.send('close');
  const results = await Promise.all(
    children.map((c) => {
      // a child stuck in its adapter's close is killed; its result is lost (and said so)
      const killer = setTimeout(() => c.kill(), 60_000);
      const lost: ChildResult = { admissions: {}, counts: {}, slots: [], lateMs: [], stuck: 1, commands: 0, errors: { 'killed: no result': 1 } };
      return c.done.catch(() => lost).finally(() => clearTimeout(killer));
    }),
  );
  const stuck = { callers: results.reduce((n, r) => n + (r.errors['killed: no result'] ? 0 : r.stuck ?? 0), 0), processes: results.filter((r) => !r.errors['killed: no result'] && (r.stuck ?? 0) > 0).length };
  const lostResults = results.filter((r) => r.errors['killed: no result']).length;
  if (lostResults) incidents.push(`${peer.label}: ${lostResults} of ${children.length} processes did not close within 60 s and were killed; what they admitted is not counted.`);
  if (stuck.callers) {
    incidents.push(
      `${peer.label}: ${stuck.callers} callers in ${stuck.processes} of ${children.length} processes were still waiting for an admission ${STUCK_AFTER_MS / 1000} s after the run's end; the run was cut there (figures count what was admitted until then).`,
    );
  }
  if (stuck.callers) console.error(`  ${peer.name}: ${stuck.callers} callers in ${stuck.processes} processes still waiting ${STUCK_AFTER_MS / 1000} s after the end; stderr: ${children.map((c) => c.stderr()).join(' | ').slice(-1500)}`);
  // every admission, those of calls still waiting at the stop included: the commands counted are theirs too
  const admissions = results.reduce((s, r) => s + Object.values(r.counts ?? {}).reduce((a, n) => a + n, 0), 0);
  console.error(`  ${peer.name}: ${((Date.now() - t0) / 1000).toFixed(1)} s, of which ${((startAt - t0) / 1000).toFixed(1)} s starting`);
  const errors = results.flatMap((r) => Object.entries(r.errors));
  if (errors.length) console.error(`  ${peer.name}: errors ${JSON.stringify(errors)}`);
  return {
    load,
    stuck,
    startAt,
    results,
    redis: { serverCommands: stats.all, scriptCalls: stats.scripts, cpuSec, byCommand: stats.byCommand },
    admissions,
    clientCommands: results.reduce((s, r) => s + r.commands, 0),
  };
}

function times(o: Outcome, cls?: ClassName): number[] {
  return o.results.flatMap((r) => (cls ? r.admissions[cls] ?? [] : Object.values(r.admissions).flat())).sort((a, b) => a - b);
}

/** The slots a reserving peer said it granted (Redis time), sorted; empty for the others. */
function grantedSlots(o: Outcome): number[] {
  return o.results.flatMap((r) => r.slots ?? []).sort((a, b) => a - b);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p) - 1))]!;
}

// ---------------------------------------------------------------- formatting

const f = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : '—');
const pct = (n: number, d = 1) => (Number.isFinite(n) ? `${(100 * n).toFixed(d)}%` : '—');
const ratio = (v: number, base: number) => (Number.isFinite(v) && Number.isFinite(base) && base !== 0 ? `${(v / base).toFixed(2)}x` : '—');

interface Column {
  head: string;
  /** The figure of a peer's row, and how to print it. */
  value: (row: Record<string, number>) => number;
  show: (v: number) => string;
  /** Print the ratio to Sluice's figure beside it. */
  ratio?: boolean;
}

function table(rows: { peer: Peer; figures: Record<string, number> }[], columns: Column[]): string {
  const base = rows.find((r) => r.peer.name === 'sluice')?.figures;
  const lines = [
    `| peer | ${columns.map((c) => c.head).join(' | ')} |`,
    `|---|${columns.map(() => '---').join('|')}|`,
  ];
  for (const r of rows) {
    const cells = columns.map((c) => {
      const v = c.value(r.figures);
      const shown = c.show(v);
      return c.ratio && base && r.peer.name !== 'sluice' ? `${shown} (${ratio(v, c.value(base))})` : shown;
    });
    lines.push(`| ${r.peer.label} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------- scenarios

const sections: string[] = [];
/** What went wrong in the scenario being run (stuck callers), printed under its table. */
const incidents: string[] = [];
function section(title: string, intro: string, body: string): void {
  const extra = incidents.splice(0).map((i) => `\n**Incident.** ${i}\n`).join('');
  const text = `### ${title}\n\n${intro}\n\n${body}\n${extra}`;
  sections.push(text);
  console.log(`\n${text}`);
}

async function saturation(): Promise<void> {
  const rate = 200, burst = 20, T = D.sat;
  const rows = [];
  const notes: string[] = [];
  // the caller's-clock variant runs the same code as 'naive': the quick check leaves it out
  for (const peer of [...PEERS, ...(!quick && (!only || only.includes('naive')) ? [CLIENT_CLOCK] : [])]) {
    console.error(`saturation: ${peer.name}`);
    const o = await runScenario(peer, Array.from({ length: 4 }, () => ({ rate, burst, classes: [{ cls: 'normal' as const, callers: 32, durationMs: T }] })));
    const all = times(o);
    const slots = grantedSlots(o);
    if (peer.name === 'sluice') {
      const split = Object.entries(o.redis.byCommand).sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${f(n / o.admissions, 2)}`);
      console.error(`  sluice: Redis commands per admission by command: ${split.join(', ')}`);
      notes.push(`Sluice's Redis commands per admission, by command (INFO commandstats): ${split.join(', ')}.`);
    }
    if (slots.length) notes.push(`${peer.label}: worst 1 s window of the slots it granted (Redis time) ${maxInWindow(slots, 1000)}, of the moments the callers were let go ${maxInWindow(all, 1000)}.`);
    rows.push({
      peer,
      figures: {
        load: o.load,
        utilization: countBetween(all, o.startAt, o.startAt + T) / ((rate * T) / 1000),
        worst: maxInWindow(all, 1000),
        clientPerAdm: o.clientCommands / o.admissions,
        serverPerAdm: o.redis.serverCommands / o.admissions,
        scriptsPerAdm: o.redis.scriptCalls / o.admissions,
        cpuPerAdm: (1000 * o.redis.cpuSec) / o.admissions,
        admissions: o.admissions,
      },
    });
  }
  section(
    `1. Saturation: 4 processes x 32 callers, 200/s burst 20, ${T / 1000} s`,
    'Utilization = admissions within the run / (rate x T); the worst 1 s window is over actual admission times (when the caller was let go) and may not pass rate + burst = 220. ' +
      'Commands per admission: sent by the clients (counted in each process on every ioredis connection), and run by Redis (INFO commandstats, which also counts every command run inside a script). Redis CPU: INFO cpu (sys + user) over the run.',
    table(rows, [
      { head: 'utilization', value: (r) => r.utilization!, show: (v) => pct(v), ratio: true },
      { head: 'worst 1 s window (limit 220)', value: (r) => r.worst!, show: (v) => f(v, 0), ratio: true },
      { head: 'client commands / admission', value: (r) => r.clientPerAdm!, show: (v) => f(v, 2), ratio: true },
      { head: 'script calls / admission', value: (r) => r.scriptsPerAdm!, show: (v) => f(v, 2), ratio: true },
      { head: 'Redis commands / admission (incl. inside scripts)', value: (r) => r.serverPerAdm!, show: (v) => f(v, 1), ratio: true },
      { head: 'Redis CPU ms / admission', value: (r) => r.cpuPerAdm!, show: (v) => f(v, 3), ratio: true },
      { head: 'admissions', value: (r) => r.admissions!, show: (v) => f(v, 0) },
      { head: 'load avg', value: (r) => r.load!, show: (v) => f(v, 1) },
    ]) + (notes.length ? `\n\n${notes.join(' ')} The difference is the local timers: on a busy machine a timer fires late, and callers whose slots were spread out go together.` : ''),
  );
}

async function throughput(): Promise<void> {
  const port = new URL(url).port;
  const bucketLua = `local t = redis.call('HMGET', KEYS[1], 't', 'ts') local now = redis.call('TIME') redis.call('HSET', KEYS[1], 't', 1, 'ts', now[1]) return 1`;
  await redis.flushall();
  const sha = (await redis.script('LOAD', bucketLua)) as string;
  const bench = execFileSync('redis-benchmark', ['-p', port, '-c', '50', '-n', String(D.benchN), '-q', 'EVALSHA', sha, '1', 'bench:{b}:k'], { encoding: 'utf8' });
  const ceiling = Number(/([\d.]+) requests per second/.exec(bench)?.[1]);
  console.error(`redis-benchmark EVALSHA ceiling: ${f(ceiling, 0)}/s`);
  const T = D.tp;
  const rows = [];
  for (const peer of PEERS) {
    console.error(`throughput: ${peer.name}`);
    const o = await runScenario(peer, [{ rate: 1e8, burst: 1e8, countOnly: true, classes: [{ cls: 'normal', callers: 50, durationMs: T }] }]);
    const perSec = o.admissions / (T / 1000);
    rows.push({
      peer,
      figures: {
        load: o.load,
        perSec,
        ofCeiling: perSec / ceiling,
        clientPerAdm: o.clientCommands / o.admissions,
        cpuPerAdm: (1000 * o.redis.cpuSec) / o.admissions,
      },
    });
  }
  section(
    `2. Uncontended throughput: 1 process x 50 callers, a rate never reached, ${T / 1000} s`,
    `The ceiling is \`redis-benchmark -c 50 -n ${D.benchN} EVALSHA\` of a small token-bucket script (HMGET, TIME, HSET) against the same redis-server in the same run: **${f(ceiling, 0)}/s**.`,
    table(rows, [
      { head: 'admissions/s', value: (r) => r.perSec!, show: (v) => f(v, 0), ratio: true },
      { head: 'of the EVALSHA ceiling', value: (r) => r.ofCeiling!, show: (v) => pct(v, 0) },
      { head: 'client commands / admission', value: (r) => r.clientPerAdm!, show: (v) => f(v, 3), ratio: true },
      { head: 'Redis CPU ms / admission', value: (r) => r.cpuPerAdm!, show: (v) => f(v, 4), ratio: true },
      { head: 'load avg', value: (r) => r.load!, show: (v) => f(v, 1) },
    ]),
  );
}

async function fairness(layout: 'split' | 'mixed'): Promise<void> {
  const rate = 200, burst = 20, T = D.fair, alone = D.alone;
  const specs =
    layout === 'split'
      ? [
          ...Array.from({ length: 2 }, () => ({ rate, burst, classes: [{ cls: 'high' as const, callers: 32, durationMs: T }] })),
          ...Array.from({ length: 2 }, () => ({ rate, burst, classes: [{ cls: 'low' as const, callers: 32, durationMs: T + alone }] })),
        ]
      : Array.from({ length: 4 }, () => ({
          rate,
          burst,
          classes: [
            { cls: 'high' as const, callers: 16, durationMs: T },
            { cls: 'low' as const, callers: 16, durationMs: T + alone },
          ],
        }));
  const rows = [];
  for (const peer of PEERS) {
    console.error(`fairness (${layout}): ${peer.name}`);
    const o = await runScenario(peer, specs);
    const high = times(o, 'high'), low = times(o, 'low');
    const from = o.startAt + 1000, to = o.startAt + T;
    const h = countBetween(high, from, to), l = countBetween(low, from, to);
    const aloneFrom = o.startAt + T + 500, aloneTo = o.startAt + T + alone;
    rows.push({
      peer,
      figures: {
        load: o.load,
        share: l > 0 ? h / l : Infinity,
        lowFraction: l / (h + l),
        both: (h + l) / ((rate * (to - from)) / 1000),
        lowAlone: countBetween(low, aloneFrom, aloneTo) / ((rate * (aloneTo - aloneFrom)) / 1000),
      },
    });
  }
  const what =
    layout === 'split'
      ? '2 processes x 32 callers of class high and 2 processes x 32 callers of class low'
      : '4 processes, each with 16 callers of class high and 16 of class low';
  section(
    `3${layout === 'split' ? 'a' : 'b'}. Weighted fairness 3:1 (${layout}): ${what}, 200/s burst 20`,
    `Both classes saturate for ${T / 1000} s (share measured from 1 s in), then high stops and low runs alone for ${alone / 1000} s (utilization measured from 0.5 s after high stopped). ` +
      'What each peer was given: Sluice priorities high = 3, low = 1 (weighted-fair queue across processes); bottleneck job `priority` 0 (high) and 9 (low), strict and only within one process (its README), with `maxConcurrent` set so that jobs wait in the local queue where priority applies; rate-limiter-flexible and the naive bucket have no priorities or weights (the classes simply compete). Target 3.0.',
    table(rows, [
      { head: 'share high:low (target 3.0)', value: (r) => r.share!, show: (v) => (v === Infinity ? 'low starved' : f(v, 2)), ratio: true },
      { head: 'low class share of admissions', value: (r) => r.lowFraction!, show: (v) => pct(v), ratio: true },
      { head: 'utilization, both classes', value: (r) => r.both!, show: (v) => pct(v), ratio: true },
      { head: 'utilization, low alone (work conservation)', value: (r) => r.lowAlone!, show: (v) => pct(v), ratio: true },
      { head: 'load avg', value: (r) => r.load!, show: (v) => f(v, 1) },
    ]),
  );
}

async function lateness(): Promise<void> {
  const rate = 5, burst = 5, T = D.late;
  const ideal = 1000 / rate;
  const rows = [];
  const notes: string[] = [];
  for (const peer of PEERS) {
    console.error(`lateness: ${peer.name}`);
    const o = await runScenario(peer, Array.from({ length: 2 }, () => ({ rate, burst, classes: [{ cls: 'normal' as const, callers: 10, durationMs: T }] })));
    const all = times(o).filter((t) => t < o.startAt + T);
    // steady state: the initial burst (up to `burst` at once) is over after the first 2 s
    const steady = all.filter((t) => t >= o.startAt + 2000);
    const gaps = steady.slice(1).map((t, i) => t - steady[i]!).sort((a, b) => a - b);
    const slots = grantedSlots(o).filter((t) => t >= o.startAt + 2000 && t < o.startAt + T);
    if (slots.length) {
      const slotGaps = slots.slice(1).map((t, i) => t - slots[i]!).sort((a, b) => a - b);
      const late = o.results.flatMap((r) => r.lateMs ?? []).sort((a, b) => a - b);
      notes.push(
        `${peer.label}, gaps between the slots it granted (Redis time): p1 ${f(percentile(slotGaps, 0.01), 1)} ms, p50 ${f(percentile(slotGaps, 0.5), 1)} ms, p99 ${f(percentile(slotGaps, 0.99), 1)} ms; worst 1 s window of slots in steady state ${maxInWindow(slots, 1000)}; ` +
          `callers let go after their slot by p50 ${f(percentile(late, 0.5), 1)} ms, p99 ${f(percentile(late, 0.99), 1)} ms (a promotion made by another process's call reaches its owner with the reply to the owner's next call).`,
      );
    }
    rows.push({
      peer,
      figures: {
        load: o.load,
        utilization: countBetween(all, o.startAt, o.startAt + T) / ((rate * T) / 1000),
        p1: percentile(gaps, 0.01),
        p50: percentile(gaps, 0.5),
        p99: percentile(gaps, 0.99),
        late99: percentile(gaps.map((g) => Math.abs(g - ideal)).sort((a, b) => a - b), 0.99),
        worst: maxInWindow(all, 1000),
        worstSteady: maxInWindow(steady, 1000),
      },
    });
  }
  section(
    `4. Lateness and burstiness at a low rate: 5/s burst 5, 2 processes x 10 callers, ${T / 1000} s`,
    `Gaps between consecutive admissions (all processes together) once the initial burst is over (from 2 s in); the ideal gap is ${ideal} ms. ` +
      'p1 shows bunching (gaps far below the ideal: admissions in clumps), p99 shows lateness (long holes). The worst 1 s window may not pass rate + burst = 10 over the whole run; in steady state a smooth limiter shows 5-6.',
    table(rows, [
      { head: 'utilization', value: (r) => r.utilization!, show: (v) => pct(v), ratio: true },
      { head: 'gap p1 (ms)', value: (r) => r.p1!, show: (v) => f(v, 1) },
      { head: 'gap p50 (ms)', value: (r) => r.p50!, show: (v) => f(v, 1) },
      { head: 'gap p99 (ms)', value: (r) => r.p99!, show: (v) => f(v, 1) },
      { head: 'p99 of abs(gap - 200 ms)', value: (r) => r.late99!, show: (v) => f(v, 1), ratio: true },
      { head: 'worst 1 s window (limit 10)', value: (r) => r.worst!, show: (v) => f(v, 0), ratio: true },
      { head: 'worst 1 s window, steady', value: (r) => r.worstSteady!, show: (v) => f(v, 0), ratio: true },
      { head: 'load avg', value: (r) => r.load!, show: (v) => f(v, 1) },
    ]) + (notes.length ? `\n\n${notes.join(' ')}` : ''),
  );
}

// ---------------------------------------------------------------- main

const CAVEATS = `## How each peer was configured, and caveats

- **Same ground for all.** One private \`redis-server\` (started by \`startEmbeddedRedis()\`, no persistence), flushed and \`CONFIG RESETSTAT\` before each peer's turn; every peer's processes are real OS processes started the same way (\`node --import tsx bench/peers/<peer>.ts\`), sharing the loop in \`bench/peers/child.ts\`: each caller acquires, records the time, and acquires again (no request is made, so the limiter is the only thing measured). Scenarios run peer after peer, so a drift of the machine hits every peer alike.
- **Sluice**: \`createThrottler\` with the endpoint's rate and burst, priorities \`{ high: 3, normal: 2, low: 1 }\`, everything else default (horizon 100 ms, failure policy closed).
- **bottleneck 2.19.5** (Clustering): \`datastore: 'ioredis'\`, one \`id\` per scenario, \`clearDatastore: true\` for the first process (started alone) and \`false\` for the others, the ioredis module passed as \`Redis\`, an \`error\` listener, \`expiration: 60000\` on every job (its README: "strongly recommended"), \`minTime: 1000 / rate\` and \`maxConcurrent: max(2, rate / 5)\` (40 at 200/s, 2 at 5/s: 200 ms of jobs in flight; its README: set \`maxConcurrent\` when using priorities). **No burst**: a burst needs a reservoir whose refresh interval should be "a multiple of 250 (5000 for Clustering)", i.e. 5 s windows of 5 x rate tokens, far burstier than burst 20, so \`minTime\` alone (a leaky bucket, burst 1) is the closest faithful setting; it is stricter than the others' burst, so a smaller worst window is expected from it. The admission time is when the job's function runs; \`schedule()\` resolves only after bottleneck has also freed the job in Redis (one more round trip before the caller can submit again). The uncontended run uses no limit at all (\`minTime: 0\`, \`maxConcurrent: null\`): every job still registers, runs and is freed through Redis.
- **rate-limiter-flexible 11.4**: \`RateLimiterRedis({ storeClient: new Redis(url, { enableOfflineQueue: false }), points: rate, duration: 1 })\` behind \`RateLimiterQueue(limiter, { maxQueueSize: 100000 })\`, \`removeTokens(1)\` per request (its docs' queueing setup). Its limiter is a fixed window of whole seconds: **the burst cannot be set**, and a window boundary lets up to 2 x rate through within one second. No priorities or weights.
- **naive Lua bucket** (\`bench/peers/naive-token-bucket.lua\`): the widely copied two-key script (tokens and timestamp keys, the caller's clock, \`SETEX\`), answering allowed or a retry-after in ms; the caller sleeps retry-after plus a uniform jitter of up to the same again, and retries. Called through ioredis \`defineCommand\` (EVALSHA). The caller's clock is the script's published design; on one machine the clocks agree, but calls that arrive out of the order in which they read the clock can refill twice.
- **Counting.** "Client commands" are counted in each process by wrapping ioredis's \`sendCommand\` from the start to the stop of the callers (every connection: pub/sub, heartbeats, frees, retries). "Script calls" are EVAL, EVALSHA and FCALL (Sluice's scripts run as Redis Functions on Redis 7) in Redis's INFO commandstats. "Redis commands" are INFO commandstats' total, which **also counts the commands a script runs inside Redis**, so a peer with a bigger script scores worse there even at one round trip; Redis CPU (INFO cpu, sys + user of the whole redis-server over the run) is the fairer measure of server cost. The benchmark's own INFO and CONFIG commands are left out.
- **Fixed windows and short measures.** rate-limiter-flexible admits a whole window's points at once, then nothing until the window ends and its queue's timer fires: over a few seconds its utilization moves in steps of one window (4 windows in a 4.5 s measure read 88.9 %), and its gaps are near 0 ms or near a second.
- **Stuck callers.** A process whose callers are still waiting 30 s after the run's end is cut off there and reported under its table as an incident (what it admitted until then is counted).
- **Fairness.** The target 3.0 is Sluice's weights; bottleneck's priorities are strict (not weighted) and hold only within one process, so in the split layout they cannot act at all and in the mixed layout they can only starve the low class; rate-limiter-flexible and the naive bucket have nothing to configure, and the classes compete by numbers and luck.
- **One machine, shared.** Every process, Redis and the parent share the same cores (see "Machine"), and other work ran on the machine at the same time: the "load avg" column is the 1-minute load average at the end of each peer's run. Under heavy load the event loops stall, timers fire late and round trips stretch; peers that need several round trips per admission (bottleneck: register, run, free, plus pub/sub wake-ups) suffer most, and runs on this machine have shown bottleneck's utilization anywhere between 22 % and 100 % in the same scenario. Absolute figures drift from machine to machine and run to run; compare the ratios of one run, and read a collapse next to a high load with care.
- Times are wall-clock (\`performance.timeOrigin + performance.now()\`) taken in each process when the caller is let go; on one machine they are comparable across processes.
`;

async function main(): Promise<void> {
  const started = Date.now();
  const server = await startEmbeddedRedis();
  url = server.url;
  redis = new Redis(url);
  try {
    const load0 = loadavg();
    const want = (name: string) => !scenarios || scenarios.includes(name);
    if (want('saturation')) await saturation();
    if (want('throughput')) await throughput();
    // the quick check runs one layout: both go through the same code
    if (want('fairness') && !quick) await fairness('split');
    if (want('fairness')) await fairness('mixed');
    if (want('lateness')) await lateness();
    const load1 = loadavg();
    const version = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1];
    const benchVersion = execFileSync('redis-benchmark', ['--version'], { encoding: 'utf8' }).trim();
    const command = `npx tsx bench/peers/run.ts${argv.length ? ` ${argv.join(' ')}` : ''}`;
    const doc = [
      '# Benchmarks: Sluice and its peers, side by side',
      '',
      `Generated by \`${command}\` (\`bench/peers/\`); do not edit by hand. ${quick ? '**Quick run: short durations, for checking only.** ' : ''}` +
        `Ratios in parentheses are to Sluice's figure in the same run (for utilization higher is better; for commands, CPU, windows and lateness lower is better).`,
      '',
      '## Machine',
      '',
      `- date: ${new Date().toISOString().slice(0, 10)}`,
      `- cores (nproc): ${cpus().length}, CPU: ${cpus()[0]?.model?.trim() ?? 'unknown'}`,
      `- Node ${process.version}, Redis ${version} (${benchVersion}), loopback`,
      `- command: \`${command}\`, took ${Math.round((Date.now() - started) / 1000)} s`,
      `- load average (1 min) at the start and the end: ${load0[0]!.toFixed(1)}, ${load1[0]!.toFixed(1)} (other work on the machine shares its cores)`,
      '',
      'To run it again (the full run takes about 10 minutes; `--quick` about 3 and writes nothing unless given `--out <file>`):',
      '',
      '```sh',
      'npx tsx bench/peers/run.ts',
      'npx tsx bench/peers/run.ts --quick',
      '```',
      '',
      '## Results',
      '',
      ...sections,
      CAVEATS,
    ].join('\n');
    if (out) {
      // the inbound HTTP section is bench:http's, written by hand: kept as it is
      const previous = existsSync(out) ? readFileSync(out, 'utf8') : '';
      const http = previous.indexOf('## Inbound HTTP limiting');
      writeFileSync(out, http >= 0 ? `${doc.trimEnd()}\n\n${previous.slice(http)}` : doc);
      console.error(`wrote ${out}`);
    }
  } finally {
    redis.disconnect();
    await server.stop();
  }
}

await main();
process.exit(0);
