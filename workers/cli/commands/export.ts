/**
 * `sluice export --format csv|jsonl [--out file]`: every (domain, profile) pair of the
 * namespace, streamed to a file or stdout (see workers/results/export.ts for the formats).
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { loadConfigFile, resolveNamespace } from '../../config/load.js';
import { connectRedis } from '../../fleet/redis.js';
import { exportResults, type ExportFormat } from '../../results/export.js';
import { ResultsStore } from '../../results/store.js';

export interface ExportCommandOptions {
  format: ExportFormat;
  /** A file to write (replaced). Default: stdout. */
  out?: string;
  config?: string;
  redis?: string;
  /** Namespace. Default: SLUICE_NAMESPACE, then the config file's. */
  namespace?: string;
  /** Where the closing note goes. Default process.stderr. */
  err?: NodeJS.WritableStream;
}

/** Writes the export; resolves with the number of rows. */
export async function exportCommand(opts: ExportCommandOptions): Promise<number> {
  const namespace = resolveNamespace(loadConfigFile(opts.config), opts.namespace);
  const redis = await connectRedis(opts.redis ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const stream = opts.out ? createWriteStream(opts.out) : process.stdout;
  try {
    if (opts.out) await once(stream, 'open');
    const { rows } = await exportResults(new ResultsStore(redis, namespace), { format: opts.format, out: stream });
    (opts.err ?? process.stderr).write(`exported ${rows} row${rows === 1 ? '' : 's'} (${opts.format})${opts.out ? ` to ${opts.out}` : ''}\n`);
    return rows;
  } finally {
    if (opts.out) await new Promise<void>((resolve) => (stream as NodeJS.WritableStream).end(resolve));
    await redis.quit().catch(() => redis.disconnect());
  }
}
