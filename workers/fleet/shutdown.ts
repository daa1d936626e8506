/**
 * Graceful shutdown on SIGTERM / SIGINT: the first signal runs the close sequence (let active
 * jobs finish, close the browser and the throttler) and exits when it is done; a second signal
 * exits at once. Jobs a hard kill interrupts are not lost: their BullMQ locks expire and
 * another worker's stalled-job check hands them out again.
 */
import type { Logger } from 'sluice';

export interface ShutdownOptions {
  logger?: Logger;
  /** Signals to handle. Default SIGTERM and SIGINT. */
  signals?: NodeJS.Signals[];
  /** Exit the process when `close` is done. Default true. */
  exit?: boolean;
}

/**
 * Runs `close` once on the first signal, then exits with 0 (1 if close threw). Returns a function
 * that removes the handlers.
 */
export function onShutdown(close: () => Promise<void>, options: ShutdownOptions = {}): () => void {
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  let closing = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (closing) {
      options.logger?.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    closing = true;
    options.logger?.info({ signal }, 'shutting down: letting active jobs finish');
    close().then(
      () => {
        options.logger?.info('shut down cleanly');
        if (options.exit ?? true) process.exit(0);
      },
      (err: unknown) => {
        options.logger?.error({ err }, 'shutdown failed');
        if (options.exit ?? true) process.exit(1);
      },
    );
  };
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
}
