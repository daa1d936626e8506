import { describe, expect, expectTypeOf, it } from 'vitest';
import { calendarWindow } from '../src/http/calendar.js';
import { createHttpLimiter, type Decision, type HttpLimiter } from '../src/http/index.js';
import { parseHttpLimiterConfig } from '../src/http/options.js';
import { AddressSet, clientIpResolver, normalizePath } from '../src/http/request.js';
import { InvalidConfigError } from '../src/errors/index.js';

// no Redis in this file

describe('client address behind proxies', () => {
  it('believes X-Forwarded-For only as far as the proxies are trusted', () => {
    const xff = '203.0.113.9, 10.0.0.1, 192.0.2.5';
    expect(clientIpResolver(false)('127.0.0.1', xff)).toBe('127.0.0.1');
    expect(clientIpResolver(true)('127.0.0.1', xff)).toBe('203.0.113.9');
    expect(clientIpResolver(1)('127.0.0.1', xff)).toBe('192.0.2.5');
    expect(clientIpResolver(2)('127.0.0.1', xff)).toBe('10.0.0.1');
    expect(clientIpResolver(['127.0.0.1', '192.0.2.0/24'])('127.0.0.1', xff)).toBe('10.0.0.1');
    expect(clientIpResolver(['127.0.0.1'])('198.51.100.1', xff)).toBe('198.51.100.1');
    expect(clientIpResolver(['::1'])('::ffff:127.0.0.1', undefined)).toBe('127.0.0.1');
  });

  it('address sets take v4 and v6 CIDRs and refuse what is not one', () => {
    const set = new AddressSet(['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'], 'allowlist.cidrs');
    expect(set.has('10.9.8.7')).toBe(true);
    expect(set.has('::ffff:10.9.8.7')).toBe(true);
    expect(set.has('2001:db8:1::5')).toBe(true);
    expect(set.has('192.0.2.7')).toBe(true);
    expect(set.has('192.0.2.8')).toBe(false);
    expect(set.has(undefined)).toBe(false);
    expect(() => new AddressSet(['10.0.0.0/33'], 'allowlist.cidrs')).toThrow(/allowlist.cidrs: "10.0.0.0\/33" is not an address or CIDR/);
  });

  it('paths are matched decoded and with dot segments resolved', () => {
    expect(normalizePath('/%61dmin/stats?x=1')).toBe('/admin/stats');
    expect(normalizePath('/./admin//stats/')).toBe('/admin/stats');
    expect(normalizePath('/api/../admin/stats')).toBe('/admin/stats');
    expect(normalizePath('/%zz')).toBe('/%zz');
  });
});

describe('calendar windows', () => {
  it('days start at local midnight, across DST changes; months on the 1st', () => {
    const ny = calendarWindow('day', Date.UTC(2026, 2, 8, 12), 'America/New_York'); // the day clocks go forward
    expect([ny.start, ny.end, ny.nextEnd]).toEqual([Date.UTC(2026, 2, 8, 5), Date.UTC(2026, 2, 9, 4), Date.UTC(2026, 2, 10, 4)]);
    expect(ny.end - ny.start).toBe(23 * 3_600_000);
    const tokyo = calendarWindow('month', Date.UTC(2026, 0, 31, 23, 30), 'Asia/Tokyo'); // already February there
    expect([tokyo.start, tokyo.end]).toEqual([Date.UTC(2026, 0, 31, 15), Date.UTC(2026, 1, 28, 15)]);
    const utc = calendarWindow('month', Date.UTC(2026, 11, 31, 23, 59), 'UTC');
    expect([utc.start, utc.end, utc.nextEnd]).toEqual([Date.UTC(2026, 11, 1), Date.UTC(2027, 0, 1), Date.UTC(2027, 1, 1)]);
  });
});

describe('options', () => {
  const bad = (input: unknown, message: RegExp) => {
    expect(() => parseHttpLimiterConfig(input)).toThrow(InvalidConfigError);
    expect(() => parseHttpLimiterConfig(input)).toThrow(message);
  };
  it('names the option and the value received', () => {
    bad({ policies: { a: { rate: 'fast' } } }, /policies.a.rate: cannot read rate "fast"/);
    bad({ policies: { a: { rate: '1/s', algorithm: 'leaky' } } }, /policies.a.algorithm/);
    bad({ policies: { a: { rate: '1/s', quota: { day: 5, timeZone: 'Mars/Base' } } } }, /timeZone: is not an IANA time zone.*Mars\/Base/);
    bad({ policies: { a: { rate: '1/s', algorithm: 'fixed-window', burst: 3 } } }, /fixed-window has no burst/);
    bad({ policies: { a: { rate: '1/s', queue: { maxWaitMs: 100 }, quota: { day: 1 } } } }, /a queued policy is one shared, fair rate/);
    bad({ policies: { a: { rate: '1/s' } }, rules: [{ route: '/x', policy: 'b' }] }, /policy "b" is not defined under policies \(defined: a\)/);
    bad({ policies: { a: { rate: '1/s' } }, policy: { pro: 'a' } }, /needs a "default" entry/);
    bad({ policies: { a: { rate: '0.5/s', algorithm: 'sliding-window' } } }, /at least 1 request per interval/);
    bad({ policies: { 'a:b': { rate: '1/s' } } }, /policies.a:b: a policy name cannot hold ":"/);
    bad({ key: 'user-or-ip', policies: { a: { rate: '1/s' } } }, /key is "user-or-ip" but no user option/);
  });

  it('resolves defaults: token-bucket burst = the rate count, GCRA smooth, windows by their limit', () => {
    const { policies } = parseHttpLimiterConfig({
      policies: { tb: { rate: '10/s' }, g: { rate: '10/s', algorithm: 'gcra' }, sw: { rate: '100/min', algorithm: 'sliding-window' } },
    });
    expect(policies.get('tb')).toMatchObject({ a: 10, b: 0.01, quota: 10, windowSec: 1, failure: 'closed' });
    expect(policies.get('g')).toMatchObject({ a: 1, b: 100, quota: 10, windowSec: 1 });
    expect(policies.get('sw')).toMatchObject({ a: 100, b: 60_000, quota: 100, windowSec: 60 });
  });
});

describe('public types', () => {
  it('createHttpLimiter returns a limiter whose decide resolves a Decision', () => {
    expectTypeOf(createHttpLimiter).returns.toEqualTypeOf<HttpLimiter>();
    expectTypeOf<HttpLimiter['decide']>().returns.resolves.toEqualTypeOf<Decision>();
    expectTypeOf<Decision['status']>().toEqualTypeOf<200 | 429 | 503>();
  });
});
