/**
 * Observability: the Prometheus registry, the per-worker wait reporter and the fleet-wide endpoint views.
 *
 * @module sluice/metrics
 */
export { createMetrics, OTHER_TENANTS } from './registry.js';
export type { MetricsOptions, SluiceMetrics } from './registry.js';
export { startWaitReporter } from './reporter.js';
export type { WaitReporter, WaitReporterOptions } from './reporter.js';
export { readEndpointViews } from './endpoint-view.js';
export type { EndpointView, ReadViewsOptions } from './endpoint-view.js';
export { readFleetWaits } from './fleet-waits.js';
export type { FleetWaits } from './fleet-waits.js';
export { WAIT_BUCKETS_MS, WAITED_THRESHOLD_MS } from './wait-histogram.js';
export type { JobQueue, QueuesInput } from './job-queues.js';
