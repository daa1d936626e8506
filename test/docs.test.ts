/**
 * The docs say only true things that can be checked mechanically:
 * - docs/api/ is what TypeDoc makes of the sources now;
 * - every command in a ```sh block of the docs names a real npm script, sluice subcommand and
 *   option, file, docker-compose service or admin route (commands are checked, never run: most
 *   need a server, Docker or minutes);
 * - every log message the runbook quotes is logged somewhere in src/, every `sluice_*` metric is
 *   exported by src/metrics, every alert exists in config/alerts.yml, every link between the docs
 *   lands on a file and heading that exist.
 */
import { execSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { createAdminServer } from '../src/admin/server.js';
import { loadConfigFile } from '../workers/config/load.js';
import { createThrottler, type Throttler } from '../src/index.js';
import { redisUrl } from './support/helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');

/** The docs this file vouches for (docs/inngest.md has its own commands for machines with internet). */
const DOCS = ['docs/architecture.md', 'docs/tuning.md', 'docs/runbook.md', 'docs/benchmarks.md'];

function sourcesUnder(dir: string): string {
  let text = '';
  for (const entry of readdirSync(join(root, dir))) {
    const path = join(dir, entry);
    if (statSync(join(root, path)).isDirectory()) text += sourcesUnder(path);
    else if (path.endsWith('.ts')) text += `${read(path)}\n`;
  }
  return text;
}

// ------------------------------------------------------------------ shell commands

/** Splits shell text into commands (at `&&`, `||`, `|`, `;`, newlines) of words; drops comments and redirections. */
function shellCommands(text: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word: string | undefined;
  const flushWord = () => {
    if (word !== undefined) words.push(word);
    word = undefined;
  };
  const flushCommand = () => {
    flushWord();
    if (words.length) commands.push(words);
    words = [];
  };
  const src = text.replace(/\\\n/g, ' ');
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === "'") {
      const end = src.indexOf("'", i + 1);
      word = (word ?? '') + src.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      let j = i + 1;
      let value = '';
      while (j < src.length && src[j] !== '"') {
        if (src[j] === '\\') value += src[++j];
        else value += src[j];
        j++;
      }
      word = (word ?? '') + value;
      i = j + 1;
    } else if (c === '$' && src[i + 1] === '(') {
      let depth = 0;
      let j = i + 1;
      for (; j < src.length; j++) {
        if (src[j] === '(') depth++;
        else if (src[j] === ')' && --depth === 0) break;
      }
      word = (word ?? '') + src.slice(i, j + 1);
      i = j + 1;
    } else if (c === '#' && word === undefined) {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '\n' || c === ';') {
      flushCommand();
      i++;
    } else if ((c === '&' || c === '|') && src[i + 1] === c) {
      flushCommand();
      i += 2;
    } else if (c === '|') {
      flushCommand();
      i++;
    } else if (c === '>' || c === '<') {
      // a redirection: drop it and its target
      flushWord();
      i += src[i + 1] === '>' ? 2 : 1;
      while (src[i] === ' ') i++;
      while (i < src.length && !/[\s;|&]/.test(src[i]!)) i++;
    } else if (/\s/.test(c)) {
      flushWord();
      i++;
    } else {
      word = (word ?? '') + c;
      i++;
    }
  }
  flushCommand();
  return commands;
}

function shBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```(?:sh|bash|shell)\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

interface Cli {
  commands: Set<string>;
  subcommands: Map<string, Set<string>>;
  choices: Map<string, string[]>;
  /** Option → whether it takes a value. */
  options: Map<string, boolean>;
}

/** What workers/cli/main.ts declares: commands, subcommands, argument choices, options. */
function readCli(): Cli {
  const main = read('workers/cli/main.ts');
  const commands = new Set([...main.matchAll(/program\s*\.command\('([\w-]+)'\)/g)].map((m) => m[1]!));
  const subcommands = new Map<string, Set<string>>();
  for (const m of main.matchAll(/const (\w+) = program\s*\.command\('([\w-]+)'\)/g)) {
    subcommands.set(m[2]!, new Set([...main.matchAll(new RegExp(`\\b${m[1]}\\s*\\.command\\('([\\w-]+)'\\)`, 'g'))].map((s) => s[1]!)));
  }
  const choices = new Map<string, string[]>();
  for (const m of main.matchAll(/\.command\('([\w-]+)'\)([\s\S]*?)\.action\(/g)) {
    const c = /new Argument\([^)]*\)\s*\.choices\(\[([^\]]*)\]\)/.exec(m[2]!);
    if (c) choices.set(m[1]!, [...c[1]!.matchAll(/'([^']+)'/g)].map((x) => x[1]!));
  }
  const options = new Map<string, boolean>();
  for (const m of main.matchAll(/['"](?:-\w, )?(--[\w-]+)(\s+[<[][^>\]]+[>\]])?/g)) options.set(m[1]!, Boolean(m[2]));
  return { commands, subcommands, choices, options };
}

interface Route {
  method: string;
  pattern: RegExp;
  path: string;
}

/** The admin server's routes, from fastify's own route tree. */
function parseRouteTree(tree: string): Route[] {
  const routes: Route[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([\s│]*)[├└]── (\S+)(?: \(([^)]*)\))?/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    const parent = stack[depth - 1] ?? '';
    const seg = m[2]!;
    const path = parent + (parent.endsWith('/') || seg.startsWith('/') || parent === '' ? '' : '/') + seg;
    stack[depth] = path;
    stack.length = depth + 1;
    for (const method of (m[3] ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
      routes.push({ method, path, pattern: new RegExp(`^${path.replace(/[.]/g, '\\.').replace(/:\w+/g, '[^/]+')}$`) });
    }
  }
  return routes;
}

interface Context {
  scripts: Record<string, string>;
  cli: Cli;
  routes: Route[];
  endpoints: string[];
  services: Record<string, { entrypoint?: unknown; image?: string; profiles?: string[] }>;
}

/** Checks one command; returns what is wrong with it, or undefined. */
function checkCommand(words: string[], ctx: Context): string | undefined {
  const w = [...words];
  // command substitutions are commands too
  for (const word of w) {
    for (const sub of word.matchAll(/\$\(([^)]*)\)/g)) {
      for (const c of shellCommands(sub[1]!)) {
        const bad = checkCommand(c, ctx);
        if (bad) return bad;
      }
    }
  }
  while (w.length && /^[A-Z_][A-Z0-9_]*=/.test(w[0]!)) w.shift();
  if (w[0] === 'sudo') w.shift();
  const [cmd, ...args] = w;
  if (cmd === undefined) return undefined;
  const exists = (p: string) => isAbsolute(p) || existsSync(join(root, p));
  switch (cmd) {
    case 'npm': {
      const [sub, ...rest] = args;
      if (sub === 'ci' || sub === 'install') return undefined;
      if (sub === 'test' || sub === 'start') return ctx.scripts[sub] ? undefined : `npm ${sub}: no "${sub}" script`;
      if (sub === 'run') {
        const name = rest[0]!;
        const script = ctx.scripts[name];
        if (!script) return `npm run ${name}: no such script in package.json`;
        const dash = rest.indexOf('--');
        const extra = dash >= 0 ? rest.slice(dash + 1) : [];
        const cli = /workers\/cli\/main\.ts\s*(.*)$/.exec(script);
        if (cli) return checkSluice([...cli[1]!.split(/\s+/).filter(Boolean), ...extra], ctx);
        const file = /^tsx\s+(\S+)/.exec(script)?.[1];
        if (file) return checkFlagsIn(file, extra);
        return undefined;
      }
      return `npm ${sub}: not a command the docs should need`;
    }
    case 'npx': {
      const [bin, ...rest] = args.filter((a) => a !== '--yes');
      if (bin === 'tsx') {
        const file = rest[0]!;
        if (!exists(file)) return `npx tsx ${file}: no such file`;
        if (file === 'workers/cli/main.ts') return checkSluice(rest.slice(1), ctx);
        return checkFlagsIn(file, rest.slice(1));
      }
      if (!existsSync(join(root, 'node_modules', '.bin', bin!))) return `npx ${bin}: not installed in node_modules/.bin`;
      for (const a of rest) if (/^[\w./-]+\.(ts|js|md|yml|json)$/.test(a) && !exists(a)) return `npx ${bin}: no such file ${a}`;
      return undefined;
    }
    case 'node': {
      const file = args[0]!;
      if (!exists(file)) return `node ${file}: no such file`;
      if (file === 'bin/sluice.js') return checkSluice(args.slice(1), ctx);
      return undefined;
    }
    case 'docker-compose':
      return checkCompose(args, ctx);
    case 'curl':
      return checkCurl(args, ctx);
    case 'redis-cli':
    case 'openssl':
    case 'echo':
    case 'printf':
    case 'cat':
    case 'apt-get':
      return undefined;
    default:
      return `${cmd}: not a command these docs know how to check`;
  }
}

/** Every `--flag` given to a script must appear in its source. */
function checkFlagsIn(file: string, args: string[]): string | undefined {
  const source = read(file);
  for (const a of args) {
    if (a.startsWith('--') && !source.includes(`'${a.split('=')[0]}'`)) return `${file}: has no option ${a}`;
  }
  return undefined;
}

function checkSluice(args: string[], ctx: Context): string | undefined {
  const { cli } = ctx;
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('--')) {
      const flag = a.split('=')[0]!;
      if (flag === '--help') continue;
      if (!cli.options.has(flag)) return `sluice: no option ${flag}`;
      if (cli.options.get(flag) && !a.includes('=')) {
        const value = args[++i];
        if (value === undefined) return `sluice ${flag}: needs a value`;
        if ((flag === '--config' || flag === '--file') && !isAbsolute(value) && !existsSync(join(root, value))) return `sluice ${flag} ${value}: no such file`;
      }
    } else positional.push(a);
  }
  const [command, second] = positional;
  if (!command) return 'sluice: no command';
  if (!cli.commands.has(command)) return `sluice: no command "${command}" (has ${[...cli.commands].join(', ')})`;
  const subs = cli.subcommands.get(command);
  if (subs && (second === undefined || !subs.has(second))) return `sluice ${command}: no subcommand "${second}" (has ${[...subs].join(', ')})`;
  const choices = cli.choices.get(command);
  if (choices && (second === undefined || !choices.includes(second))) return `sluice ${command}: "${second}" is not one of ${choices.join(', ')}`;
  return undefined;
}

const COMPOSE_VALUE_FLAGS = new Set(['--tail', '--scale', '-e', '-u', '-w', '--timeout', '-t', '--entrypoint', '--name']);

function checkCompose(args: string[], ctx: Context): string | undefined {
  let i = 0;
  for (; i < args.length && args[i]!.startsWith('-'); i++) {
    const a = args[i]!;
    if (a === '-f') {
      const file = args[++i]!;
      if (!existsSync(join(root, file))) return `docker-compose -f ${file}: no such file`;
    } else if (a === '--profile') {
      const profile = args[++i]!;
      if (!Object.values(ctx.services).some((s) => s.profiles?.includes(profile))) return `docker-compose: no service has profile ${profile}`;
    }
  }
  const sub = args[i++];
  const known = ['up', 'down', 'config', 'logs', 'restart', 'stop', 'start', 'exec', 'run', 'ps', 'build', 'pull', 'top'];
  if (!sub || !known.includes(sub)) return `docker-compose: unexpected subcommand ${sub}`;
  const rest = args.slice(i);
  const services: string[] = [];
  let command: string[] = [];
  for (let j = 0; j < rest.length; j++) {
    const a = rest[j]!;
    if (a.startsWith('-')) {
      if (COMPOSE_VALUE_FLAGS.has(a)) {
        const value = rest[++j]!;
        if (a === '--scale' && !ctx.services[value.split('=')[0]!]) return `docker-compose --scale ${value}: no such service`;
      }
      continue;
    }
    services.push(a);
    if (sub === 'run' || sub === 'exec') {
      command = rest.slice(j + 1);
      break;
    }
  }
  for (const s of services) if (!ctx.services[s]) return `docker-compose ${sub}: no service ${s}`;
  if (sub === 'run' && services[0]) {
    const svc = ctx.services[services[0]]!;
    if (svc.image === 'sluice:local' && svc.entrypoint === undefined) return checkSluice(command, ctx);
  }
  if (sub === 'exec' && command.length) return checkCommand(command, ctx);
  return undefined;
}

function checkCurl(args: string[], ctx: Context): string | undefined {
  let method: string | undefined;
  let hasData = false;
  let url: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-X') method = args[++i];
    else if (a === '-d' || a === '--data') {
      hasData = true;
      const body = args[++i]!;
      try {
        JSON.parse(body);
      } catch {
        return `curl -d ${body}: not JSON`;
      }
    } else if (a === '-H' || a === '--header') i++;
    else if (/^https?:\/\//.test(a)) url = a;
  }
  if (!url) return 'curl: no URL';
  const path = new URL(url).pathname;
  const m = method ?? (hasData ? 'POST' : 'GET');
  const route = ctx.routes.find((r) => r.method === m && r.pattern.test(path));
  if (!route) return `curl ${m} ${path}: the admin server has no such route`;
  const endpoint = /^\/api\/endpoints\/([^/]+)/.exec(path)?.[1];
  if (endpoint && !ctx.endpoints.includes(endpoint)) return `curl ${path}: ${endpoint} is not an endpoint of config/default.yml`;
  return undefined;
}

// ------------------------------------------------------------------ markdown helpers

/** GitHub's heading anchors. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  const text = markdown.replace(/```[\s\S]*?```/g, '');
  for (const m of text.matchAll(/^#{1,6}\s+(.+)$/gm)) out.add(slug(m[1]!));
  return out;
}

// ------------------------------------------------------------------ tests

describe('docs/api (TypeDoc)', () => {
  it('is what TypeDoc makes of the sources now (run `npm run docs:api` after changing the public API or its TSDoc)', () => {
    const out = mkdtempSync(join(tmpdir(), 'sluice-api-'));
    try {
      execSync(`npm run -s docs:api -- --out ${out}`, { cwd: root, stdio: 'pipe', timeout: 240_000 });
      const files = (dir: string) => readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.md')).sort();
      expect(files(join(root, 'docs/api')), 'docs/api is out of date: run `npm run docs:api`').toEqual(files(out));
      for (const f of files(out)) expect(read(join('docs/api', f)), `docs/api/${f} is out of date: run \`npm run docs:api\``).toBe(readFileSync(join(out, f), 'utf8'));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 300_000);

  it('documents every symbol src/index.ts exports', () => {
    const index = read('src/index.ts');
    const names = [...index.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}/g)].flatMap((m) =>
      m[1]!.split(',').map((s) => s.trim().replace(/^type\s+/, '').split(/\s+as\s+/).pop()!).filter(Boolean),
    );
    expect(names.length).toBeGreaterThan(10);
    const documented = new Set(readdirSync(join(root, 'docs/api/sluice'), { recursive: true, encoding: 'utf8' }).map((f) => f.split('/').pop()!.replace(/\.md$/, '')));
    for (const name of names) expect(documented.has(name), name).toBe(true);
  });
});

