/**
 * The admin server: JSON API, Prometheus metrics and the live dashboard, on one fastify instance.
 *
 * Security: every `/api` route and `/metrics` needs a bearer token when one is configured
 * (`readToken` may only read); without a token the server refuses any non-loopback host. The
 * dashboard page itself holds no data (it fetches the API with the token the operator gives it),
 * so it is served without credentials. `/api/inngest` (when an Inngest app is mounted) is the one
 * `/api` path without the bearer token: the Inngest server cannot send it, and signs its requests
 * instead, which the SDK verifies in cloud mode; so on a non-loopback address the app must be in
 * cloud mode (INNGEST_SIGNING_KEY set, INNGEST_DEV unset).
 */
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Inngest, InngestFunction } from 'inngest';
import { InvalidConfigError } from '../errors/index.js';
import type { Throttler } from '../throttler.js';
import { rootLogger, type Logger } from '../logger.js';
import { createMetrics, type SluiceMetrics } from '../metrics/registry.js';
import { readEndpointViews } from '../metrics/endpoint-view.js';
import { queueList, type QueuesInput } from '../metrics/job-queues.js';
import { dashboardHtml } from '../dashboard/page.js';
import { assertSafeBinding, authenticate, browserAttackReason, isLoopback, type Role } from './auth.js';
import { toErrorReply } from './errors.js';
import { readFleet, type ResultsCounter } from './fleet.js';
import { History } from './history.js';
import { registerReadRoutes, registerWriteRoutes } from './routes.js';

export interface AdminServerOptions {
  throttler: Throttler;
  /** BullMQ queues for the fleet view and job metrics: a list, or `createQueues()`'s result. */
  queues?: QueuesInput;
  /** Harvest results, for the fleet view's profile and domain counts. */
  results?: ResultsCounter;
  /** Bearer token for full access. Without it the server is unauthenticated and loopback-only. */
  token?: string;
  /** Bearer token for read-only access (GET routes, /metrics); changes answer 403. */
  readToken?: string;
  /** Address to listen on. Default 127.0.0.1. */
  host?: string;
  /** Port. Default 8787; 0 picks a free one. */
  port?: number;
  /** Parent logger; the server logs through a child `{ component: 'admin' }`. */
  logger?: Logger;
  /** Largest request body, bytes. Default 16 KiB: every request is a small JSON object. */
  bodyLimit?: number;
  /** Dashboard history: sample interval. Default 2 000 ms. */
  historyIntervalMs?: number;
  /** Dashboard history: span kept in memory. Default 15 min. */
  historySpanMs?: number;
  /** Serve /metrics without credentials (when Prometheus cannot send a bearer token). Default false. */
  publicMetrics?: boolean;
  /**
   * Inngest functions to serve at `/api/inngest` (GET, PUT, POST), e.g. `createHarvestApp()`'s
   * result. Not behind the bearer token (Inngest signs its requests); see the module comment.
   */
  inngest?: { client: Inngest; functions: readonly InngestFunction.Like[] };
}

/** Where the Inngest functions are served. */
export const INNGEST_PATH = '/api/inngest';

/** Inngest's calls carry the run's state (event, step outputs): larger than the API's small bodies. */
const INNGEST_BODY_LIMIT = 4 * 1024 * 1024;

/** The fastify instance, plus the pieces the CLI and tests use. `close()` also stops the sampler. */
export type AdminServer = FastifyInstance & {
  /** Listens on host:port and resolves the base URL. */
  start(): Promise<string>;
  /** Takes one history sample now (the server also samples on its own once ready). */
  sample(): Promise<void>;
  readonly history: History;
  readonly metrics: SluiceMetrics;
};

declare module 'fastify' {
  interface FastifyRequest {
    sluiceAuth?: { role: Role; identity: string };
  }
}

/**
 * The Inngest serve handler, loaded on first use: `inngest` is an optional peer dependency, needed
 * only by servers that mount functions.
 */
function inngestRoute(inngest: NonNullable<AdminServerOptions['inngest']>) {
  type Handler = (request: FastifyRequest, reply: FastifyReply) => unknown;
  let handler: Handler | undefined;
  return async (request: FastifyRequest, reply: FastifyReply) => {
    handler ??= (await import('inngest/fastify')).serve({ client: inngest.client, functions: inngest.functions, servePath: INNGEST_PATH }) as unknown as Handler;
    return handler(request, reply);
  };
}

