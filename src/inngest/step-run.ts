import type { Middleware, StepOptions, StepOptionsOrId } from 'inngest';
import type { Logger } from '../logger.js';
import { isDeferralMarker, ThrottleDeferredError } from './deferral.js';
import { stepScope } from './gate.js';
import type { StepRoute } from './options.js';

/**
 * `step.run` with durable deferral. Every step.run of a run goes through here, so that a handler
 * that throttles (automatically, by route, or through `ctx.throttle()`) can be deferred:
 *
 *   step.run(id)                 -> marker { delayMs }      (the step succeeded: no attempt used)
 *   step.sleep(id@sluice-wait-1) -> whole seconds, rounded up
 *   step.run(id@sluice-retry-1)  -> the output, or another marker ...
 *
 * On replay each of these is memoized, so the loop walks the same ids to the same place. The ids
 * are derived from the user's id only, so they are as deterministic as the user's code.
 */

type StepTools = Middleware.StepTools;
type RunHandler = (...args: unknown[]) => unknown;

export interface GatedRunDeps {
  /** The endpoint a step acquires before its handler, if any. */
  route(stepId: string, name: string | undefined): StepRoute | undefined;
  /** Acquires a route for the step running now (deferrals: how often this step was deferred). */
  admitRoute(route: StepRoute, deferrals: number): Promise<unknown>;
  logger: Logger;
  functionId: string;
}

/** Id of the k-th re-run of a deferred step. `@` keeps it apart from Inngest's own `id:N` indexing. */
export function retryStepId(id: string, k: number): string {
  return `${id}@sluice-retry-${k}`;
}

/** Id of the sleep before the k-th re-run. */
export function waitStepId(id: string, k: number): string {
  return `${id}@sluice-wait-${k}`;
}

export function gatedRun(step: StepTools, deps: GatedRunDeps): StepTools['run'] {
  const run = async (idOrOptions: StepOptionsOrId, handler: RunHandler, ...input: unknown[]): Promise<unknown> => {
    const options: StepOptions = typeof idOrOptions === 'string' ? { id: idOrOptions } : idOrOptions;
    const route = deps.route(options.id, options.name);
    for (let k = 0; ; k++) {
      const thisTry: StepOptionsOrId = k === 0 ? idOrOptions : { ...options, id: retryStepId(options.id, k) };
      const body = (...args: unknown[]) =>
        stepScope.run({ stepId: options.id, deferrals: k }, async () => {
          try {
            if (route) await deps.admitRoute(route, k);
            return await handler(...args);
          } catch (err) {
            if (!(err instanceof ThrottleDeferredError)) throw err;
            const m = err.marker;
            deps.logger.info(
              { functionId: deps.functionId, stepId: options.id, endpoint: m.endpoint, reason: m.reason, expectedWaitMs: m.expectedWaitMs, delayMs: m.delayMs, deferrals: k + 1 },
              'step deferred: the run sleeps instead of holding a worker',
            );
            return m;
          }
        });
      const out = await step.run(thisTry, body, ...input);
      if (!isDeferralMarker(out)) return out;
      await step.sleep({ id: waitStepId(options.id, k + 1), name: `throttled: ${out.endpoint}` }, out.delayMs);
    }
  };
  return run as StepTools['run'];
}
