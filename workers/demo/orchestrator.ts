/**
 * `sluice demo`: the whole fleet on one machine. A Redis (REDIS_URL, else a private
 * redis-server), the TikTok simulator, discovery and harvesting worker PROCESSES (each with its
 * own Chromium and its own throttler client, sharing the buckets in Redis; two of each as
 * configured, one of each on a machine of 2-3 cores: see fitWorkers), the seeds enqueued, a
 * progress line per second, and a summary at the end.
 *
 * The run ends when both queues are idle twice in a row (discovery is read first: only
 * discovery jobs add jobs), when `durationMs` passes, or when `signal` aborts; then the workers
 * get SIGTERM (active jobs finish) and the summary is taken.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { enqueueDiscovery } from '../../jobs/producers.js';
import { createQueues } from '../../jobs/queues.js';
import type { Seed } from '../../jobs/schemas.js';
import { loadConfigFile } from '../config/load.js';
import type { Rate } from 'sluice';
import { startEmbeddedRedis, type EmbeddedRedis } from '../embedded/redis-server.js';
import { assertChromium } from '../fleet/browser.js';
import { ResultsStore } from '../results/store.js';
import { startSimulator, type LimitStep, type Seeds } from '../simulator/index.js';
import { createThrottler } from 'sluice';
import { TIKTOK_ENDPOINTS, type TikTokEndpoint } from '../tiktok/index.js';
import { DEMO_CONFIG_PATH, demoSection, fitWorkers } from './config.js';
import { AdmissionTotals, idle, progressLine, takeSnapshot, type Snapshot } from './progress.js';
import { renderReport } from './report.js';
import { buildSummary, type DemoSummary } from './summary.js';
import { admissionsOf, isReady, lateRequeuedOf, penaltiesOf, logTail, spawnWorker, stopWorker, type WorkerProcess } from './workers.js';

export interface DemoOptions {
  /** Config file with `throttle:`, `fleet:` and `demo:` sections. Default config/demo.yml. */
  configPath?: string;
  /** Redis URL. Default REDIS_URL, else a private redis-server started for the run. */
  redis?: string;
  /** Longest run in ms. Default: the config's `demo.durationMs`. */
  durationMs?: number;
  /** Scales the simulator's hidden limits. Default 1. */
  simLimitFactor?: number;
  /** Moves the hidden limits during the run: at `atMs` after the start the factor becomes `limitFactor`. */
  simLimitSchedule?: LimitStep[];
  /** Where the HTML report goes. Default: `report.html` in the run's log directory. */
  reportPath?: string;
  /** False: workers skip acquire (to show what the throttle prevents). Default true. */
  throttle?: boolean;
  /** Jobs at once in each worker process. Default: the config's `fleet.concurrency`, scaled by {@link fitWorkers}. */
  concurrency?: number;
  /** CPUs to fit the worker processes to (see {@link fitWorkers}). Default: os.availableParallelism(). */
  cores?: number;
  /** Receives a progress line about once a second. Default: stderr. */
  onProgress?: (line: string) => void;
  /** Ends the run early (the summary is still taken). */
  signal?: AbortSignal;
  /** Ends the run early when it returns true for a snapshot (e.g. at the first violation). */
  stopWhen?: (snapshot: Snapshot) => boolean;
}

const TICK_MS = 1_000;

function seedsForTruth(seeds: Seed[]): Seeds {
  const out: Required<Seeds> = { hashtags: [], keywords: [], handles: [], videos: [] };
  for (const s of seeds) {
    if (s.kind === 'hashtag') out.hashtags.push(s.value);
    else if (s.kind === 'keyword') out.keywords.push(s.value);
    else if (s.kind === 'creator') out.handles.push(s.value);
    else out.videos.push(s.value);
  }
  return out;
}

