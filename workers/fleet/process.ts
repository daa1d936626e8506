/**
 * A worker process, assembled: config, one Chromium, one throttler, one BullMQ worker, and the
 * graceful shutdown. `workers/discovery.ts`, `workers/harvesting.ts` and `sluice worker` all
 * start here.
 *
 * Where each setting comes from (first wins):
 * - config file: the `configPath` option, SLUICE_CONFIG, config/default.yml;
 * - Redis: the `redis` option, REDIS_URL, redis://127.0.0.1:6379;
 * - TikTok base URL: SLUICE_TIKTOK_BASE_URL, the file's `tiktokBaseUrl` (so the same code runs
 *   against tiktok.com or the simulator);
 * - namespace: the `namespace` option, SLUICE_NAMESPACE, the file's `namespace`;
 * - concurrency: the `concurrency` option, SLUICE_CONCURRENCY, the file's `fleet.concurrency`;
 * - SLUICE_THROTTLE=off disables the throttle (the demo's `--no-throttle`, to show what the
 *   throttle prevents). Refused unless the base URL is a simulator on this machine (a loopback
 *   address), and logged as an error at every start when accepted (see {@link throttleSwitch}).
 */
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { createQueues, type SluiceQueues } from '../../jobs/queues.js';
import type { JobKind } from '../../jobs/schemas.js';
import { loadConfigFile, resolveNamespace } from '../config/load.js';
import { InvalidConfigError } from 'sluice';
import { rootLogger, type Logger } from 'sluice';
import { ResultsStore } from '../results/store.js';
import { startWaitReporter } from 'sluice/metrics';
import { createThrottler } from 'sluice';
import { launchBrowser } from './browser.js';
import { createFleetWorker } from './runner.js';
import { penaltyKindOf } from './gate.js';
import { parseFleetSettings, type FleetSettings } from './settings.js';
import { onShutdown } from './shutdown.js';

export interface WorkerProcessOptions {
  kind: JobKind;
  configPath?: string;
  redis?: string;
  namespace?: string;
  concurrency?: number;
  logger?: Logger;
  /** Install SIGTERM/SIGINT handlers that close and exit. Default true. */
  handleSignals?: boolean;
}

export interface RunningWorker {
  name: string;
  namespace: string;
  baseUrl: string;
  settings: FleetSettings;
  /** Lets active jobs finish, then closes the worker, the browser, the throttler and Redis. */
  close(): Promise<void>;
}

/** localhost, 127.0.0.0/8 or ::1: where the demo runs its simulator, never TikTok. */
function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(hostname);
}

/**
 * Whether the throttle is on, from SLUICE_THROTTLE (`on`, the default, or `off`). `off` exists for
 * the demo's `--no-throttle` (what the simulator sees without the throttle); aimed at anything but
 * a simulator on this machine it would send unchecked requests to TikTok, so it is refused.
 */
export function throttleSwitch(value: string | undefined, baseUrl: string): boolean {
  if (value === undefined || value === '' || value === 'on') return true;
  if (value !== 'off') throw new InvalidConfigError(`SLUICE_THROTTLE must be "on" or "off" (received ${JSON.stringify(value)})`);
  if (!isLoopback(new URL(baseUrl).hostname)) {
    throw new InvalidConfigError(
      `SLUICE_THROTTLE=off refused: the TikTok base URL ${baseUrl} is not a simulator on this machine; the throttle can only be switched off against the demo's simulator (sluice demo --no-throttle)`,
    );
  }
  return false;
}

function concurrencyFrom(option: number | undefined, settings: FleetSettings): FleetSettings {
  const raw = option ?? (process.env.SLUICE_CONCURRENCY ? Number(process.env.SLUICE_CONCURRENCY) : undefined);
  if (raw === undefined) return settings;
  return parseFleetSettings({ ...settings, follow: settings.follow, concurrency: raw });
}

