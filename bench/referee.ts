/**
 * An outside referee for the let-go bound (issue 12, item 5): nginx `limit_req` at the throttle's
 * rate and burst in front of a 200 route, driven by several fleet processes at full utilization.
 * Every 429 is a request the upstream saw before the bucket allowed it.
 *
 *   npm run bench:referee -- [--seconds 20] [--processes 3] [--callers 8] [--fleet-rate 20] [--tolerance ms]
 *
 * `--fleet-rate 21` is the control: a fleet 5% over the referee's rate must meet 429s.
 *
 * The referee runs at the same rate and burst as the fleet, as nginx counts them: `burst=B nodelay`
 * admits B + 1 at once, one request of room for what the throttle cannot see, the time between a
 * caller's let-go and its request's arrival (at a burst-1 referee, the first requests of a run,
 * slower on new connections, compress the next gap and meet one 429 at start-up). `--fleet-rate 21`
 * shows the referee does refuse: 5% over its rate, the fleet meets a 429 a second.
 * Needs nginx (`apt-get install -y nginx`), which runs unprivileged with `-p <dir> -c <conf>`.
 */
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startEmbeddedRedis } from '../workers/embedded/redis-server.js';
import { freePort } from '../workers/embedded/free-port.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '20' }, processes: { type: 'string', default: '3' }, callers: { type: 'string', default: '8' }, 'fleet-rate': { type: 'string', default: '20' }, tolerance: { type: 'string' } } });
const seconds = Number(values.seconds);
const processes = Number(values.processes);
const callers = Number(values.callers);
const RATE = 20;
// the fleet's rate; above RATE it is the control run that shows the referee does refuse
const FLEET_RATE = Number(values['fleet-rate']);
const BURST = 2;

const CHILD = fileURLToPath(new URL('./referee-process.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sluice-referee-'));
mkdirSync(join(dir, 'logs'));
// nginx's workers may run as another user (nobody): they must be able to read the page
chmodSync(dir, 0o755);
mkdirSync(join(dir, 'www'));
writeFileSync(join(dir, 'www', 'index.html'), 'ok');
const port = await freePort();
writeFileSync(
  join(dir, 'nginx.conf'),
  `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  limit_req_zone $server_name zone=fleet:1m rate=${RATE}r/s;
  limit_req_status 429;
  server {
    listen 127.0.0.1:${port};
    server_name referee;
    # a static file, not \`return\`: return answers in the rewrite phase, before limit_req ever runs
    # unlimited: each fleet process opens its connections here first, so a cold connection's set-up
    # time does not compress the gap between its first requests and the next ones
    location = /warm { return 204; }
    location / { limit_req zone=fleet burst=${BURST} nodelay; root ${dir}/www; }
  }
}
`,
);
execFileSync('nginx', ['-t', '-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'pipe' });
const nginx = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 500));
const redis = await startEmbeddedRedis();

function run(spec: object): Promise<{ statuses: Record<string, number>; maxLateMs: number; firstAt: number; lastAt: number; refusedAt: { at: number; slot: number; lateMs: number }[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  return new Promise((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1)!)) : reject(new Error(`child exited ${code}`)))));
}

try {
  const load = loadavg()[0]!.toFixed(1);
  const results = await Promise.all(
    Array.from({ length: processes }, () => run({ redis: redis.url, namespace: 'referee', rate: `${FLEET_RATE}/s`, burst: BURST, callers, ...(values.tolerance !== undefined ? { lateToleranceMs: Number(values.tolerance) } : {}), seconds, url: `http://127.0.0.1:${port}/` })),
  );
  const ok = results.reduce((n, r) => n + (r.statuses['200'] ?? 0), 0);
  const refused = results.reduce((n, r) => n + (r.statuses['429'] ?? 0), 0);
  const other = results.reduce((n, r) => n + Object.entries(r.statuses).filter(([s]) => s !== '200' && s !== '429').reduce((m, [, c]) => m + c, 0), 0);
  const t0 = Math.min(...results.map((r) => r.firstAt));
  const refusals = results.flatMap((r) => r.refusedAt).map((x) => ({ ...x, at: x.at - t0, slot: Math.round(x.slot - t0) }));
  if (refusals.length) console.log('  refused (ms from the first request):', JSON.stringify(refusals));
  if (other > 0) throw new Error(`the referee answered ${other} requests with neither 200 nor 429: ${JSON.stringify(results.map((r) => r.statuses))}`);
  // what the bucket allowed over the span the fleet actually sent in (first to last request)
  const spanS = (Math.max(...results.map((r) => r.lastAt)) - Math.min(...results.map((r) => r.firstAt))) / 1000;
  const utilization = ok / (RATE * spanS + BURST);
  console.log(
    `referee nginx limit_req ${RATE}r/s burst ${BURST}; fleet ${processes} processes x ${callers} callers at ${FLEET_RATE}/s burst ${BURST} for ${seconds} s, lateToleranceMs ${values.tolerance ?? 'default'} (load ${load}):\n` +
      `  200: ${ok}, 429: ${refused}, utilization ${(utilization * 100).toFixed(1)}% of rate x ${spanS.toFixed(2)} s + burst, worst let-go lateness ${Math.max(...results.map((r) => r.maxLateMs))} ms`,
  );
} finally {
  nginx.kill('SIGTERM');
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
