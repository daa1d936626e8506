import { createRequire } from 'node:module';
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** Paths never written to a log: credentials, cookies, tokens. */
export const REDACT = [
  'redis.password',
  'password',
  'token',
  'authorization',
  'headers.authorization',
  'headers.cookie',
  'cookie',
  'req.headers.authorization',
  'req.headers.cookie',
];

/**
 * The root logger: JSON lines to stdout, or pretty lines when a person watches (a TTY, or
 * SLUICE_LOG_PRETTY=1). Level from SLUICE_LOG_LEVEL (default info).
 */
export function createRootLogger(options: LoggerOptions = {}): Logger {
  const wanted = process.env.SLUICE_LOG_PRETTY === '1' || (process.env.SLUICE_LOG_PRETTY !== '0' && process.stdout.isTTY === true && !process.env.CI);
  // pino-pretty is the app's choice, not a dependency of the library: JSON lines when it is absent
  const pretty = wanted && canResolve('pino-pretty');
  return pino({
    level: process.env.SLUICE_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT, censor: '[redacted]' },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } } : {}),
    ...options,
  });
}

function canResolve(name: string): boolean {
  try {
    createRequire(import.meta.url).resolve(name);
    return true;
  } catch {
    return false;
  }
}

let root: Logger | undefined;

/** The process's root logger, created on first use. */
export function rootLogger(): Logger {
  root ??= createRootLogger();
  return root;
}
