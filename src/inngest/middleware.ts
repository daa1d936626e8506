import { Middleware, NonRetriableError, type EventPayload } from 'inngest';
import type { Admission, Throttler } from '../throttler.js';
import { ThrottleOutsideStepError } from './deferral.js';
import { admit, stepScope, type GateRequest } from './gate.js';
import { resolveOptions, type ResolvedOptions, type StepRoute, type ThrottleMiddlewareOptions } from './options.js';
import { gatedRun } from './step-run.js';

/** Per-call overrides of `ctx.throttle()`; unset fields come from the middleware's options (and the event). */
export interface ThrottleCallOptions {
  /** Priority name. Default: the middleware's `priority` for this run, else the throttler's default. */
  priority?: string;
  /** Tenant name. Default: the middleware's `tenant` for this run, else the throttler's default. */
  tenant?: string;
  /** Tokens. Default: the middleware's `cost` for this run, else 1. */
  cost?: number;
  /** Gives up the wait (the place in the queue is handed back) and rejects with AbortError. */
  signal?: AbortSignal;
}

/**
 * `ctx.throttle(endpoint, options)`: call it first thing inside the `step.run` that makes the
 * request. Resolves with the admission after an inline wait of at most `inlineWaitMs`; a longer
 * wait defers the step durably (it is re-run after a `step.sleep`). Rejects with
 * ThrottleOutsideStepError outside a step.
 */
export type ThrottleFn = (endpoint: string, options?: ThrottleCallOptions) => Promise<Admission>;

/** The fields this middleware adds to the handler's context. */
export interface ThrottleContext {
  throttle: ThrottleFn;
}

type Defaults = ReturnType<ResolvedOptions['callDefaults']>;

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Inngest middleware that puts Sluice in front of a function's requests.
 *
 * Register it on the client (`new Inngest({ id, middleware: [throttleMiddleware(throttler, opts)] })`).
 * Function-level `middleware` also works when served, but `@inngest/test` 1.0 runs only the
 * client's middleware.
 *
 * - adds `ctx.throttle(endpoint, { priority, tenant, cost })`;
 * - with `steps`, acquires the step's endpoint before each matching `step.run` handler;
 * - waits up to `inlineWaitMs` inline; a longer wait ends the step with a marker, sleeps the run
 *   (whole seconds, rounded up) and re-runs the step: no worker held, no attempt consumed.
 *
 * @throws UnknownEndpointError / InvalidConfigError at once for a bad `steps` table or option.
 */
export function throttleMiddleware(throttler: Throttler, options: ThrottleMiddlewareOptions = {}) {
  const resolved = resolveOptions(throttler, options);

  class SluiceThrottleMiddleware extends Middleware.BaseMiddleware {
    readonly id = 'sluice:throttle';

    override transformFunctionInput(arg: Middleware.TransformFunctionInputArgs): Middleware.TransformFunctionInputArgs & { ctx: ThrottleContext } {
      const functionId = arg.fn.opts.id;
      const event = arg.ctx.event as EventPayload;
      // one invocation per HTTP request from Inngest: inline waits end before the host cuts it
      const invocationDeadline = Date.now() + resolved.invocationTimeoutMs;
      let defaults: Defaults | undefined;
      // read lazily, inside the step: a mapper that throws fails that step, not every replay of the run
      const runDefaults = (): Defaults => {
        if (!defaults) {
          try {
            defaults = resolved.callDefaults(event, functionId);
          } catch (err) {
            // the same event gives the same answer: retrying cannot help
            throw new NonRetriableError(`throttleMiddleware: reading priority/tenant/cost from the event failed: ${(err as Error).message}`, { cause: err });
          }
        }
        return defaults;
      };
      const request = (endpoint: string, ...layers: Partial<GateRequest>[]): GateRequest => ({
        ...definedOnly(runDefaults()),
        ...Object.assign({}, ...layers.map(definedOnly)),
        endpoint,
      });

      const throttle: ThrottleFn = async (endpoint, callOptions = {}) => {
        const frame = stepScope.getStore();
        if (!frame) throw new ThrottleOutsideStepError(endpoint);
        return admit(throttler, request(endpoint, callOptions), frame.deferrals, resolved, invocationDeadline);
      };
      const admitRoute = (route: StepRoute, deferrals: number) => {
        const { endpoint, ...overrides } = route;
        return admit(throttler, request(endpoint, overrides), deferrals, resolved, invocationDeadline);
      };

      const step = { ...arg.ctx.step, run: gatedRun(arg.ctx.step, { route: resolved.route, admitRoute, logger: resolved.logger, functionId }) };
      return { ...arg, ctx: { ...arg.ctx, step, throttle } };
    }
  }
  return SluiceThrottleMiddleware;
}
