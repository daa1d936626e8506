import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Outage } from '../src/outage.js';

describe('the circuit breaker of one lane', () => {
  it('counts calls that were on their way together as one failure: the backoff grows per failed round, not per call', () => {
    const o = new Outage('closed', pino({ level: 'silent' }));
    // a lane sends two calls at once (uncontended split); Redis goes away and both fail
    const sentIn = o.generation;
    const first = o.failed(new Error('ECONNREFUSED'), sentIn);
    const second = o.failed(new Error('ECONNREFUSED'), sentIn);
    expect(o.failures).toBe(1);
    expect(second).toBeLessThanOrEqual(first);
    // the probe, sent after that failure, fails too: that is a second failure, a longer backoff
    o.failed(new Error('ECONNREFUSED'), o.generation);
    expect(o.failures).toBe(2);
    o.recovered();
    expect(o.failures).toBe(0);
  });
});
