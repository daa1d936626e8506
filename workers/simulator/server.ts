/**
 * The simulator's HTTP server: routes a request, counts it, applies the hidden limit of its
 * endpoint key, and answers with TikTok-shaped data or a refusal.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { json, type SimResponse } from './api.js';
import { createGraph, type GraphOptions, type SimGraph } from './graph.js';
import { HiddenLimits, type Limits, type LimitsUpdate, type SimKey } from './limits.js';
import { homePage } from './pages.js';
import type { ApiRefusal, PageRefusal } from './refusals.js';
import { refusal } from './refusals.js';
import { route } from './routes.js';
import { pageIdentity, StatsRecorder, type SimStats } from './stats.js';

export interface RefusalOptions {
  /** Answer to API calls past a limit. Default `http429` (with Retry-After). */
  api?: ApiRefusal;
  /** Answer to page navigations past a limit. Default `captcha`. */
  page?: PageRefusal;
}

export interface SimulatorOptions {
  /** A built graph, or options to build one. Default: `{ seed: 'sluice' }`. */
  graph?: SimGraph | GraphOptions;
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port; 0 picks a free one. Default 0. */
  port?: number;
  /** Hidden per-key token-bucket limits. Keys left out are unlimited. Default: none. */
  limits?: Limits;
  /** Scales every hidden limit (rate and burst). Default 1. */
  limitFactor?: number;
  /** How refusals look. Default: 429 for API calls, captcha page for navigations. */
  refusals?: RefusalOptions;
  /** Render the inline API fetch on pages. Default true. */
  pageScripts?: boolean;
  /** Monotonic ms clock for the buckets; injectable for tests. Default `performance.now`. */
  clock?: () => number;
  /**
   * Hidden limits that move during the run: at each step's `atMs` after start the limit factor
   * becomes `limitFactor` (tokens carry over, capped at the new burst), as TikTok tightens and
   * relaxes without telling anyone. Default none.
   */
  limitSchedule?: LimitStep[];
}

/** One change of the hidden limits during a run. */
export interface LimitStep {
  /** When, in ms after the simulator started. */
  atMs: number;
  /** The new scale of every hidden limit. */
  limitFactor: number;
}

/** A hidden limit in force over a span of the run, for reports. */
export interface LimitPeriod {
  /** Epoch ms from which this factor applies. */
  from: number;
  limitFactor: number;
}

export interface Simulator {
  /** `http://127.0.0.1:{port}`, no trailing slash. */
  readonly url: string;
  readonly port: number;
  readonly graph: SimGraph;
  /** Counters since start or the last reset. Same as `GET /__sim/stats`. */
  stats(): SimStats;
  /** Zeroes the counters. Same as `POST /__sim/reset`. */
  resetStats(): void;
  /** Changes hidden limits at runtime. Same as `POST /__sim/limits` with the update as JSON. */
  setLimits(update: LimitsUpdate): void;
  /** The limits in force (after limitFactor). For tests and humans; never served to clients. */
  limits(): Limits;
  /** Changes how refusals look. */
  setRefusals(refusals: RefusalOptions): void;
  /** The limit factor over time: the start's, then one entry per change (schedule or setLimits). */
  limitHistory(): LimitPeriod[];
  /**
   * The next `count` requests to `key` answer a server error (`status`, default 503) instead of
   * data, as TikTok's edge sometimes does; they take no token. For tests of retries.
   */
  failNext(key: SimKey, count: number, status?: number): void;
  close(): Promise<void>;
}

function isGraph(value: SimGraph | GraphOptions): value is SimGraph {
  return typeof (value as SimGraph).groundTruth === 'function';
}

