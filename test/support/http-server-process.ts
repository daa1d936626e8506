/**
 * One API server process for the cross-process tests: fastify + the Sluice limiter on the shared
 * Redis, one route per policy (`GET /work/<policy>`), every request on one hot key.
 * Spec as JSON in argv[2]: { redisUrl, namespace, policies, clockMs }. Prints `ready <port>`.
 * POST /__clock?ms=N moves this process's script clock (every process is moved before a burst).
 */
import Fastify from 'fastify';
import { pino } from 'pino';
import { createHttpLimiter, fastifyRateLimit, type PolicyConfigInput } from '../../src/http/index.js';

const spec = JSON.parse(process.argv[2]!) as { redisUrl: string; namespace: string; policies: Record<string, PolicyConfigInput>; clockMs: number | null };
let clock = spec.clockMs;
const limiter = createHttpLimiter({
  redis: spec.redisUrl,
  namespace: spec.namespace,
  logger: pino({ level: 'silent' }),
  key: () => 'hot',
  // the claim under test is over-admission; on a shared 2-core machine a busy Redis may take
  // longer than the 500 ms default, which would answer 503 (failure policy closed)
  timeoutMs: 20_000,
  policies: spec.policies,
  rules: Object.keys(spec.policies).map((name) => ({ route: `/work/${name}`, policy: name })),
  ...(clock === null ? {} : { now: () => clock! }),
});
const app = Fastify();
await app.register(fastifyRateLimit, { limiter });
for (const name of Object.keys(spec.policies)) app.get(`/work/${name}`, async () => ({ ok: true }));
app.post('/__clock', { config: { sluiceLimit: false } }, async (req) => {
  clock = Number((req.query as { ms: string }).ms);
  return { clock };
});
await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
process.stdout.write(`ready ${typeof address === 'object' && address ? address.port : 0}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void app.close().then(() => limiter.close()).then(() => process.exit(0));
});
