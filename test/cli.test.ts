/**
 * The `sluice` command as a user runs it (`node bin/sluice.js ...`, real processes): bad input
 * is one line and exit code 2; enqueue → workers → export round trip against the simulator;
 * `demo --json` prints one JSON line.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQueues, type SluiceQueues } from '../jobs/queues.js';
import { DEMO_CONFIG_PATH } from '../workers/demo/config.js';
import { ResultsStore } from '../workers/results/store.js';
import { startSimulator, type Simulator } from '../workers/simulator/index.js';
import { redisUrl, testNamespace } from './support/helpers.js';

const BIN = fileURLToPath(new URL('../bin/sluice.js', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion. `REDIS_URL` is removed from the environment unless given. */
function sluice(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Run> {
  const base = { ...process.env };
  delete base.REDIS_URL;
  delete base.SLUICE_CONFIG;
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...base, SLUICE_LOG_PRETTY: '0', ...env }, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-running CLI process (workers). */
function start(args: string[], logPath: string): { child: ChildProcess; exit: Promise<number | null> } {
  const base = { ...process.env };
  delete base.REDIS_URL;
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...base, SLUICE_LOG_PRETTY: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d));
  child.stderr!.on('data', (d: Buffer) => (log += d));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    writeFileSync(logPath, log);
    resolve(code);
  }));
  return { child, exit };
}

let dir: string;
let sim: Simulator;
let redis: Redis;
let queues: SluiceQueues;
let configPath: string;
const namespace = testNamespace('cli');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
  sim = await startSimulator({ graph: { seed: 'cli', creators: 10 } });
  // the demo's config (fast rates, crawl settings) pointed at this test's simulator and namespace
  const config = parse(readFileSync(DEMO_CONFIG_PATH, 'utf8')) as Record<string, unknown>;
  config.namespace = namespace;
  config.tiktokBaseUrl = sim.url;
  delete config.demo;
  // rates are not what this test is about: let the round trip go fast
  const endpoints = (config.throttle as { endpoints: Record<string, unknown> }).endpoints;
  for (const name of Object.keys(endpoints)) endpoints[name] = { rate: '20/s', burst: 5 };
  // one level of discovery: what each seed shows, no crawl (the e2e test covers the crawl)
  (config.fleet as Record<string, unknown>).follow = { mentions: true, hashtags: false, creators: false };
  configPath = join(dir, 'config.yml');
  writeFileSync(configPath, stringify(config));
  redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  queues = createQueues({ connection: redis, namespace });
});

