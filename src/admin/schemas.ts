/**
 * Request bodies and queries of the admin API, validated at the boundary with bounds, so a typo
 * cannot set a rate of 1e12/s or a queue of a billion tickets. Errors name the field.
 */
import { z } from 'zod';
import { formatIssues } from '../config/issues.js';
import { ErrorCode, SluiceError } from '../errors/index.js';
import { Name, RateInput } from '../config/schema.js';
import { tokensPerMs, type Rate } from '../config/units.js';

/** Longest temporary override, pause or bypass: the same 30 days an override lives in Redis. */
export const MAX_TTL_MS = 30 * 24 * 3600 * 1000;
/** Highest rate the API accepts, tokens per second. */
export const MAX_RATE_PER_SEC = 1_000_000;

const Ttl = z.number().int().positive().max(MAX_TTL_MS);

/** A rate between zero (excluded: pause stops an endpoint) and MAX_RATE_PER_SEC. */
const BoundedRate = RateInput.refine((r) => {
  const perSec = tokensPerMs(r as Rate) * 1000;
  return perSec > 0 && perSec <= MAX_RATE_PER_SEC;
}, `must be above 0 and at most ${MAX_RATE_PER_SEC}/s (to stop an endpoint, pause it)`);

const Burst = z.number().positive().max(1e9);

/** `PUT /api/endpoints/:name`; weights are checked against the configured priorities. */
export function endpointPatchSchema(priorities: readonly string[]) {
  return z
    .object({
      rate: BoundedRate.optional(),
      burst: Burst.optional(),
      maxQueue: z.number().int().positive().max(1e7).optional(),
      weights: z
        .record(z.string(), z.number().positive().max(1e6))
        .superRefine((w, ctx) => {
          for (const p of Object.keys(w)) {
            if (!priorities.includes(p)) ctx.addIssue({ code: 'custom', path: [p], message: `unknown priority: use one of ${priorities.join(', ')}` });
          }
        })
        .optional(),
      /** Makes the override temporary: it expires by itself after this many ms. */
      ttlMs: Ttl.optional(),
    })
    .strict()
    .refine((b) => b.rate !== undefined || b.burst !== undefined || b.maxQueue !== undefined || b.weights !== undefined, {
      message: 'give at least one of rate, burst, maxQueue, weights',
    });
}

export const PauseBody = z.object({ durationMs: Ttl.optional(), reason: z.string().max(200).optional() }).strict();
export const DryRunBody = z.object({ enabled: z.boolean() }).strict();
export const ShadowBody = z.union([z.null(), z.object({ rate: BoundedRate, burst: Burst.optional() }).strict()]);
export const BypassBody = z.object({ tenant: Name, ttlMs: Ttl.optional() }).strict();
/** A tenant's budget over all endpoints: `{"rate": "30/min", "burst": 30}`. */
export const TenantBudgetBody = z.object({ rate: BoundedRate, burst: Burst.optional() }).strict();
export const BypassDeleteBody = z.object({ tenant: Name }).strict();
export const AuditQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) });
/** `since`: only samples taken after this time (ms), so the dashboard fetches what is new. */
export const HistoryQuery = z.object({ endpoint: Name.optional(), since: z.coerce.number().nonnegative().optional() });

/** `x-sluice-actor`: a person's or a tool's name for the audit log. */
export const ActorHeader = z.string().min(1).max(64).regex(/^[\x21-\x7e][\x20-\x7e]*$/, 'printable ASCII, up to 64 characters');

/** A validation failure the API answers with 400. */
export class BadRequest extends SluiceError {
  readonly code = ErrorCode.BadRequest;
  constructor(
    message: string,
    /** Dotted paths of the fields at fault. */
    readonly fields: string[],
  ) {
    super(message);
  }
}

/**
 * Parses `input` or throws BadRequest naming each field at fault as a dotted path under `base`
 * (e.g. `burst`, `weights.urgent`, `query.limit`, `params.name`; `(body)` for the body itself).
 */
export function parseOr400<S extends z.ZodType>(schema: S, input: unknown, base?: string): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const { fields, message } = formatIssues(r.error, input, { base, root: '(body)' });
  throw new BadRequest(message, fields);
}
