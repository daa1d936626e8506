/**
 * `sluice demo [--json] [--duration 60s] [--sim-limit-factor 0.5] [--sim-limit-schedule 2m=0.5,5m=1] [--report f.html] [--no-throttle] [--concurrency N]`: the whole
 * fleet against the TikTok simulator (workers/demo/orchestrator.ts). Progress on stderr, the summary
 * on stdout: a table, or with --json one JSON line. Ctrl-C stops early and still summarizes.
 * Uses config/demo.yml unless --config names another file (SLUICE_CONFIG is for real fleets and
 * is not read here).
 */
import { runDemo, type DemoOptions } from '../../demo/orchestrator.js';
import { formatSummary, type DemoSummary } from '../../demo/summary.js';

export interface DemoCommandOptions {
  json?: boolean;
  /** Longest run in ms. */
  durationMs?: number;
  simLimitFactor?: number;
  /** Hidden limits that move during the run (`--sim-limit-schedule`). */
  simLimitSchedule?: DemoOptions['simLimitSchedule'];
  /** Where to write the HTML report (`--report`). */
  report?: string;
  /** False disables the throttle (`--no-throttle`). */
  throttle?: boolean;
  /** Jobs at once per worker process. */
  concurrency?: number;
  config?: string;
  redis?: string;
}

/** Runs the demo and prints its summary. */
export async function demoCommand(opts: DemoCommandOptions): Promise<DemoSummary> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    const options: DemoOptions = { signal: stop.signal, throttle: opts.throttle ?? true };
    if (opts.config) options.configPath = opts.config;
    if (opts.redis) options.redis = opts.redis;
    if (opts.durationMs !== undefined) options.durationMs = opts.durationMs;
    if (opts.simLimitFactor !== undefined) options.simLimitFactor = opts.simLimitFactor;
    if (opts.concurrency !== undefined) options.concurrency = opts.concurrency;
    if (opts.simLimitSchedule !== undefined) options.simLimitSchedule = opts.simLimitSchedule;
    if (opts.report !== undefined) options.reportPath = opts.report;
    const summary = await runDemo(options);
    process.stdout.write(opts.json ? `${JSON.stringify(summary)}\n` : `${formatSummary(summary)}\n`);
    return summary;
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
}
