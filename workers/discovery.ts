/**
 * Discovery worker process: seeds (hashtags, keywords, creators, videos) → profile handles,
 * enqueued for harvesting. `node --import tsx workers/discovery.ts`; settings in
 * workers/fleet/process.ts (SLUICE_CONFIG, REDIS_URL, SLUICE_TIKTOK_BASE_URL, SLUICE_NAMESPACE).
 */
import { runWorkerMain } from './fleet/process.js';

runWorkerMain('discovery');