/** Sleeps `ms`, or less if `signal` aborts (never rejects). */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Waits for `p` (errors ignored), at most `ms`; the timer also keeps the process alive meanwhile. */
function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    p.catch(() => undefined).finally(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Sums per-key counts the workers logged. */
function sumLogged(logged: (Record<string, number> | undefined)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const byKey of logged) for (const [k, n] of Object.entries(byKey ?? {})) out[k] = (out[k] ?? 0) + n;
  return out;
}

/** Runs the demo and returns its summary. Throws before starting anything if Chromium is missing. */
export async function runDemo(options: DemoOptions = {}): Promise<DemoSummary> {
  const configPath = options.configPath ?? DEMO_CONFIG_PATH;
  const config = loadConfigFile(configPath);
  const demo = demoSection(config);
  assertChromium();
  const throttle = options.throttle ?? true;
  const simLimitFactor = options.simLimitFactor ?? 1;
  const durationMs = options.durationMs ?? demo.durationMs;
  const progress = options.onProgress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const namespace = `${config.namespace}-${randomBytes(4).toString('hex')}`;
  const logDir = join(tmpdir(), `sluice-demo-${namespace}`);
  mkdirSync(logDir, { recursive: true });

  const cleanups: (() => Promise<unknown>)[] = [];
  const workers: WorkerProcess[] = [];
  try {
    let redisUrl = options.redis ?? process.env.REDIS_URL;
    if (!redisUrl) {
      const server: EmbeddedRedis = await startEmbeddedRedis();
      cleanups.push(() => server.stop());
      redisUrl = server.url;
    }
    const sim = await startSimulator({
      graph: demo.simulator.graph,
      limits: demo.simulator.limits,
      limitFactor: simLimitFactor,
      ...(options.simLimitSchedule ? { limitSchedule: options.simLimitSchedule } : {}),
    });
    cleanups.push(() => sim.close());
    const connection = new Redis(redisUrl, { maxRetriesPerRequest: 3 });
    // failures surface through the commands that hit them; ioredis would also print each one
    connection.on('error', () => undefined);
    cleanups.push(() => connection.quit().catch(() => connection.disconnect()));
    const queues = createQueues({ connection, namespace, priorities: config.throttle.priorities });
    for (const q of [queues.discovery, queues.harvesting]) q.on('error', () => undefined);
    cleanups.push(() => queues.close());
    const store = new ResultsStore(connection, namespace);
    // a client of the same buckets, only to read the fleet-wide counters
    const throttleRedis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
    throttleRedis.on('error', () => undefined);
    cleanups.push(() => throttleRedis.quit().catch(() => throttleRedis.disconnect()));
    const throttler = createThrottler({ ...config.throttle, namespace, redis: throttleRedis, logger: pino({ level: 'silent' }) });
    cleanups.push(() => throttler.close());

    const env = { configPath: config.path, redisUrl, namespace, baseUrl: sim.url, throttle };
    const layout = fitWorkers(demo.workers, config.fleet.concurrency, options.cores ?? availableParallelism());
    for (const kind of ['discovery', 'harvesting'] as const) {
      const { processes, concurrency } = layout[kind];
      const extra = { SLUICE_CONCURRENCY: String(options.concurrency ?? concurrency) };
      for (let i = 1; i <= processes; i++) {
        workers.push(spawnWorker(kind, `${kind}-${i}`, { ...env, extra }, join(logDir, `${kind}-${i}.log`)));
      }
    }

    const startedAt = Date.now();
    await enqueueDiscovery(queues.discovery, demo.parsedSeeds.map((seed) => ({ seed, tenant: demo.tenant, priority: demo.priority })));
    const watched = { queues, store, throttler, sim, admissions: new AdmissionTotals(), penalties: new AdmissionTotals() };
    const series: Snapshot[] = [];
    let quietTicks = 0;
    let stoppedEarly = false;
    for (;;) {
      await sleep(TICK_MS, options.signal);
      // Ctrl-C reaches the whole process group: the private redis-server may be gone already
      if (options.signal?.aborted) {
        stoppedEarly = true;
        break;
      }
      const snap = await takeSnapshot(watched);
      series.push(snap);
      const ready = workers.filter(isReady).length;
      progress(progressLine(snap, startedAt, ready < workers.length ? ` | workers starting ${ready}/${workers.length}` : ''));
      // checked first: Ctrl-C in a terminal reaches the workers too, and they stop on their own
      if (options.signal?.aborted || Date.now() - startedAt >= durationMs || options.stopWhen?.(snap)) {
        stoppedEarly = !idle(snap);
        break;
      }
      const dead = workers.find((w) => w.exited);
      if (dead) throw new Error(`worker ${dead.label} exited early (${String(await dead.exit)}); last lines of ${dead.logPath}:\n${logTail(dead)}`);
      quietTicks = idle(snap) ? quietTicks + 1 : 0;
      if (quietTicks >= 2) break;
    }

    await Promise.all(workers.map((w) => stopWorker(w)));
    // after Ctrl-C the private Redis may have died with the terminal's signal: summarize the
    // last snapshot rather than nothing
    const last = series.at(-1);
    const final = await takeSnapshot(watched).catch((err: unknown) => {
      if (!options.signal?.aborted || !last) throw err;
      return { ...last, at: Date.now() };
    });
    series.push(final);
    // exact admissions: each worker logs its own when it stops (the sampled Redis counters reset
    // whenever an idle endpoint's bucket key expires); keep the sampled totals if one did not
    const logged = workers.map(admissionsOf);
    if (logged.every((a) => a !== undefined)) {
      for (const e of TIKTOK_ENDPOINTS) final.admitted[e] = logged.reduce((n, a) => n + (a?.[e] ?? 0), 0);
    }
    const harvestedDomains: string[] = [];
    try {
      for await (const d of store.domains()) harvestedDomains.push(d.domain);
    } catch (err) {
      if (!options.signal?.aborted) throw err;
    }
    const configuredPerSec = Object.fromEntries(
      TIKTOK_ENDPOINTS.map((e) => {
        const rate = throttler.config.endpoints[e]?.rate as Rate | undefined;
        return [e, rate ? (rate.tokens / rate.intervalMs) * 1000 : 0];
      }),
    ) as Record<TikTokEndpoint, number>;
    const effectivePerSec = Object.fromEntries(
      await Promise.all(TIKTOK_ENDPOINTS.map(async (e) => [e, await throttler.inspect(e).then((s) => s.effective.ratePerSec, () => null)] as const)),
    ) as Record<TikTokEndpoint, number | null>;
    const adaptiveEndpoints = TIKTOK_ENDPOINTS.filter((e) => Boolean(throttler.config.endpoints[e]?.adaptive));
    const penaltiesByKind = sumLogged(workers.map(penaltiesOf));
    const summary = buildSummary({
      namespace,
      throttle,
      simLimitFactor,
      startedAt,
      stoppedEarly,
      final,
      series,
      configuredPerSec,
      effectivePerSec,
      adaptiveEndpoints,
      simLimits: sim.limits(),
      penaltiesByKind,
      lateRequeued: sumLogged(workers.map(lateRequeuedOf)),
      limitHistory: sim.limitHistory(),
      harvestedDomains,
      truth: sim.graph.groundTruth(seedsForTruth(demo.parsedSeeds)),
      logDir,
    });
    const reportPath = options.reportPath ?? join(logDir, 'report.html');
    writeFileSync(reportPath, renderReport(summary, series, startedAt));
    return { ...summary, reportPath };
  } finally {
    await Promise.all(workers.map((w) => stopWorker(w, 5_000)));
    // bounded: after Ctrl-C the private Redis may be gone, and a quit() to it would never settle
    for (const cleanup of cleanups.reverse()) await withTimeout(cleanup(), 5_000);
  }
}
