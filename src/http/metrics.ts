import { Counter, Registry } from 'prom-client';

/** Outcomes counted per request, by policy. */
export type Outcome = 'allowed' | 'limited' | 'queued' | 'blocked' | 'failed' | 'skipped';

export interface HttpMetrics {
  readonly registry: Registry;
  /** `sluice_http_requests_total{policy, outcome, reason}`. */
  readonly requests: Counter<'policy' | 'outcome' | 'reason'>;
}

/**
 * The limiter's counters, in the given registry or one of its own (never prom-client's global
 * one). Reasons: limited by `rate`, `day`, `month`, `queue-timeout`, `queue-full`; failed
 * `closed` or `open`; skipped by `allowlist` or `unlimited`; blocked `new` or `active`.
 */
export function createHttpMetrics(registry = new Registry()): HttpMetrics {
  const requests = new Counter({
    name: 'sluice_http_requests_total',
    help: 'Inbound requests decided by this process, by policy, outcome (allowed, limited, queued, blocked, failed, skipped) and reason.',
    labelNames: ['policy', 'outcome', 'reason'] as const,
    registers: [registry],
  });
  return { registry, requests };
}
