/**
 * The package as a user gets it: `npm pack`, installed into a fresh project outside the
 * repository with only what a user would add, then used from plain Node (ESM and CommonJS),
 * type-checked by TypeScript (nodenext and bundler), and wired into the user's own Inngest
 * function and BullMQ worker. The scripts it runs are in test/package-consumer/.
 */
import { execFileSync, execSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisUrl, testNamespace } from './support/helpers.js';

const ROOT = join(import.meta.dirname, '..');
const CONSUMER = join(import.meta.dirname, 'package-consumer');
let project: string;
let tarball: string;

function run(file: string, ns: string): unknown {
  const out = execFileSync(process.execPath, [file], { cwd: project, env: { ...process.env, REDIS_URL: redisUrl(), NS: ns }, encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'sluice-user-'));
  // `npm pack` runs the build (prepack), so this is the tarball a release would publish
  const packed = execSync(`npm pack --silent --pack-destination ${project}`, { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').at(-1)!;
  tarball = join(project, packed);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-project', version: '1.0.0', private: true }));
  // what a user adds: the package, the Redis client, and the integrations they use; all in npm's cache after `npm ci`
  execSync(`npm install --prefer-offline --no-audit --no-fund --loglevel=error ${tarball} ioredis bullmq inngest @inngest/test typescript@^7`, { cwd: project, stdio: 'pipe', timeout: 240_000 });
  cpSync(CONSUMER, project, { recursive: true });
}, 300_000);

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
}, 120_000);

describe('the packed package in a fresh project', () => {
  it('ships the built library, its Lua scripts and nothing of the app or the tests', () => {
    const files = execSync(`tar -tzf ${tarball}`, { encoding: 'utf8' }).split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.cjs');
    expect(files).toContain('dist/index.d.ts');
    expect(files).toContain('dist/index.d.cts');
    expect(files.some((f) => f.startsWith('lua/') && f.endsWith('.lua'))).toBe(true);
    expect(files.filter((f) => /^(test|workers|jobs|bench|config|docs|bin)\//.test(f) || (f.startsWith('src/') && !f.endsWith('.html')))).toEqual([]);
  });

  it('pulls no browser, HTTP framework or CLI parser into the project of a throttle-only user', () => {
    const installed = readdirSync(join(project, 'node_modules'));
    for (const heavy of ['playwright', 'playwright-core', 'commander', 'tsx', 'tldts', 'fastify', 'prom-client']) expect(installed).not.toContain(heavy);
  });

  it('runs from plain Node ESM: a real acquire against Redis, and every entry point loads', () => {
    expect(run('esm.mjs', testNamespace('pkg-esm'))).toEqual({
      admitted: ['api.search', 'api.search'],
      refused: 'THROTTLE_TIMEOUT',
      entries: ['function', `sluice:{x:bull}`, 'function'],
    });
  });

  it('runs from CommonJS require()', () => {
    expect(run('cjs.cjs', testNamespace('pkg-cjs'))).toEqual({ admitted: 'api.cjs', entries: ['sluice:{y:bull}', 'function'] });
  });

  it.each(['nodenext', 'bundler'])('type-checks a user file under moduleResolution %s', (resolution) => {
    const module = resolution === 'nodenext' ? 'nodenext' : 'esnext';
    const tsc = join(project, 'node_modules', '.bin', 'tsc');
    const out = (() => {
      try {
        return execFileSync(tsc, ['--noEmit', '--strict', '--module', module, '--moduleResolution', resolution, '--target', 'es2022', '--types', 'node', '--skipLibCheck', 'false', 'typed.ts'], { cwd: project, encoding: 'utf8' });
      } catch (err) {
        return String((err as { stdout?: string }).stdout ?? err);
      }
    })();
    expect(out).toBe('');
  });

  it("throttles the user's own Inngest function, run with @inngest/test", () => {
    const out = run('user-inngest.mjs', testNamespace('pkg-inngest')) as { result: unknown; error: string | null; admitted: string[] };
    expect(out.error).toBeNull();
    expect(out.result).toEqual({ a: 'order 7 sent', b: 'partner.api' });
    expect(out.admitted).toEqual(['partner.api', 'partner.api']);
  });

  it("throttles the user's own BullMQ worker; an upstream 429 defers the job without spending its one attempt", () => {
    const out = run('user-bullmq.mjs', testNamespace('pkg-bullmq')) as { results: string[]; calls: Record<string, number>; attemptsMade: number; penalties: number };
    expect(out.results).toEqual(['plain done', 'refused-once done']);
    expect(out.calls).toEqual({ plain: 1, 'refused-once': 2 });
    expect(out.penalties).toBe(1);
    expect(out.attemptsMade).toBeLessThanOrEqual(1);
  });
});
