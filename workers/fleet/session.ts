/**
 * One job's browser session: a BrowserContext from the pool (wiped: no cookie or storage of an earlier job), its gate,
 * and one page, with the two things the job logic does: open a page, and call a JSON API from
 * inside that page (as TikTok's web app does, so the call carries the page's cookies and, on
 * tiktok.com, its signing). Both go through the gate, so both are throttled and classified.
 *
 * Transient failures (network errors, 5xx, a page without state) are retried here with p-retry,
 * a few times with jittered backoff; each retry is a new request and takes a new token. A
 * deferral, a pushback or a permanent outcome is never retried here.
 */
import pRetry from 'p-retry';
import type { BrowserContext, Page } from 'playwright';
import { classifyResponse, type Classification } from '../tiktok/index.js';
import type { ContextPool } from './pool.js';
import { PUSHBACK_KINDS, RequestGate, type Exchange, type GateOptions } from './gate.js';

/** A failure worth trying again: the network, a 5xx, an answer that is not data. */
export class TransientRequestError extends Error {
  readonly code = 'REQUEST_TRANSIENT';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientRequestError';
  }
}

/** What a page or API call returned, once it is known not to be a refusal or an error. */
export interface Fetched {
  url: string;
  status: number;
  body: string;
  /** `ok`, `not-found` or `private`: refusals defer the job, errors are retried or thrown. */
  classification: Classification;
}

export interface SessionOptions extends Omit<GateOptions, 'logger'> {
  /** Retries of one request for transient errors. */
  requestRetries: number;
  logger?: GateOptions['logger'];
}

/** Rejects with a TransientRequestError when `p` takes longer than `ms` (a hung page or request). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new TransientRequestError(`${what} took longer than ${ms} ms`)), ms);
    p.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** The first page of a paged API call (no cursor or offset, or 0). */
function firstPage(url: URL): boolean {
  return !Number(url.searchParams.get('cursor') || url.searchParams.get('offset') || 0);
}

/** Base of the retry backoff (doubled each time, randomized ×1-2). */
const RETRY_MIN_MS = 300;

export class Session {
  private constructor(
    private readonly pool: ContextPool,
    private readonly context: BrowserContext,
    private readonly page: Page,
    /** The gate of this session's context. */
    readonly gate: RequestGate,
    private readonly options: SessionOptions,
  ) {}

  /** Takes a fresh context from the pool, gates it, and uses its blank page. */
  static async open(pool: ContextPool, options: SessionOptions): Promise<Session> {
    const { context, page } = await pool.take();
    try {
      const gate = await RequestGate.attach(context, options);
      // a navigation may legitimately wait up to maxWaitMs for its token, then the exchange itself
      page.setDefaultNavigationTimeout(options.maxWaitMs + options.requestTimeoutMs + 5_000);
      page.setDefaultTimeout(options.maxWaitMs + options.requestTimeoutMs + 5_000);
      return new Session(pool, context, page, gate, options);
    } catch (err) {
      pool.release(context, [], false);
      throw err;
    }
  }

  /** Navigates to a TikTok page and returns its HTML. */
  openPage(url: string): Promise<Fetched> {
    return this.retry(async () => {
      let response;
      try {
        response = await this.page.goto(url, { waitUntil: 'domcontentloaded' });
      } catch (err) {
        this.gate.check();
        throw new TransientRequestError(`navigation to ${url} failed: ${(err as Error).message.split('\n')[0]}`, { cause: err });
      }
      // no gate.check() here: a pushback on a request the job does not need (the page's own API
      // call) must not throw away a page that arrived; the next request will defer the job
      if (!response) throw new TransientRequestError(`navigation to ${url} returned no response`);
      const body = await response.text();
      return this.accept({ url, status: response.status(), body, classification: classifyResponse({ status: response.status(), headers: response.headers(), body, url: response.url() }) });
    });
  }

