/**
 * Child process for bottleneck 2.19.5 in Clustering mode, configured as its README recommends:
 * `datastore: 'ioredis'`, an `id` shared by every limiter of the cluster, the ioredis module passed
 * as `Redis`, an `"error"` listener, an `expiration` on every job ("strongly recommended"), and
 * `minTime` for the rate ("minTime and maxConcurrent are enough for the majority of use cases").
 *
 * Rate r with burst b: bottleneck's smooth limit is `minTime = 1000 / r` (no burst: b = 1). A burst
 * needs a reservoir, whose refresh/increase intervals "should be a multiple of 250 (5000 for
 * Clustering)", i.e. a 5 s window of 5 r tokens: far burstier than b, so it is not used here.
 * `maxConcurrent` is set (the README: "If you plan on using priorities, make sure to set a
 * maxConcurrent value"): jobs beyond it stay in the process's own queue, where `priority` orders
 * them. The first child of a scenario starts alone with `clearDatastore: true`; the others join
 * with `false` once it is ready.
 */
import Bottleneck from 'bottleneck';
import { Redis } from 'ioredis';
import { now, runChild, type ChildSpec } from './child.js';

/** The job option `priority`: 0 is the highest, 9 the lowest, 5 the default. */
const PRIORITY = { high: 0, normal: 5, low: 9 } as const;

function bottleneckOptions(spec: ChildSpec): Bottleneck.ConstructorOptions {
  const url = new URL(spec.redis);
  return {
    id: spec.key,
    datastore: 'ioredis',
    clearDatastore: spec.first === true,
    clientOptions: { host: url.hostname, port: Number(url.port) },
    Redis,
    minTime: spec.rate >= 1e6 ? 0 : 1000 / spec.rate,
    // 200 ms worth of jobs in flight cluster-wide: enough to reach the rate even with slow round
    // trips (each job holds its place from register to free), few enough that the rest wait in
    // the process's queue, where `priority` orders them
    maxConcurrent: spec.rate >= 1e6 ? null : Math.max(2, Math.ceil(spec.rate / 5)),
  };
}

await runChild(async (spec) => {
  const limiter = new Bottleneck(bottleneckOptions(spec));
  limiter.on('error', (err: unknown) => process.stderr.write(`bottleneck error: ${String(err)}\n`));
  await limiter.ready();
  return {
    acquire: (cls) => {
      let at = 0;
      return limiter
        .schedule({ priority: PRIORITY[cls], expiration: 60_000 }, async () => {
          at = now(); // the moment the job runs: when the request would be sent
        })
        .then(() => at);
    },
    close: () => limiter.disconnect(true),
  };
});
