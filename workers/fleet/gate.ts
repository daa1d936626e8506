/**
 * The one place where a browser's requests to TikTok meet the throttle.
 *
 * A gate is installed on a Playwright BrowserContext (one context per job) with
 * `context.route(...)` for every URL. Every request a page makes to TikTok, navigations and the
 * API calls of the page's own scripts alike, goes through:
 *
 * 1. `endpointForUrl(url)`: which throttle endpoint it belongs to;
 * 2. `throttler.acquire(endpoint, { priority, tenant, maxWaitMs, signal })` with the job's class;
 * 3. the request itself (`route.fetch`), then `classifyResponse` on what came back;
 * 4. on a refusal (429, captcha, WAF, empty body or list, block status, a burst of 5xx):
 *    `throttler.penalize(endpoint, { retryAfterMs, reason })`, which pauses that endpoint for the
 *    whole fleet (and cuts its adaptive rate), and the job is marked for deferral; the reason
 *    starts with the {@link PenaltyKind};
 * 5. `route.fulfill` with the response, so the page sees exactly what TikTok sent.
 *
 * Decisions:
 * - "TikTok" is every host of the base URL's registrable domain (see {@link tiktokHosts}).
 * - Requests to TikTok that map to no endpoint (the simulator's `/`, favicon, captcha
 *   images; on tiktok.com the feed, comments, analytics...) are ABORTED, not passed through: the
 *   extraction never needs them, and an unthrottled request to TikTok is exactly what this layer
 *   exists to prevent.
 * - Requests anywhere else are ABORTED and logged (the first per origin at warn, the rest at
 *   debug), except to the configured asset hosts (`fleet.assetHosts`: TikTok's static CDNs, https
 *   only), which pass unthrottled. A page from the internet (or a hostile redirect) thus cannot
 *   make the worker's browser reach loopback, the private network or cloud metadata: an IP literal
 *   or `localhost` other than the base URL's own origin (the simulator's, in the demo) never
 *   matches. WebSockets are closed: the extraction reads no live stream.
 * - Once a job is marked for deferral, every further request of its context is aborted without
 *   taking a token: the job is going back to the queue, what it would fetch now is wasted.
 * - When the job ends, the gate aborts its pending acquires (the throttler refunds them): a page's
 *   own API call that the job did not need costs nothing if it had not been admitted yet.
 * - A context serves job after job (see ContextPool): its one route sends each request to the gate
 *   of the job using it, and aborts those that come between two jobs.
 * - Redirects are not followed by `route.fetch` (`maxRedirects: 0`): the browser follows them,
 *   so each hop is a request of its own that goes through the gate again.
 * - Chromium's favicon request escapes interception; pages get an empty icon so it is never
 *   made (see {@link withoutFavicon}).
 */
import type { BrowserContext, Route } from 'playwright';
import { getDomain } from 'tldts';
import {
  AbortError,
  deferralOf,
  jobDelayMs,
  JobDeferredError,
  ThrottlerClosedError,
  type AcquireOptions,
  type Admission,
  type Logger,
  type Throttler,
} from 'sluice';
import { classifyResponse, endpointForUrl, type Classification, type TikTokEndpoint } from '../tiktok/index.js';

/** Response kinds that mean "slow down": the endpoint is penalized fleet-wide. */
export const PUSHBACK_KINDS: ReadonlySet<Classification['kind']> = new Set(['rate-limited', 'captcha', 'empty', 'waf']);

/**
 * Why the gate penalized an endpoint: a pushback kind, or `server-error` for a burst of 5xx
 * (one 5xx is retried; several in a row on one endpoint is TikTok's edge shedding load). The
 * penalty's reason is `"<kind> (<detail>)"`, so counters can be kept by kind.
 */
export type PenaltyKind = 'rate-limited' | 'captcha' | 'empty' | 'waf' | 'server-error';
export const PENALTY_KINDS: readonly PenaltyKind[] = ['rate-limited', 'captcha', 'empty', 'waf', 'server-error'];

/** The kind a penalty reason written by the gate starts with; undefined for other reasons. */
export function penaltyKindOf(reason: string | undefined): PenaltyKind | undefined {
  const kind = reason?.split(' ', 1)[0];
  return PENALTY_KINDS.find((k) => k === kind);
}

/**
 * 5xx answers per endpoint over a sliding window, shared by every gate of a process: `burst` of
 * them within `windowMs` on one endpoint is one `server-error` penalty, then the count starts over.
 */
