import type { EventPayload } from 'inngest';
import { parseDurationMs } from '../config/units.js';
import { InvalidConfigError, UnknownEndpointError } from '../errors/index.js';
import { rootLogger, type Logger } from '../logger.js';
import type { Throttler } from '../throttler.js';

/** Reads a value from the run's triggering event (`event.data`, usually). Return undefined for the default. */
export type EventMapper<T> = (event: EventPayload, info: { functionId: string }) => T | undefined;

/** Where a `step.run` goes: an endpoint, optionally with its own cost, priority or tenant. */
export interface StepRoute {
  endpoint: string;
  /** Tokens this step takes. Default: the middleware's `cost`, else 1. */
  cost?: number;
  /** Overrides the run's priority for this step. */
  priority?: string;
  /** Overrides the run's tenant for this step. */
  tenant?: string;
}

/**
 * Which steps acquire automatically: a map from step id to endpoint (or route), or a function of
 * the step id and its options (`{ id, name }`) that returns one, or undefined for "not throttled".
 */
export type StepRouting =
  | Readonly<Record<string, string | StepRoute>>
  | ((stepId: string, step: { name?: string | undefined }) => string | StepRoute | undefined);

export interface ThrottleMiddlewareOptions {
  /**
   * Steps whose `step.run` acquires their endpoint before the handler runs, e.g.
   * `{ 'fetch-profile': 'tiktok.profile' }` or `(id) => id.startsWith('fetch-') ? 'tiktok.profile' : undefined`.
   * Default: none; only `ctx.throttle()` acquires.
   */
  steps?: StepRouting;
  /** Priority of the run's acquisitions: a name, or read from the event. Default: the throttler's `defaultPriority`. */
  priority?: string | EventMapper<string>;
  /** Tenant of the run's acquisitions: a name, or read from the event. Default: the throttler's `defaultTenant`. */
  tenant?: string | EventMapper<string>;
  /** Tokens per acquisition: a number, or read from the event. Default 1. */
  cost?: number | EventMapper<number>;
  /**
   * Waits up to this long are served inside the step (the worker holds the request open). A longer
   * expected wait defers the step durably: it returns, the run sleeps, the step runs again.
   * Accepts ms or `"5 s"`. Default 5000.
   */
  inlineWaitMs?: number | string;
  /** Longest single deferral sleep (also used when the wait is unbounded, e.g. rate 0). Default 600 000 (10 min). */
  maxDeferMs?: number | string;
  /**
   * After this many deferrals of one step it waits inline, however long, instead of adding more
   * steps to the run (each deferral adds two; Inngest caps a run's steps). Default 50.
   */
  maxDeferrals?: number;
  /**
   * How long one invocation of a function may run before the platform cuts its HTTP request (your
   * host's timeout). No inline wait outlives it, not even the one after `maxDeferrals`: a wait that
   * would is given back (its ticket cancelled, no token taken) and the step is deferred again, so
   * a token is never taken for a request the dead invocation cannot send, and the retry does not
   * take a second one. Accepts ms or `"60 s"`. Default 60 000.
   */
  invocationTimeoutMs?: number | string;
  /** Logger; the middleware logs through a child `{ component: 'inngest' }`. Default: the root logger. */
  logger?: Logger;
}

/** The options after validation: what the middleware uses at run time. */
export interface ResolvedOptions {
  route(stepId: string, name: string | undefined): StepRoute | undefined;
  callDefaults(event: EventPayload, functionId: string): { priority?: string | undefined; tenant?: string | undefined; cost?: number | undefined };
  inlineWaitMs: number;
  maxDeferMs: number;
  maxDeferrals: number;
  invocationTimeoutMs: number;
  logger: Logger;
}

export const DEFAULT_INLINE_WAIT_MS = 5_000;
export const DEFAULT_MAX_DEFER_MS = 600_000;
export const DEFAULT_MAX_DEFERRALS = 50;
export const DEFAULT_INVOCATION_TIMEOUT_MS = 60_000;

