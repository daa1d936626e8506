/**
 * Redis Sentinel: a real master, a real replica and a real sentinel (`redis-server --sentinel`).
 * The throttler finds the master through the sentinel, and after the master dies and the sentinel
 * promotes the replica, callers that waited meanwhile (failure policy `closed`) are admitted by
 * the new master, with the buckets replication carried over.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedRedis, waitForPort, type EmbeddedRedis } from '../workers/embedded/redis-server.js';
import { createThrottler, type Throttler } from '../src/index.js';
import { freePort } from '../workers/embedded/free-port.js';
import { logSink, until } from './support/helpers.js';

const MASTER = 'sluice-master';

let master: EmbeddedRedis;
let replica: EmbeddedRedis;
let sentinel: ChildProcess;
let sentinelPort: number;
let dir: string;

beforeAll(async () => {
  master = await startEmbeddedRedis();
  replica = await startEmbeddedRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
  sentinelPort = await freePort();
  dir = mkdtempSync(join(tmpdir(), 'sluice-sentinel-'));
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${sentinelPort}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${MASTER} 127.0.0.1 ${master.port} 1`,
      `sentinel down-after-milliseconds ${MASTER} 1000`,
      `sentinel failover-timeout ${MASTER} 5000`,
      '',
    ].join('\n'),
  );
  sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  await waitForPort(sentinelPort, 10_000, sentinel);
  const r = new Redis(replica.url);
  await until('the replica to sync', async () => /master_link_status:up/.test(await r.info('replication')), 20_000);
  r.disconnect();
  // the sentinel must know the replica before it can promote it
  const s = new Redis({ port: sentinelPort, host: '127.0.0.1' });
  await until('the sentinel to see the replica', async () => ((await s.call('SENTINEL', 'REPLICAS', MASTER)) as unknown[]).length === 1, 20_000);
  s.disconnect();
}, 60_000);

afterAll(async () => {
  sentinel?.kill('SIGKILL');
  await master?.stop();
  await replica?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Redis Sentinel', () => {
  let throttler: Throttler;
  const sink = logSink();

  it('finds the master through the sentinel and admits there', async () => {
    throttler = createThrottler({
      redis: { sentinels: [{ host: '127.0.0.1', port: sentinelPort }], name: MASTER },
      namespace: 'sentinel',
      endpoints: { e: { rate: '50/s', burst: 5 } },
      logger: sink.logger,
    });
    for (let i = 0; i < 5; i++) await throttler.acquire('e');
    const direct = new Redis(master.url);
    try {
      expect((await direct.keys('sluice:{sentinel}:*')).length).toBeGreaterThan(0);
    } finally {
      direct.disconnect();
    }
  });

  it('after the master dies and the replica is promoted, waiting callers are admitted by the new master', async () => {
    await master.stop();
    // failure policy closed: these wait through the failover instead of failing or going unchecked
    const waiting = Promise.all(Array.from({ length: 3 }, () => throttler.acquire('e')));
    const promoted = new Redis(replica.url);
    try {
      await until('the sentinel to promote the replica', async () => ((await promoted.call('ROLE').catch(() => [])) as string[])[0] === 'master', 30_000);
      const admissions = await waiting;
      expect(admissions).toHaveLength(3);
      expect(admissions.every((a) => a.degraded === undefined)).toBe(true);
      // the new master holds the bucket now
      expect((await promoted.keys('sluice:{sentinel}:*')).length).toBeGreaterThan(0);
      // and the outage was said out loud
      expect(sink.lines.some((l) => String(l.msg).includes('Redis unreachable'))).toBe(true);
    } finally {
      promoted.disconnect();
      await throttler.close();
    }
  }, 45_000);
});
