import { createHash } from 'node:crypto';
import { assertName } from '../keys.js';

/**
 * Redis keys of the inbound limiter, built here and nowhere else (the `src/keys.ts` conventions).
 *
 * Each limited key (a client IP, user, API key under one policy) is one hash with a hash tag of
 * its own, `sluice:{ns:h:policy:key}`, so the limiter's keys spread over every Cluster master
 * instead of piling onto the throttle's `{ns}` slot. The script touches that one key only.
 */

/** Client keys that can stand in a key as they are; anything else is hashed (braces would break the tag). */
const PLAIN = /^[\x21-\x7a]{1,100}$/;

/** A client key as it appears inside a Redis key: itself when short and plain, else `~` + a digest. */
export function keyPart(key: string): string {
  if (PLAIN.test(key)) return key;
  return `~${createHash('sha256').update(key).digest('base64url').slice(0, 27)}`;
}

export class HttpKeys {
  readonly namespace: string;

  constructor(namespace: string) {
    this.namespace = assertName('namespace', namespace);
  }

  /** State of one limited key under one policy: rate, quota counts and block (hash), its own slot. */
  state(policy: string, key: string): string {
    return this.stateOfPart(policy, keyPart(key));
  }

  /** The same, from the key as stored (`keyPart`), e.g. as the blocked index lists it. */
  stateOfPart(policy: string, part: string): string {
    return `sluice:{${this.namespace}:h:${policy}:${part}}`;
  }

  /** Index of blocked keys: `policy|key` scored by the end of the block (sorted set), for the admin API. */
  blocked(): string {
    return `sluice:{${this.namespace}:h}:blocked`;
  }

  /** Member of the blocked index for one key (as stored). */
  blockedMember(policy: string, part: string): string {
    return `${policy}|${part}`;
  }
}
