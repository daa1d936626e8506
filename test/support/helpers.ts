import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { inject } from 'vitest';
import { createThrottler, type Throttler, type ThrottlerOptions } from '../../src/index.js';

/** The private redis-server the global setup started for this run. */
export function redisUrl(): string {
  return inject('redisUrl');
}

/** A namespace no other test uses. */
export function testNamespace(label = 't'): string {
  return `${label}-${randomBytes(5).toString('hex')}`;
}

/** A JSON-line sink: tests read what was logged, no mocks. */
export function logSink(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

const opened: { throttler: Throttler; redis: Redis }[] = [];

/** A throttler on the test Redis in a fresh namespace; `cleanup()` closes it and deletes its keys. */
export function makeThrottler(options: Omit<ThrottlerOptions, 'redis'> & { redis?: ThrottlerOptions['redis'] }): Throttler {
  const throttler = createThrottler({ namespace: testNamespace(), redis: redisUrl(), logger: pino({ level: 'silent' }), ...options });
  opened.push({ throttler, redis: throttler.redis as Redis });
  return throttler;
}

/** Keys of a namespace (SCAN, never KEYS on a shared server). */
export async function namespaceKeys(redis: Redis, namespace: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `sluice:{${namespace}}:*`, 'COUNT', 1000);
    cursor = next;
    out.push(...batch);
  } while (cursor !== '0');
  return out;
}

export async function cleanup(): Promise<void> {
  for (const { throttler } of opened.splice(0)) {
    const keys = await namespaceKeys(throttler.redis as Redis, throttler.keys.namespace).catch(() => []);
    if (keys.length) await (throttler.redis as Redis).del(...keys).catch(() => undefined);
    await throttler.close();
  }
}

export function newRedis(): Redis {
  return new Redis(redisUrl());
}

/**
 * Polls `probe` every 100 ms until it returns a value (not undefined or false) and resolves with
 * it; after `timeoutMs` rejects with "timed out waiting for <what>" plus `detail()` when given.
 */
export async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000, detail?: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${detail ? `\n${detail()}` : ''}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}
