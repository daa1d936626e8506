/**
 * The harvesting worker's code path, for the Inngest example function (`createHarvestApp`): a
 * session from the browser pool, its request gate, and `harvest()` with the results store, exactly
 * as a BullMQ harvesting job runs them. What differs is who waits and how a wait ends:
 *
 * - the `fetch-profile` step already holds one `tiktok.profile` token (the middleware took it
 *   before the handler), so the gate's first `tiktok.profile` request spends that one instead of
 *   acquiring a second;
 * - every other request acquires through `ctx.throttle` (the run's priority and tenant, a short
 *   inline wait, a durable `step.sleep` beyond it) instead of the worker's `maxWaitMs`;
 * - a pushback (429, captcha) still penalizes the endpoint fleet-wide, then defers the step by the
 *   pause instead of delaying a BullMQ job; an account that does not exist fails the run once
 *   (NonRetriableError) where the BullMQ runner fails the job (both from the crawl's FinalOutcomeError).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { NonRetriableError } from 'inngest';
import { HarvestingJob } from '../../jobs/schemas.js';
import type { Logger } from 'sluice';
import type { Throttler } from 'sluice';
import { deferralMarker, DEFAULT_INLINE_WAIT_MS, DEFAULT_MAX_DEFER_MS, ThrottleDeferredError } from 'sluice/inngest';
import { createHarvestApp, PROFILE_ENDPOINT, type HarvestApp, type HarvestAppOptions, type HarvestContext, type HarvestProfile } from '../inngest/harvest-app.js';
import type { ResultsStore } from '../results/store.js';
import { tiktokUrls } from '../tiktok/index.js';
import { JobDeferredError } from 'sluice';
import type { GateThrottler } from './gate.js';
import { FinalOutcomeError } from './errors.js';
import { harvest, type HarvestResult } from './harvesting.js';
import { launchBrowser } from './browser.js';
import { ContextPool } from './pool.js';
import { Session } from './session.js';
import type { FleetSettings } from './settings.js';

export interface BrowserHarvestOptions {
  /** Browser contexts (one per call). */
  pool: ContextPool;
  /** The throttler the middleware uses: pushbacks penalize through it. */
  throttler: Throttler;
  /** TikTok's base URL (or the simulator's). */
  baseUrl: string;
  store: Pick<ResultsStore, 'recordProfile'>;
  /** Request timeout, retries and the pause for a refusal without Retry-After, as the workers use them. */
  settings: Pick<FleetSettings, 'requestTimeoutMs' | 'requestRetries' | 'defaultPenaltyMs' | 'assetHosts'>;
  /** The middleware's `inlineWaitMs`, in ms. Default 5000. */
  inlineWaitMs?: number;
  /** Longest deferral sleep (the middleware's `maxDeferMs`), in ms. Default 10 min. */
  maxDeferMs?: number;
  logger?: Logger;
}

/**
 * The gate's view of the throttler inside one step: the prepaid `tiktok.profile` token first, then
 * `ctx.throttle` (which defers the step on a long wait), and the real throttler for penalties.
 */
function stepThrottler(ctx: HarvestContext, throttler: Throttler): GateThrottler {
  let prepaid = 1;
  // the gate runs in Playwright's callbacks, outside the step's async context: ctx.throttle needs it
  const inStep = AsyncLocalStorage.snapshot();
  return {
    acquire: async (endpoint, options = {}) => {
      if (endpoint === PROFILE_ENDPOINT && prepaid > 0) {
        // the middleware already took this token for the step: nothing to acquire, nothing to report
        prepaid -= 1;
        return undefined;
      }
      return inStep(() => ctx.throttle(endpoint, options.signal ? { signal: options.signal } : {}));
    },
    penalize: (endpoint, options) => throttler.penalize(endpoint, options),
  };
}

/** A `HarvestProfile` for `createHarvestApp` that harvests with the worker's session and `harvest()`. */
export function browserHarvest(options: BrowserHarvestOptions): HarvestProfile<HarvestResult> {
  const urls = tiktokUrls({ baseUrl: options.baseUrl });
  const defaults = options.throttler.config;
  return async (handle, ctx) => {
    let job: HarvestingJob;
    try {
      job = HarvestingJob.parse({
        handle,
        tenant: ctx.tenant ?? defaults.defaultTenant,
        priority: ctx.priority ?? defaults.defaultPriority,
        source: { kind: 'manual', value: `inngest run ${ctx.runId}` },
      });
    } catch (err) {
      // the same event fails the same way: once, not once per attempt
      throw new NonRetriableError(`invalid harvest event: ${(err as Error).message}`, { cause: err });
    }
    const log = options.logger?.child({ runId: ctx.runId, handle: job.handle });
    const session = await Session.open(options.pool, {
      throttler: stepThrottler(ctx, options.throttler),
      baseUrl: options.baseUrl,
      priority: job.priority,
      tenant: job.tenant,
      // ctx.throttle decides how long to wait; this only bounds the page's navigation timeout
      maxWaitMs: options.inlineWaitMs ?? DEFAULT_INLINE_WAIT_MS,
      defaultPenaltyMs: options.settings.defaultPenaltyMs,
      requestTimeoutMs: options.settings.requestTimeoutMs,
      requestRetries: options.settings.requestRetries,
      assetHosts: options.settings.assetHosts,
      ...(log ? { logger: log } : {}),
    });
    try {
      const result = await harvest(job, { session, urls, store: options.store });
      log?.info({ requests: session.gate.counters, result }, 'inngest harvest done');
      return result;
    } catch (err) {
      if (err instanceof JobDeferredError) {
        // TikTok pushed back: the endpoint is paused fleet-wide; the step sleeps past the pause
        throw new ThrottleDeferredError(deferralMarker(err.endpoint, 'penalized', err.delayMs, options.maxDeferMs ?? DEFAULT_MAX_DEFER_MS));
      }
      if (err instanceof FinalOutcomeError) throw new NonRetriableError(err.message, { cause: err });
      throw err;
    } finally {
      session.close();
    }
  };
}

export interface InngestHarvester {
  /** The client and the example function, for `createAdminServer({ inngest })`. */
  app: HarvestApp<HarvestResult>;
  /** Closes the contexts and the browser. */
  close(): Promise<void>;
}

/**
 * Launches a Chromium for the example Inngest function and builds it: `createHarvestApp` with
 * {@link browserHarvest}, as many spare contexts as the fleet's `concurrency`. Throws
 * ChromiumMissingError when there is no Chromium.
 */
export async function startInngestHarvester(
  options: Omit<BrowserHarvestOptions, 'pool' | 'settings'> & { settings: FleetSettings; appId?: string; client?: HarvestAppOptions['client'] },
): Promise<InngestHarvester> {
  const browser = await launchBrowser();
  const pool = new ContextPool(browser, options.settings.concurrency);
  const harvestProfile = browserHarvest({ ...options, pool });
  const app = createHarvestApp({
    throttler: options.throttler,
    harvestProfile,
    ...(options.appId ? { appId: options.appId } : {}),
    // the SDK logs through ours too (pino has the methods it calls)
    ...(options.logger ? { throttle: { logger: options.logger } } : {}),
    client: { ...(options.logger ? { logger: options.logger } : {}), ...options.client },
  });
  return {
    app,
    close: async () => {
      await pool.close();
      await browser.close().catch(() => undefined);
    },
  };
}
