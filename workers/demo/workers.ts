/**
 * Worker processes for the demo (and the tests that need real processes): each is
 * `node --import tsx workers/<kind>.ts`, configured through its environment, its JSON logs in a
 * file of its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { JobKind } from '../../jobs/schemas.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The tsx loader as a file URL, so the child does not depend on its working directory. */
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export interface WorkerEnv {
  configPath: string;
  redisUrl: string;
  namespace: string;
  baseUrl: string;
  /** False sets SLUICE_THROTTLE=off. */
  throttle: boolean;
  /** Extra variables (e.g. SLUICE_CONCURRENCY). */
  extra?: Record<string, string>;
}

export interface WorkerProcess {
  kind: JobKind;
  label: string;
  child: ChildProcess;
  logPath: string;
  /** Exit code (or signal name) once the process has exited. */
  exit: Promise<number | string>;
  exited: boolean;
}

/** Starts `workers/<kind>.ts` as a child process; stdout and stderr go to `logPath`. */
export function spawnWorker(kind: JobKind, label: string, env: WorkerEnv, logPath: string): WorkerProcess {
  const fd = openSync(logPath, 'a');
  const child = spawn(process.execPath, ['--import', TSX_LOADER, join(ROOT, 'workers', `${kind}.ts`)], {
    cwd: ROOT,
    stdio: ['ignore', fd, fd],
    env: {
      ...process.env,
      SLUICE_CONFIG: env.configPath,
      REDIS_URL: env.redisUrl,
      SLUICE_NAMESPACE: env.namespace,
      SLUICE_TIKTOK_BASE_URL: env.baseUrl,
      SLUICE_THROTTLE: env.throttle ? 'on' : 'off',
      SLUICE_LOG_PRETTY: '0',
      ...env.extra,
    },
  });
  closeSync(fd);
  const proc: WorkerProcess = {
    kind,
    label,
    child,
    logPath,
    exited: false,
    exit: new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        proc.exited = true;
        resolve(code ?? signal ?? -1);
      });
    }),
  };
  return proc;
}

/**
 * Asks a worker to stop (SIGTERM: active jobs finish), and kills it if it has not exited within
 * `graceMs`. Resolves with how it ended.
 */
export async function stopWorker(proc: WorkerProcess, graceMs = 20_000): Promise<number | string> {
  if (!proc.exited) proc.child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (!proc.exited) proc.child.kill('SIGKILL');
  }, graceMs);
  try {
    return await proc.exit;
  } finally {
    clearTimeout(timer);
  }
}

/** True once the worker logged that it is fetching jobs. */
export function isReady(proc: WorkerProcess): boolean {
  try {
    return readFileSync(proc.logPath, 'utf8').includes('"msg":"worker ready"');
  } catch {
    return false;
  }
}

/** Admissions per endpoint the worker logged when it stopped; undefined if it did not stop cleanly. */
export function admissionsOf(proc: WorkerProcess): Record<string, number> | undefined {
  return stoppedField(proc, 'admitted');
}

/** Penalties by kind the worker logged when it stopped; undefined if it did not stop cleanly. */
export function penaltiesOf(proc: WorkerProcess): Record<string, number> | undefined {
  return stoppedField(proc, 'penalties');
}

function stoppedField(proc: WorkerProcess, field: 'admitted' | 'penalties' | 'lateRequeued'): Record<string, number> | undefined {
  let text: string;
  try {
    text = readFileSync(proc.logPath, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n').reverse()) {
    if (!line.includes('"msg":"worker stopped"')) continue;
    try {
      return (JSON.parse(line) as Record<typeof field, Record<string, number> | undefined>)[field];
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Slots written off per endpoint because the worker came late for them; undefined if it did not stop cleanly. */
export function lateRequeuedOf(proc: WorkerProcess): Record<string, number> | undefined {
  return stoppedField(proc, 'lateRequeued');
}

/** The last lines of a worker's log, to explain why it died. */
export function logTail(proc: WorkerProcess, lines = 8): string {
  try {
    return readFileSync(proc.logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
