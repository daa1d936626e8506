/**
 * The admin server: JSON API, Prometheus metrics and the live dashboard, on one fastify instance.
 *
 * Security: every route needs a bearer token when one is configured (`readToken` may only use the
 * routes declared `read`), except those declared `public`: the dashboard page (it holds no data:
 * it fetches the API with the token the operator gives it), `/healthz`, `/metrics` with
 * `publicMetrics`, and `/api/inngest`. Access is decided from the route fastify matched
 * (`request.routeOptions`), never from the raw URL: the router decodes `/%61pi`, strips the
 * authority of `GET http://x/api`, and a check on the raw string would miss both. A request that
 * matches no route is guarded too, so every spelling the router does not recognise meets the same
 * checks before its 404. Without a token the server refuses any non-loopback host.
 *
 * `/api/inngest` (when an Inngest app is mounted) is unauthenticated: the Inngest server cannot
 * send the bearer token, and signs its requests instead, which the SDK verifies in cloud mode; so
 * on a non-loopback address the app must be in cloud mode (INNGEST_SIGNING_KEY set, INNGEST_DEV
 * unset), and its body limit is small.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifyHelmet from '@fastify/helmet';
import fastifyRateLimit from '@fastify/rate-limit';
import type { Inngest, InngestFunction } from 'inngest';
import { InvalidConfigError } from '../errors/index.js';
import { registerHttpAdminRoutes } from '../http/admin-routes.js';
import type { Cluster, Redis } from 'ioredis';
import type { Throttler } from '../throttler.js';
import { rootLogger, type Logger } from '../logger.js';
import { createMetrics, type SluiceMetrics } from '../metrics/registry.js';
import { readEndpointViews } from '../metrics/endpoint-view.js';
import { queueList, type QueuesInput } from '../metrics/job-queues.js';
import { dashboardHtml, dashboardScriptHashes } from '../dashboard/page.js';
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
  /** Tenants named in `sluice_queue_depth_by_class` per endpoint; the rest are summed. Default 20 (see `MetricsOptions`). */
  maxTenantSeries?: number;
  /**
   * Inngest functions to serve at `/api/inngest` (GET, PUT, POST), e.g. `createHarvestApp()`'s
   * result. Not behind the bearer token (Inngest signs its requests); see the module comment.
   */
  inngest?: { client: Inngest; functions: readonly InngestFunction.Like[] };
  /**
   * The inbound limiter (`sluice/http`) to operate from here: its blocks (`GET /api/http/blocked`,
   * `DELETE /api/http/blocked/:policy/:key`) and quota usage (`GET /api/http/quota/:policy/:key`),
   * behind the same tokens as the rest of `/api`.
   */
  httpLimiter?: { redis: Redis | Cluster; namespace: string };
  /**
   * Largest request body on `/api/inngest`, bytes. Default 256 KiB, Inngest's documented maximum
   * event size on its free plan: the example's calls carry one event and one small step output.
   * Raise it if your functions return large step outputs (Inngest allows 4 MB per step).
   */
  inngestBodyLimit?: number;
  /**
   * Failed authentication (a wrong credential sent; none sent does not count), per client address:
   * after `max` failures within `windowMs`, every guarded request from that address answers 429
   * (correct token or not) until the window ends,
   * so guessing a token costs a window per `max` tries. Default 20 per 60 000 ms (the dashboard
   * spends three per wrong token it polls with). Counted in memory, per server. Behind a reverse
   * proxy every client shares the proxy's address.
   */
  failedAuth?: { max?: number; windowMs?: number };
}

/**
 * Who may use a route, declared where the route is registered (`config: { access }`). A route that
 * declares nothing needs the admin token: forgetting the declaration fails closed.
 * - `public`: no credentials, no browser checks (it holds no data);
 * - `read`: the admin or the read-only token;
 * - `write`: the admin token only.
 */
export type Access = 'public' | 'read' | 'write';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
}

/** Where the Inngest functions are served. */
export const INNGEST_PATH = '/api/inngest';

