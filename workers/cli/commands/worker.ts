/**
 * `sluice worker discovery|harvesting [--concurrency N]`: runs one worker process in the
 * foreground until SIGTERM/SIGINT (active jobs finish first). See workers/fleet/process.ts for where
 * each setting comes from.
 */
import type { JobKind } from '../../../jobs/schemas.js';
import { startWorkerProcess, type RunningWorker } from '../../fleet/process.js';

export interface WorkerCommandOptions {
  /** Jobs at once (one browser context each). Default: the config's `fleet.concurrency` (2). */
  concurrency?: number;
  /** Config file. Default: SLUICE_CONFIG, then config/default.yml. */
  config?: string;
  /** Redis URL. Default: REDIS_URL, then redis://127.0.0.1:6379. */
  redis?: string;
  /** Namespace. Default: SLUICE_NAMESPACE, then the config file's. */
  namespace?: string;
}

/** Starts the worker; it keeps the process alive until a signal. */
export function workerCommand(kind: JobKind, opts: WorkerCommandOptions = {}): Promise<RunningWorker> {
  return startWorkerProcess({
    kind,
    ...(opts.config ? { configPath: opts.config } : {}),
    ...(opts.redis ? { redis: opts.redis } : {}),
    ...(opts.namespace ? { namespace: opts.namespace } : {}),
    ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
  });
}
