/**
 * What users of the `sluice` command tripped on, as they run it (real processes, real Redis, a
 * real admin server): durations without a unit, a namespace the producer and the workers resolve
 * differently, `--priority` and backpressure on enqueue, `sluice limits` on the admin API, and
 * which value wins when a runtime override and the config file disagree.
 */
import { execFile } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQueues, type SluiceQueues } from '../jobs/queues.js';
import { adminCommand, type RunningAdmin } from '../workers/cli/commands/admin.js';
import { limitSources, renderLimitSources } from '../workers/cli/commands/status.js';
import { DEFAULT_CONFIG_PATH } from '../workers/config/load.js';
import { throttleSwitch } from '../workers/fleet/process.js';
import { ResultsStore } from '../workers/results/store.js';
import type { EndpointView } from '../src/metrics/index.js';
import type { AuditEntry } from '../src/index.js';
import { redisUrl, testNamespace } from './support/helpers.js';

const BIN = fileURLToPath(new URL('../bin/sluice.js', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion, with none of the caller's SLUICE_* or REDIS_URL variables unless given. */
function sluice(args: string[], env: Record<string, string> = {}, timeoutMs = 180_000): Promise<Run> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SLUICE_') && k !== 'REDIS_URL'));
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...base, SLUICE_LOG_PRETTY: '0', ...env }, timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');

let dir: string;
let redis: Redis;
let configPath: string;
/** The config file's namespace: nothing may land there when another one is asked for. */
const fileNs = testNamespace('clic-file');
const opened: SluiceQueues[] = [];

function queuesOf(namespace: string): SluiceQueues {
  const q = createQueues({ connection: redis, namespace });
  opened.push(q);
  return q;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-clic-'));
  const config = parse(readFileSync(DEFAULT_CONFIG_PATH, 'utf8')) as Record<string, unknown>;
  config.namespace = fileNs;
  configPath = join(dir, 'config.yml');
  writeFileSync(configPath, stringify(config));
  redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
});

afterAll(async () => {
  for (const q of opened) {
    await q.discovery.obliterate({ force: true }).catch(() => undefined);
    await q.harvesting.obliterate({ force: true }).catch(() => undefined);
    await q.close();
  }
  await redis?.quit();
  rmSync(dir, { recursive: true, force: true });
});

describe('durations', () => {
  it('a bare number is refused with the unit to add, for every duration option', async () => {
    const cases = [
      ['demo', '--duration', '60'],
      ['limits', 'set', 'tiktok.profile', '--rate', '80/min', '--ttl', '3600'],
      ['limits', 'pause', 'tiktok.profile', '--for', '10'],
      ['enqueue', 'harvesting', '--handle', 'bob', '--max-backlog', '5', '--wait', '30'],
    ];
    const runs = await Promise.all(cases.map((args) => sluice(args)));
    runs.forEach((run, i) => {
      const value = cases[i]!.at(-1)!;
      const label = `sluice ${cases[i]!.join(' ')}:\n${run.stderr}`;
      expect(run.code, label).toBe(2);
      expect(run.stderr, label).toMatch(new RegExp(`a bare number has no unit: write ${value}s \\(seconds\\), ${value}min or ${value}ms`));
      expect(lines(run.stderr), label).toHaveLength(1);
    });
  }, 240_000);
});

