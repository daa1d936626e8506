import { describe, expect, it } from 'vitest';
import { InvalidConfigError, parseDurationMs, parseRate, parseThrottlerConfig } from '../src/index.js';

describe('units', () => {
  it.each([
    ['10/min', { tokens: 10, intervalMs: 60_000 }],
    ['50 / min', { tokens: 50, intervalMs: 60_000 }],
    ['200/s', { tokens: 200, intervalMs: 1000 }],
    ['3/10s', { tokens: 3, intervalMs: 10_000 }],
    ['1 per hour', { tokens: 1, intervalMs: 3_600_000 }],
    ['0.5/s', { tokens: 0.5, intervalMs: 1000 }],
  ])('reads the rate %j', (input, expected) => {
    expect(parseRate(input)).toEqual(expected);
  });

  it.each(['10', 'ten/min', '10/fortnight', '/s', '-1/s'])('does not read %j as a rate', (input) => {
    expect(parseRate(input)).toBeUndefined();
  });

  it.each([
    ['10 s', 10_000],
    ['250ms', 250],
    ['2 min', 120_000],
    [1500, 1500],
  ] as const)('reads the duration %j', (input, ms) => {
    expect(parseDurationMs(input)).toBe(ms);
  });
});

describe('throttler config', () => {
  it('fills sane defaults', () => {
    const c = parseThrottlerConfig({ endpoints: { a: { rate: '10/min' } } });
    expect(c.namespace).toBe('sluice');
    expect(c.priorities).toEqual({ high: 3, normal: 2, low: 1 });
    expect(c.horizonMs).toBe(100);
    expect(c.endpoints.a!.rate).toEqual({ tokens: 10, intervalMs: 60_000 });
  });

  it.each([
    [{ endpoints: { a: { rate: '10 per fortnight' } } }, /endpoints\.a\.rate.*"10 per fortnight"/],
    [{ endpoints: { a: { rate: '10/min', burst: -5 } } }, /endpoints\.a\.burst.*received -5/],
    [{ endpoints: {} }, /endpoints: configure at least one endpoint/],
    [{ namespace: 'a{b}', endpoints: { a: { rate: '1/s' } } }, /namespace.*received "a\{b\}"/],
    [{ endpoints: { a: { rate: '1/s' } }, horizonMs: 'soon' }, /horizonMs.*"soon"/],
    [{ endpoints: { a: { rate: '1/s' } }, defaultPriority: 'urgent' }, /defaultPriority "urgent" is not one of the priorities/],
  ])('refuses a bad config naming the field and the value (%#)', (input, message) => {
    expect(() => parseThrottlerConfig(input)).toThrow(InvalidConfigError);
    expect(() => parseThrottlerConfig(input)).toThrow(message);
  });
});
