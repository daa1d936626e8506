import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { InvalidConfigError } from 'sluice';
import { checkDefaultPriority, describeIssues, Name, ThrottlerConfig } from 'sluice';
import { FleetSettings } from '../fleet/settings.js';

/** The project's default config file. */
export const DEFAULT_CONFIG_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'config', 'default.yml');

/** The whole file, read and validated once: the throttle plus what the fleet needs around it. */
export const SluiceFile = z.object({
  namespace: Name.default('sluice'),
  /** Base URL of TikTok's web app (or the simulator's). */
  tiktokBaseUrl: z.url().default('https://www.tiktok.com'),
  throttle: ThrottlerConfig.omit({ namespace: true }),
  /** The workers' settings (concurrency, timeouts, follow rules...), defaults for what it leaves out. */
  fleet: FleetSettings.default(() => FleetSettings.parse({})),
  /** The demo's section (config/demo.yml), validated by `demoSection()` where the demo runs. */
  demo: z.unknown().optional(),
});
export type SluiceFile = z.output<typeof SluiceFile>;

/** Reads and parses a YAML file; InvalidConfigError names the file when it cannot. */
export function readYamlFile(path: string): unknown {
  const full = resolve(path);
  try {
    return parseYaml(readFileSync(full, 'utf8'));
  } catch (err) {
    throw new InvalidConfigError(`cannot read config ${full}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Reads the config file (SLUICE_CONFIG, else config/default.yml), validates it once, and returns
 * it with the throttler's input ready to pass to createThrottler.
 */
export function loadConfigFile(path = process.env.SLUICE_CONFIG ?? DEFAULT_CONFIG_PATH): SluiceFile & { path: string } {
  const full = resolve(path);
  const raw = readYamlFile(full);
  const parsed = SluiceFile.safeParse(raw);
  if (!parsed.success) throw new InvalidConfigError(`invalid config ${full}: ${describeIssues(parsed.error, raw)}`);
  checkDefaultPriority(parsed.data.throttle, `invalid config ${full}: throttle`);
  return { ...parsed.data, path: full };
}

/**
 * The namespace a command or worker works in: the `--namespace` flag, else SLUICE_NAMESPACE, else
 * the config file's `namespace`. Every command and every worker resolves it here: a producer that
 * read the file while the workers read the variable would fill queues no worker watches.
 */
export function resolveNamespace(file: Pick<SluiceFile, 'namespace'>, flag?: string): string {
  const [value, from] = flag !== undefined ? [flag, '--namespace'] : process.env.SLUICE_NAMESPACE ? [process.env.SLUICE_NAMESPACE, 'SLUICE_NAMESPACE'] : [file.namespace, 'namespace'];
  const parsed = Name.safeParse(value);
  if (!parsed.success) throw new InvalidConfigError(`${from}: ${describeIssues(parsed.error, value)}`);
  return parsed.data;
}
