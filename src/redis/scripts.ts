import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import { PACKAGE_ROOT } from '../package-root.js';

/**
 * The one loader of `lua/`: inlines `--- @include "name"` lines from `lua/includes/`, takes the key
 * count from the file name (`verbNoun-N.lua`; `verbNoun-n.lua`: a count passed with each call, as
 * EVAL's numkeys, for scripts over a variable number of keys) and defines each script on the connection under a
 * versioned name (`acquire:1a2b3c4d`), so two versions of Sluice on one Redis never overwrite each
 * other. ioredis does EVALSHA with the NOSCRIPT fallback.
 */

const LUA_DIR = join(PACKAGE_ROOT, 'lua');
const INCLUDE = /^--- @include "([\w-]+)"\s*$/gm;

export interface Script {
  /** File name without extension, e.g. `acquire-5`. */
  file: string;
  verb: string;
  /** From the file name; undefined for `-n`: each call passes its key count first. */
  numberOfKeys: number | undefined;
  source: string;
  /** Name the script is defined under on a connection. */
  command: string;
}

function inline(source: string, seen: Set<string>): string {
  return source.replace(INCLUDE, (_line, name: string) => {
    if (seen.has(name)) return '';
    seen.add(name);
    return inline(readFileSync(join(LUA_DIR, 'includes', `${name}.lua`), 'utf8'), seen);
  });
}

function load(): Map<string, Script> {
  const scripts = new Map<string, Script>();
  for (const file of readdirSync(LUA_DIR)) {
    const match = /^([a-zA-Z]+)-(\d+|n)\.lua$/.exec(file);
    if (!match) continue;
    const [, verb, keys] = match as unknown as [string, string, string];
    const source = inline(readFileSync(join(LUA_DIR, file), 'utf8'), new Set());
    const version = createHash('sha1').update(source).digest('hex').slice(0, 8);
    scripts.set(verb, { file: file.slice(0, -4), verb, numberOfKeys: keys === 'n' ? undefined : Number(keys), source, command: `${verb}:${version}` });
  }
  return scripts;
}

let cache: Map<string, Script> | undefined;

/** Every script in `lua/`, by verb (`acquire`, `cancel`, ...). */
export function scripts(): Map<string, Script> {
  cache ??= load();
  return cache;
}

export function script(verb: string): Script {
  const found = scripts().get(verb);
  if (!found) throw new Error(`no Lua script for "${verb}" in ${LUA_DIR}`);
  return found;
}

type Connection = Redis | Cluster;
const defined = new WeakMap<Connection, true>();

/** Defines every script on a connection (once per connection). */
export function defineScripts(redis: Connection): void {
  if (defined.has(redis)) return;
  for (const s of scripts().values()) {
    // without numberOfKeys, ioredis takes the first argument as numkeys (and routes by the keys on a Cluster)
    redis.defineCommand(s.command, s.numberOfKeys === undefined ? { lua: s.source } : { numberOfKeys: s.numberOfKeys, lua: s.source });
  }
  defined.set(redis, true);
}

/** Runs a defined script: one EVALSHA (EVAL on the first NOSCRIPT). */
export function run<T = unknown>(redis: Connection, verb: string, keys: string[], args: (string | number)[]): Promise<T> {
  const s = script(verb);
  if (s.numberOfKeys !== undefined && keys.length !== s.numberOfKeys) {
    throw new Error(`${s.file} takes ${s.numberOfKeys} keys, got ${keys.length}`);
  }
  const fn = (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<T>>)[s.command];
  if (!fn) throw new Error(`script ${s.command} is not defined on this connection`);
  return s.numberOfKeys === undefined ? fn.call(redis, keys.length, ...keys, ...args) : fn.call(redis, ...keys, ...args);
}
