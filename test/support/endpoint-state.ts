import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/**
 * An endpoint's packed state (field 'p' of its bucket hash: doubles, little-endian, in the order
 * of lua/includes/endpoint.lua), for tests that move its clocks instead of sleeping. The field
 * order is read from the Lua source, the one place it is written.
 */
const source = readFileSync(new URL('../../lua/includes/endpoint.lua', import.meta.url), 'utf8');
const listed = /^local EP_FIELDS = \{([^}]*)\}/m.exec(source)?.[1];
if (!listed) throw new Error('EP_FIELDS not found in lua/includes/endpoint.lua');
const FIELDS = ['t', 'ts', 'r', 'b', 'kx', ...[...listed.matchAll(/'(\w+)'/g)].map((m) => m[1]!)];

export async function readEndpointState(redis: Redis, key: string): Promise<Record<string, number>> {
  const packed = await redis.hgetBuffer(key, 'p');
  if (!packed) throw new Error(`${key} holds no packed state`);
  return Object.fromEntries(FIELDS.map((f, i) => [f, packed.readDoubleLE(i * 8)]));
}

export async function writeEndpointState(redis: Redis, key: string, change: Record<string, number>): Promise<void> {
  const state = { ...(await readEndpointState(redis, key)), ...change };
  const packed = Buffer.alloc(FIELDS.length * 8);
  FIELDS.forEach((f, i) => packed.writeDoubleLE(state[f]!, i * 8));
  await redis.hset(key, 'p', packed);
}