export class ServerErrorWatch {
  private readonly seen = new Map<string, number[]>();

  constructor(
    /** 5xx answers that make a burst. Default 3. */
    readonly burst = 3,
    /** Window they must fall in. Default 10 s. */
    readonly windowMs = 10_000,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Notes one 5xx; true when it completes a burst (the count starts over). */
  record(endpoint: string): boolean {
    const now = this.clock();
    const recent = (this.seen.get(endpoint) ?? []).filter((t) => now - t < this.windowMs);
    recent.push(now);
    if (recent.length >= this.burst) {
      this.seen.delete(endpoint);
      return true;
    }
    this.seen.set(endpoint, recent);
    return false;
  }
}

/**
 * One penalty per endpoint per pause from this process. The 429s that the jobs of one worker meet
 * together (they were admitted together) are one signal: the throttle keeps the latest pause end
 * whatever the count, but each call is a Redis round trip and a count in the endpoint's penalty
 * counter. Another call within the pause this process already asked for is dropped.
 */
export function coalescePenalties(throttler: GateThrottler, clock: () => number = Date.now): GateThrottler {
  const until = new Map<string, number>();
  return {
    acquire: throttler.acquire.bind(throttler),
    penalize: async (endpoint, options) => {
      const now = clock();
      const pausedTill = until.get(endpoint) ?? 0;
      if (pausedTill > now) return { pausedUntil: pausedTill };
      until.set(endpoint, now + Math.ceil(options.retryAfterMs));
      return throttler.penalize(endpoint, options);
    },
  };
}

/** What the gate serves itself on a navigation that must not reach TikTok: a blank page of TikTok's origin. */
const BLANK_PAGE = '<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body></body></html>';

/** One request that went to TikTok and what came back. */
export interface Exchange {
  url: string;
  endpoint: TikTokEndpoint;
  /** Playwright's resource type: `document` for navigations, `fetch`/`xhr` for API calls. */
  resourceType: string;
  status: number;
  body: string;
  /** The response's content type, for a later request answered with this exchange (see share). */
  contentType?: string | undefined;
  classification: Classification;
}

/**
 * What the gate needs of a throttler: a token per request (resolving when it may be sent, with the
 * admission when one was taken now, undefined for a token paid for beforehand), and a fleet-wide
 * pause on a pushback.
 */
export interface GateThrottler {
  acquire(endpoint: string, options?: AcquireOptions): Promise<Admission | undefined>;
  penalize: Throttler['penalize'];
}

export interface GateOptions {
  /** The fleet's throttler; `null` disables the throttle (demo `--no-throttle` only: requests go out unchecked). */
  throttler: GateThrottler | null;
  /** TikTok's base URL (or the simulator's): requests to its origin are gated. */
  baseUrl: string;
  /** The job's priority class. */
  priority: string;
  /** The job's tenant. */
  tenant: string;
  /** Longest wait for a token; beyond it the job is deferred (the throttler refuses up front). */
  maxWaitMs: number;
  /** Pause used when a refusal carries no Retry-After. */
  defaultPenaltyMs: number;
  /** Timeout of one HTTP exchange once admitted. */
  requestTimeoutMs: number;
  logger?: Logger;
  /** Called for every completed exchange (observers, tests). */
  onExchange?: (exchange: Exchange) => void;
  /**
   * Hosts outside TikTok's web app that pages may load from, unthrottled (TikTok's static CDNs):
   * registrable domains, each also admitting its subdomains, https only. Every other request
   * outside TikTok is aborted and logged. Default: none.
   */
  assetHosts?: readonly string[];
  /** 5xx answers of the whole process; without it each 5xx is only retried, never penalized. */
  serverErrors?: ServerErrorWatch;
}

/** Counts of what one gate did, for logs and tests. */
export interface GateCounters {
  /** Requests that got a token (or went out unchecked with the throttle disabled). */
  admitted: number;
  /** Requests actually sent to TikTok. */
  sent: number;
  /** Requests aborted because they map to no endpoint. */
  unmapped: number;
  /** Requests aborted because the throttle refused them or the job was already deferred. */
  refused: number;
  /** Refusals from TikTok that penalized the endpoint. */
  pushbacks: number;
  /** Requests (and WebSockets) outside TikTok and the asset hosts, aborted. */
  offsite: number;
  /** Navigations the gate answered itself with a blank page (see {@link RequestGate.serveBlank}). */
  blank: number;
}

interface Tracked {
  url: string;
  resourceType: string;
  done: Promise<Exchange | undefined>;
}

/**
 * Which requests are TikTok's: the base URL's origin, and for a named site every host of its
 * registrable domain (`www.tiktok.com` → `*.tiktok.com`: TikTok also serves API calls from
 * `m.`, `us.`, `webcast.` hosts). CDN domains (tiktokcdn.com, ...) are not TikTok's rate-limited
 * web endpoints and are left alone. An IP or `localhost` base (the simulator) is matched by origin.
 */
export function tiktokHosts(baseUrl: string): (url: URL) => boolean {
  const base = new URL(baseUrl);
  const domain = getDomain(base.hostname);
  if (!domain) return (url) => url.origin === base.origin;
  return (url) => (url.protocol === 'https:' || url.protocol === 'http:') && (url.hostname === domain || url.hostname.endsWith(`.${domain}`));
}

/** Which requests go to an asset host: https, the host or a subdomain of one of `domains`. */
export function assetHostsMatcher(domains: readonly string[]): (url: URL) => boolean {
  const list = domains.map((d) => d.toLowerCase());
  return (url) => url.protocol === 'https:' && list.some((d) => url.hostname === d || url.hostname.endsWith(`.${d}`));
}

/**
 * Chromium fetches `/favicon.ico` from the browser process, outside Playwright's request
 * interception (measured: it reaches the server without passing the route), so a page that
 * declares no icon would send one unthrottled request to TikTok. An empty `data:` icon declared
 * in the page (the browser sees it, the extraction never reads it) stops that request.
 */
export function withoutFavicon(html: string): string {
  const icon = '<link rel="icon" href="data:,">';
  const head = /<head\b[^>]*>/i.exec(html);
  return head ? `${html.slice(0, head.index + head[0].length)}${icon}${html.slice(head.index + head[0].length)}` : `${icon}${html}`;
}

/** Headers the body we pass on no longer matches (it is already decoded and measured anew). */
const DROP_HEADERS = new Set(['content-encoding', 'content-length', 'transfer-encoding']);

/** Which gate a context's requests go to: the current job's, or none between jobs. */
interface Router {
  gate?: RequestGate;
}
const routers = new WeakMap<BrowserContext, Promise<Router>>();

/** Gates one BrowserContext for one job. Create with {@link RequestGate.attach}. */
export class RequestGate {
  readonly counters: GateCounters = { admitted: 0, sent: 0, unmapped: 0, refused: 0, pushbacks: 0, offsite: 0, blank: 0 };
  /** Exchanges completed so far, in the order they finished. */
  readonly exchanges: Exchange[] = [];
  private readonly tracked: Tracked[] = [];
  private readonly shared: ((url: URL) => boolean)[] = [];
  /** Origins of the TikTok requests this job made: the pool clears their storage before the next job. */
  private readonly seenOrigins = new Set<string>();
  private router: Router | undefined;
  private readonly blank = new Set<string>();
  private readonly abort = new AbortController();
  private readonly isTikTok: (url: URL) => boolean;
  private readonly isAsset: (url: URL) => boolean;
  /** Origins already logged at warn by this gate: a page full of trackers logs each once. */
  private readonly offsiteLogged = new Set<string>();
  private stop: Error | undefined;

