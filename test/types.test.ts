import { describe, expectTypeOf, it } from 'vitest';
import {
  createThrottler,
  type Admission,
  type AcquireOptions,
  type EndpointStatus,
  type SluiceError,
  type Throttler,
  type ThrottleEvent,
  type ThrottleTimeoutError,
} from '../src/index.js';

describe('public API types', () => {
  it('createThrottler returns a Throttler whose acquire resolves with an Admission', () => {
    expectTypeOf(createThrottler).returns.toEqualTypeOf<Throttler>();
    expectTypeOf<Throttler['acquire']>().parameters.toEqualTypeOf<[endpoint: string, options?: AcquireOptions]>();
    expectTypeOf<ReturnType<Throttler['acquire']>>().resolves.toEqualTypeOf<Admission>();
    expectTypeOf<ReturnType<Throttler['tryAcquire']>>().resolves.toBeBoolean();
    expectTypeOf<ReturnType<Throttler['inspect']>>().resolves.toEqualTypeOf<EndpointStatus>();
  });

  it('acquire options and admission fields are what the README documents', () => {
    expectTypeOf<AcquireOptions>().toEqualTypeOf<{ priority?: string; tenant?: string; cost?: number; maxWaitMs?: number; signal?: AbortSignal }>();
    expectTypeOf<Admission>().toHaveProperty('waitedMs').toBeNumber();
    expectTypeOf<Admission>().toHaveProperty('degraded').toEqualTypeOf<'local' | 'open' | undefined>();
  });

  it('typed errors carry a code and what a caller needs', () => {
    expectTypeOf<ThrottleTimeoutError>().toMatchTypeOf<SluiceError>();
    expectTypeOf<ThrottleTimeoutError['expectedWaitMs']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<ThrottleEvent['type']>().toEqualTypeOf<'admitted' | 'requeued-late' | 'refused' | 'penalized' | 'config-changed' | 'redis-call'>();
  });

  it('rejects a misspelled option at compile time', () => {
    const t = {} as Throttler;
    // @ts-expect-error: `prio` is not an acquire option
    void (() => t.acquire('e', { prio: 'high' }));
  });
});
