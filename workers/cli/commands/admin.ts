/**
 * `sluice admin`: the admin server (API, /metrics, dashboard) for one namespace (`--namespace`,
 * SLUICE_NAMESPACE or the config file's), until SIGINT/SIGTERM. With `--inngest` it also serves the example Inngest function
 * (harvest one profile, in a Chromium of its own, through the harvesting worker's code path) at
 * `/api/inngest`.
 */
import { Redis } from 'ioredis';
import { loadConfigFile, resolveNamespace } from '../../config/load.js';
import { createThrottler } from 'sluice';
import { rootLogger, type Logger } from 'sluice';
import { createAdminServer } from 'sluice/admin';
import { createQueues } from '../../../jobs/queues.js';
import { ResultsStore } from '../../results/store.js';
import { redactUrl } from './status.js';
import { startInngestHarvester, type InngestHarvester } from '../../fleet/inngest-harvest.js';

export interface AdminCommandOptions {
  /** Port. Default: SLUICE_ADMIN_PORT, then 8787; 0 picks a free one. */
  port?: number;
  /** Address. Default: SLUICE_ADMIN_HOST, then 127.0.0.1. Anything but loopback needs a token. */
  host?: string;
  /** Admin (read-write) bearer token. Default: SLUICE_ADMIN_TOKEN. */
  token?: string;
  /** Read-only bearer token. Default: SLUICE_ADMIN_READ_TOKEN. */
  readToken?: string;
  /** Config file. Default: SLUICE_CONFIG, then config/default.yml. */
  config?: string;
  /** Redis URL. Default: REDIS_URL, then redis://127.0.0.1:6379. */
  redis?: string;
  /** Namespace. Default: SLUICE_NAMESPACE, then the config file's. */
  namespace?: string;
  logger?: Logger;
  /** Stop on SIGINT/SIGTERM. Default true. */
  handleSignals?: boolean;
  /** Serve the example Inngest harvest function at /api/inngest (launches Chromium). Default false. */
  inngest?: boolean;
}

export interface RunningAdmin {
  /** Base URL, e.g. http://127.0.0.1:8787. */
  url: string;
  /** Stops the server and closes every connection it opened. */
  close(): Promise<void>;
}

/** Starts the admin server for the config file's namespace; resolves once it listens. */
export async function adminCommand(opts: AdminCommandOptions = {}): Promise<RunningAdmin> {
  const file = loadConfigFile(opts.config);
  const namespace = resolveNamespace(file, opts.namespace);
  const root = opts.logger ?? rootLogger();
  const log = root.child({ component: 'admin-cli', namespace });
  const url = opts.redis ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const envPort = process.env.SLUICE_ADMIN_PORT;
  const port = opts.port ?? (envPort ? Number(envPort) : 8787);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`admin port must be an integer 0-65535, received ${String(opts.port ?? envPort)}`);

  const throttler = createThrottler({ ...file.throttle, namespace, redis: url, logger: root });
  // BullMQ wants its own connection that retries forever (a Queue's commands must not give up mid-outage)
  const queueConn = new Redis(url, { maxRetriesPerRequest: null });
  queueConn.on('error', (err) => log.warn({ err: err.message }, 'queue connection error'));
  const queues = createQueues({ connection: queueConn, namespace });
  const results = new ResultsStore(throttler.redis, namespace);

  let admin: ReturnType<typeof createAdminServer> | undefined;
  let harvester: InngestHarvester | undefined;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      await admin?.close();
      await harvester?.close();
      await queues.close().catch(() => undefined);
      await throttler.close();
      await queueConn.quit().catch(() => queueConn.disconnect());
    })());
  const onSignal = () => void close().then(() => log.info('admin server stopped'));

  let base: string;
  try {
    if (opts.inngest) {
      const baseUrl = process.env.SLUICE_TIKTOK_BASE_URL ?? file.tiktokBaseUrl;
      harvester = await startInngestHarvester({ throttler, store: results, baseUrl, settings: file.fleet, logger: root });
    }
    admin = createAdminServer({
      ...(harvester ? { inngest: harvester.app } : {}),
      throttler,
      queues,
      results,
      token: opts.token ?? process.env.SLUICE_ADMIN_TOKEN,
      readToken: opts.readToken ?? process.env.SLUICE_ADMIN_READ_TOKEN,
      host: opts.host ?? process.env.SLUICE_ADMIN_HOST ?? '127.0.0.1',
      port,
      logger: root,
    });
    base = await admin.start();
  } catch (err) {
    // a refused binding or a busy port: leave no connection open behind the error
    await close();
    throw err;
  }
  log.info({ url: base, redis: redactUrl(url), config: file.path, endpoints: throttler.endpoints.length }, `admin server: dashboard at ${base}/ , metrics at ${base}/metrics`);
  if (opts.handleSignals !== false) process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  return { url: base, close };
}
