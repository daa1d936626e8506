import type { HttpLimiterConfig, PolicyRef } from './options.js';
import type { LimitRequest } from './request.js';

/**
 * Which policy a request falls under: the first rule whose method, route and country all match,
 * else the limiter's `policy`; a tier map then picks by the caller's tier. Routes are matched on
 * the router's pattern (or the decoded, normalised path), never the raw URL: `/%61dmin` is `/admin`.
 */

interface CompiledRule {
  methods: Set<string> | undefined;
  routes: ((route: string) => boolean)[] | undefined;
  countries: Set<string> | undefined;
  policy: PolicyRef;
}

function routeMatcher(pattern: string): (route: string) => boolean {
  if (pattern.endsWith('*')) {
    const prefix = pattern.slice(0, -1);
    return (route) => route.startsWith(prefix);
  }
  return (route) => route === pattern;
}

export class PolicySelector {
  private readonly rules: CompiledRule[];
  private readonly fallback: PolicyRef;
  private readonly countryHeader: string | undefined;

  constructor(config: HttpLimiterConfig, firstPolicy: string) {
    this.rules = config.rules.map((r) => ({
      methods: r.method && new Set(r.method),
      routes: r.route?.map(routeMatcher),
      countries: r.country && new Set(r.country),
      policy: r.policy,
    }));
    this.fallback = config.policy === undefined ? firstPolicy : config.policy;
    this.countryHeader = config.countryHeader?.toLowerCase();
  }

  /** The policy name for this request and tier, or null when it is not limited. */
  select(req: LimitRequest, tier: string): string | null {
    let ref = this.fallback;
    let country: string | undefined;
    for (const rule of this.rules) {
      if (rule.methods && !rule.methods.has(req.method.toUpperCase())) continue;
      if (rule.routes && !rule.routes.some((m) => m(req.route))) continue;
      if (rule.countries) {
        country ??= (this.countryHeader && req.header(this.countryHeader)?.trim().toUpperCase()) || '';
        if (!rule.countries.has(country)) continue;
      }
      ref = rule.policy;
      break;
    }
    return this.pick(ref, tier);
  }

  /** A policy reference resolved for a tier. */
  pick(ref: PolicyRef, tier: string): string | null {
    if (ref === null || typeof ref === 'string') return ref;
    // parseHttpLimiterConfig checked that every tier map has a `default`
    return Object.hasOwn(ref, tier) ? ref[tier]! : ref.default!;
  }
}
