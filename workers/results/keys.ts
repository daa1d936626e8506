import { assertName } from 'sluice';

/**
 * Keys of the harvest results: one hash tag of their own (`{namespace:results}`), so the fleet's
 * data does not pile onto the throttle's slot and one MULTI can write a profile's keys together.
 */
export class ResultKeys {
  readonly namespace: string;
  private readonly prefix: string;

  constructor(namespace: string) {
    this.namespace = assertName('namespace', namespace);
    this.prefix = `sluice:{${namespace}:results}:`;
  }
  /** Domains found on one profile (sorted set scored by last seen). */
  profileDomains(handle: string): string {
    return `${this.prefix}pd:${handle}`;
  }
  /** Profiles whose bio names one domain (sorted set scored by last seen). */
  domainProfiles(domain: string): string {
    return `${this.prefix}dp:${domain}`;
  }
  /** Every domain seen (see store.ts for the layout). */
  domainIndex(): string {
    return `${this.prefix}domains`;
  }
  /** Every profile seen (see store.ts for the layout). */
  profileIndex(): string {
    return `${this.prefix}profiles`;
  }
}
