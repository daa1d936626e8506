/**
 * The `demo:` section of a config file (config/demo.yml): how many worker processes, which seeds,
 * and the simulator's graph and hidden limits.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { parseSeedLine } from '../../jobs/seeds.js';
import type { JobKind, Seed } from '../../jobs/schemas.js';
import { describeIssues, DurationInput, Name } from 'sluice';
import { InvalidConfigError, InvalidPayloadError } from 'sluice';
import type { SluiceFile } from '../config/load.js';
import { SIM_KEYS } from '../simulator/index.js';

/** config/demo.yml of this checkout. */
export const DEMO_CONFIG_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'config', 'demo.yml');

const Limit = z.object({ ratePerSec: z.number().nonnegative(), burst: z.number().min(1) }).strict();

export const DemoSection = z
  .object({
    /** Worker processes per queue, at most (see {@link fitWorkers}). Default 2 and 2. */
    workers: z
      .object({ discovery: z.number().int().min(1).max(8).default(2), harvesting: z.number().int().min(1).max(8).default(2) })
      .strict()
      .default({ discovery: 2, harvesting: 2 }),
    /** Tenant and priority of the demo's jobs. */
    tenant: Name.default('demo'),
    priority: Name.default('normal'),
    /** Seeds in the seeds-file syntax: `#tag`, `@creator`, `keyword:text`, `video:id`. */
    seeds: z.array(z.string()).min(1),
    simulator: z
      .object({
        graph: z.object({ seed: z.union([z.string(), z.number()]), creators: z.number().int().min(1).max(10_000).optional() }).strict(),
        /** Hidden limits per simulator key (search, hashtag, creator, video, profile). */
        limits: z.partialRecord(z.enum(SIM_KEYS), Limit).default({}),
      })
      .strict(),
    /** Longest run; the demo stops early and summarizes what it has. Default 2 min. */
    durationMs: DurationInput.default(120_000),
  })
  .strict();
export type DemoSection = z.output<typeof DemoSection>;

/** Validates the `demo:` section of a loaded config file, and parses its seeds. */
export function demoSection(file: Pick<SluiceFile, 'demo'> & { path: string }): DemoSection & { parsedSeeds: Seed[] } {
  const { path, demo: raw } = file;
  if (raw === undefined) throw new InvalidConfigError(`config ${path} has no demo: section (see config/demo.yml)`);
  const parsed = DemoSection.safeParse(raw);
  if (!parsed.success) throw new InvalidConfigError(`invalid demo config in ${path}: ${describeIssues(parsed.error, raw)}`);
  const parsedSeeds: Seed[] = [];
  for (const line of parsed.data.seeds) {
    try {
      const seed = parseSeedLine(line);
      if (seed) parsedSeeds.push(seed);
    } catch (err) {
      if (err instanceof InvalidPayloadError) throw new InvalidConfigError(`invalid demo seed ${JSON.stringify(line)} in ${path}: ${err.message}`);
      throw err;
    }
  }
  return { ...parsed.data, parsedSeeds };
}

/** How many worker processes of one queue the demo starts, and jobs at once in each. */
export interface WorkerLayout {
  processes: number;
  concurrency: number;
}

/**
 * The demo's worker processes for a machine with `cores` CPUs: at most one per queue per two
 * cores, each running as many jobs at once as the configured processes would have together.
 * Every process drives a Chromium of its own; on 2 cores, 4 of them kept the load average at
 * 20-99 and starved the timers that space the requests (the throttle's let-go, the simulator's
 * clock), so requests spaced by the throttle arrived bunched. Fewer processes, same jobs at once.
 */
export function fitWorkers(workers: Record<JobKind, number>, concurrency: number, cores: number): Record<JobKind, WorkerLayout> {
  const fit = (configured: number): WorkerLayout => {
    const processes = Math.min(configured, Math.max(1, Math.floor(cores / 2)));
    // 64: the most FleetSettings accepts
    return { processes, concurrency: Math.min(64, Math.ceil((concurrency * configured) / processes)) };
  };
  return { discovery: fit(workers.discovery), harvesting: fit(workers.harvesting) };
}
