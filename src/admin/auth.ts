/**
 * Who may call the admin API: a bearer token for writes (and reads), an optional read-only token,
 * or nobody at all, in which case the server must stay on loopback.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

export type Role = 'admin' | 'read';

export interface Credentials {
  /** Full access (reads and changes). Without it the API is unauthenticated and loopback-only. */
  token?: string | undefined;
  /** Read-only access: GET routes only; a change answers 403. */
  readToken?: string | undefined;
}

/**
 * Compares secrets in constant time. timingSafeEqual needs buffers of equal length, and comparing
 * lengths first would leak the token's length: hashing both sides to SHA-256 gives equal lengths
 * without revealing anything.
 */
export function safeEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export type AuthResult = { ok: true; role: Role; identity: string } | { ok: false; status: 401; message: string };

/** Checks an `Authorization` header against the configured tokens. */
export function authenticate(header: string | undefined, creds: Credentials): AuthResult {
  if (!creds.token) return { ok: true, role: 'admin', identity: 'loopback' };
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!match) return { ok: false, status: 401, message: 'missing credentials: send "Authorization: Bearer <token>"' };
  const given = match[1]!;
  // check both, always, so the time taken does not tell which token was close
  const admin = safeEqual(given, creds.token);
  const read = creds.readToken ? safeEqual(given, creds.readToken) : false;
  if (admin) return { ok: true, role: 'admin', identity: 'admin-token' };
  if (read) return { ok: true, role: 'read', identity: 'read-token' };
  return { ok: false, status: 401, message: 'invalid credentials' };
}

/** True for 127.0.0.0/8, ::1, `localhost` and IPv4-mapped loopback. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h.startsWith('::ffff:127.');
  return false;
}

/**
 * Refuses a configuration that would expose an unauthenticated admin API (anyone on the network
 * could pause the fleet or lift its limits), or a read token with no admin token beside it.
 */
export function assertSafeBinding(host: string, creds: Credentials): void {
  if (creds.readToken && !creds.token) {
    throw new Error('admin server: readToken given without token; set token (full access) as well');
  }
  if (!creds.token && !isLoopback(host)) {
    throw new Error(`admin server: refusing to listen on "${host}" without a token: anyone who can reach it could change the fleet's limits. Set a token (--token or SLUICE_ADMIN_TOKEN) or bind to 127.0.0.1`);
  }
}

function hostnameOf(hostHeader: string): string | undefined {
  try {
    return new URL(`http://${hostHeader}`).hostname;
  } catch {
    return undefined;
  }
}

/**
 * Browser-borne attacks on an admin API that a person's browser can reach:
 * - a page on another site posting to it (CSRF: a form or a no-cors fetch needs no preflight), so
 *   a request whose `Origin` is not this server is refused (curl and Prometheus send no Origin);
 * - DNS rebinding against an unauthenticated loopback server (evil.example resolving to
 *   127.0.0.1), so without a token the Host header must name loopback.
 * Returns why the request is refused, or undefined.
 */
export function browserAttackReason(headers: { host?: string | undefined; origin?: string | undefined }, tokenConfigured: boolean): string | undefined {
  const host = headers.host ?? '';
  if (headers.origin !== undefined && headers.origin !== 'null') {
    let originHost: string | undefined;
    try {
      originHost = new URL(headers.origin).host;
    } catch {
      originHost = undefined;
    }
    if (originHost !== host) return `cross-origin request from ${headers.origin} refused`;
  } else if (headers.origin === 'null') {
    return 'request from an opaque origin refused';
  }
  if (!tokenConfigured) {
    const name = hostnameOf(host);
    if (name === undefined || !isLoopback(name)) return `unauthenticated admin API answers only to a loopback Host (received ${JSON.stringify(host)})`;
  }
  return undefined;
}
