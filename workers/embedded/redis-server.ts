import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { freePort } from './free-port.js';

/** A private redis-server child process: used by the demo and the tests, never a shared Redis. */
export interface EmbeddedRedis {
  url: string;
  port: number;
  pid: number;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

export interface EmbeddedRedisOptions {
  port?: number;
  /** Extra `redis-server` arguments, e.g. `['--appendonly', 'yes']`. */
  args?: string[];
  /** Keep data on disk in this directory instead of a fresh temporary one. */
  dir?: string;
}

export function redisServerAvailable(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolves once `port` accepts connections; rejects at the deadline, or at once if `child` (the
 * server being waited for) has exited. `output` adds the server's last words to the message.
 */
export function waitForPort(port: number, timeoutMs: number, child?: ChildProcess, output: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child && (child.exitCode !== null || child.signalCode !== null)) {
        reject(new Error(`redis-server on port ${port} exited (${child.exitCode ?? child.signalCode}): ${output().slice(-1000)}`));
        return;
      }
      const socket = createConnection({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.end();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`redis-server did not listen on port ${port} within ${timeoutMs} ms ${output().slice(-1000)}`.trim()));
        else setTimeout(attempt, 25);
      });
    };
    attempt();
  });
}

export async function startEmbeddedRedis(options: EmbeddedRedisOptions = {}): Promise<EmbeddedRedis> {
  if (!redisServerAvailable()) {
    throw new Error(
      'redis-server is not installed. Install it (Debian: `apt-get install -y redis-server`) or point Sluice at a Redis with REDIS_URL.',
    );
  }
  const port = options.port ?? (await freePort());
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'sluice-redis-'));
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...(options.args ?? [])],
    { stdio: 'ignore', detached: false },
  );
  let exited = false;
  // a private server must not outlive its owner, even one that ends with process.exit()
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => {
    exited = true;
    process.removeListener('exit', killOnExit);
  });
  await waitForPort(port, 10_000, child);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: child.pid ?? -1,
    stop: async () => {
      if (!exited) {
        const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGKILL');
        await done;
      }
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