afterAll(async () => {
  await queues?.discovery.obliterate({ force: true }).catch(() => undefined);
  await queues?.harvesting.obliterate({ force: true }).catch(() => undefined);
  await new ResultsStore(redis, namespace).clear().catch(() => undefined);
  await queues?.close();
  await redis?.quit();
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

function oneLine(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('npm warn'));
}

describe('bad input', () => {
  it('exits with code 2 and one clear line, never a stack trace', async () => {
    const cases: [string[], RegExp][] = [
      [['worker', 'scraper'], /discovery, harvesting/],
      [['export', '--format', 'xml'], /csv, jsonl/],
      [['export'], /--format/],
      [['demo', '--duration', 'soon'], /duration like 60s/],
      [['demo', '--sim-limit-factor', '-1'], /number > 0/],
      [['worker', 'harvesting', '--concurrency', '0'], /--concurrency must be a whole number/],
      [['--config', join(dir, 'missing.yml'), 'export', '--format', 'csv'], /cannot read config/],
      [['--config', configPath, '--redis', redisUrl(), 'enqueue', 'discovery'], /nothing to enqueue/],
      [['--config', configPath, '--redis', redisUrl(), 'enqueue', 'discovery', '--hashtag', 'not a tag!'], /no valid seed/],
      [['--config', configPath, '--redis', redisUrl(), 'enqueue', 'discovery', '--hashtag', 'fyp', '--priority', 'urgent'], /--priority "urgent" is not one of/],
      [['--config', configPath, '--redis', redisUrl(), 'enqueue', 'discovery', '--file', join(dir, 'nope.txt')], /cannot read seeds file/],
      [['nonsense'], /unknown command/],
    ];
    const runs = await Promise.all(cases.map(([args]) => sluice(args)));
    runs.forEach((run, i) => {
      const [args, message] = cases[i]!;
      const label = `sluice ${args.join(' ')}:\n${run.stderr}`;
      expect(run.code, label).toBe(2);
      expect(run.stderr, label).toMatch(message);
      expect(run.stderr, label).not.toMatch(/\n\s+at /);
      const errors = oneLine(run.stderr).filter((l) => !l.startsWith('skipped'));
      expect(errors, label).toHaveLength(1);
    });
  }, 120_000);

  it('a Redis that cannot be reached is one line and exit code 1 (not bad input)', async () => {
    const run = await sluice(['--config', configPath, '--redis', 'redis://127.0.0.1:1', 'export', '--format', 'csv']);
    expect(run.code).toBe(1);
    expect(oneLine(run.stderr)).toEqual([expect.stringMatching(/^sluice: cannot reach Redis at redis:\/\/127\.0\.0\.1:1/)]);
  });


  it('a missing Chromium is one line naming the install command', async () => {
    const run = await sluice(['demo', '--json'], { SLUICE_CHROMIUM: join(dir, 'no-chromium') });
    expect(run.code).toBe(1);
    expect(oneLine(run.stderr)).toEqual([expect.stringMatching(/^sluice: Chromium not found at .*apt-get install -y chromium/)]);
    expect(run.stdout).toBe('');
  });
});

describe('enqueue → workers → export', () => {
  it('round-trips seeds from options and a file to exported domains', async () => {
    const g = sim.graph;
    const tag = g.hashtags[0]!.name;
    const keyword = g.keywords[0]!;
    const seedsFile = join(dir, 'seeds.txt');
    writeFileSync(seedsFile, `// demo seeds\nkeyword:${keyword}\n# not a tag\n`);
    const common = ['--config', configPath, '--redis', redisUrl()];

    const first = await sluice([...common, 'enqueue', 'discovery', '--hashtag', `#${tag}`, '--file', seedsFile, '--tenant', 'acme']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^enqueued 2 discovery jobs \(0 duplicates skipped, 0 invalid\)$/m);
    expect(first.stderr).toMatch(/skipped line 3: /);
    expect(first.stderr).toMatch(/seeds from .*seeds\.txt: 3/);
    const again = await sluice([...common, 'enqueue', 'discovery', '--hashtag', tag]);
    expect(again.stdout).toMatch(/enqueued 0 discovery jobs \(1 duplicate skipped/);

    const workers = [
      start([...common, 'worker', 'discovery', '--concurrency', '2'], join(dir, 'discovery.log')),
      start([...common, 'worker', 'harvesting', '--concurrency', '3'], join(dir, 'harvesting.log')),
    ];
    try {
      const deadline = Date.now() + 150_000;
      let idleTicks = 0;
      while (idleTicks < 2) {
        if (Date.now() > deadline) throw new Error(`queues did not drain:\n${workers.map((w) => w.child.pid).join(' ')}`);
        await new Promise((r) => setTimeout(r, 1_000));
        const d = await queues.discovery.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
        const h = await queues.harvesting.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
        const done = await queues.discovery.getJobCountByTypes('completed', 'failed');
        const pending = Object.values(d).reduce((a, b) => a + b, 0) + Object.values(h).reduce((a, b) => a + b, 0);
        idleTicks = pending === 0 && done >= 2 ? idleTicks + 1 : 0;
      }
    } finally {
      for (const w of workers) w.child.kill('SIGTERM');
    }
    // SIGTERM: active jobs finish, then a clean exit
    expect(await Promise.all(workers.map((w) => w.exit))).toEqual([0, 0]);
    const harvestLog = readFileSync(join(dir, 'harvesting.log'), 'utf8');
    expect(harvestLog).toMatch(/"msg":"shut down cleanly"/);

    const out = join(dir, 'pairs.jsonl');
    const exported = await sluice([...common, 'export', '--format', 'jsonl', '--out', out]);
    expect(exported.code, exported.stderr).toBe(0);
    const rows = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { domain: string; handle: string });
    expect(exported.stderr).toMatch(new RegExp(`exported ${rows.length} rows \\(jsonl\\) to `));
    // what the two seeds show: the tag's videos and the keyword's videos (authors, mentions) and accounts
    const handles = new Set<string>(g.searchUsers(keyword).map((c) => c.handle));
    for (const v of [...g.hashtag(tag)!.videoIds.map((id) => g.video(id)!), ...g.searchVideos(keyword)]) [v.author, ...v.mentions].forEach((h) => handles.add(h));
    const domainsOf = (h: string) => g.creator(h)?.domains ?? [];
    expect([...new Set(rows.map((r) => r.domain))].sort()).toEqual([...new Set([...handles].flatMap(domainsOf))].sort());
    for (const r of rows) expect(domainsOf(r.handle)).toContain(r.domain);

    const csv = await sluice([...common, 'export', '--format', 'csv']);
    expect(csv.code).toBe(0);
    const lines = csv.stdout.trim().split('\n');
    expect(lines[0]).toBe('domain,handle,nickname,first_seen,last_seen');
    expect(lines).toHaveLength(rows.length + 1);
  }, 240_000);
});

describe('demo --json', () => {
  it('prints the summary as one JSON line on stdout, with nothing configured (private Redis)', async () => {
    const run = await sluice(['demo', '--json', '--duration', '10s'], {}, 150_000);
    expect(run.code, run.stderr.slice(-2000)).toBe(0);
    const lines = run.stdout.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0]!) as Record<string, unknown>;
    for (const key of ['jobsCompleted', 'jobsFailed', 'domains', 'simulatorRequests', 'simulatorViolations', 'endpoints']) expect(summary).toHaveProperty(key);
    const profile = (summary.endpoints as Record<string, Record<string, unknown>>)['tiktok.profile']!;
    expect(profile).toMatchObject({ configuredPerSec: 1, simulatorLimitPerSec: 1.25 });
    expect(profile).toHaveProperty('achievedPerSec');
    expect(profile).toHaveProperty('simulatorMinTokens');
    expect(run.stderr).toMatch(/\[\s*\d+\.\ds\] discovery \d+ done/);
  }, 180_000);
});
