/**
 * `sluice limits set|pause|resume|reset <endpoint>`: change an endpoint's limits for the whole
 * fleet at runtime, through the admin API of a running `sluice admin` (so the change is
 * authenticated and audit-logged like one made from the dashboard). The server is
 * `--admin-url`, else SLUICE_ADMIN_URL, else http://127.0.0.1:SLUICE_ADMIN_PORT (8787); the
 * token `--token`, else SLUICE_ADMIN_TOKEN.
 *
 * A runtime override beats the config file until it is reset or expires (30 days after the last
 * change, or `--ttl`): `sluice status` shows which value wins and why.
 */
import { userInfo } from 'node:os';
import type { EndpointView } from 'sluice/metrics';
import { formatRatePerSec, sameRate } from './status.js';

export interface LimitsOptions {
  /** Admin server base URL. Default: SLUICE_ADMIN_URL, then http://127.0.0.1:SLUICE_ADMIN_PORT (8787). */
  adminUrl?: string;
  /** Admin (read-write) token. Default: SLUICE_ADMIN_TOKEN. */
  token?: string;
  /** Where the new state is printed. Default process.stdout. */
  out?: NodeJS.WritableStream;
}

export type LimitsChange =
  | { action: 'set'; rate?: string; burst?: number; ttlMs?: number }
  | { action: 'pause'; forMs?: number; reason?: string }
  | { action: 'resume' }
  | { action: 'reset' };

/** Why the admin API did not apply a change. `badRequest`: the request itself must change (exit code 2). */
export class AdminApiError extends Error {
  readonly code = 'ADMIN_API';
  constructor(
    message: string,
    /** HTTP status, or undefined when the server could not be reached. */
    readonly status: number | undefined,
    readonly badRequest: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AdminApiError';
  }
}

/** The admin server's base URL, without a trailing slash. */
export function adminUrl(flag?: string): string {
  const raw = flag ?? process.env.SLUICE_ADMIN_URL ?? `http://127.0.0.1:${process.env.SLUICE_ADMIN_PORT ?? 8787}`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AdminApiError(`admin URL ${JSON.stringify(raw)} is not a URL (--admin-url or SLUICE_ADMIN_URL, e.g. http://127.0.0.1:8787)`, undefined, true);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new AdminApiError(`admin URL ${raw} must be http:// or https://`, undefined, true);
  return url.href.replace(/\/+$/, '');
}

/** `cli:<user>` for the audit log (the server adds which credential vouched for it). */
function actor(): string | undefined {
  try {
    const name = `cli:${userInfo().username}`;
    return /^[\x21-\x7e]{1,64}$/.test(name) ? name : undefined;
  } catch {
    return undefined;
  }
}

function requestOf(endpoint: string, change: LimitsChange): { method: string; path: string; body?: unknown } {
  const path = `/api/endpoints/${encodeURIComponent(endpoint)}`;
  switch (change.action) {
    case 'set': {
      if (change.rate === undefined && change.burst === undefined) throw new AdminApiError('nothing to set: give --rate (e.g. 80/min) and/or --burst', undefined, true);
      const body: Record<string, unknown> = {};
      if (change.rate !== undefined) body.rate = change.rate;
      if (change.burst !== undefined) body.burst = change.burst;
      if (change.ttlMs !== undefined) body.ttlMs = change.ttlMs;
      return { method: 'PUT', path, body };
    }
    case 'pause':
      return { method: 'POST', path: `${path}/pause`, body: { ...(change.forMs !== undefined ? { durationMs: change.forMs } : {}), ...(change.reason ? { reason: change.reason } : {}) } };
    case 'resume':
      return { method: 'POST', path: `${path}/resume` };
    case 'reset':
      return { method: 'DELETE', path: `${path}/overrides` };
  }
}

/** Sends one change to the admin API; resolves with the endpoint's new view. */
export async function changeLimits(endpoint: string, change: LimitsChange, opts: LimitsOptions = {}): Promise<EndpointView> {
  const base = adminUrl(opts.adminUrl);
  const token = opts.token ?? process.env.SLUICE_ADMIN_TOKEN;
  const req = requestOf(endpoint, change);
  const who = actor();
  let res: Response;
  try {
    res = await fetch(`${base}${req.path}`, {
      method: req.method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(who ? { 'x-sluice-actor': who } : {}),
        ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(req.body !== undefined ? { body: JSON.stringify(req.body) } : {}),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new AdminApiError(`cannot reach the admin server at ${base}: ${why} (start it with \`sluice admin\`, or point --admin-url / SLUICE_ADMIN_URL at it)`, undefined, false, { cause: err });
  }
  const text = await res.text();
  let body: { message?: string; error?: string; endpoint?: EndpointView } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // not JSON: not the admin server, or a proxy's error page; reported below
  }
  if (res.ok && body.endpoint) return body.endpoint;
  const message = body.message ?? (text.slice(0, 200) || res.statusText);
  if (res.ok) throw new AdminApiError(`${base} answered ${res.status} without the endpoint's state: is it a Sluice admin server?`, res.status, false);
  switch (res.status) {
    case 401:
      throw new AdminApiError(`the admin server at ${base} refused the credentials (401: ${message}): set SLUICE_ADMIN_TOKEN (or --token) to its admin token`, 401, false);
    case 403:
      throw new AdminApiError(`the admin server at ${base} refused the change (403: ${message}): changes need the admin token, not the read-only one`, 403, false);
    case 400:
      throw new AdminApiError(`the admin server refused the change: ${message}`, 400, true);
    case 404:
      if (body.error === 'unknown_endpoint') throw new AdminApiError(message, 404, true);
      throw new AdminApiError(`${base} has no ${req.method} ${req.path}: is --admin-url / SLUICE_ADMIN_URL a Sluice admin server? (${message})`, 404, false);
    case 503:
      throw new AdminApiError(`the admin server cannot reach Redis; nothing changed (${message})`, 503, false);
    default:
      throw new AdminApiError(`the admin server answered ${res.status}: ${message}`, res.status, false);
  }
}

function until(at: number, now: number): string {
  const s = Math.max(0, Math.ceil((at - now) / 1000));
  const human = s >= 7200 ? `${Math.round(s / 3600)}h` : s >= 120 ? `${Math.round(s / 60)}min` : `${s}s`;
  return `${new Date(at).toISOString()} (in ${human})`;
}

/** One line: what the fleet now runs the endpoint at, and against what the config file says. */
export function describeLimits(v: EndpointView, now = Date.now()): string {
  const rate = formatRatePerSec(v.effective.ratePerSec);
  const parts = [`${v.endpoint}: rate ${rate}`, `burst ${v.effective.burst}`];
  const differs = !sameRate(v.effective.ratePerSec, v.configured.ratePerSec) || v.effective.burst !== v.configured.burst;
  if (differs) parts.push(`(config file: ${formatRatePerSec(v.configured.ratePerSec)}, burst ${v.configured.burst})`);
  else parts.push('(the config file\'s)');
  if (v.temporaryUntil !== null) parts.push(`override until ${until(v.temporaryUntil, now)}`);
  if (v.paused) parts.push(v.paused.until === null ? 'PAUSED until resumed' : `PAUSED until ${until(v.paused.until, now)}`);
  return parts.join(', ');
}

/** Runs one `sluice limits` subcommand and prints the endpoint's new state. */
export async function limitsCommand(endpoint: string, change: LimitsChange, opts: LimitsOptions = {}): Promise<EndpointView> {
  const view = await changeLimits(endpoint, change, opts);
  (opts.out ?? process.stdout).write(`${describeLimits(view)}\n`);
  return view;
}