/** `/api/inngest` has no bearer token: see `inngestBodyLimit`. */
const INNGEST_BODY_LIMIT = 256 * 1024;

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

  const metrics = createMetrics({ throttler, queues, ...(options.maxTenantSeries === undefined ? {} : { maxTenantSeries: options.maxTenantSeries }) });
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

  app.register(fastifyRateLimit, { global: false });
  app.register(fastifyHelmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        // the page's own inline script, by hash: nothing injected into it can run
        scriptSrc: dashboardScriptHashes(),
        // the inline <style> and the bars' style="width:…" attributes
        styleSrc: ["'unsafe-inline'"],
        connectSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        baseUri: ["'none'"],
        formAction: ["'none'"],
        frameAncestors: ["'none'"],
      },
    },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    // the server speaks plain HTTP; HSTS belongs to whatever terminates TLS in front of it
    strictTransportSecurity: false,
  });

  const failedAuth = { max: options.failedAuth?.max ?? 20, windowMs: options.failedAuth?.windowMs ?? 60_000 };
  let failures: ReturnType<FastifyInstance['createRateLimit']> | undefined;
  /** The failed-auth limiter, made on first use: the plugin's decorator exists once the server is ready. */
  const failureLimiter = () =>
    // keyed by the plugin's default: the client address (IPv6 by /64, so rotating addresses in one
    // allocation does not reset the count)
    (failures ??= app.createRateLimit({ max: failedAuth.max, timeWindow: failedAuth.windowMs }));

  const refuse = (reply: FastifyReply, status: number, error: string, message: string) => reply.code(status).send({ error, message });

  app.addHook('onRequest', async (request, reply) => {
    // no route matched (a 404 to come): still guarded, as a read, so that no spelling of a path
    // answers an anonymous caller anything but 401
    const access: Access = request.routeOptions.url === undefined ? 'read' : (request.routeOptions.config.access ?? 'write');
    if (access === 'public') return;
    const attack = browserAttackReason({ host: effectiveHost(request), origin: request.headers.origin }, creds.token !== undefined);
    if (attack) return refuse(reply, 403, 'forbidden', attack);
    if (!creds.token) {
      request.sluiceAuth = { role: 'admin', identity: 'loopback' };
      return;
    }
    const limiter = failureLimiter();
    const before = await limiter(request, { increment: false });
    if (!before.isAllowed && before.remaining === 0) {
      return reply.code(429).header('retry-after', String(before.ttlInSeconds)).send({
        error: 'too_many_failures',
        message: `too many failed authentications from this address: try again in ${before.ttlInSeconds} s`,
      });
    }
    const auth = authenticate(request.headers.authorization, creds);
    if (!auth.ok) {
      // only a credential that was tried counts: a browser's favicon or the dashboard's first,
      // token-less poll guesses nothing
      if (request.headers.authorization !== undefined) {
        const after = await limiter(request);
        if (!after.isAllowed && after.remaining === 0) {
          log.warn({ ip: request.ip, failures: failedAuth.max, windowMs: failedAuth.windowMs }, 'too many failed admin authentications: refusing this address until the window ends');
        }
      }
      reply.header('www-authenticate', 'Bearer realm="sluice"');
      return refuse(reply, 401, 'unauthorized', auth.message);
    }
    if (auth.role !== 'admin' && access !== 'read') return refuse(reply, 403, 'forbidden', 'this token may only read; changes need the admin token');
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

  const open = { config: { access: 'public' as const } };
  app.get('/', open, async (_request, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(dashboardHtml()));
  app.get('/healthz', open, async () => ({ ok: true }));
  app.get('/metrics', { config: { access: options.publicMetrics ? 'public' : 'read' } }, async (_request, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));

  const ctx = {
    throttler,
    history,
    readFleet: () => readFleet(queues, options.results),
    identityOf: (request: FastifyRequest) => request.sluiceAuth?.identity ?? 'unknown',
  };
  registerReadRoutes(app, ctx);
  registerWriteRoutes(app, ctx);
  if (options.httpLimiter) registerHttpAdminRoutes(app, options.httpLimiter);
  if (options.inngest) {
    app.route({
      method: ['GET', 'POST', 'PUT'],
      url: INNGEST_PATH,
      config: { access: 'public' },
      bodyLimit: options.inngestBodyLimit ?? INNGEST_BODY_LIMIT,
      handler: inngestRoute(options.inngest),
    });
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

/**
 * The host the request is addressed to. For an absolute-form target (`GET http://x/api/...`) that
 * is the target's authority, not the Host header (RFC 9112 §3.2.2): the router routes by the
 * target's path, so the rebinding check must judge the target's host.
 */
function effectiveHost(request: FastifyRequest): string | undefined {
  const target = request.raw.url ?? '';
  if (target.startsWith('/')) return request.headers.host;
  try {
    return new URL(target).host;
  } catch {
    return '';
  }
}