  private constructor(private readonly options: GateOptions) {
    this.isTikTok = tiktokHosts(options.baseUrl);
    this.isAsset = assetHostsMatcher(options.assetHosts ?? []);
  }

  /** Installs a gate on `context`: from now on, until {@link close}, every request of its pages goes through it. */
  static async attach(context: BrowserContext, options: GateOptions): Promise<RequestGate> {
    const gate = new RequestGate(options);
    gate.router = await RequestGate.routerOf(context);
    gate.router.gate = gate;
    return gate;
  }

  /**
   * The context's route, installed once for its life: a route added per job and removed after it
   * would leave a moment with none, in which a late request of the last job's page would reach
   * TikTok unthrottled.
   */
  private static routerOf(context: BrowserContext): Promise<Router> {
    let router = routers.get(context);
    if (!router) {
      const holder: Router = {};
      router = (async () => {
        await context.route(
          () => true,
          (route) => (holder.gate ? holder.gate.route(route) : route.abort('blockedbyclient').catch(() => undefined)),
        );
        await context.routeWebSocket(
          () => true,
          (ws) => {
            holder.gate?.offsite(ws.url(), 'websocket');
            void ws.close({ code: 1008, reason: 'blocked by the fleet' }).catch(() => undefined);
          },
        );
        return holder;
      })();
      routers.set(context, router);
    }
    return router;
  }

