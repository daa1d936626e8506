/**
 * The admin surface: HTTP server (API, /metrics, dashboard) and the views it serves.
 *
 * @module sluice/admin
 */
export { createAdminServer, INNGEST_PATH } from './server.js';
export type { AdminServer, AdminServerOptions } from './server.js';
export { readFleet } from './fleet.js';
export type { FleetView, ResultsCounter } from './fleet.js';
export type { HistorySample } from './history.js';
export type { Role, Credentials } from './auth.js';
