import { calendarWindow } from './calendar.js';
import type { ResolvedPolicy } from './options.js';
import type { LimitReply } from './script.js';

/**
 * Response header fields: `RateLimit-Policy` and `RateLimit` as in
 * draft-ietf-httpapi-ratelimit-headers (a list item per policy: the rate, and a `-day` / `-month`
 * item per quota), optional legacy `X-RateLimit-*`, and `Retry-After` on refusals.
 * Seconds are always rounded up: a client that waits what it was told is never early.
 */

export interface HeaderOptions {
  ietf: boolean;
  legacy: boolean;
}

const sec = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

const fixedPolicyHeaders = new WeakMap<ResolvedPolicy, string>();

/** `RateLimit-Policy` of a policy: fixed for a policy without quotas (built once), else per calendar window. */
export function policyHeader(p: ResolvedPolicy, now: number): string {
  if (!p.day && !p.month) {
    let h = fixedPolicyHeaders.get(p);
    if (h === undefined) fixedPolicyHeaders.set(p, (h = `"${p.name}";q=${p.quota};w=${p.windowSec}`));
    return h;
  }
  const items = [`"${p.name}";q=${p.quota};w=${p.windowSec}`];
  if (p.day) {
    const w = calendarWindow('day', now, p.timeZone);
    items.push(`"${p.name}-day";q=${p.day};w=${sec(w.end - w.start)}`);
  }
  if (p.month) {
    const w = calendarWindow('month', now, p.timeZone);
    items.push(`"${p.name}-month";q=${p.month};w=${sec(w.end - w.start)}`);
  }
  return items.join(', ');
}

export function limitHeaders(p: ResolvedPolicy, reply: LimitReply, options: HeaderOptions): Record<string, string> {
  const h: Record<string, string> = {};
  const admitted = reply.verdict === 'admitted';
  // a refused client learns when it may come back; an admitted one when the rate is whole again
  const rateT = admitted ? sec(reply.resetMs) : sec(reply.retryMs);
  const rateR = reply.verdict === 'blocked' ? 0 : reply.remaining;
  if (options.ietf) {
    h['ratelimit-policy'] = policyHeader(p, reply.now);
    let item = `"${p.name}";r=${rateR};t=${rateT}`;
    if (reply.day) item += `, "${p.name}-day";r=${Math.max(0, p.day! - reply.day.used)};t=${sec(reply.day.end - reply.now)}`;
    if (reply.month) item += `, "${p.name}-month";r=${Math.max(0, p.month! - reply.month.used)};t=${sec(reply.month.end - reply.now)}`;
    h.ratelimit = item;
  }
  if (options.legacy) {
    h['x-ratelimit-limit'] = String(p.quota);
    h['x-ratelimit-remaining'] = String(rateR);
    h['x-ratelimit-reset'] = String(rateT);
  }
  if (!admitted) h['retry-after'] = String(Math.max(1, sec(reply.retryMs)));
  return h;
}