  /**
   * Puts the page on TikTok's origin at `url` without fetching it: the gate answers the
   * navigation with a blank page (no token, no request). For a resumed job, whose next API call
   * must come from a page of TikTok's origin but which already read this page.
   */
  async enterOrigin(url: string): Promise<void> {
    this.gate.serveBlank(url);
    await this.page.goto(url, { waitUntil: 'domcontentloaded' });
  }

  /** Calls a JSON API from inside the current page, as the web app would. */
  fetchApi(url: string): Promise<Fetched> {
    return this.retry(async () => {
      // the gate would abort it anyway: defer now
      this.gate.check();
      // page.evaluate has no timeout of its own: bound the call in the page and here
      const limitMs = this.exchangeLimitMs();
      const result = await within(this.page.evaluate(async ([target, ms]: [string, number]) => {
        try {
          const r = await fetch(target, { credentials: 'include', signal: AbortSignal.timeout(ms) });
          const headers: Record<string, string> = {};
          r.headers.forEach((value, key) => {
            headers[key] = value;
          });
          return { ok: true as const, status: r.status, headers, body: await r.text() };
        } catch (err) {
          return { ok: false as const, error: String(err) };
        }
      }, [url, limitMs] as [string, number]), limitMs + 5_000, `API call ${url}`);
      this.gate.check();
      if (!result.ok) throw new TransientRequestError(`API call ${url} failed: ${result.error}`);
      return this.accept({ url, status: result.status, body: result.body, classification: classifyResponse({ status: result.status, headers: result.headers, body: result.body, url }) });
    });
  }

  /**
   * The API response the current page's own script fetched (matching `match`), if it made one;
   * otherwise fetches `fallbackUrl` itself. Reusing the page's call saves a token per page.
   */
  async pageApi(match: (url: URL) => boolean, fallbackUrl: string): Promise<Fetched> {
    let pending = this.gate.find(match);
    if (!pending) {
      // the script's fetch may reach the route a moment after DOMContentLoaded
      await this.page.waitForLoadState('load').catch(() => undefined);
      pending = this.gate.find(match);
    }
    if (pending) {
      const exchange: Exchange | undefined = await within(pending, this.exchangeLimitMs() + 5_000, 'the page\'s own API call').catch(() => undefined);
      // refused by the throttle or the job already deferred: the reason is in the gate
      if (!exchange) this.gate.check();
      if (exchange && exchange.classification.kind !== 'error') return this.accept(exchange);
    }
    // the page's call may still come (its script ran late): it and ours share one exchange, so
    // the first page is fetched once whichever reaches the gate first
    const fallback = new URL(fallbackUrl);
    this.gate.share((url) => match(url) && url.pathname === fallback.pathname && firstPage(url));
    return this.fetchApi(fallbackUrl);
  }

  /** Ends the session: acquires still waiting are aborted (and refunded), the context goes back to the pool to be wiped. */
  close(): void {
    this.gate.close();
    this.pool.release(this.context, this.gate.origins());
  }

  /** Longest one exchange may take: its wait for a token, then the request itself. */
  private exchangeLimitMs(): number {
    return this.options.maxWaitMs + this.options.requestTimeoutMs;
  }

  private accept(fetched: Fetched): Fetched {
    const { kind, reason } = fetched.classification;
    if (kind === 'ok' || kind === 'not-found' || kind === 'private') return fetched;
    // a pushback: the gate penalized the endpoint and holds the deferral
    if (PUSHBACK_KINDS.has(kind) && this.gate.stopReason) throw this.gate.stopReason;
    throw new TransientRequestError(`${fetched.url}: HTTP ${fetched.status}, ${kind} (${reason})`);
  }

  private async retry<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await pRetry(fn, {
        retries: this.options.requestRetries,
        minTimeout: RETRY_MIN_MS,
        factor: 2,
        randomize: true,
        shouldRetry: ({ error }) => error instanceof TransientRequestError && this.gate.stopReason === undefined,
      });
    } catch (err) {
      // a request that failed because the gate stopped the job: the gate's reason is the real one
      if (err instanceof TransientRequestError && this.gate.stopReason) throw this.gate.stopReason;
      throw err;
    }
  }
}
