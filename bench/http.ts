/**
 * `npm run bench:http`: the inbound limiter against no limiter and its peers, in one run on one
 * private redis-server. Per server kind:
 *   throughput  autocannon, 50 connections, DURATION_S on one route, keys that never refuse:
 *               req/s and p99 relative to the same framework without a limiter
 *   redis cost  INFO commandstats and INFO cpu deltas over the throughput run, per request
 *   server CPU  the serving process's CPU time (process.cpuUsage) over the throughput run, per request
 *   memory      INFO memory delta after 10,000 distinct keys, per key
 *   safety      4 server processes, 4 x 200 concurrent requests on one hot key limited to 100
 *               per hour: admitted - 100 = over-admission
 * Figures drift from machine to machine and with the load of a shared one: the load average is
 * printed beside them; compare ratios of one run. CPU per request and commands per request move
 * little with load. BENCH_HTTP_KINDS=fastify-none,fastify-sluice runs only those kinds (a quick
 * look while working; the published table runs them all). Results: docs/benchmarks.md.
 */
import type { ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { startEmbeddedRedis } from '../workers/embedded/redis-server.js';
import { startReadyProcess } from '../test/support/processes.js';
import type { Kind } from './http/server.js';

const ALL_KINDS: Kind[] = ['fastify-none', 'fastify-sluice', 'fastify-rate-limit', 'fastify-rlf', 'express-none', 'express-sluice', 'express-erl'];
const KINDS = process.env.BENCH_HTTP_KINDS ? ALL_KINDS.filter((k) => process.env.BENCH_HTTP_KINDS!.split(',').includes(k)) : ALL_KINDS;

const SERVER = fileURLToPath(new URL('./http/server.ts', import.meta.url));
const DURATION_S = Number(process.env.BENCH_HTTP_SECONDS ?? 5);
const KEYS = 10_000;
const HOT_LIMIT = 100;
const PROCESSES = 4;

interface Server {
  child: ChildProcess;
  urls: Record<Kind, string>;
}

async function start(spec: object): Promise<Server> {
  const { child, ready } = await startReadyProcess(SERVER, spec, /ready (\{.*\})\n/);
  const ports = JSON.parse(ready[1]!) as Record<Kind, number>;
  return { child, urls: Object.fromEntries(Object.entries(ports).map(([k, p]) => [k, `http://127.0.0.1:${p}`])) as Record<Kind, string> };
}

/** CPU time the server process has used so far (µs). */
function serverCpu(s: Server): Promise<number> {
  return new Promise((resolve) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d;
      const m = /cpu (\d+)\n/.exec(out);
      if (m) {
        s.child.stdout!.off('data', onData);
        resolve(Number(m[1]));
      }
    };
    s.child.stdout!.on('data', onData);
    s.child.stdin!.write('cpu\n');
  });
}

function stop(s: Server): Promise<void> {
  const exited = new Promise<void>((r) => s.child.once('exit', () => r()));
  s.child.stdin!.end();
  return exited;
}

async function redisFigures(redis: Redis): Promise<{ calls: Map<string, number>; cpu: number; memory: number }> {
  const [stats, cpu, memory] = await Promise.all([redis.info('commandstats'), redis.info('cpu'), redis.info('memory')]);
  const calls = new Map<string, number>();
  for (const m of stats.matchAll(/^cmdstat_([\w|]+):calls=(\d+)/gm)) calls.set(m[1]!, Number(m[2]));
  const f = (text: string, name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? 0);
  return { calls, cpu: f(cpu, 'used_cpu_sys') + f(cpu, 'used_cpu_user'), memory: f(memory, 'used_memory') };
}

/** Commands per request by name (INFO and the bench's own reads left out). */
function commandsPer(before: Map<string, number>, after: Map<string, number>, requests: number): { total: number; byName: string } {
  const per: [string, number][] = [];
  for (const [name, n] of after) {
    if (name === 'info' || name === 'client|setname' || name === 'client|setinfo' || name === 'ping') continue;
    const d = (n - (before.get(name) ?? 0)) / requests;
    if (d >= 0.01) per.push([name, d]);
  }
  per.sort((a, b) => b[1] - a[1]);
  return { total: per.reduce((s, [, d]) => s + d, 0), byName: per.map(([n, d]) => `${n} ${d.toFixed(2)}`).join(', ') };
}

async function distinctKeys(url: string, n: number): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < n) {
      const i = next++;
      const res = await fetch(`${url}/work`, { headers: { 'x-client': `mem-${i}` } });
      await res.arrayBuffer();
    }
  }));
}

