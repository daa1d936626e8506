import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyConfigInput } from '../src/http/index.js';
import { newRedis, redisUrl, testNamespace } from './support/helpers.js';
import { startReadyProcess } from './support/processes.js';

const SERVER = fileURLToPath(new URL('./support/http-server-process.ts', import.meta.url));
const PROCESSES = 4;
const LIMIT = 50;

interface Server {
  child: ChildProcess;
  url: string;
}

async function startServer(spec: object): Promise<Server> {
  const { child, ready } = await startReadyProcess(SERVER, spec, /ready (\d+)/);
  return { child, url: `http://127.0.0.1:${ready[1]}` };
}

async function stopServer(s: Server): Promise<void> {
  const exited = new Promise((r) => s.child.once('exit', r));
  s.child.stdin!.end();
  await exited;
}

/** `perServer` concurrent requests to every server at once; returns how many each server admitted. */
async function burst(servers: Server[], path: string, perServer: number): Promise<{ admitted: number; statuses: Record<number, number> }> {
  const statuses: Record<number, number> = {};
  await Promise.all(
    servers.flatMap((s) =>
      Array.from({ length: perServer }, async () => {
        const res = await fetch(`${s.url}${path}`);
        await res.arrayBuffer();
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      }),
    ),
  );
  return { admitted: statuses[200] ?? 0, statuses };
}

const setClock = (group: Server[], ms: number) => Promise.all(group.map((s) => fetch(`${s.url}/__clock?ms=${ms}`, { method: 'POST' }).then((r) => r.arrayBuffer())));

// one window starts at a multiple of the window on the epoch: 12:00:00.000 UTC is one for 10 s
const T0 = Date.UTC(2026, 5, 15, 12, 0, 0);

describe(`${PROCESSES} server processes share one limit on one hot key: 0 over-admission`, () => {
  const cases: [string, PolicyConfigInput][] = [
    ['token-bucket', { algorithm: 'token-bucket', rate: `${LIMIT}/10s`, burst: LIMIT }],
    ['gcra', { algorithm: 'gcra', rate: `${LIMIT}/10s`, burst: LIMIT }],
    ['sliding-window', { algorithm: 'sliding-window', rate: `${LIMIT}/10s` }],
    ['fixed-window', { algorithm: 'fixed-window', rate: `${LIMIT}/10s` }],
  ];
  const namespace = testNamespace('http-procs');
  let servers: Server[] = [];

  beforeAll(async () => {
    const spec = { redisUrl: redisUrl(), namespace, policies: Object.fromEntries(cases), clockMs: T0 + 1 };
    servers = await Promise.all(Array.from({ length: PROCESSES }, () => startServer(spec)));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(servers.map(stopServer));
    const redis = newRedis();
    const [, keys] = await redis.scan('0', 'MATCH', `sluice:{${namespace}:h*`, 'COUNT', 1000);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });

  // the clock is shared by the four policies: each case moves it forward from where the last left it
  let base = T0 + 1;
  for (const [name] of cases) {
    it(`${name}: ${PROCESSES} x 100 concurrent requests at one instant admit exactly ${LIMIT}`, async () => {
      const path = `/work/${name}`;
      await setClock(servers, base);
      const { admitted, statuses } = await burst(servers, path, 100);
      expect(statuses).toEqual({ 200: LIMIT, 429: PROCESSES * 100 - LIMIT });
      expect(admitted).toBe(LIMIT);
      if (name === 'fixed-window' || name === 'sliding-window') {
        const end = Math.floor(base / 10_000) * 10_000 + 10_000;
        await setClock(servers, end - 1);
        expect((await burst(servers, path, 50)).admitted).toBe(0);
        if (name === 'fixed-window') {
          // its documented boundary: the last ms of a window and the first of the next admit a full limit each
          await setClock(servers, end);
          expect((await burst(servers, path, 100)).admitted).toBe(LIMIT);
        } else {
          // the previous window still weighs: room for one only 1/LIMIT of a window into the next
          await setClock(servers, end + 10_000 / LIMIT - 1);
          expect((await burst(servers, path, 25)).admitted).toBe(0);
          await setClock(servers, end + 10_000 / LIMIT);
          expect((await burst(servers, path, 25)).admitted).toBe(1);
        }
      } else {
        // one request's worth of time later, exactly one more
        await setClock(servers, base + 10_000 / LIMIT);
        expect((await burst(servers, path, 25)).admitted).toBe(1);
      }
      base += 60_000;
    });
  }
});