describe('commands in the docs', () => {
  let throttler: Throttler | undefined;
  let ctx: Context;

  beforeAll(async () => {
    const config = loadConfigFile(join(root, 'config/default.yml'));
    throttler = createThrottler({ ...config.throttle, namespace: 'docs-routes', redis: redisUrl(), logger: pino({ level: 'silent' }) });
    const app = createAdminServer({ throttler, token: 'docs-test', logger: pino({ level: 'silent' }) });
    const routes = parseRouteTree(app.printRoutes({ commonPrefix: false }));
    await app.close();
    const compose = parseYaml(read('docker-compose.yml'), { merge: true }) as { services: Context['services'] };
    ctx = {
      scripts: (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts,
      cli: readCli(),
      routes,
      endpoints: Object.keys(config.throttle.endpoints),
      services: compose.services,
    };
  });
  afterAll(async () => {
    await throttler?.close();
  });

  it('reads the CLI and the admin routes it checks against', () => {
    expect([...ctx.cli.commands]).toEqual(expect.arrayContaining(['worker', 'admin', 'status', 'enqueue']));
    expect(ctx.cli.options.get('--config')).toBe(true);
    expect(ctx.routes.some((r) => r.method === 'POST' && r.pattern.test('/api/endpoints/tiktok.profile/pause'))).toBe(true);
    expect(ctx.routes.some((r) => r.method === 'GET' && r.pattern.test('/no/such/route'))).toBe(false);
  });

  it('checks what it is meant to (self-test of the checker)', () => {
    const bad = [
      'npm run no-such-script',
      'npm run sluice -- no-such-command',
      'npm run sluice -- worker nowhere',
      'npm run sluice -- status --no-such-flag',
      'npx tsx no/such/file.ts',
      'docker-compose up -d --scale nobody=2',
      'curl -X POST http://127.0.0.1:8080/api/endpoints/tiktok.profile/explode',
      'curl http://127.0.0.1:8080/api/endpoints/no.such.endpoint',
      'rm -rf /',
    ];
    for (const line of bad) expect(checkCommand(shellCommands(line)[0]!, ctx), line).toBeDefined();
    const good = ['npm test', 'npm run sluice -- --config config/demo.yml status --watch', 'SLUICE_ADMIN_TOKEN=$(openssl rand -hex 32) docker-compose up -d'];
    for (const line of good) expect(checkCommand(shellCommands(line)[0]!, ctx), line).toBeUndefined();
  });

  for (const doc of DOCS) {
    it(`${doc}: every command in a sh block is real`, () => {
      if (!existsSync(join(root, doc))) return;
      const problems: string[] = [];
      const blocks = shBlocks(read(doc));
      for (const block of blocks) {
        expect(shellCommands(block).length, `${doc}: a sh block without a command`).toBeGreaterThan(0);
        for (const words of shellCommands(block)) {
          const bad = checkCommand(words, ctx);
          if (bad) problems.push(`${words.join(' ')}\n    -> ${bad}`);
        }
      }
      expect(problems, problems.join('\n')).toEqual([]);
    });
  }
});

describe('what the docs quote', () => {
  const src = ['src', 'workers', 'jobs'].map(sourcesUnder).join('\n');

  it('runbook: every log message in its tables is logged in src/, workers/ or jobs/', () => {
    const runbook = read('docs/runbook.md');
    const messages: string[] = [];
    for (const table of runbook.matchAll(/^\| log message \|[^\n]*\n\|[-| ]+\|\n((?:\|[^\n]*\n)+)/gm)) {
      for (const row of table[1]!.trim().split('\n')) messages.push(/^\|\s*`([^`]+)`/.exec(row)![1]!);
    }
    expect(messages.length).toBeGreaterThan(15);
    for (const msg of messages) {
      // `…` stands for the part the code fills in at run time
      for (const part of msg.split('…').map((p) => p.trim()).filter(Boolean)) expect(src, `log message "${msg}"`).toContain(part);
    }
  });

  it('every sluice_* metric named in the docs is exported by src/metrics', () => {
    const metrics = sourcesUnder('src/metrics');
    const exported = new Set([...metrics.matchAll(/name: '(sluice_\w+)'/g)].map((m) => m[1]!));
    for (const m of metrics.matchAll(/(?:viewGauge|viewCounter)\(\s*'(sluice_\w+)'/g)) exported.add(m[1]!);
    expect(exported.size).toBeGreaterThan(20);
    for (const doc of ['docs/runbook.md', 'docs/tuning.md', 'docs/architecture.md']) {
      for (const m of read(doc).matchAll(/\bsluice_[a-z_]+/g)) {
        const name = m[0];
        const ok = name.endsWith('_') ? [...exported].some((e) => e.startsWith(name)) : exported.has(name);
        expect(ok, `${doc}: ${name}`).toBe(true);
      }
    }
  });

  it('every alert named in the docs exists in config/alerts.yml', () => {
    const alerts = new Set([...read('config/alerts.yml').matchAll(/alert: (\w+)/g)].map((m) => m[1]!));
    for (const doc of ['docs/runbook.md', 'docs/tuning.md']) {
      for (const m of read(doc).matchAll(/`(Sluice[A-Z]\w+)`/g)) expect(alerts.has(m[1]!), `${doc}: alert ${m[1]}`).toBe(true);
    }
  });

  it('every link between the docs lands on a file and heading that exist', () => {
    for (const doc of DOCS) {
      if (!existsSync(join(root, doc))) continue;
      const text = read(doc).replace(/```[\s\S]*?```/g, '');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        const [file, anchor] = target.split('#');
        const path = file ? join('docs', file) : doc;
        expect(existsSync(join(root, path)), `${doc}: link ${target}`).toBe(true);
        if (anchor && path.endsWith('.md')) expect([...anchors(read(path))], `${doc}: link ${target}`).toContain(anchor);
      }
    }
  });
});
