import { InvalidNameError } from './errors/index.js';

/**
 * Every Redis key Sluice uses is built here and nowhere else.
 *
 * Layout 'namespace' (the default): all throttle keys of a namespace share the hash tag
 * `{namespace}`, so every script touches one Cluster slot and endpoints can share parent buckets
 * (the global cap, tenant budgets). Layout 'endpoint': each endpoint's keys get the tag
 * `{namespace|endpoint}` (`|` never appears in a name), so a namespace's endpoints spread over a
 * Cluster's masters; only for endpoints that share no parent. Namespace-wide keys (audit log,
 * live processes, the endpoint list) keep `{namespace}`. BullMQ queues get a tag of their own
 * (`bullmqPrefix` in `sluice/bullmq`).
 */

export type KeyLayout = 'namespace' | 'endpoint';

/** Names that end up inside keys and script members: no braces (hash tags), no `|` (member separator), no blanks. */
const NAME = /^[^\s{}|\u0000-\u001f\u007f]{1,128}$/u;
/** The naming rule in words, for every message that refuses a name. */
export const NAME_RULE = "1-128 characters without spaces, braces or '|'";

/** Whether `value` may be a namespace, endpoint, tenant or priority name (the one rule: see NAME). */
export function isValidName(value: unknown): value is string {
  // a lone surrogate reaches Redis as U+FFFD: two distinct names would share their keys
  return typeof value === 'string' && NAME.test(value) && value.isWellFormed();
}

export function assertName(kind: string, value: unknown): string {
  if (!isValidName(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value) : String(value);
    throw new InvalidNameError(`${kind} name ${shown} is not valid: use ${NAME_RULE}`);
  }
  return value;
}

export class Keys {
  readonly namespace: string;
  /** Common prefix of every throttle key: `sluice:{namespace}:`. */
  readonly prefix: string;

  readonly layout: KeyLayout;
  private readonly scriptKeys = new Map<string, string[]>();

  constructor(namespace: string, layout: KeyLayout = 'namespace') {
    this.namespace = assertName('namespace', namespace);
    this.prefix = `sluice:{${namespace}}:`;
    this.layout = layout;
  }

  /**
   * Common prefix of one endpoint's keys and of those its scripts share with other endpoints of
   * its slot (leases, and in layout 'namespace' the parents): `prefix` in layout 'namespace',
   * `sluice:{namespace|endpoint}:` in layout 'endpoint'.
   */
  endpointPrefix(endpoint: string): string {
    return this.layout === 'endpoint' ? `sluice:{${this.namespace}|${endpoint}}:` : this.prefix;
  }

  /** Runtime config overrides of one endpoint (hash). */
  config(endpoint: string): string {
    return `${this.endpointPrefix(endpoint)}cfg:${endpoint}`;
  }
  /** Token bucket, fair-queue clock and class state of one endpoint (hash). */
  bucket(endpoint: string): string {
    return `${this.endpointPrefix(endpoint)}b:${endpoint}`;
  }
  /** Fair queue of one endpoint (sorted set of tickets by start tag). */
  queue(endpoint: string): string {
    return `${this.endpointPrefix(endpoint)}q:${endpoint}`;
  }
  /** Promotions posted to the processes that wait on one endpoint (hash: 'owner|seq' -> what happened). */
  mailbox(endpoint: string): string {
    return `${this.endpointPrefix(endpoint)}m:${endpoint}`;
  }
  /**
   * Owners' leases in the endpoint's slot (sorted set: owner id -> lease expiry, Redis ms): one per
   * namespace in layout 'namespace', one per endpoint in layout 'endpoint'.
   */
  leases(endpoint?: string): string {
    return `${this.slotPrefix(endpoint)}o`;
  }
  /** Shadow bucket of one endpoint: a previewed limit that holds nobody back (hash). */
  shadow(endpoint: string): string {
    return `${this.endpointPrefix(endpoint)}sh:${endpoint}`;
  }
  /** Live processes of the namespace by lease expiry (sorted set), for leased shares. */
  live(): string {
    return `${this.prefix}live`;
  }
  /** Namespace-wide parent bucket (hash). Layout 'endpoint' has none (the config refuses one): its key stays in the endpoint's slot. */
  global(endpoint?: string): string {
    return `${this.slotPrefix(endpoint)}g`;
  }
  /** Every tenant's budget bucket (hash: tenant -> packed bucket, '|x' -> the key's expiry; see buckets.lua). */
  tenants(endpoint?: string): string {
    return `${this.slotPrefix(endpoint)}t`;
  }
  /** Operators' runtime tenant budgets: tenant -> 'rate,burst' (hash). */
  tenantConfig(endpoint?: string): string {
    return `${this.slotPrefix(endpoint)}tcfg`;
  }
  /**
   * The keys acquire and cancel declare, in their KEYS order: every key they touch (see
   * lua/acquire-9.lua). Built once per endpoint: the list is the same for every call and owner.
   */
  script(endpoint: string): string[] {
    let keys = this.scriptKeys.get(endpoint);
    if (keys === undefined) {
      keys = [this.config(endpoint), this.bucket(endpoint), this.queue(endpoint), this.mailbox(endpoint), this.leases(endpoint),
        this.global(endpoint), this.tenants(endpoint), this.tenantConfig(endpoint), this.shadow(endpoint)];
      this.scriptKeys.set(endpoint, keys);
    }
    return keys;
  }
  private slotPrefix(endpoint: string | undefined): string {
    return endpoint === undefined ? this.prefix : this.endpointPrefix(endpoint);
  }
  /** Counters and recent history of one endpoint, read by status and metrics (hash). */
  stats(endpoint: string): string {
    return `${this.prefix}s:${endpoint}`;
  }
  /** Audit log of admin changes (capped list). */
  audit(): string {
    return `${this.prefix}audit`;
  }
  /** Set of endpoints seen in this namespace, for status listings. */
  endpoints(): string {
    return `${this.prefix}endpoints`;
  }
}