/** Starts a worker process's parts; resolves once the worker is fetching jobs. */
export async function startWorkerProcess(options: WorkerProcessOptions): Promise<RunningWorker> {
  const config = loadConfigFile(options.configPath);
  const settings = concurrencyFrom(options.concurrency, config.fleet);
  const namespace = resolveNamespace(config, options.namespace);
  const baseUrl = process.env.SLUICE_TIKTOK_BASE_URL ?? config.tiktokBaseUrl;
  try {
    new URL(baseUrl);
  } catch {
    throw new InvalidConfigError(`SLUICE_TIKTOK_BASE_URL is not a URL (received ${JSON.stringify(baseUrl)})`);
  }
  const redisUrl = options.redis ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const throttle = throttleSwitch(process.env.SLUICE_THROTTLE, baseUrl);
  const name = `${options.kind}-${hostname()}-${process.pid}`;
  const log = (options.logger ?? rootLogger()).child({ component: 'fleet', queue: options.kind, worker: name });

  const throttler = createThrottler({ ...config.throttle, namespace, redis: redisUrl, logger: log });
  // what this process admitted, per endpoint: logged when it stops (the demo sums these)
  const admitted: Record<string, number> = {};
  // and the penalties it sent, by kind (the gate's reasons start with it)
  const penalties: Record<string, number> = {};
  // and the slots it let pass because its callers came too late for them (a starved process)
  const lateRequeued: Record<string, number> = {};
  throttler.onEvent((e) => {
    if (e.type === 'admitted') admitted[e.endpoint] = (admitted[e.endpoint] ?? 0) + 1;
    if (e.type === 'requeued-late') lateRequeued[e.endpoint] = (lateRequeued[e.endpoint] ?? 0) + 1;
    if (e.type === 'penalized') {
      const kind = penaltyKindOf(e.reason) ?? 'other';
      penalties[kind] = (penalties[kind] ?? 0) + 1;
    }
  });
  // fleet-wide wait percentiles for the admin server and `sluice status`
  const waits = startWaitReporter(throttler, { logger: log });
  const browser = await launchBrowser();
  // BullMQ's blocking connection must never give up on a command
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  let queues: SluiceQueues | undefined;
  let store: ResultsStore | undefined;
  // harvesting enqueues too: a followed creator's list goes to the discovery queue
  queues = createQueues({ connection, namespace, priorities: config.throttle.priorities });
  if (options.kind === 'harvesting') store = new ResultsStore(connection, namespace);

  if (!throttle) log.error({ baseUrl }, 'THROTTLE DISABLED (SLUICE_THROTTLE=off): requests go to the simulator unchecked');
  const worker = createFleetWorker({
    kind: options.kind,
    connection,
    namespace,
    browser,
    throttler: throttle ? throttler : null,
    priorities: Object.keys(throttler.config.priorities),
    baseUrl,
    settings,
    ...(queues ? { queues } : {}),
    ...(store ? { store } : {}),
    logger: log,
    name,
  });
  await worker.waitUntilReady();
  log.info({ namespace, baseUrl, concurrency: settings.concurrency, throttle }, 'worker ready');

  let closing: Promise<void> | undefined;
  browser.on('disconnected', () => {
    if (closing) return;
    // without its browser this process can only fail jobs: exit, and let the supervisor restart
    // it; its active jobs are handed on by the stalled-job check
    log.fatal('Chromium disconnected: exiting');
    process.exit(1);
  });
  const close = () =>
    (closing ??= (async () => {
      await worker.close();
      await waits.stop().catch(() => undefined);
      await browser.close().catch(() => undefined);
      await throttler.close().catch(() => undefined);
      await queues?.close().catch(() => undefined);
      await connection.quit().catch(() => connection.disconnect());
      log.info({ admitted, penalties, lateRequeued }, 'worker stopped');
    })());
  if (options.handleSignals ?? true) {
    onShutdown(close, { logger: log });
    // a stray rejection (a page closing under a late callback) must not take the jobs of this
    // process down with it: log it loudly and keep going
    process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled rejection'));
  }
  return { name, namespace, baseUrl, settings, close };
}

/**
 * Entry point of `workers/*.ts`: starts the worker and keeps the process alive until a signal.
 * A failure to start is one line on stderr and exit code 2 (bad config) or 1 (anything else).
 */
export function runWorkerMain(kind: JobKind): void {
  startWorkerProcess({ kind }).catch((err: unknown) => {
    process.stderr.write(`sluice worker ${kind}: ${(err as Error).message ?? String(err)}\n`);
    process.exit(err instanceof InvalidConfigError ? 2 : 1);
  });
}