describe('namespace: --namespace > SLUICE_NAMESPACE > the config file, for every command', () => {
  it('enqueue, status and export follow SLUICE_NAMESPACE; the flag beats it; a bad value is refused', async () => {
    const envNs = testNamespace('clic-env');
    const flagNs = testNamespace('clic-flag');
    const common = ['--config', configPath, '--redis', redisUrl()];
    await new ResultsStore(redis, envNs).recordProfile({ handle: 'carol', domains: ['carol.example'], at: Date.now() });
    try {
      const [enq, flagged, status, exported, bad, demo] = await Promise.all([
        sluice([...common, 'enqueue', 'harvesting', '--handle', 'bob'], { SLUICE_NAMESPACE: envNs }),
        sluice([...common, '--namespace', flagNs, 'enqueue', 'harvesting', '--handle', 'dave'], { SLUICE_NAMESPACE: envNs }),
        sluice([...common, 'status', '--json'], { SLUICE_NAMESPACE: envNs }),
        sluice([...common, 'export', '--format', 'jsonl'], { SLUICE_NAMESPACE: envNs }),
        sluice([...common, 'status'], { SLUICE_NAMESPACE: 'no spaces {allowed}' }),
        sluice(['--namespace', flagNs, 'demo']),
      ]);
      for (const run of [enq, flagged, status, exported]) expect(run.code, run.stderr).toBe(0);
      expect((await queuesOf(envNs).harvesting.getJobs(['waiting', 'prioritized'])).map((j) => j.data.handle)).toEqual(['bob']);
      expect((await queuesOf(flagNs).harvesting.getJobs(['waiting', 'prioritized'])).map((j) => j.data.handle)).toEqual(['dave']);
      expect(await queuesOf(fileNs).harvesting.count()).toBe(0);
      expect((JSON.parse(status.stdout) as { namespace: string }).namespace).toBe(envNs);
      expect(lines(exported.stdout).map((l) => JSON.parse(l) as { handle: string }).map((r) => r.handle)).toEqual(['carol']);
      expect(bad.code).toBe(2);
      expect(lines(bad.stderr)).toEqual([expect.stringMatching(/^sluice: SLUICE_NAMESPACE: /)]);
      // never silently ignored
      expect(demo.code).toBe(2);
      expect(lines(demo.stderr)).toEqual(['sluice: --namespace does not apply to the demo: each run uses a fresh namespace of its own']);
    } finally {
      await new ResultsStore(redis, envNs).clear();
    }
  }, 240_000);

  it('the admin server serves the SLUICE_NAMESPACE namespace', async () => {
    const envNs = testNamespace('clic-admin');
    const before = process.env.SLUICE_NAMESPACE;
    process.env.SLUICE_NAMESPACE = envNs;
    let admin: RunningAdmin | undefined;
    try {
      admin = await adminCommand({ port: 0, config: configPath, redis: redisUrl(), handleSignals: false, logger: pino({ level: 'silent' }) });
      const body = (await (await fetch(`${admin.url}/api/endpoints`)).json()) as { namespace: string };
      expect(body.namespace).toBe(envNs);
    } finally {
      if (before === undefined) delete process.env.SLUICE_NAMESPACE;
      else process.env.SLUICE_NAMESPACE = before;
      await admin?.close();
    }
  });
});

describe('enqueue: priority and backpressure', () => {
  it('a higher-priority re-enqueue raises the waiting job and says so; depth is reported; --max-backlog refuses with exit code 3', async () => {
    const ns = testNamespace('clic-prio');
    const common = ['--config', configPath, '--redis', redisUrl(), '--namespace', ns];
    const first = await sluice([...common, 'enqueue', 'harvesting', '--handle', 'erin', '--priority', 'low']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^queue harvesting: 1 job not yet started$/m);
    const again = await sluice([...common, 'enqueue', 'harvesting', '--handle', 'erin', '--priority', 'high']);
    expect(again.code, again.stderr).toBe(0);
    expect(lines(again.stdout)).toEqual([
      'enqueued 0 harvesting jobs (1 duplicate skipped, 0 invalid)',
      'raised 1 waiting duplicate to priority high',
      'queue harvesting: 1 job not yet started',
    ]);
    const [job] = await queuesOf(ns).harvesting.getJobs(['prioritized']);
    expect(job?.priority).toBe(1);
    expect(job?.data.priority).toBe('high');

    const full = await sluice([...common, 'enqueue', 'harvesting', '--handle', 'frank', '--max-backlog', '1']);
    expect(full.code).toBe(3);
    expect(lines(full.stderr)).toEqual([expect.stringMatching(/^sluice: queue "harvesting" holds 1 jobs not yet started \(max backlog 1\): 0 enqueued/)]);
    const fromEnv = await sluice([...common, 'enqueue', 'harvesting', '--handle', 'frank'], { SLUICE_MAX_BACKLOG: '1' });
    expect(fromEnv.code).toBe(3);
    const noLimit = await sluice([...common, 'enqueue', 'harvesting', '--handle', 'frank', '--wait', '5s']);
    expect(noLimit.code).toBe(2);
    expect(noLimit.stderr).toMatch(/--wait needs a backlog limit/);
    expect(await queuesOf(ns).harvesting.count()).toBe(1);
  }, 240_000);
});