function send(res: ServerResponse, response: SimResponse, head: boolean): void {
  res.writeHead(response.status, { ...response.headers, 'cache-control': 'no-store' });
  res.end(head ? undefined : response.body);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Starts a simulator.
 *
 * @example
 * const sim = await startSimulator({ graph: { seed: 1, creators: 30 }, limits: { hashtag: { ratePerSec: 2, burst: 5 } } });
 * const truth = sim.graph.groundTruth({ hashtags: ['fyp'] });
 * // ... crawl sim.url ...
 * expect(sim.stats().violations).toBe(0);
 * await sim.close();
 */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const graphOpt = options.graph ?? { seed: 'sluice' };
  const graph = isGraph(graphOpt) ? graphOpt : createGraph(graphOpt);
  const limits = new HiddenLimits(options.limits ?? {}, options.limitFactor ?? 1, options.clock);
  const stats = new StatsRecorder();
  let refusals: Required<RefusalOptions> = { api: 'http429', page: 'captcha', ...options.refusals };
  let origin = '';
  let requestSerial = 0;
  const faults = new Map<SimKey, { count: number; status: number }>();
  const history: LimitPeriod[] = [{ from: Date.now(), limitFactor: limits.limitFactor }];
  const setLimits = (update: LimitsUpdate): void => {
    limits.set(update);
    if (update.limitFactor !== undefined) history.push({ from: Date.now(), limitFactor: limits.limitFactor });
  };
  for (const step of options.limitSchedule ?? []) {
    if (!(Number.isFinite(step.atMs) && step.atMs >= 0 && Number.isFinite(step.limitFactor) && step.limitFactor > 0)) {
      throw new RangeError(`limit schedule step ${JSON.stringify(step)}: atMs must be >= 0 and limitFactor > 0`);
    }
  }
  const timers = (options.limitSchedule ?? []).map((step) => {
    const timer = setTimeout(() => setLimits({ limitFactor: step.limitFactor }), step.atMs);
    timer.unref();
    return timer;
  });

  const control = async (req: IncomingMessage, path: string): Promise<SimResponse> => {
    if (path === '/__sim/stats') return json(stats.snapshot() as unknown as Record<string, unknown>);
    if (path === '/__sim/reset') {
      stats.reset();
      return json({ ok: true });
    }
    if (path === '/__sim/limits' && req.method === 'POST') {
      try {
        setLimits(JSON.parse(await readBody(req)) as LimitsUpdate);
        return json({ ok: true });
      } catch (err) {
        return json({ ok: false, error: String(err) }, 400);
      }
    }
    return json({ ok: false, error: 'unknown control endpoint' }, 404);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', origin);
    const head = req.method === 'HEAD';
    if (url.pathname.startsWith('/__sim/')) return send(res, await control(req, url.pathname), head);

    const found = route(url.pathname);
    stats.request(found?.key, found?.kind ?? 'page');
    if (!found) {
      const response = url.pathname === '/' ? homePage({ graph, origin, scripts: false }) : json({ statusCode: 404, statusMsg: 'not found' }, 404);
      return send(res, response, head);
    }
    if (req.method !== 'GET' && !head) return send(res, json({ statusCode: 405, statusMsg: 'method not allowed' }, 405), head);

    const fault = faults.get(found.key);
    if (fault && fault.count > 0) {
      fault.count -= 1;
      stats.serverError(found.key);
      return send(res, found.kind === 'api' ? json({ statusCode: fault.status, statusMsg: 'server error' }, fault.status) : { status: fault.status, headers: { 'content-type': 'text/html; charset=utf-8' }, body: '<html><body>Service Unavailable</body></html>' }, head);
    }
    const verdict = limits.take(found.key);
    stats.tokens(found.key, verdict.tokens);
    if (!verdict.allowed) {
      const kind = found.kind === 'api' ? refusals.api : refusals.page;
      stats.violation(found.key, kind);
      return send(res, refusal(kind, verdict.retryAfterMs), head);
    }
    requestSerial += 1;
    const nowMs = Date.now();
    const response = found.handle({
      page: { graph, origin, scripts: options.pageScripts ?? true },
      api: { graph, nowMs, logid: `${nowMs}${String(requestSerial).padStart(6, '0')}` },
      query: url.searchParams,
    });
    stats.served(found.key, pageIdentity(url));
    send(res, response, head);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, json({ statusCode: 500, statusMsg: String(err) }, 500), false);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  origin = `http://${host}:${address.port}`;

  return {
    url: origin,
    port: address.port,
    graph,
    stats: () => stats.snapshot(),
    resetStats: () => stats.reset(),
    setLimits,
    limitHistory: () => history.map((p) => ({ ...p })),
    limits: () => limits.effective(),
    setRefusals: (next) => {
      refusals = { ...refusals, ...next };
    },
    failNext: (key, count, status = 503) => {
      if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a whole number >= 0, got ${count}`);
      faults.set(key, { count, status });
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const timer of timers) clearTimeout(timer);
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
