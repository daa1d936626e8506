import { afterEach, describe, expect, it } from 'vitest';
import { ThrottleTimeoutError } from '../src/index.js';
import { cleanup, makeThrottler } from './support/helpers.js';

afterEach(cleanup);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('operator controls', () => {
  it('pause holds every caller of one endpoint until resume; others go on', async () => {
    const t = makeThrottler({ endpoints: { a: { rate: '100/s', burst: 10 }, b: { rate: '100/s', burst: 10 } } });
    await t.pause('a', { actor: 'ops', reason: 'upstream incident' });
    expect(await t.tryAcquire('a')).toBe(false);
    expect(await t.tryAcquire('b')).toBe(true);
    await expect(t.acquire('a', { maxWaitMs: 1000 })).rejects.toBeInstanceOf(ThrottleTimeoutError);
    const waiting = t.acquire('a');
    await sleep(50);
    expect((await t.inspect('a')).paused).toBe(Infinity);
    await t.resume('a', { actor: 'ops' });
    const adm = await waiting;
    expect(adm.queued).toBe(true);
    expect((await t.inspect('a')).paused).toBeNull();
  });

  it('a timed pause ends by itself', async () => {
    const t = makeThrottler({ endpoints: { a: { rate: '100/s', burst: 10 } } });
    await t.pause('a', { durationMs: 300 });
    const adm = await t.acquire('a');
    expect(adm.waitedMs).toBeGreaterThanOrEqual(250);
  });

  it('dry-run admits everything at once and counts what would have waited', async () => {
    const t = makeThrottler({ endpoints: { a: { rate: '1/min', burst: 2 } } });
    await t.setDryRun('a', true);
    const results = await Promise.all(Array.from({ length: 6 }, () => t.tryAcquire('a')));
    expect(results.every(Boolean)).toBe(true);
    const s = await t.inspect('a');
    expect(s.dryRun).toBe(true);
    expect(s.counters.wouldWait).toBe(4);
    await t.setDryRun('a', false);
    expect(await t.tryAcquire('a')).toBe(false);
  });

  it('a shadow limit previews a change without holding anyone back', async () => {
    const t = makeThrottler({ endpoints: { a: { rate: '100/s', burst: 20 } } });
    await t.setShadow('a', { rate: '1/min', burst: 3 });
    const results = await Promise.all(Array.from({ length: 10 }, () => t.tryAcquire('a')));
    expect(results.every(Boolean)).toBe(true);
    const s = await t.inspect('a');
    expect(s.shadow).toEqual({ ratePerSec: expect.closeTo(1 / 60, 5), burst: 3, wouldWait: 7 });
    await t.setShadow('a', null);
    expect((await t.inspect('a')).shadow).toBeNull();
  });

  it('an allowlisted tenant goes at once, charged to nobody, until the bypass expires', async () => {
    const t = makeThrottler({ endpoints: { a: { rate: '1/min', burst: 1 } } });
    await t.acquire('a');
    await t.setBypass('a', 'vip', { ttlMs: 400 });
    expect(await t.tryAcquire('a', { tenant: 'vip' })).toBe(true);
    expect(await t.tryAcquire('a', { tenant: 'vip' })).toBe(true);
    expect(await t.tryAcquire('a', { tenant: 'other' })).toBe(false);
    const s = await t.inspect('a');
    expect(s.bypass).toEqual(['vip']);
    expect(s.counters.bypassed).toBe(2);
    await sleep(450);
    expect(await t.tryAcquire('a', { tenant: 'vip' })).toBe(false);
  });

  it('a temporary override falls back to the permanent values when it expires', async () => {
    const t = makeThrottler({ endpoints: { a: { rate: '10/s', burst: 5 } } });
    await t.configure('a', { rate: '1/s' });
    await t.configure('a', { rate: '50/s', burst: 7 }, { ttlMs: 300, actor: 'oncall' });
    let s = await t.inspect('a');
    expect(s.effective.ratePerSec).toBeCloseTo(50);
    expect(s.effective.burst).toBe(7);
    expect(s.temporaryUntil).not.toBeNull();
    await sleep(350);
    s = await t.inspect('a');
    expect(s.effective.ratePerSec).toBeCloseTo(1);
    expect(s.effective.burst).toBe(5);
    expect(s.temporaryUntil).toBeNull();
  });

  it('a runtime weight change moves the shares of waiting classes: 3:1, then 1:1', async () => {
    const t = makeThrottler({ endpoints: { a: { rate: '20/s', burst: 1 } }, priorities: { high: 3, low: 1 } });
    const slots: { priority: string; slot: number }[] = [];
    let stop = false;
    const loop = async (priority: string) => {
      while (!stop) slots.push({ priority, slot: (await t.acquire('a', { priority })).slot });
    };
    const loops = [...Array.from({ length: 12 }, () => loop('high')), ...Array.from({ length: 12 }, () => loop('low'))];
    await sleep(4_000);
    const [sec, micro] = await t.redis.time();
    const changedAt = Number(sec) * 1000 + Math.floor(Number(micro) / 1000);
    await t.configure('a', { weights: { low: 3 } });
    expect((await t.inspect('a')).overrides['w:low']).toBe('3');
    await sleep(6_000);
    stop = true;
    await Promise.all(loops);
    // counted by reserved slot (Redis time); the first second of each phase lets the queue turn over
    const first = Math.min(...slots.map((s) => s.slot));
    const share = (from: number, to: number) => {
      const inside = slots.filter((s) => s.slot >= from && s.slot < to);
      return inside.filter((s) => s.priority === 'high').length / inside.filter((s) => s.priority === 'low').length;
    };
    const before = share(first + 1_000, changedAt);
    const after = share(changedAt + 2_000, changedAt + 6_000);
    expect(before).toBeGreaterThan(2.2);
    expect(before).toBeLessThan(4);
    expect(after).toBeGreaterThan(0.7);
    expect(after).toBeLessThan(1.4);
  }, 30_000);

  it('audit-logs every change: who, what, before, after', async () => {
    const t = makeThrottler({ endpoints: { a: { rate: '10/s' } } });
    await t.configure('a', { burst: 3 }, { actor: 'alice' });
    await t.pause('a', { actor: 'bob', durationMs: 1000 });
    await t.resetOverrides('a', { actor: 'carol' });
    const log = await t.auditLog();
    expect(log.map((e) => e.actor)).toEqual(['carol', 'bob', 'alice']);
    expect(log[2]).toMatchObject({ endpoint: 'a', change: 'configure', before: {}, after: { burst: '3' } });
    expect(log[0]!.after).toEqual({});
    expect(log[0]!.before).toMatchObject({ burst: '3' });
  });

  it('refuses bad control input with a clear error', async () => {
    const t = makeThrottler({ endpoints: { a: { rate: '10/s' } } });
    await expect(t.pause('a', { durationMs: -5 })).rejects.toThrow(/durationMs must be a positive number/);
    await expect(t.setShadow('a', { rate: 'lots' })).rejects.toThrow(/cannot read rate "lots"/);
    await expect(t.setBypass('a', 'bad tenant', {})).rejects.toThrow(/tenant name/);
    await expect(t.configure('a', { rate: '1/s' }, { ttlMs: 0 })).rejects.toThrow(/ttlMs/);
    await expect(t.pause('zzz')).rejects.toThrow(/unknown endpoint "zzz"/);
  });
});
