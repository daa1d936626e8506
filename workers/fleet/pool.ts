/**
 * Browser contexts for jobs, made ahead of time and used again. A fresh context per job cost
 * Debian's headless Chromium about 1.2-1.8 s of CPU (a renderer started for its blank page, another
 * for the site, both torn down after), against 0.4-0.55 s for a job in a context used again
 * (measured with 4 jobs at once on 2 cores): on a small machine that difference is what starved
 * the fleet's own timers. So a context serves job after job, up to {@link MAX_USES}, and between
 * two jobs it is wiped: the page is left for about:blank, the cookies of the context and the
 * storage of every origin the job reached are cleared; no cookie or storage carries over from one
 * job to the next. A context that fails to wipe is closed, not reused.
 *
 * Contexts made ahead: opening the first page of a new context takes 0.5-3 s on a small machine,
 * so the pool keeps `spares` contexts with their page open, ready before the jobs that use them.
 */
import type { Browser, BrowserContext, Page } from 'playwright';

export interface Blank {
  context: BrowserContext;
  page: Page;
}

/** Jobs one context serves before it is closed and replaced (bounds what a long-lived renderer accumulates). */
export const MAX_USES = 50;

/** A wipe that takes longer (a hung page) closes the context instead. */
const WIPE_TIMEOUT_MS = 10_000;

function bounded<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`took longer than ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

export class ContextPool {
  /** Contexts ready for a job (still being wiped or made, for some). */
  private readonly idle: Promise<Blank | undefined>[] = [];
  private readonly pages = new Map<BrowserContext, Page>();
  private readonly uses = new WeakMap<BrowserContext, number>();
  private readonly closing = new Set<Promise<unknown>>();
  private closed = false;
  /** Contexts being made for `idle` (counted against `spares` before they exist). */
  private creating = 0;

  /**
   * @param browser the process's browser.
   * @param spares how many contexts to keep (the worker's concurrency is a good value).
   */
  constructor(
    private readonly browser: Browser,
    private readonly spares: number,
  ) {}

  /** A context with one page, on about:blank, that holds nothing of an earlier job. */
  async take(): Promise<Blank> {
    if (this.closed) throw new Error('the context pool is closed');
    const next = this.idle.shift();
    return (await next) ?? this.create();
  }

  /**
   * Gives a context back after a job: wiped in the background for the next one (`origins`: the
   * origins whose storage the job may have written), or closed when it served its last job or
   * `reuse` is false (a session that failed to open).
   */
  release(context: BrowserContext, origins: readonly string[] = [], reuse = true): void {
    const page = this.pages.get(context);
    const uses = (this.uses.get(context) ?? 0) + 1;
    this.uses.set(context, uses);
    if (this.closed || !reuse || !page || page.isClosed() || uses >= MAX_USES || this.pages.size > this.spares) {
      this.retire(context);
      return;
    }
    this.idle.push(
      bounded(this.wipe(context, page, origins), WIPE_TIMEOUT_MS).then(
        () => ({ context, page }),
        () => {
          this.retire(context);
          return undefined;
        },
      ),
    );
  }

  /** Stops making contexts and closes the idle ones and those still closing. */
  async close(): Promise<void> {
    this.closed = true;
    const idle = this.idle.splice(0);
    await Promise.all(idle.map(async (s) => (await s)?.context.close().catch(() => undefined)));
    await Promise.all([...this.closing]);
  }

  /** Starts making the spare contexts now (they are otherwise made on the first take). */
  warm(): void {
    this.refill();
  }

  private refill(): void {
    while (!this.closed && this.pages.size + this.creating < this.spares) {
      this.creating += 1;
      // a failed warm-up is not an error: take() then creates one in the foreground
      const made = this.create().finally(() => (this.creating -= 1));
      this.idle.push(made.catch(() => undefined));
    }
  }

  /**
   * Empties what the job left: the page goes to about:blank (its scripts stop), the context's
   * cookies go, and every reached origin's storage (local, session, IndexedDB, caches: measured,
   * `storageTypes: 'all'` clears the session storage of the tab too).
   */
  private async wipe(context: BrowserContext, page: Page, origins: readonly string[]): Promise<void> {
    await page.goto('about:blank');
    await context.clearCookies();
    if (origins.length === 0) return;
    const cdp = await context.newCDPSession(page);
    try {
      for (const origin of origins) await cdp.send('Storage.clearDataForOrigin', { origin, storageTypes: 'all' });
    } finally {
      await cdp.detach().catch(() => undefined);
    }
  }

  /** Closes a context in the background (tracked, so `close()` waits for it) and makes a replacement. */
  private retire(context: BrowserContext): void {
    this.pages.delete(context);
    const p = context.close().catch(() => undefined);
    this.closing.add(p);
    void p.finally(() => this.closing.delete(p));
    this.refill();
  }

  private async create(): Promise<Blank> {
    const context = await this.browser.newContext({ serviceWorkers: 'block' });
    try {
      const page = await context.newPage();
      this.pages.set(context, page);
      return { context, page };
    } catch (err) {
      await context.close().catch(() => undefined);
      throw err;
    }
  }
}
