// Type-checked under moduleResolution nodenext and bundler: the public types a user writes against.
import { createThrottler, type Admission, type ThrottlerOptions, QueueFullError } from 'sluice';
import { throttledProcessor, UpstreamLimitError, type ThrottledJobContext } from 'sluice/bullmq';
import { throttleMiddleware, type ThrottleFn } from 'sluice/inngest';

const options: ThrottlerOptions = { redis: 'redis://127.0.0.1:6379', namespace: 'typed', endpoints: { a: { rate: '1/s' } } };
const throttler = createThrottler(options);
export async function use(): Promise<string> {
  const admission: Admission = await throttler.acquire('a', { priority: 'normal', maxWaitMs: 1000 });
  return admission.endpoint;
}
export const processor = throttledProcessor<{ url: string }, number>({
  throttler,
  endpoint: 'a',
  process: async (job, context: ThrottledJobContext) => {
    if (!job.data.url) throw new UpstreamLimitError('a', 1000, '429');
    return context.admission.waitedMs;
  },
});
export const middleware = throttleMiddleware(throttler, { steps: { fetch: 'a' } });
export type Fn = ThrottleFn;
export const isFull = (e: unknown): boolean => e instanceof QueueFullError;
