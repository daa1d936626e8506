/**
 * Harvesting worker process: profile handles → the domains their bios link to, in the results
 * store. `node --import tsx workers/harvesting.ts`; settings in workers/fleet/process.ts
 * (SLUICE_CONFIG, REDIS_URL, SLUICE_TIKTOK_BASE_URL, SLUICE_NAMESPACE).
 */
import { runWorkerMain } from './fleet/process.js';

runWorkerMain('harvesting');
