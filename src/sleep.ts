/** Timing helpers shared by every waiter. */
import { performance as perf } from 'node:perf_hooks';

/**
 * Spreads a delay by ±fraction so that waiters that computed the same delay do not wake on the
 * same millisecond (a thundering herd against Redis).
 */
export function jitter(ms: number, fraction = 0.1): number {
  return Math.max(0, ms * (1 + (Math.random() * 2 - 1) * fraction));
}

// read once: the global `performance` and its `timeOrigin` are getters, called several times per acquire
const ORIGIN = perf.timeOrigin;

/** Monotonic wall-clock ms with sub-ms precision. */
export function nowMs(): number {
  return ORIGIN + perf.now();
}

/** Resolves after `ms`; rejects with the signal's reason if it fires first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
