import { InvalidNameError } from './errors/index.js';

/**
 * Every Redis key Sluice uses is built here and nowhere else.
 *
 * All throttle keys of a namespace share the hash tag `{namespace}` so every script touches one
 * Cluster slot. BullMQ queues get a tag of their own (`bullmqPrefix` in `sluice/bullmq`).
 */

/** Names that end up inside keys and script members: no braces (hash tags), no `|` (member separator), no blanks. */
const NAME = /^[^\s{}|\u0000-\u001f\u007f]{1,128}$/u;

export function assertName(kind: string, value: unknown): string {
  // a lone surrogate reaches Redis as U+FFFD: two distinct names would share their keys
  if (typeof value !== 'string' || !NAME.test(value) || !value.isWellFormed()) {
    const shown = typeof value === 'string' ? JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value) : String(value);
    throw new InvalidNameError(
      `${kind} name ${shown} is not valid: use 1-128 characters without spaces, braces or '|'`,
    );
  }
  return value;
}

export class Keys {
  readonly namespace: string;
  /** Common prefix of every throttle key: `sluice:{namespace}:`. */
  readonly prefix: string;

  constructor(namespace: string) {
    this.namespace = assertName('namespace', namespace);
    this.prefix = `sluice:{${namespace}}:`;
  }

  /** Runtime config overrides of one endpoint (hash). */
  config(endpoint: string): string {
    return `${this.prefix}cfg:${endpoint}`;
  }
  /** Token bucket + fair-queue clock of one endpoint (hash). */
  bucket(endpoint: string): string {
    return `${this.prefix}b:${endpoint}`;
  }
  /** Fair queue of one endpoint (sorted set of tickets by start tag). */
  queue(endpoint: string): string {
    return `${this.prefix}q:${endpoint}`;
  }
  /** Per-class finish tags and queued counts of one endpoint (hash). */
  classes(endpoint: string): string {
    return `${this.prefix}c:${endpoint}`;
  }
  /** Prefix of the per-owner promotion mailboxes of one endpoint; the script appends the owner id. */
  mailboxPrefix(endpoint: string): string {
    return `${this.prefix}m:${endpoint}:`;
  }
  mailbox(endpoint: string, owner: string): string {
    return `${this.mailboxPrefix(endpoint)}${owner}`;
  }
  /** Prefix of owner liveness keys; the script appends the owner id. */
  ownerPrefix(): string {
    return `${this.prefix}o:`;
  }
  owner(owner: string): string {
    return `${this.ownerPrefix()}${owner}`;
  }
  /** Shadow bucket of one endpoint: a previewed limit that holds nobody back (hash). */
  shadow(endpoint: string): string {
    return `${this.prefix}sh:${endpoint}`;
  }
  /** Live processes of the namespace by lease expiry (sorted set), for leased shares. */
  live(): string {
    return `${this.prefix}live`;
  }
  /** Namespace-wide parent bucket (hash). */
  global(): string {
    return `${this.prefix}g`;
  }
  /** Prefix of tenant budget buckets; the script appends the tenant. */
  tenantPrefix(): string {
    return `${this.prefix}t:`;
  }
  tenant(tenant: string): string {
    return `${this.tenantPrefix()}${tenant}`;
  }
  /** Operators' runtime tenant budgets: tenant -> 'rate,burst' (hash). */
  tenantConfig(): string {
    return `${this.prefix}tcfg`;
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
