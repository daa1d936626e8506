/**
 * Example: an Inngest function that harvests one TikTok profile through the same code path as the
 * harvesting worker. The worker's `harvestProfile(handle, ctx)` is injected, so this file wires
 * Inngest and Sluice only: the `fetch-profile` step acquires `tiktok.profile` through the
 * middleware (priority and tenant from `event.data`), then calls it.
 *
 * Serve it at `/api/inngest` with {@link inngestHandler}; see docs/inngest.md.
 */
import { eventType, Inngest, type ClientOptions, type InngestFunction } from 'inngest';
import { serve } from 'inngest/fastify';
import { z } from 'zod';
import { Name } from 'sluice';
import type { Throttler } from 'sluice';
import { throttleMiddleware, type ThrottleFn } from 'sluice/inngest';
import type { ThrottleMiddlewareOptions } from 'sluice/inngest';

/** The event that asks for one profile. */
export const HARVEST_EVENT = 'sluice/profile.harvest';

/** `event.data` of {@link HARVEST_EVENT}; the zod schema is the type (Inngest validates it before the handler). */
export const HarvestEventData = z.object({
  /** The TikTok handle, with or without `@`; the worker normalizes it. */
  handle: z.string().min(1).max(64),
  /** Tenant the request is made for. Default: the throttler's `defaultTenant`. */
  tenant: Name.optional(),
  /** Priority class, e.g. `high` or `low`. Default: the throttler's `defaultPriority`. */
  priority: Name.optional(),
});
export type HarvestEventData = z.infer<typeof HarvestEventData>;

/** What `harvestProfile` receives besides the handle. */
export interface HarvestContext {
  tenant: string | undefined;
  priority: string | undefined;
  /**
   * `tiktok.profile` is already acquired for this call; use this for any OTHER throttled endpoint
   * the harvest touches (same priority, tenant and deferral). Do not acquire `tiktok.profile` again.
   */
  throttle: ThrottleFn;
  runId: string;
  attempt: number;
}

/** The harvesting worker's entry point. Its result must be JSON (Inngest memoizes it). */
export type HarvestProfile<R = unknown> = (handle: string, ctx: HarvestContext) => Promise<R>;

/** The step that makes the profile request; the middleware routes it to `tiktok.profile`. */
export const PROFILE_STEP = 'fetch-profile';
export const PROFILE_ENDPOINT = 'tiktok.profile';

export interface HarvestAppOptions<R = unknown> {
  throttler: Throttler;
  harvestProfile: HarvestProfile<R>;
  /** Inngest app id. Default `sluice`. */
  appId?: string;
  /** Middleware options merged over the example's (`steps`, `priority`, `tenant` from `event.data`). */
  throttle?: ThrottleMiddlewareOptions;
  /** Passed to `new Inngest()` (isDev, eventKey, logger...). Default: Inngest reads its env (`INNGEST_DEV`, `INNGEST_SIGNING_KEY`). */
  client?: Omit<ClientOptions, 'id' | 'middleware'>;
}

function dataField(data: unknown, key: 'tenant' | 'priority'): string | undefined {
  const value = (data as Record<string, unknown> | undefined)?.[key];
  return typeof value === 'string' ? value : undefined;
}

/** Builds the client (with the throttle middleware) and the example function. */
export function createHarvestApp<R>(options: HarvestAppOptions<R>) {
  const middleware = throttleMiddleware(options.throttler, {
    steps: { [PROFILE_STEP]: PROFILE_ENDPOINT },
    priority: (event) => dataField(event.data, 'priority'),
    tenant: (event) => dataField(event.data, 'tenant'),
    ...options.throttle,
  });
  const client = new Inngest({ ...options.client, id: options.appId ?? 'sluice', middleware: [middleware] });

  const harvestProfile = client.createFunction(
    { id: 'harvest-profile', triggers: [eventType(HARVEST_EVENT, { schema: HarvestEventData })] },
    async ({ event, step, throttle, runId, attempt }) => {
      const { handle, tenant, priority } = event.data;
      // the middleware acquires tiktok.profile right before this handler runs (or defers the step)
      return step.run(PROFILE_STEP, () => options.harvestProfile(handle, { tenant, priority, throttle, runId, attempt }));
    },
  );
  return { client, functions: [harvestProfile] as InngestFunction.Like[], harvestProfile };
}

export type HarvestApp<R = unknown> = ReturnType<typeof createHarvestApp<R>>;

/**
 * A fastify 5 route handler serving the functions for the Inngest server (GET introspection, PUT
 * sync, POST run). Mount it for GET, POST and PUT:
 * `app.route({ method: ['GET', 'POST', 'PUT'], url: '/api/inngest', handler: inngestHandler(app) })`.
 * For plain node:http use `serve` from `inngest/node` with the same arguments.
 */
export function inngestHandler(app: { client: Inngest.Like; functions: readonly InngestFunction.Like[] }, options: { servePath?: string } = {}) {
  return serve({ client: app.client, functions: app.functions, servePath: options.servePath ?? '/api/inngest' });
}