/** Creates the admin server (not listening yet: call `start()`, or use `inject()` in tests). */
export function createAdminServer(options: AdminServerOptions): AdminServer {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 8787;
  const creds = { token: options.token || undefined, readToken: options.readToken || undefined };
  assertSafeBinding(host, creds);
  if (options.inngest && options.inngest.client.mode === 'dev' && !isLoopback(host)) {
    throw new InvalidConfigError(
      `the Inngest app is in dev mode (no request signatures checked), so ${INNGEST_PATH} may only listen on loopback, not ${host}: ` +
        'set INNGEST_SIGNING_KEY (and unset INNGEST_DEV) for cloud mode, or bind 127.0.0.1',
    );
  }
  const log = (options.logger ?? rootLogger()).child({ component: 'admin' });
  const queues = queueList(options.queues);
  const throttler = options.throttler;

  const app = Fastify({
    loggerInstance: log,
    // the dashboard polls every 2 s: fastify's per-request info lines would drown the log; see onResponse
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit ?? 16 * 1024,
  }) as unknown as FastifyInstance;

  const metrics = createMetrics({ throttler, queues });
  const history = new History(options.historyIntervalMs, options.historySpanMs);
  let sampling: Promise<void> | undefined;
  let failing = false;
  const sample = async () => {
    // one sample at a time: a slow Redis must not pile up reads
    sampling ??= readEndpointViews(throttler)
      .then((views) => {
        history.record(views);
        if (failing) log.info('history sampling recovered');
        failing = false;
      })
      .finally(() => (sampling = undefined));
    return sampling;
  };
  const sampleInBackground = () =>
    sample().catch((err: unknown) => {
      // once per outage, not every 2 s
      if (!failing) log.warn({ err }, 'history sample failed');
      failing = true;
    });
  let timer: NodeJS.Timeout | undefined;
  app.addHook('onReady', async () => {
    await sampleInBackground();
    timer = setInterval(() => void sampleInBackground(), history.intervalMs);
    timer.unref();
  });
  app.addHook('onClose', async () => {
    clearInterval(timer);
    metrics.close();
  });

  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0]!;
    const inngest = options.inngest !== undefined && path === INNGEST_PATH;
    const guarded = !inngest && (path.startsWith('/api/') || path === '/api' || (path === '/metrics' && !options.publicMetrics));
    if (!guarded) return;
    const attack = browserAttackReason({ host: request.headers.host, origin: request.headers.origin }, creds.token !== undefined);
    if (attack) return reply.code(403).send({ error: 'forbidden', message: attack });
    const auth = authenticate(request.headers.authorization, creds);
    if (!auth.ok) {
      return reply.code(401).header('www-authenticate', 'Bearer realm="sluice"').send({ error: 'unauthorized', message: auth.message });
    }
    if (auth.role !== 'admin' && request.method !== 'GET' && request.method !== 'HEAD') {
      return reply.code(403).send({ error: 'forbidden', message: 'this token may only read; changes need the admin token' });
    }
    request.sluiceAuth = { role: auth.role, identity: auth.identity };
  });

  app.addHook('onResponse', async (request, reply) => {
    const entry = { method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime), identity: request.sluiceAuth?.identity };
    if (request.method === 'GET' && reply.statusCode < 400) log.debug(entry, 'request');
    else log.info(entry, 'request');
  });

  app.setErrorHandler((err, request, reply) => {
    const { status, body } = toErrorReply(err);
    if (status >= 500) log.error({ err, url: request.url }, 'admin request failed');
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` }));

  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(dashboardHtml()));
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/metrics', async (_request, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));

  const ctx = {
    throttler,
    history,
    readFleet: () => readFleet(queues, options.results),
    identityOf: (request: FastifyRequest) => request.sluiceAuth?.identity ?? 'unknown',
  };
  registerReadRoutes(app, ctx);
  registerWriteRoutes(app, ctx);
  if (options.inngest) {
    app.route({ method: ['GET', 'POST', 'PUT'], url: INNGEST_PATH, bodyLimit: INNGEST_BODY_LIMIT, handler: inngestRoute(options.inngest) });
    log.info({ path: INNGEST_PATH, mode: options.inngest.client.mode, functions: options.inngest.functions.length }, 'serving Inngest functions');
  }

  if (!creds.token) log.warn({ host }, 'admin API is unauthenticated (no token): listening on loopback only');

  return Object.assign(app, {
    async start() {
      await app.listen({ host, port });
      const address = app.server.address();
      const bound = typeof address === 'object' && address ? address.port : port;
      const shownHost = host.includes(':') ? `[${host}]` : host;
      return `http://${shownHost}:${bound}`;
    },
    sample,
    history,
    metrics,
  });
}
