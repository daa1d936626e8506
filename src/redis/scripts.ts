import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { PACKAGE_ROOT } from '../package-root.js';

/**
 * The one loader of `lua/`: puts the includes a script names (`--- @include "name"`, from
 * `lua/includes/`) before it, each once, takes the key
 * count from the file name (`verbNoun-N.lua`; `verbNoun-n.lua`: a count passed with each call, as
 * EVAL's numkeys, for scripts over a variable number of keys) and names each script by version
 * (`acquire:1a2b3c4d`), so two versions of Sluice on one Redis never overwrite each other.
 *
 * Where the server has Redis Functions (7.0+), each script is also a library of its own
 * (`sluicefn_acquire_1a2b3c4d`), loaded once per server and called by `FCALL`: an `EVALSHA` runs the
 * script's whole chunk again on every call, defining its forty-odd local functions and constant
 * tables anew (about a fifth of a fast-path call's instructions), which a Function does once. A
 * server without Functions, or a user not allowed `FUNCTION LOAD`, gets `EVALSHA` (ioredis falls
 * back to `EVAL` on NOSCRIPT); so does a script marked `--- @eval-only`.
 */

const LUA_DIR = join(PACKAGE_ROOT, 'lua');
const INCLUDE = /^--- @include "([\w-]+)"\s*$/gm;
const EVAL_ONLY = /^--- @eval-only\b/m;

export interface Script {
  /** File name without extension, e.g. `acquire-9`. */
  file: string;
  verb: string;
  /** From the file name; undefined for `-n`: each call passes its key count first. */
  numberOfKeys: number | undefined;
  source: string;
  /** Name the script is defined under on a connection. */
  command: string;
  /** The Redis Functions library and its one function (same name); undefined for `@eval-only` scripts. */
  library: { name: string; code: string } | undefined;
}

interface Include {
  name: string;
  /** Its text without its own include lines. */
  text: string;
}

/** The includes a script needs, each once and after those it includes itself. */
function includesOf(source: string, seen = new Set<string>()): Include[] {
  const out: Include[] = [];
  for (const [, name] of source.matchAll(INCLUDE) as IterableIterator<[string, string]>) {
    if (seen.has(name)) continue;
    seen.add(name);
    const text = readFileSync(join(LUA_DIR, 'includes', `${name}.lua`), 'utf8');
    out.push(...includesOf(text, seen), { name, text: text.replace(INCLUDE, '') });
  }
  return out;
}

/** `math.max, string.sub, redis.call`: library functions bound to locals, the same on every call. */
const LIBRARY_FUNCTION = String.raw`(?:(?:math|string|table|struct|cjson|redis)\.\w+|tonumber|tostring|unpack|pairs|ipairs)`;
const LIBRARY_ALIASES = new RegExp(String.raw`^${LIBRARY_FUNCTION}(?:\s*,\s*${LIBRARY_FUNCTION})*\s*$`);

/**
 * An include as a Function library's top level, which runs once per server with no globals but
 * `redis` (Redis 7.0 lets a library reach `math`, `string`... only inside its functions). So every
 * top-level `local` with a value becomes a declaration here and an assignment run by the call:
 * a name in UPPER_CASE is a constant, assigned on the library's first call (`once`), and so is a
 * local bound to library functions (`local max, sub = math.max, string.sub`); any other is
 * per-call state (a cache, the clock), assigned again at the start of every call (`perCall`).
 * Anything else at the top level could not be split so, and is refused rather than shared
 * between calls.
 */