async function hotBurst(servers: Server[], kind: Kind, perServer: number): Promise<number> {
  let admitted = 0;
  await Promise.all(servers.flatMap((s) => Array.from({ length: perServer }, async () => {
    const res = await fetch(`${s.urls[kind]}/work`, { headers: { 'x-client': 'hot' } });
    await res.arrayBuffer();
    if (res.status === 200) admitted++;
  })));
  return admitted;
}

interface Row {
  kind: Kind;
  rps: number;
  p99: number;
  non2xx: number;
  commands?: { total: number; byName: string };
  cpuUsPerReq?: number;
  serverCpuUsPerReq: number;
  bytesPerKey?: number;
  overAdmission?: number;
}

async function main(): Promise<void> {
  const redisServer = await startEmbeddedRedis();
  const redis = new Redis(redisServer.url);
  const rows: Row[] = [];
  const loads: number[] = [];
  const t0 = Date.now();
  const spec = { redisUrl: redisServer.url, hotLimit: HOT_LIMIT, windowMs: 3_600_000 };
  const servers = await Promise.all(Array.from({ length: PROCESSES }, () => start(spec)));
  process.stderr.write(`${PROCESSES} server processes up in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  for (const kind of KINDS) {
    const limited = !kind.endsWith('-none');
    const main = { url: servers[0]!.urls[kind] };
    // warm-up: connections, script load, JIT
    await autocannon({ url: `${main.url}/work`, connections: 10, amount: 2000, headers: { 'x-client': 'bench' } });
    const before = await redisFigures(redis);
    const cpu0 = await serverCpu(servers[0]!);
    loads.push(loadavg()[0]!);
    const r = await autocannon({ url: `${main.url}/work`, connections: 50, duration: DURATION_S, headers: { 'x-client': 'bench' } });
    const cpu1 = await serverCpu(servers[0]!);
    const after = await redisFigures(redis);
    const requests = r.requests.total;
    const row: Row = { kind, rps: r.requests.average, p99: r.latency.p99, non2xx: r.non2xx, serverCpuUsPerReq: (cpu1 - cpu0) / requests };
    if (limited) {
      row.commands = commandsPer(before.calls, after.calls, requests);
      row.cpuUsPerReq = ((after.cpu - before.cpu) * 1e6) / requests;
      const m0 = (await redisFigures(redis)).memory;
      await distinctKeys(main.url, KEYS);
      const m1 = (await redisFigures(redis)).memory;
      row.bytesPerKey = (m1 - m0) / KEYS;
      row.overAdmission = (await hotBurst(servers, kind, 200)) - HOT_LIMIT;
    }
    rows.push(row);
    process.stderr.write(`${kind}: ${Math.round(row.rps)} req/s, p99 ${row.p99} ms, server CPU ${row.serverCpuUsPerReq.toFixed(1)} µs/req${row.commands ? `, ${row.commands.total.toFixed(2)} commands/req, over-admission ${row.overAdmission}` : ''} (load ${loadavg()[0]!.toFixed(1)})\n`);
    await redis.flushall();
  }
  await Promise.all(servers.map(stop));
  await redis.quit();
  await redisServer.stop();

  const base = (kind: Kind) => rows.find((r) => r.kind === (kind.startsWith('fastify') ? 'fastify-none' : 'express-none'));
  const lines = [
    `| server | req/s | vs no limiter | p99 ms | p99 vs no limiter | server CPU µs / req | Redis commands / req (by name) | Redis CPU µs / req | bytes / key | over-admission (4 procs, limit ${HOT_LIMIT}) |`,
    '|---|---:|---:|---:|---:|---:|---|---:|---:|---:|',
  ];
  for (const r of rows) {
    const b = base(r.kind);
    lines.push([
      r.kind, Math.round(r.rps), b ? `${((r.rps / b.rps) * 100).toFixed(0)}%` : '?', r.p99, !b ? '?' : r === b ? '—' : `${r.p99 >= b.p99 ? '+' : '−'}${Math.abs(r.p99 - b.p99).toFixed(0)} ms`,
      r.serverCpuUsPerReq.toFixed(1),
      r.commands ? `${r.commands.total.toFixed(2)} (${r.commands.byName})` : '—',
      r.cpuUsPerReq === undefined ? '—' : r.cpuUsPerReq.toFixed(1),
      r.bytesPerKey === undefined ? '—' : Math.round(r.bytesPerKey),
      r.overAdmission === undefined ? '—' : r.overAdmission,
    ].join(' | ').replace(/^/, '| ').replace(/$/, ' |'));
  }
  console.log(lines.join('\n'));
  console.log(`\n${DURATION_S} s per run, 50 connections; load average (1 min) at the runs: ${loads.map((l) => l.toFixed(1)).join(', ')}; total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

await main();
