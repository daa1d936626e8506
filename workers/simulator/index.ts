/** A local TikTok simulator: generated graph, TikTok-shaped pages and JSON, hidden limits. */
export { startSimulator, type Simulator, type SimulatorOptions, type RefusalOptions, type LimitStep, type LimitPeriod } from './server.js';
export { createGraph, type GraphOptions, type SimGraph, type SimCreator, type SimVideo, type SimHashtag } from './graph.js';
export { computeGroundTruth, type GroundTruth, type GroundTruthOptions, type Seeds } from './ground-truth.js';
export { SIM_KEYS, HiddenLimits, type SimKey, type Limit, type Limits, type LimitsUpdate } from './limits.js';
export { pageIdentity, REFUSALS, type SimStats, type KeyStats, type Refusal } from './stats.js';
export { API_REFUSALS, PAGE_REFUSALS, type ApiRefusal, type PageRefusal } from './refusals.js';