describe('sluice limits (through a real admin server) and what status says wins', () => {
  const ns = testNamespace('clic-limits');
  const token = 'test-admin-token-0123456789';
  let admin: RunningAdmin;
  let env: Record<string, string>;
  const common = () => ['--config', configPath, '--redis', redisUrl(), '--namespace', ns];

  beforeAll(async () => {
    admin = await adminCommand({ port: 0, token, namespace: ns, config: configPath, redis: redisUrl(), handleSignals: false, logger: pino({ level: 'silent' }) });
    env = { SLUICE_ADMIN_URL: admin.url, SLUICE_ADMIN_TOKEN: token };
  });
  afterAll(async () => {
    await admin?.close();
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `sluice:{${ns}}:*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    if (keys.length) await redis.del(...keys);
  });

  async function endpoint(name: string): Promise<EndpointView> {
    const res = await fetch(`${admin.url}/api/endpoints/${name}`, { headers: { authorization: `Bearer ${token}` } });
    return (await res.json()) as EndpointView;
  }

  it('set, pause, resume and reset change the fleet and print the new state', async () => {
    const set = await sluice(['limits', 'set', 'tiktok.profile', '--rate', '80/min', '--burst', '4', '--ttl', '1h'], env);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/^tiktok\.profile: rate 1\.33\/s, burst 4, \(config file: 50\/min, burst 100\), override until \S+ \(in 60min\)$/m);
    let v = await endpoint('tiktok.profile');
    expect(v.effective.ratePerSec).toBeCloseTo(80 / 60, 6);
    expect(v.effective.burst).toBe(4);

    const paused = await sluice(['limits', 'pause', 'tiktok.profile', '--for', '10min', '--reason', 'test'], env);
    expect(paused.code, paused.stderr).toBe(0);
    expect(paused.stdout).toMatch(/PAUSED until \S+ \(in 10min\)/);
    expect((await endpoint('tiktok.profile')).paused?.until).toBeGreaterThan(Date.now() + 9 * 60_000);

    const resumed = await sluice(['limits', 'resume', 'tiktok.profile'], env);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect((await endpoint('tiktok.profile')).paused).toBeNull();

    const reset = await sluice(['limits', 'reset', 'tiktok.profile'], env);
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.stdout).toMatch(/^tiktok\.profile: rate 50\/min, burst 100, \(the config file's\)$/m);
    v = await endpoint('tiktok.profile');
    expect(v.effective.burst).toBe(v.configured.burst);
    expect(v.effective.ratePerSec).toBeCloseTo(v.configured.ratePerSec, 9);
    expect(v.overrides).toEqual({});

    const audit = (await (await fetch(`${admin.url}/api/audit`, { headers: { authorization: `Bearer ${token}` } })).json()) as { entries: { actor: string; change: string }[] };
    expect(audit.entries.map((e) => e.change)).toEqual(['reset overrides', 'resume', 'pause for 600000 ms: test', 'configure for 3600000 ms']);
    for (const e of audit.entries) expect(e.actor).toMatch(/^cli:\S+ \(admin-token\)$/);
  }, 240_000);

  it('errors name what to fix: bad input exits 2, an unreachable or refusing server exits 1', async () => {
    // a port nothing listens on: bound, then released
    const closedPort = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const cases: [string[], Record<string, string>, number, RegExp][] = [
      [['limits', 'set', 'tiktok.profile'], env, 2, /nothing to set: give --rate/],
      [['limits', 'set', 'tiktok.profile', '--rate', 'fast'], env, 2, /write a rate like 80\/min/],
      [['limits', 'set', 'tiktok.nope', '--rate', '1/s'], env, 2, /tiktok\.nope/],
      [['limits', 'set', 'tiktok.profile', '--rate', '1/s'], { ...env, SLUICE_ADMIN_TOKEN: 'wrong-token-wrong-token' }, 1, /refused the credentials \(401: .*\): set SLUICE_ADMIN_TOKEN/],
      [['limits', 'set', 'tiktok.profile', '--rate', '1/s'], { SLUICE_ADMIN_TOKEN: token, SLUICE_ADMIN_URL: `http://127.0.0.1:${closedPort}` }, 1, new RegExp(`cannot reach the admin server at http://127\\.0\\.0\\.1:${closedPort}: ECONNREFUSED \\(start it with \`sluice admin\``)],
      [['limits', 'resume', 'tiktok.profile', '--admin-url', 'nonsense'], env, 2, /admin URL "nonsense" is not a URL/],
    ];
    const runs = await Promise.all(cases.map(([args, e]) => sluice(args, e)));
    runs.forEach((run, i) => {
      const [args, , code, message] = cases[i]!;
      const label = `sluice ${args.join(' ')}:\n${run.stderr}`;
      expect(run.code, label).toBe(code);
      expect(run.stderr, label).toMatch(message);
      expect(lines(run.stderr), label).toHaveLength(1);
    });
    expect((await endpoint('tiktok.profile')).effective.ratePerSec).toBeCloseTo(50 / 60, 6);
  }, 240_000);

  it('status shows which value wins over the config file, set when and by whom, and until when', async () => {
    const set = await sluice(['limits', 'set', 'tiktok.search', '--rate', '30/min'], env);
    expect(set.code, set.stderr).toBe(0);
    const [text, json] = await Promise.all([sluice([...common(), 'status']), sluice([...common(), 'status', '--json'])]);
    expect(text.code, text.stderr).toBe(0);
    const row = lines(text.stdout).find((l) => l.startsWith('tiktok.search') && l.includes('runtime override'));
    expect(row, text.stdout).toMatch(/^tiktok\.search\s+rate\s+30\/min\s+10\/min\s+runtime override\s+\d+s ago by cli:\S+ \(admin-token\)\s+in 30d$/);
    expect(text.stdout).toMatch(/beats the config file until it expires or `sluice limits reset <endpoint>`/);
    const limits = (JSON.parse(json.stdout) as { limits: unknown[] }).limits;
    expect(limits).toEqual([
      expect.objectContaining({ endpoint: 'tiktok.search', field: 'rate', value: '30/min', configured: '10/min', source: 'runtime override', setBy: expect.stringMatching(/^cli:/) }),
    ]);
    const { expiresAt } = limits[0] as { expiresAt: number };
    expect(expiresAt).toBeGreaterThan(Date.now() + 29 * 86_400_000);
  }, 240_000);
});

