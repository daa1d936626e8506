import type { FastifyInstance } from 'fastify';
import { liftBlock, listBlocked, quotaUsage } from './admin.js';
import type { RedisConnection } from './options.js';

/**
 * The inbound limiter's admin routes, for the admin server to mount behind its own auth hook
 * (`registerHttpAdminRoutes(app, { redis, namespace })`):
 *   GET    /api/http/blocked                  blocks in force
 *   DELETE /api/http/blocked/:policy/:key     lift one (key as the limiter counts it: `ip:203.0.113.7`)
 *   GET    /api/http/quota/:policy/:key       quota usage of one key
 */
export function registerHttpAdminRoutes(app: FastifyInstance, options: { redis: RedisConnection; namespace: string }): void {
  const { redis, namespace } = options;
  const params = (p: unknown) => p as { policy: string; key: string };
  // access levels for the admin server's route-based auth: reads need a token, lifting a block the admin token
  const read = { config: { access: 'read' as const } };
  const write = { config: { access: 'write' as const } };
  app.get('/api/http/blocked', read, async () => ({ namespace, blocked: await listBlocked(redis, namespace) }));
  app.delete('/api/http/blocked/:policy/:key', write, async (request, reply) => {
    const { policy, key } = params(request.params);
    const lifted = await liftBlock(redis, namespace, policy, key);
    if (!lifted) return reply.code(404).send({ error: 'not_blocked', message: `no block in force for ${key} under policy ${policy}` });
    request.log.info({ policy, key }, 'http block lifted');
    return { lifted: true, policy, key };
  });
  app.get('/api/http/quota/:policy/:key', read, async (request) => {
    const { policy, key } = params(request.params);
    return { policy, key, ...(await quotaUsage(redis, namespace, policy, key)) };
  });
}
