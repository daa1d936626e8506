import { BlockList, isIP } from 'node:net';
import { InvalidConfigError } from '../errors/index.js';

/** What the limiter needs of a request, whatever the framework. Adapters build it. */
export interface LimitRequest {
  method: string;
  /** The route pattern the router matched (`/items/:id`); without one, the decoded, normalised path. */
  route: string;
  /** The client address after `trustProxy` (undefined when the server gave none). */
  ip: string | undefined;
  /** A request header by lower-case name (the first value when repeated). */
  header(name: string): string | undefined;
  /** The framework's own request object, for key and tier functions. */
  raw: unknown;
}

/** What the Node adapters (fastify, express) read of their request: Node's headers and socket. */
interface NodeRequest {
  headers: Record<string, string | string[] | undefined>;
  socket: { remoteAddress?: string | undefined };
}

/**
 * The request as the limiter sees it, for frameworks on Node's `IncomingMessage`. A class, not an
 * object literal with closures: nothing is allocated per request beyond this object, and the client
 * address (proxy walk included) is worked out only when a key, rule or allowlist asks for it.
 */
export abstract class NodeLimitRequest<R extends NodeRequest> implements LimitRequest {
  private address: string | undefined | null = null;
  abstract readonly method: string;
  abstract readonly route: string;

  constructor(
    private readonly limiter: { clientIp(socketIp: string | undefined, forwardedFor: string | undefined): string | undefined },
    readonly raw: R,
  ) {}

  get ip(): string | undefined {
    if (this.address === null) {
      const xff = this.raw.headers['x-forwarded-for'];
      this.address = this.limiter.clientIp(this.raw.socket.remoteAddress, Array.isArray(xff) ? xff.join(',') : xff);
    }
    return this.address;
  }

  header(name: string): string | undefined {
    const v = this.raw.headers[name];
    return Array.isArray(v) ? v[0] : v;
  }
}

/** `::ffff:1.2.3.4` is the IPv4 client 1.2.3.4: one client, one key. */
export function normalizeIp(ip: string): string {
  const v = ip.trim();
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(v) ? v.slice(7) : v;
}

/** A set of addresses and CIDRs (`10.0.0.0/8`, `::1`, `2001:db8::/32`). */
export class AddressSet {
  private readonly list = new BlockList();
  readonly size: number;

  constructor(entries: string[], what: string) {
    for (const entry of entries) {
      const [addr = '', bits] = entry.split('/');
      const ip = normalizeIp(addr);
      const family = isIP(ip);
      const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
      if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32)) {
        throw new InvalidConfigError(`invalid http limiter options: ${what}: "${entry}" is not an address or CIDR (write 10.0.0.0/8 or 2001:db8::/32)`);
      }
      this.list.addSubnet(ip, prefix, family === 6 ? 'ipv6' : 'ipv4');
    }
    this.size = entries.length;
  }

  has(ip: string | undefined): boolean {
    if (!ip || this.size === 0) return false;
    const v = normalizeIp(ip);
    const family = isIP(v);
    return family !== 0 && this.list.check(v, family === 6 ? 'ipv6' : 'ipv4');
  }
}

export type TrustProxy = boolean | number | string[];

/**
 * The client address: walk from the socket peer back through `X-Forwarded-For` while the hop we
 * stand on is a trusted proxy (proxy-addr's rule). Spoofed entries a client prepends sit to the
 * left of what our proxies appended, so they are never reached unless every proxy is trusted.
 */
export function clientIpResolver(trust: TrustProxy): (socketIp: string | undefined, forwardedFor: string | undefined) => string | undefined {
  if (trust === false || trust === 0) return (socketIp) => (socketIp ? normalizeIp(socketIp) : undefined);
  const trusted = Array.isArray(trust) ? new AddressSet(trust, 'trustProxy') : undefined;
  return (socketIp, forwardedFor) => {
    const hops = [socketIp, ...(forwardedFor ? forwardedFor.split(',').reverse() : [])]
      .filter((h): h is string => h !== undefined && h.trim() !== '')
      .map(normalizeIp);
    if (hops.length === 0) return undefined;
    if (trust === true) return hops[hops.length - 1];
    if (typeof trust === 'number') return hops[Math.min(trust, hops.length - 1)];
    let i = 0;
    while (i < hops.length - 1 && trusted!.has(hops[i])) i++;
    return hops[i];
  };
}

/** Path for rule matching when no router pattern is known: decoded and dot segments resolved, as a router would see it. */
export function normalizePath(path: string): string {
  const bare = path.split('?')[0] ?? '/';
  let decoded: string;
  try {
    decoded = decodeURIComponent(bare);
  } catch {
    decoded = bare;
  }
  const out: string[] = [];
  for (const seg of decoded.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return `/${out.join('/')}`;
}