describe('limitSources (pure)', () => {
  const now = 1_000_000_000_000;
  const view = (over: Partial<EndpointView>): EndpointView =>
    ({
      endpoint: 'e',
      configured: { ratePerSec: 1, burst: 10, maxQueue: 100 },
      effective: { ratePerSec: 1, burst: 10, maxQueue: 100 },
      weights: {},
      temporaryUntil: null,
      overrides: {},
      ...over,
    }) as EndpointView;

  it('a temporary override beats a permanent one; adaptive explains a rate nobody set; the config file is not listed', () => {
    const audit: AuditEntry[] = [
      { at: now - 60_000, actor: 'bob (admin)', endpoint: 'e', change: 'configure for 600000 ms', before: { rate: '0.002' }, after: { rate: '0.002', 'tmp:rate': '0.005', 'tmp:until': String(now + 540_000) } },
      { at: now - 3_600_000, actor: 'alice (admin)', endpoint: 'e', change: 'configure', before: {}, after: { rate: '0.002' } },
    ];
    const temp = limitSources(
      view({ effective: { ratePerSec: 5, burst: 10, maxQueue: 100 }, temporaryUntil: now + 540_000, overrides: { rate: '0.002', 'tmp:rate': '0.005', 'tmp:until': String(now + 540_000) } }),
      audit,
      30 * 86_400_000,
      now,
    );
    expect(temp).toEqual([{ endpoint: 'e', field: 'rate', value: '5/s', configured: '1/s', source: 'temporary override', setAt: now - 60_000, setBy: 'bob (admin)', expiresAt: now + 540_000 }]);
    // once the temporary one has lapsed, the permanent override is what wins
    const perm = limitSources(view({ effective: { ratePerSec: 2, burst: 10, maxQueue: 100 }, overrides: { rate: '0.002', 'tmp:rate': '0.005', 'tmp:until': String(now - 1) } }), audit, 5_000, now);
    expect(perm).toEqual([expect.objectContaining({ source: 'runtime override', setBy: 'alice (admin)', expiresAt: now + 5_000 })]);
    expect(limitSources(view({ effective: { ratePerSec: 0.5, burst: 10, maxQueue: 100 } }), [], -2, now)).toEqual([expect.objectContaining({ field: 'rate', source: 'adaptive', value: '30/min' })]);
    expect(limitSources(view({}), [], -2, now)).toEqual([]);
    expect(renderLimitSources(perm, now)).toMatch(/e\s+rate\s+2\/s\s+1\/s\s+runtime override\s+60min ago by alice \(admin\)\s+in 5s/);
  });
});

describe('SLUICE_THROTTLE=off', () => {
  it('is refused unless the base URL is a simulator on this machine (the demo), before anything starts', async () => {
    const common = ['--config', configPath, '--redis', redisUrl(), '--namespace', testNamespace('clic-off')];
    const [tiktok, typo] = await Promise.all([
      sluice([...common, 'worker', 'harvesting'], { SLUICE_THROTTLE: 'off' }, 120_000),
      sluice([...common, 'worker', 'harvesting'], { SLUICE_THROTTLE: 'of' }, 120_000),
    ]);
    expect(tiktok.code, tiktok.stderr).toBe(2);
    expect(lines(tiktok.stderr)).toEqual([expect.stringMatching(/^sluice: SLUICE_THROTTLE=off refused: the TikTok base URL https:\/\/www\.tiktok\.com is not a simulator on this machine/)]);
    expect(typo.code, typo.stderr).toBe(2);
    expect(typo.stderr).toMatch(/SLUICE_THROTTLE must be "on" or "off" \(received "of"\)/);
    // the demo's workers: a simulator on loopback
    expect(throttleSwitch('off', 'http://127.0.0.1:4010')).toBe(false);
    expect(throttleSwitch('off', 'http://localhost:4010')).toBe(false);
    expect(throttleSwitch(undefined, 'https://www.tiktok.com')).toBe(true);
    expect(throttleSwitch('on', 'https://www.tiktok.com')).toBe(true);
    expect(() => throttleSwitch('off', 'http://10.0.0.5:4010')).toThrow(/refused/);
  }, 240_000);
});