  /** Origins of the TikTok requests the job made (to clear their storage before the context's next job). */
  origins(): string[] {
    return [...this.seenOrigins];
  }

  /** Why the job must stop (a deferral, or a failure such as Redis being unreachable), if it must. */
  get stopReason(): Error | undefined {
    return this.stop;
  }

  /** Throws the reason the job must stop, if there is one. Call after every page operation. */
  check(): void {
    if (this.stop) throw this.stop;
  }

  /**
   * The first request (sent or still waiting for its token) whose URL matches, e.g. the API call
   * a page's own script made. Resolves to its exchange, or undefined if it never completed.
   */
  find(match: (url: URL) => boolean): Promise<Exchange | undefined> | undefined {
    return this.tracked.find((t) => match(new URL(t.url)))?.done;
  }

  /**
   * Requests matching `match` share one exchange from now on: one that comes after another is
   * answered with the earlier one's response (when that was ok), without a token or a second
   * request. A page's own API call can reach the gate after the job stopped waiting for it and
   * asked for the same page itself; either order, TikTok sees the page once.
   */
  share(match: (url: URL) => boolean): void {
    this.shared.push(match);
  }

  /**
   * The next navigation to `url` gets a blank page of TikTok's origin from the gate itself, with
   * no token and no request: a resumed job needs the origin (its API calls are made from inside
   * a page of it) but not the page it already read.
   */
  serveBlank(url: string): void {
    this.blank.add(new URL(url).href);
  }

  /**
   * Aborts the acquires still waiting (the throttler gives their places back) and lets go of the
   * context: its requests from now on are aborted until the next job's gate is attached.
   */
  close(): void {
    this.abort.abort(new AbortError('job finished: request no longer needed'));
    if (this.router?.gate === this) delete this.router.gate;
  }

  private halt(reason: Error): void {
    // the first reason wins: a later one is usually a consequence of it
    this.stop ??= reason;
  }

  private route(route: Route): Promise<void> {
    let url: URL;
    try {
      url = new URL(route.request().url());
    } catch {
      url = new URL('invalid:');
    }
    if (this.isTikTok(url)) return this.handle(route);
    if (this.isAsset(url)) return route.continue().catch(() => undefined);
    this.offsite(route.request().url(), route.request().resourceType());
    return route.abort('blockedbyclient').catch(() => undefined);
  }

  /** Counts and logs a request outside TikTok and the asset hosts (the caller aborts it). */
  private offsite(url: string, resourceType: string): void {
    this.counters.offsite += 1;
    let origin: string;
    try {
      origin = new URL(url).origin;
    } catch {
      origin = url.slice(0, 100);
    }
    const first = !this.offsiteLogged.has(origin);
    this.offsiteLogged.add(origin);
    const log = this.options.logger;
    const fields = { url: url.slice(0, 300), resourceType };
    if (first) log?.warn(fields, 'request outside TikTok aborted');
    else log?.debug(fields, 'request outside TikTok aborted');
  }

  private handle(route: Route): Promise<void> {
    const request = route.request();
    const url = request.url();
    this.seenOrigins.add(new URL(url).origin);
    const tracked: Tracked = { url, resourceType: request.resourceType(), done: Promise.resolve(undefined) };
    const earlier = this.sharedExchange(url);
    tracked.done = (earlier ? this.reuse(route, earlier, url, tracked.resourceType) : this.pass(route, url, tracked.resourceType)).catch((err: unknown) => {
      this.options.logger?.debug({ err, url }, 'gated request failed');
      return undefined;
    });
    this.tracked.push(tracked);
    return tracked.done.then(() => undefined);
  }

  /** An earlier request's exchange that this one shares (see share), if any. */
  private sharedExchange(url: string): Promise<Exchange | undefined> | undefined {
    const parsed = new URL(url);
    const rule = this.shared.find((m) => m(parsed));
    return rule ? this.tracked.find((t) => rule(new URL(t.url)))?.done : undefined;
  }

  private async reuse(route: Route, earlier: Promise<Exchange | undefined>, url: string, resourceType: string): Promise<Exchange | undefined> {
    const first = await earlier;
    if (!first || first.classification.kind !== 'ok') return this.pass(route, url, resourceType);
    this.options.logger?.debug({ url, sharedWith: first.url }, 'request answered with an earlier exchange of the same page');
    await route.fulfill({ status: first.status, headers: first.contentType ? { 'content-type': first.contentType } : {}, body: first.body }).catch(() => undefined);
    return { ...first, url, resourceType };
  }

