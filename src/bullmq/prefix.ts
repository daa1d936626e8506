import { assertName } from '../keys.js';

/**
 * A BullMQ `prefix` with a Cluster hash tag of its own: `sluice:{<namespace>:bull}`.
 *
 * BullMQ's scripts touch several keys of a queue at once; with its default prefix `bull` those
 * keys land in different Cluster slots (CROSSSLOT). The tag keeps a queue's keys together and off
 * the throttle's slots. Queues and workers of one queue must use the same prefix.
 */
export function bullmqPrefix(namespace: string): string {
  return `sluice:{${assertName('namespace', namespace)}:bull}`;
}
