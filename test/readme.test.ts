import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { quickstart } from '../docs/examples/quickstart.js';
import * as api from '../src/index.js';
import { redisUrl, testNamespace } from './support/helpers.js';

describe('README', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

  it('runs the quick start as written', async () => {
    const order = await quickstart(redisUrl(), testNamespace('qs'));
    expect(order).toHaveLength(12);
    // the first two go on the burst; after that, while both wait, high gets 3 turns per low
    const firstEight = order.slice(0, 8).filter((o) => o.startsWith('high')).length;
    expect(firstEight).toBeGreaterThanOrEqual(5);
  });

  it('names the two set-up commands and every exported function it documents', () => {
    expect(readme).toMatch(/npm run demo/);
    expect(readme).toMatch(/npm test/);
    for (const name of ['createThrottler', 'acquire', 'tryAcquire', 'penalize', 'configure', 'pause', 'resume', 'setDryRun', 'setShadow', 'setBypass', 'inspect', 'onEvent', 'auditLog', 'close']) {
      expect(readme, name).toContain(name);
    }
    for (const error of ['ThrottleTimeoutError', 'QueueFullError', 'AbortError', 'UnknownEndpointError', 'CostAboveBurstError', 'RedisUnavailableError']) {
      expect(api, error).toHaveProperty(error);
      expect(readme, error).toContain(error);
    }
  });

  it('reports only benchmark figures that a bench run wrote', () => {
    const results = readFileSync(new URL('../bench/results.md', import.meta.url), 'utf8');
    const table = results.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| what'));
    expect(table.length).toBeGreaterThan(4);
    for (const line of table) expect(readme).toContain(line);
  });
});