  private async pass(route: Route, url: string, resourceType: string): Promise<Exchange | undefined> {
    if (resourceType === 'document' && this.blank.delete(new URL(url).href)) {
      this.counters.blank += 1;
      await route.fulfill({ status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: BLANK_PAGE }).catch(() => undefined);
      return undefined;
    }
    const endpoint = endpointForUrl(url, this.options.baseUrl);
    if (endpoint === undefined) {
      this.counters.unmapped += 1;
      await route.abort('blockedbyclient').catch(() => undefined);
      return undefined;
    }
    const t0 = Date.now();
    const admission = this.stop ? false : await this.admit(endpoint);
    if (this.stop || admission === false) {
      this.counters.refused += 1;
      await route.abort('blockedbyclient').catch(() => undefined);
      return undefined;
    }
    this.counters.sent += 1;
    const t1 = Date.now();
    const response = await route.fetch({ maxRedirects: 0, timeout: this.options.requestTimeoutMs });
    const body = await response.text();
    this.options.logger?.debug({ url, endpoint, resourceType, acquireMs: t1 - t0, lateMs: admission?.lateMs, fetchMs: Date.now() - t1, status: response.status() }, 'request sent');
    const headers = response.headers();
    const classification = classifyResponse({ status: response.status(), headers, body, url: response.url() });
    const exchange: Exchange = { url, endpoint, resourceType, status: response.status(), body, contentType: headers['content-type'], classification };
    if (PUSHBACK_KINDS.has(classification.kind)) await this.pushback(endpoint, classification.kind as PenaltyKind, classification.reason, classification.retryAfterMs);
    else if (response.status() >= 500 && this.options.serverErrors?.record(endpoint)) {
      await this.pushback(endpoint, 'server-error', `${this.options.serverErrors.burst} 5xx within ${this.options.serverErrors.windowMs} ms, last http-${response.status()}`, classification.retryAfterMs);
    }
    this.exchanges.push(exchange);
    this.options.onExchange?.(exchange);
    const passOn = Object.fromEntries(Object.entries(headers).filter(([k]) => !DROP_HEADERS.has(k.toLowerCase())));
    const html = resourceType === 'document' && /html/i.test(headers['content-type'] ?? '');
    await route.fulfill({ status: response.status(), headers: passOn, body: html ? withoutFavicon(body) : body }).catch(() => undefined);
    return exchange;
  }

  /**
   * Takes a token for one request: the admission (undefined without a throttler, or for a prepaid
   * token). False when the job must not send it (deferral or failure recorded).
   */
  private async admit(endpoint: TikTokEndpoint): Promise<Admission | undefined | false> {
    const { throttler } = this.options;
    if (throttler === null) {
      this.counters.admitted += 1;
      return undefined;
    }
    try {
      const admission = await throttler.acquire(endpoint, {
        priority: this.options.priority,
        tenant: this.options.tenant,
        maxWaitMs: this.options.maxWaitMs,
        signal: this.abort.signal,
      });
      this.counters.admitted += 1;
      return admission;
    } catch (err) {
      const deferral = deferralOf(err, this.options.maxWaitMs);
      if (deferral) {
        this.halt(deferral);
      } else if (!(err instanceof AbortError || err instanceof ThrottlerClosedError)) {
        // Redis unreachable, unknown endpoint...: a failure, not a denial; the job's attempt fails
        this.halt(err as Error);
      }
      return false;
    }
  }

  /** TikTok pushed back: pause the endpoint fleet-wide and defer the job past the pause. */
  private async pushback(endpoint: TikTokEndpoint, kind: PenaltyKind, detail: string, retryAfter: number | undefined): Promise<void> {
    this.counters.pushbacks += 1;
    // Retry-After is already in whole ms, rounded up; without it a fixed default pause
    const retryAfterMs = Math.ceil(retryAfter ?? this.options.defaultPenaltyMs);
    const reason = `${kind} (${detail})`;
    if (this.options.throttler !== null) {
      await this.options.throttler.penalize(endpoint, { retryAfterMs, reason }).catch((err: unknown) => {
        this.options.logger?.warn({ err, endpoint }, 'penalize failed');
      });
    }
    this.options.logger?.warn({ endpoint, retryAfterMs, reason }, 'TikTok pushed back');
    this.halt(new JobDeferredError(endpoint, 'penalized', jobDelayMs(retryAfterMs), `TikTok answered ${reason}, endpoint paused ${retryAfterMs} ms`));
  }
}