function duration(option: string, value: number | string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const ms = parseDurationMs(value);
  if (ms === undefined || !(ms >= 0) || !Number.isFinite(ms)) {
    throw new InvalidConfigError(`${option} must be a duration >= 0 (ms or like "5 s"), received ${JSON.stringify(value)}`);
  }
  return ms;
}

function mapper<T>(value: T | EventMapper<T> | undefined): EventMapper<T> {
  if (typeof value === 'function') return value as EventMapper<T>;
  return () => value;
}

function toRoute(value: string | StepRoute): StepRoute {
  return typeof value === 'string' ? { endpoint: value } : value;
}

/** Validates the options once, at middleware creation; errors name the option and the value. */
export function resolveOptions(throttler: Throttler, options: ThrottleMiddlewareOptions): ResolvedOptions {
  const known = throttler.endpoints;
  const priorities = Object.keys(throttler.config.priorities);
  const checkPriority = (value: string | undefined, where: string) => {
    if (value !== undefined && !priorities.includes(value)) {
      throw new InvalidConfigError(`${where} must be one of the throttler's priorities (${priorities.join(', ')}), received ${JSON.stringify(value)}`);
    }
  };
  const check = (route: StepRoute, where: string): StepRoute => {
    if (!known.includes(route.endpoint)) throw new UnknownEndpointError(route.endpoint, known);
    checkPriority(route.priority, `${where}.priority`);
    if (route.cost !== undefined && !(route.cost > 0 && Number.isFinite(route.cost))) {
      throw new InvalidConfigError(`${where}.cost must be a positive number of tokens, received ${String(route.cost)}`);
    }
    return route;
  };

  let route: ResolvedOptions['route'];
  const steps = options.steps;
  if (steps === undefined) {
    route = () => undefined;
  } else if (typeof steps === 'function') {
    // a function's answers are only known at run time; the throttler rejects unknown endpoints then
    route = (id, name) => {
      const r = steps(id, { name });
      return r === undefined ? undefined : toRoute(r);
    };
  } else {
    const table = new Map<string, StepRoute>();
    for (const [id, value] of Object.entries(steps)) table.set(id, check(toRoute(value), `steps["${id}"]`));
    route = (id) => table.get(id);
  }

  const maxDeferrals = options.maxDeferrals ?? DEFAULT_MAX_DEFERRALS;
  if (!(Number.isInteger(maxDeferrals) && maxDeferrals >= 0)) {
    throw new InvalidConfigError(`maxDeferrals must be a whole number >= 0, received ${String(options.maxDeferrals)}`);
  }
  const maxDeferMs = duration('maxDeferMs', options.maxDeferMs, DEFAULT_MAX_DEFER_MS);
  if (maxDeferMs < 1000) throw new InvalidConfigError(`maxDeferMs must be at least 1 s (Inngest sleeps in whole seconds), received ${JSON.stringify(options.maxDeferMs)}`);

  const invocationTimeoutMs = duration('invocationTimeoutMs', options.invocationTimeoutMs, DEFAULT_INVOCATION_TIMEOUT_MS);
  if (invocationTimeoutMs < 1000) throw new InvalidConfigError(`invocationTimeoutMs must be at least 1 s, received ${JSON.stringify(options.invocationTimeoutMs)}`);

  if (typeof options.priority === 'string') checkPriority(options.priority, 'priority');
  const priority = mapper(options.priority);
  const tenant = mapper(options.tenant);
  const cost = mapper(options.cost);
  return {
    route,
    callDefaults: (event, functionId) => ({
      priority: priority(event, { functionId }),
      tenant: tenant(event, { functionId }),
      cost: cost(event, { functionId }),
    }),
    inlineWaitMs: duration('inlineWaitMs', options.inlineWaitMs, DEFAULT_INLINE_WAIT_MS),
    maxDeferMs,
    maxDeferrals,
    invocationTimeoutMs,
    logger: (options.logger ?? rootLogger()).child({ component: 'inngest' }),
  };
}
