/**
 * The admin API's routes. Reads answer the fleet-wide picture; writes go through the throttler
 * (which audit-logs them) and answer the endpoint's new picture, so a caller sees the effect.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Throttler } from '../throttler.js';
import { readEndpointViews, type EndpointView } from '../metrics/endpoint-view.js';
import type { History } from './history.js';
import type { FleetView } from './fleet.js';
import {
  ActorHeader, AuditQuery, BadRequest, BypassBody, BypassDeleteBody, DryRunBody, endpointPatchSchema, HistoryQuery, parseOr400, PauseBody, ShadowBody,
  TenantBudgetBody,
} from './schemas.js';
import { Name } from '../config/schema.js';
import { UnknownEndpointError } from '../errors/index.js';

export interface RouteContext {
  throttler: Throttler;
  history: History;
  readFleet(): Promise<FleetView>;
  /** Who is calling, as the auth hook established it. */
  identityOf(request: FastifyRequest): string;
}

/** The `:name` of the URL: a configured endpoint, or 404 (400 when it could not even be a name). */
function endpointParam(throttler: Throttler, request: FastifyRequest): string {
  const name = parseOr400(Name, (request.params as { name?: unknown }).name, 'params.name');
  if (!throttler.endpoints.includes(name)) throw new UnknownEndpointError(name, throttler.endpoints);
  return name;
}

/** The audit log's actor: the self-declared `x-sluice-actor` (if any) and the credential that vouched for it. */
function actorOf(ctx: RouteContext, request: FastifyRequest): string {
  const identity = ctx.identityOf(request);
  const header = request.headers['x-sluice-actor'];
  if (header === undefined) return identity;
  const name = parseOr400(ActorHeader, Array.isArray(header) ? header[0] : header, 'headers.x-sluice-actor');
  return `${name} (${identity})`;
}

async function viewOf(throttler: Throttler, endpoint: string): Promise<EndpointView> {
  const [view] = await readEndpointViews(throttler, { endpoints: [endpoint] });
  return view!;
}

/** Read routes: GET only, declared `read`: open to the read-only token. */
export function registerReadRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { throttler } = ctx;
  const read = { config: { access: 'read' as const } };

  app.get('/api/endpoints', read, async () => ({ namespace: throttler.keys.namespace, endpoints: await readEndpointViews(throttler) }));

  app.get('/api/endpoints/:name', read, async (request) => {
    return viewOf(throttler, endpointParam(throttler, request));
  });

  app.get('/api/history', read, async (request) => {
    const q = parseOr400(HistoryQuery, request.query, 'query');
    const all = q.endpoint === undefined ? ctx.history.all() : { [q.endpoint]: ctx.history.series(q.endpoint) };
    const since = q.since;
    const series = since === undefined ? all : Object.fromEntries(Object.entries(all).map(([e, s]) => [e, s.filter((x) => x.t > since)]));
    return { intervalMs: ctx.history.intervalMs, spanMs: ctx.history.spanMs, endpoints: series };
  });

  app.get('/api/fleet', read, async () => ctx.readFleet());

  app.get('/api/tenants', read, async () => ({ tenants: await throttler.tenantBudgets() }));

  app.get('/api/audit', read, async (request) => {
    const q = parseOr400(AuditQuery, request.query, 'query');
    return { entries: await throttler.auditLog(q.limit) };
  });
}

/** Write routes, declared `write`: the admin token only; every change is audit-logged by the throttler with the actor. */
export function registerWriteRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { throttler } = ctx;
  const patchSchema = endpointPatchSchema(Object.keys(throttler.config.priorities));
  const write = { config: { access: 'write' as const } };
  /** A route that changes one endpoint and answers its new view. */
  const change = (method: 'PUT' | 'POST' | 'DELETE', path: string, apply: (endpoint: string, body: unknown, actor: string, request: FastifyRequest) => Promise<void>) =>
    app.route({
      method,
      url: `/api/endpoints/:name${path}`,
      config: { access: 'write' },
      handler: async (request) => {
        const endpoint = endpointParam(throttler, request);
        const actor = actorOf(ctx, request);
        await apply(endpoint, request.body, actor, request);
        return { ok: true, endpoint: await viewOf(throttler, endpoint) };
      },
    });

  change('PUT', '', async (endpoint, body, actor) => {
    const { ttlMs, ...patch } = parseOr400(patchSchema, body ?? {});
    await throttler.configure(endpoint, patch, ttlMs === undefined ? { actor } : { actor, ttlMs });
  });
  change('DELETE', '/overrides', (endpoint, _body, actor) => throttler.resetOverrides(endpoint, { actor }));
  change('POST', '/pause', async (endpoint, body, actor) => {
    const p = parseOr400(PauseBody, body ?? {});
    await throttler.pause(endpoint, { actor, ...p });
  });
  change('POST', '/resume', (endpoint, _body, actor) => throttler.resume(endpoint, { actor }));
  change('POST', '/dry-run', async (endpoint, body, actor) => {
    const { enabled } = parseOr400(DryRunBody, body);
    await throttler.setDryRun(endpoint, enabled, { actor });
  });
  change('POST', '/shadow', async (endpoint, body, actor) => {
    if (body === undefined) throw new BadRequest('(body): send {"rate": "40/min", "burst": 40}, or null to remove the shadow limit', ['(body)']);
    const limit = parseOr400(ShadowBody, body);
    await throttler.setShadow(endpoint, limit, { actor });
  });
  change('DELETE', '/shadow', (endpoint, _body, actor) => throttler.setShadow(endpoint, null, { actor }));
  change('POST', '/bypass', async (endpoint, body, actor) => {
    const { tenant, ttlMs } = parseOr400(BypassBody, body);
    await throttler.setBypass(endpoint, tenant, ttlMs === undefined ? {} : { ttlMs }, { actor });
  });
  change('DELETE', '/bypass', async (endpoint, body, actor) => {
    const { tenant } = parseOr400(BypassDeleteBody, body);
    await throttler.setBypass(endpoint, tenant, null, { actor });
  });
  app.put('/api/tenants/:name', write, async (request) => {
    const tenant = parseOr400(Name, (request.params as { name?: unknown }).name, 'params.name');
    const budget = parseOr400(TenantBudgetBody, request.body);
    await throttler.setTenantBudget(tenant, budget, { actor: actorOf(ctx, request) });
    return { ok: true, tenants: await throttler.tenantBudgets() };
  });
  app.delete('/api/tenants/:name', write, async (request) => {
    const tenant = parseOr400(Name, (request.params as { name?: unknown }).name, 'params.name');
    await throttler.setTenantBudget(tenant, null, { actor: actorOf(ctx, request) });
    return { ok: true, tenants: await throttler.tenantBudgets() };
  });
  change('DELETE', '/bypass/:tenant', async (endpoint, _body, actor, request) => {
    const tenant = parseOr400(Name, (request.params as { tenant?: unknown }).tenant, 'params.tenant');
    await throttler.setBypass(endpoint, tenant, null, { actor });
  });
}
