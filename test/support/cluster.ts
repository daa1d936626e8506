/**
 * A real local Redis Cluster for tests: N masters (3 by default), no replicas, on free ports, each
 * a `redis-server` child process with its own temporary directory. Never touches port 6379 or any
 * Redis it did not start.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { freePort } from '../../workers/embedded/free-port.js';
import { waitForPort } from '../../workers/embedded/redis-server.js';

export interface ClusterNode {
  host: string;
  port: number;
  /** The cluster bus port (`cluster-port`). */
  busPort: number;
  pid: number;
}

export interface LocalCluster {
  /** `redis://127.0.0.1:P`, one per master: what `{ cluster: urls }` takes. */
  urls: string[];
  nodes: ClusterNode[];
  /** Kills every node it started and removes their directory. */
  stop(): Promise<void>;
}

export interface LocalClusterOptions {
  /** Masters (at least 3: `redis-cli --cluster create` refuses fewer). Default 3. */
  masters?: number;
  /** How long to wait for `cluster_state:ok` on every node. Default 20 s. */
  timeoutMs?: number;
  /** `requirepass` (and `masterauth`) of every node; the returned URLs do not carry it. Default: none. */
  password?: string;
}

function installed(cmd: string): boolean {
  try {
    execFileSync(cmd, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Throws a clear error when the binaries a cluster needs are missing: a test must fail, not skip. */
export function assertClusterTools(): void {
  const missing = ['redis-server', 'redis-cli'].filter((cmd) => !installed(cmd));
  if (missing.length) {
    throw new Error(
      `cannot start a local Redis Cluster: ${missing.join(' and ')} not found on PATH. ` +
        'Install them (Debian: `apt-get install -y redis-server redis-tools`); the cluster tests need a real cluster.',
    );
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


interface Started {
  node: ClusterNode;
  child: ChildProcess;
}

async function startNode(dir: string, password: string | undefined): Promise<Started> {
  // two free ports: the client port and the bus port (an explicit `cluster-port`, so the default
  // port + 10000 cannot fall on someone else's port or past 65535)
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const busPort = await freePort();
    if (port === 6379 || busPort === 6379 || port === busPort) continue;
    const child = spawn(
      'redis-server',
      [
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--cluster-enabled', 'yes',
        '--cluster-port', String(busPort),
        '--cluster-config-file', join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', '5000',
        '--save', '',
        '--appendonly', 'no',
        '--dir', dir,
        ...(password ? ['--requirepass', password, '--masterauth', password] : []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output = (output + String(d)).slice(-4000)));
    child.stderr?.on('data', (d: Buffer) => (output = (output + String(d)).slice(-4000)));
    try {
      await waitForPort(port, 10_000, child, () => output);
      return { node: { host: '127.0.0.1', port, busPort, pid: child.pid ?? -1 }, child };
    } catch (err) {
      lastError = err;
      await kill(child);
    }
  }
  throw new Error(`could not start a cluster node: ${String(lastError)}`, { cause: lastError });
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`, { cause: err }));
      else resolve(stdout);
    });
  });
}

/** Polls every node until it reports `cluster_state:ok` and knows all 16384 slots. */
async function waitForClusterOk(nodes: ClusterNode[], timeoutMs: number, password: string | undefined): Promise<void> {
  const clients = nodes.map((n) => new Redis({ host: n.host, port: n.port, lazyConnect: true, maxRetriesPerRequest: 1, ...(password ? { password } : {}) }));
  const deadline = Date.now() + timeoutMs;
  let last = '';
  try {
    for (;;) {
      const infos = await Promise.all(clients.map((c) => c.cluster('INFO').then(String, (e: unknown) => String(e))));
      if (infos.every((i) => /cluster_state:ok/.test(i) && /cluster_slots_ok:16384/.test(i) && new RegExp(`cluster_known_nodes:${nodes.length}\\b`).test(i))) return;
      last = infos.join('\n---\n');
      if (Date.now() > deadline) throw new Error(`the local cluster did not reach cluster_state:ok within ${timeoutMs} ms:\n${last}`);
      await sleep(100);
    }
  } finally {
    for (const c of clients) c.disconnect();
  }
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Starts a local cluster; the caller must `stop()` it (an exit hook kills leftovers if it cannot). */
export async function startLocalCluster(options: LocalClusterOptions = {}): Promise<LocalCluster> {
  assertClusterTools();
  const masters = options.masters ?? 3;
  if (masters < 3) throw new Error(`a Redis Cluster needs at least 3 masters, asked for ${masters}`);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const child of running) child.kill('SIGKILL');
    });
  }
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cluster-'));
  const started: Started[] = [];
  const stop = async () => {
    await Promise.all(started.map(async (s) => {
      await kill(s.child);
      running.delete(s.child);
    }));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      const s = await startNode(dir, options.password);
      started.push(s);
      running.add(s.child);
    }
    const nodes = started.map((s) => s.node);
    await run(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((n) => `${n.host}:${n.port}`), '--cluster-replicas', '0', '--cluster-yes', ...(options.password ? ['-a', options.password, '--no-auth-warning'] : [])],
      30_000,
    );
    await waitForClusterOk(nodes, options.timeoutMs ?? 20_000, options.password);
    return { urls: nodes.map((n) => `redis://${n.host}:${n.port}`), nodes, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * A local 3-master cluster for one test file: started before its tests, stopped after them, with
 * one plain connection per master in `direct` (to read what each server holds). Read its fields
 * inside tests, not at the file's top level (they are set by beforeAll).
 */
export function useLocalCluster(): { cluster: LocalCluster; direct: Redis[] } {
  const shared = { cluster: undefined as unknown as LocalCluster, direct: [] as Redis[] };
  beforeAll(async () => {
    // no skip: without redis-server this throws a clear error and every test of the file fails
    shared.cluster = await startLocalCluster();
    shared.direct = shared.cluster.nodes.map((n) => new Redis({ host: n.host, port: n.port }));
  }, 60_000);
  afterAll(async () => {
    for (const r of shared.direct) r.disconnect();
    await shared.cluster?.stop();
  });
  return shared;
}
