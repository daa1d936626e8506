/**
 * Fresh browser contexts, made ahead of time. Every job gets a context of its own (no cookie or
 * storage carries over from one job to the next), but opening a page in a new context starts a
 * renderer process, which takes 0.5-3 s with Debian's headless Chromium on a small machine
 * (measured). So the pool keeps a few contexts with their page open, ready before the jobs that
 * will use them, and closes used ones in the background: the job does not wait for either.
 */
import type { Browser, BrowserContext, Page } from 'playwright';

export interface Blank {
  context: BrowserContext;
  page: Page;
}

export class ContextPool {
  private readonly ready: Promise<Blank | undefined>[] = [];
  private readonly closing = new Set<Promise<unknown>>();
  private closed = false;

  /**
   * @param browser the process's browser.
   * @param spares how many blank contexts to keep ready (the worker's concurrency is a good value).
   */
  constructor(
    private readonly browser: Browser,
    private readonly spares: number,
  ) {}

  /** A context no job has used, with one blank page. */
  async take(): Promise<Blank> {
    if (this.closed) throw new Error('the context pool is closed');
    const next = this.ready.shift();
    this.refill();
    return (await next) ?? this.create();
  }

  /** Closes a used context in the background (tracked, so `close()` waits for it). */
  release(context: BrowserContext): void {
    const p = context.close().catch(() => undefined);
    this.closing.add(p);
    void p.finally(() => this.closing.delete(p));
  }

  /** Stops making contexts and closes the spares and those still closing. */
  async close(): Promise<void> {
    this.closed = true;
    const spares = this.ready.splice(0);
    await Promise.all(spares.map(async (s) => (await s)?.context.close().catch(() => undefined)));
    await Promise.all([...this.closing]);
  }

  /** Starts making the spare contexts now (they are otherwise made on the first take). */
  warm(): void {
    this.refill();
  }

  private refill(): void {
    while (!this.closed && this.ready.length < this.spares) {
      // a failed warm-up is not an error: take() then creates one in the foreground
      this.ready.push(this.create().catch(() => undefined));
    }
  }

  private async create(): Promise<Blank> {
    const context = await this.browser.newContext({ serviceWorkers: 'block' });
    try {
      return { context, page: await context.newPage() };
    } catch (err) {
      await context.close().catch(() => undefined);
      throw err;
    }
  }
}