export function hoist(name: string, source: string, once: string[], perCall: string[]): string {
  let longComment = false;
  return source
    .split('\n')
    .map((line, i) => {
      if (longComment) {
        if (line.includes(']]')) longComment = false;
        return line;
      }
      if (/^--\[=*\[/.test(line)) {
        longComment = !line.includes(']]', 4);
        return line;
      }
      if (line === '' || /^(\s|--|end\b|local function )/.test(line)) return line;
      const decl = /^local ([A-Za-z_][\w]*(?:\s*,\s*[A-Za-z_]\w*)*)\s*(?:=\s*(.*))?$/.exec(line);
      const where = `lua/includes/${name}.lua:${i + 1}`;
      if (!decl) throw new Error(`${where}: only local declarations and local functions may stand at an include's top level (a Function library runs it once, not per call): ${line}`);
      const [, names, value] = decl as unknown as [string, string, string | undefined];
      const open = (value ?? '').replace(/'[^']*'|"[^"]*"/g, '');
      if ((open.match(/[({[]/g) ?? []).length !== (open.match(/[)}\]]/g) ?? []).length) {
        throw new Error(`${where}: a top-level local must be declared on one line: ${line}`);
      }
      const constant = /^[A-Z][A-Z0-9_]*$/.test(names.split(',')[0]!.trim()) || LIBRARY_ALIASES.test(value ?? '');
      (constant ? once : perCall).push(`${names} = ${value ?? 'nil'}`);
      return `local ${names}`;
    })
    .join('\n');
}

/**
 * The script as a Function library: the includes once at the top level, then the script's body as
 * the function. KEYS and ARGV, globals under EVAL, are the library's upvalues, set by each call.
 */
function library(name: string, includes: Include[], body: string): string {
  const once: string[] = [];
  const perCall: string[] = [];
  const top = includes.map((i) => hoist(i.name, i.text, once, perCall)).join('\n');
  return [
    `#!lua name=${name}`,
    'local KEYS, ARGV, ready',
    top,
    'local function beginCall()',
    '  if not ready then',
    ...once.map((s) => `    ${s}`),
    '    ready = true',
    '  end',
    ...perCall.map((s) => `  ${s}`),
    'end',
    `redis.register_function('${name}', function(keys, argv)`,
    'KEYS, ARGV = keys, argv',
    'beginCall()',
    body,
    'end)',
    '',
  ].join('\n');
}

function load(): Map<string, Script> {
  const scripts = new Map<string, Script>();
  for (const file of readdirSync(LUA_DIR)) {
    const match = /^([a-zA-Z]+)-(\d+|n)\.lua$/.exec(file);
    if (!match) continue;
    const [, verb, keys] = match as unknown as [string, string, string];
    const raw = readFileSync(join(LUA_DIR, file), 'utf8');
    const includes = includesOf(raw);
    const body = raw.replace(INCLUDE, '');
    // for EVAL: the includes, then the script (its header comment after them)
    const source = [...includes.map((i) => i.text), body].join('\n');
    const version = createHash('sha1').update(source).digest('hex').slice(0, 8);
    const name = `sluicefn_${verb}_${version}`;
    scripts.set(verb, {
      file: file.slice(0, -4),
      verb,
      numberOfKeys: keys === 'n' ? undefined : Number(keys),
      source,
      command: `${verb}:${version}`,
      library: EVAL_ONLY.test(raw) ? undefined : { name, code: library(name, includes, body) },
    });
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
type Mode = 'functions' | 'eval';
const defined = new WeakMap<Connection, Logger | undefined>();
/** How each connection runs scripts, once known (read on every call: no await once settled). */
const modes = new WeakMap<Connection, Mode>();
const loading = new WeakMap<Connection, Promise<Mode>>();

/**
 * Defines every script on a connection (once per connection) for `EVALSHA`; the Function
 * libraries are loaded on the first `run`. The logger hears which way the scripts run.
 */
export function defineScripts(redis: Connection, log?: Logger): void {
  if (defined.has(redis)) {
    if (log && !defined.get(redis)) defined.set(redis, log);
    return;
  }
  for (const s of scripts().values()) {
    // without numberOfKeys, ioredis takes the first argument as numkeys (and routes by the keys on a Cluster)
    redis.defineCommand(s.command, s.numberOfKeys === undefined ? { lua: s.source } : { numberOfKeys: s.numberOfKeys, lua: s.source });
  }
  defined.set(redis, log);
}

function masters(redis: Connection): Redis[] {
  return 'nodes' in redis && redis.isCluster ? (redis as Cluster).nodes('master') : [redis as Redis];
}

/**
 * Loads every library on every master (a Cluster's masters each need their own; replicas get them
 * by replication). A library already there is the same code (its name is its version): it stays.
 */
async function loadFunctions(redis: Connection): Promise<Mode> {
  const libraries = [...scripts().values()].flatMap((s) => (s.library ? [s.library] : []));
  try {
    // a Cluster that has not learned its masters yet: a command waits for them (and starts a lazy
    // connection), and fails as any command would when the cluster cannot be reached
    if (redis.isCluster && masters(redis).length === 0) await redis.ping();
    for (const node of masters(redis)) {
      const present = new Set(((await node.call('FUNCTION', 'LIST', 'LIBRARYNAME', 'sluicefn_*')) as unknown[][]).map((l) => String(l[1])));
      for (const lib of libraries) {
        if (present.has(lib.name)) continue;
        // REPLACE: another process may have loaded the same name (the same code) since the LIST
        await node.call('FUNCTION', 'LOAD', 'REPLACE', lib.code);
      }
    }
    defined.get(redis)?.debug({ libraries: libraries.map((l) => l.name) }, 'scripts run as Redis Functions (FCALL)');
    return 'functions';
  } catch (err) {
    const message = (err as Error).message;
    // a Lua error in our own code is a bug to see at once, not a reason to run slower
    if (/Error compiling|user_function|register_function|upvalues|local variables/i.test(message)) throw err;
    // a connection failure decides nothing: the next call asks again
    if (!/unknown command|unknown subcommand|NOPERM|not allowed|not supported|disabled/i.test(message)) throw Object.assign(err as Error, { retryLoad: true });
    defined.get(redis)?.info({ err: { message } }, 'Redis Functions are not available on this server (or this user may not load them): scripts run by EVALSHA, at a higher CPU cost per call');
    return 'eval';
  }
}

function mode(redis: Connection): Promise<Mode> {
  let p = loading.get(redis);
  if (!p) {
    p = loadFunctions(redis).then(
      (m) => {
        modes.set(redis, m);
        return m;
      },
      (err: Error & { retryLoad?: boolean }) => {
        if (err.retryLoad) loading.delete(redis);
        throw err;
      },
    );
    loading.set(redis, p);
  }
  return p;
}

// evalsha and fcall pass the arguments as one array, which ioredis flattens into the command:
// spreading a batch's hundreds of them into the call would copy them twice more (the spread, then
// the rest parameter)
function evalsha<T>(redis: Connection, s: Script, keys: string[], args: (string | number)[]): Promise<T> {
  const fn = (redis as unknown as Record<string, (...a: (string | number | (string | number)[])[]) => Promise<T>>)[s.command]!;
  return s.numberOfKeys === undefined ? fn.call(redis, keys.length, ...keys, args) : fn.call(redis, ...keys, args);
}

function fcall<T>(redis: Connection, s: Script, keys: string[], args: (string | number)[], retried = false): Promise<T> {
  const call = redis.call as unknown as (command: string, ...a: (string | number | (string | number)[])[]) => Promise<T>;
  return call.call(redis, 'FCALL', s.library!.name, keys.length, ...keys, args).catch((err: Error) => {
    // a server that lost its functions (FUNCTION FLUSH, a new master after a reshard): load them again, once
    if (retried || !/Function not found/i.test(err.message)) throw err;
    loading.delete(redis);
    modes.delete(redis);
    return mode(redis).then((m) => (m === 'functions' ? fcall<T>(redis, s, keys, args, true) : evalsha<T>(redis, s, keys, args)));
  });
}

/** Runs a script: one `FCALL` (one `EVALSHA` where Functions are not available). */
export function run<T = unknown>(redis: Connection, verb: string, keys: string[], args: (string | number)[]): Promise<T> {
  const s = script(verb);
  if (s.numberOfKeys !== undefined && keys.length !== s.numberOfKeys) {
    throw new Error(`${s.file} takes ${s.numberOfKeys} keys, got ${keys.length}`);
  }
  if (!defined.has(redis)) defineScripts(redis);
  if (!s.library) return evalsha<T>(redis, s, keys, args);
  const m = modes.get(redis);
  if (m === 'functions') return fcall<T>(redis, s, keys, args);
  if (m === 'eval') return evalsha<T>(redis, s, keys, args);
  return mode(redis).then((settled) => (settled === 'functions' ? fcall<T>(redis, s, keys, args) : evalsha<T>(redis, s, keys, args)));
}
