/**
 * The `sluice` command line (bin/sluice.js, `npm run sluice`, `npm run demo`).
 *
 *   sluice [--config <path>] [--redis <url>] <command>
 *     worker discovery|harvesting [--concurrency N]
 *     enqueue discovery [--hashtag X] [--keyword K] [--creator C] [--video V] [--file seeds.txt]
 *                       [--tenant T] [--priority P] [--max-profiles N] [--max-backlog N [--wait 5min]]
 *     enqueue harvesting --handle H [--tenant T] [--priority P] [--max-backlog N [--wait 5min]]
 *     export --format csv|jsonl [--out file]
 *     demo [--json] [--duration 60s] [--sim-limit-factor 0.5] [--sim-limit-schedule 2m=0.5,5m=1]
 *          [--report demo-report.html] [--no-throttle]
 *     admin [--port N] [--host H] [--token T]
 *     status [--watch] [--json]
 *     limits set <endpoint> [--rate 80/min] [--burst N] [--ttl 1h]
 *     limits pause <endpoint> [--for 10min] [--reason text]
 *     limits resume|reset <endpoint>          (through the admin API: --admin-url, --token)
 *
 * `--config`: else SLUICE_CONFIG, else config/default.yml (the demo: config/demo.yml).
 * `--redis`: else REDIS_URL (the demo: else a private redis-server).
 * `--namespace`: else SLUICE_NAMESPACE, else the config file's `namespace` (workers, enqueue, admin,
 * status and export all resolve it the same way, workers/config/load.ts `resolveNamespace`).
 * Durations take a unit (`60s`, `10min`, `1h`, `500ms`); a bare number is refused, never guessed.
 * Exit codes: 0 ok, 2 bad input (usage, config, seeds), 3 refused by backpressure (the queue's
 * backlog is full: retry later), 1 anything else; errors are one line on stderr, never a stack trace.
 */
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { JobKind } from '../../jobs/schemas.js';
import { parseDurationMs, parseRate } from 'sluice';
import { InvalidConfigError, InvalidNameError, InvalidPayloadError } from 'sluice';

// Commands are imported when they run: a command (or a usage error) does not pay for loading
// Playwright, BullMQ, fastify and the simulator it does not use.

interface GlobalOptions {
  config?: string;
  redis?: string;
  namespace?: string;
}

function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a whole number >= 1`);
    return n;
  };
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a number > 0');
  return n;
}

/**
 * A duration option: a number with its unit (`60s`, `90 s`, `2min`, `1h`, `500ms`). A bare
 * number is refused rather than guessed: `--duration 60` once meant 60 ms to the parser and
 * 60 s to the person typing it.
 */
function duration(value: string): number {
  if (/^\s*\d+(?:\.\d+)?\s*$/.test(value)) {
    throw new InvalidArgumentError(`a bare number has no unit: write ${value.trim()}s (seconds), ${value.trim()}min or ${value.trim()}ms`);
  }
  const ms = parseDurationMs(value);
  if (ms === undefined || ms <= 0) throw new InvalidArgumentError('write a duration like 60s, 90 s or 2min');
  return ms;
}

function rate(value: string): string {
  if (parseRate(value) === undefined) throw new InvalidArgumentError('write a rate like 80/min, 2/s or 5/10s');
  return value;
}

/** One step of `--sim-limit-schedule`, as the simulator takes it. */
interface LimitStep {
  atMs: number;
  limitFactor: number;
}

/** `2m=0.5,5m=1`: the same reading as the simulator's parseLimitSchedule (kept here so a usage error loads nothing). */
function limitSchedule(value: string): LimitStep[] {
  const steps: LimitStep[] = [];
  for (const step of value.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const [at, factor] = step.split('=');
    const atMs = at === undefined ? undefined : parseDurationMs(at.trim());
    const limitFactor = Number(factor);
    if (atMs === undefined || atMs < 0 || factor === undefined || !Number.isFinite(limitFactor) || limitFactor <= 0) {
      throw new InvalidArgumentError(`step "${step}": write steps like 2m=0.5,5m=1 (at 2 minutes hidden limits x0.5, at 5 minutes x1)`);
    }
    steps.push({ atMs, limitFactor });
  }
  if (steps.length === 0) throw new InvalidArgumentError('write steps like 2m=0.5,5m=1');
  return steps.sort((a, b) => a.atMs - b.atMs);
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Global options, with the environment as fallback where the command does not read it itself. */
function globals(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals<GlobalOptions>();
  return { ...(o.config ? { config: o.config } : {}), ...(o.redis ? { redis: o.redis } : {}), ...(o.namespace ? { namespace: o.namespace } : {}) };
}

/** Builds the program (exported for tests; does not parse). */
export function buildProgram(): Command {
  const program = new Command('sluice')
    .description('Sluice: a distributed fair-queueing throttler and the TikTok harvesting fleet around it')
    .option('--config <path>', 'config file (default: SLUICE_CONFIG, else config/default.yml; the demo: config/demo.yml)')
    .option('--redis <url>', 'Redis URL (default: REDIS_URL)')
    .option('--namespace <name>', "namespace (default: SLUICE_NAMESPACE, else the config file's); the demo picks its own")
    .exitOverride();

  program
    .command('worker')
    .description('run a worker process until SIGTERM/SIGINT (active jobs finish first)')
    .addArgument(new Argument('<kind>', 'which queue').choices(['discovery', 'harvesting']))
    .option('--concurrency <n>', 'jobs at once, one browser context each (default: fleet.concurrency, 2)', positiveInt('--concurrency'))
    .action(async (kind: JobKind, o: { concurrency?: number }, cmd: Command) => {
      const { workerCommand } = await import('./commands/worker.js');
      await workerCommand(kind, { ...globals(cmd), ...o });
    });

  const enqueue = program.command('enqueue').description('put seeds or handles on the queues (deduplicated)');
  enqueue
    .command('discovery')
    .description('enqueue discovery seeds (repeat the options; or --file with one seed per line)')
    .option('--hashtag <tag>', 'a hashtag, with or without #', collect)
    .option('--keyword <text>', 'search keywords', collect)
    .option('--creator <handle>', 'a creator handle, with or without @', collect)
    .option('--video <id-or-url>', 'a video id or tiktok.com video URL', collect)
    .option('--file <path>', 'a seeds file: #tag, @creator, keyword:text, video:id, one per line')
    .option('--tenant <name>', 'tenant the jobs are billed to', 'default')
    .option('--priority <name>', 'priority class and pull order (default: the config\'s defaultPriority)')
    .option('--max-profiles <n>', 'stop each job after this many profiles', positiveInt('--max-profiles'))
    .option('--max-backlog <n>', 'refuse to fill the queue beyond this many jobs not yet started (default: SLUICE_MAX_BACKLOG, else no limit)', positiveInt('--max-backlog'))
    .option('--wait <duration>', 'with a backlog limit: wait this long for room before refusing, e.g. 5min', duration)
    .action(async (o: Record<string, unknown>, cmd: Command) => {
      const { enqueueDiscoveryCommand } = await import('./commands/enqueue.js');
      await enqueueDiscoveryCommand({ ...globals(cmd), ...o });
    });
  enqueue
    .command('harvesting')
    .description('enqueue profiles to harvest')
    .option('--handle <handle>', 'a profile handle (repeatable)', collect)
    .option('--tenant <name>', 'tenant the jobs are billed to', 'default')
    .option('--priority <name>', 'priority class (default: the config\'s defaultPriority)')
    .option('--max-backlog <n>', 'refuse to fill the queue beyond this many jobs not yet started (default: SLUICE_MAX_BACKLOG, else no limit)', positiveInt('--max-backlog'))
    .option('--wait <duration>', 'with a backlog limit: wait this long for room before refusing, e.g. 5min', duration)
    .action(async (o: Record<string, unknown>, cmd: Command) => {
      const { enqueueHarvestingCommand } = await import('./commands/enqueue.js');
      await enqueueHarvestingCommand({ ...globals(cmd), ...o });
    });

  program
    .command('export')
    .description('write every (domain, profile) pair harvested')
    .addOption(new Option('--format <format>', 'output format').choices(['csv', 'jsonl']).makeOptionMandatory())
    .option('--out <file>', 'write to this file (default: stdout)')
    .action(async (o: { format: 'csv' | 'jsonl'; out?: string }, cmd: Command) => {
      const { exportCommand } = await import('./commands/export.js');
      await exportCommand({ ...globals(cmd), ...o });
    });

  program
    .command('demo')
    .description('run the fleet against the TikTok simulator and summarize (no setup needed)')
    .option('--json', 'print the summary as one JSON line on stdout')
    .option('--duration <duration>', 'stop after this long and summarize, e.g. 60s', duration)
    .option('--sim-limit-factor <f>', "scale the simulator's hidden limits, e.g. 0.5", positiveNumber)
    .option('--sim-limit-schedule <steps>', "move the hidden limits during the run, e.g. 2m=0.5,5m=1 (factor from then on)", limitSchedule)
    .option('--report <file>', 'write the HTML report (rates over time per endpoint) here (default: demo-report.html in the worker log dir)')
    .option('--no-throttle', 'skip acquire: show what happens without the throttle')
    .option('--concurrency <n>', "jobs at once in each worker process (default: the config's fleet.concurrency)", positiveInt('--concurrency'))
    .action(async (o: { json?: boolean; duration?: number; simLimitFactor?: number; simLimitSchedule?: LimitStep[]; report?: string; throttle: boolean; concurrency?: number }, cmd: Command) => {
      const g = globals(cmd);
      // the demo makes a namespace of its own per run: a namespace given here would be ignored
      if (g.namespace !== undefined) throw new InvalidConfigError('--namespace does not apply to the demo: each run uses a fresh namespace of its own');
      const { demoCommand } = await import('./commands/demo.js');
      await demoCommand({
        ...g,
        json: o.json === true,
        throttle: o.throttle,
        ...(o.duration !== undefined ? { durationMs: o.duration } : {}),
        ...(o.simLimitFactor !== undefined ? { simLimitFactor: o.simLimitFactor } : {}),
        ...(o.simLimitSchedule !== undefined ? { simLimitSchedule: o.simLimitSchedule } : {}),
        ...(o.report !== undefined ? { report: o.report } : {}),
        ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}),
      });
    });

  program
    .command('admin')
    .description('run the admin server: JSON API, Prometheus /metrics and the live dashboard')
    .option('--port <port>', 'port (default: SLUICE_ADMIN_PORT or 8787)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number 0-65535');
      return n;
    })
    .option('--host <host>', 'address to bind (default 127.0.0.1; anything else needs a token)')
    .option('--token <token>', 'admin bearer token (default: SLUICE_ADMIN_TOKEN; prefer the variable: arguments show in ps)')
    .option('--inngest', 'also serve the example Inngest function (harvest one profile, with Chromium) at /api/inngest')
    .action(async (o: { port?: number; host?: string; token?: string; inngest?: boolean }, cmd: Command) => {
      const { adminCommand } = await import('./commands/admin.js');
      await adminCommand({ ...globals(cmd), ...o });
    });

  program
    .command('status')
    .description('show every endpoint (rates, tokens, queues, pauses) and the fleet')
    .option('--watch', 'refresh in place every 2 s')
    .option('--json', 'print JSON')
    .action(async (o: { watch?: boolean; json?: boolean }, cmd: Command) => {
      const { statusCommand } = await import('./commands/status.js');
      await statusCommand({ ...globals(cmd), ...o });
    });

  const limits = program
    .command('limits')
    .description("change an endpoint's limits for the whole fleet through a running admin server (audit-logged); `sluice status` shows what wins")
    .option('--admin-url <url>', 'admin server (default: SLUICE_ADMIN_URL, else http://127.0.0.1:8787)')
    .option('--token <token>', 'admin bearer token (default: SLUICE_ADMIN_TOKEN; prefer the variable: arguments show in ps)');
  const runLimits = async (endpoint: string, change: import('./commands/limits.js').LimitsChange, cmd: Command) => {
    const o = cmd.optsWithGlobals<{ adminUrl?: string; token?: string }>();
    const { limitsCommand } = await import('./commands/limits.js');
    await limitsCommand(endpoint, change, { ...(o.adminUrl ? { adminUrl: o.adminUrl } : {}), ...(o.token ? { token: o.token } : {}) });
  };
  limits
    .command('set')
    .description('override the rate and/or burst (until reset, 30 days after the last change, or --ttl)')
    .argument('<endpoint>', 'endpoint name, e.g. tiktok.profile')
    .option('--rate <rate>', 'new rate, e.g. 80/min', rate)
    .option('--burst <n>', 'new burst (tokens)', positiveNumber)
    .option('--ttl <duration>', 'make the override temporary, e.g. 1h: then the previous values apply again', duration)
    .action(async (endpoint: string, o: { rate?: string; burst?: number; ttl?: number }, cmd: Command) => {
      await runLimits(endpoint, { action: 'set', ...(o.rate ? { rate: o.rate } : {}), ...(o.burst !== undefined ? { burst: o.burst } : {}), ...(o.ttl !== undefined ? { ttlMs: o.ttl } : {}) }, cmd);
    });
  limits
    .command('pause')
    .description('stop admissions on an endpoint fleet-wide (callers queue or time out)')
    .argument('<endpoint>', 'endpoint name')
    .option('--for <duration>', 'resume by itself after this long, e.g. 10min (default: until `limits resume`)', duration)
    .option('--reason <text>', 'why, for the audit log')
    .action(async (endpoint: string, o: { for?: number; reason?: string }, cmd: Command) => {
      await runLimits(endpoint, { action: 'pause', ...(o.for !== undefined ? { forMs: o.for } : {}), ...(o.reason ? { reason: o.reason } : {}) }, cmd);
    });
  limits
    .command('resume')
    .description('end an operator pause')
    .argument('<endpoint>', 'endpoint name')
    .action(async (endpoint: string, _o: unknown, cmd: Command) => runLimits(endpoint, { action: 'resume' }, cmd));
  limits
    .command('reset')
    .description("drop every runtime override of an endpoint: the config file's values apply again")
    .argument('<endpoint>', 'endpoint name')
    .action(async (endpoint: string, _o: unknown, cmd: Command) => runLimits(endpoint, { action: 'reset' }, cmd));

  return program;
}

/** Bad input: the user can fix it by changing the command or the config. */
function isBadInput(err: unknown): boolean {
  if ((err as { code?: unknown; badRequest?: unknown })?.code === 'ADMIN_API') return (err as { badRequest: boolean }).badRequest;
  return err instanceof InvalidConfigError || err instanceof InvalidPayloadError || err instanceof InvalidNameError || err instanceof CommanderError;
}

/** Parses and runs; sets `process.exitCode` (2 bad input, 1 other errors). Long-running commands (worker, admin) keep the process alive. */
export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed its message (help, version, usage errors)
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    process.stderr.write(`sluice: ${(err as Error)?.message ?? String(err)}\n`);
    process.exitCode = isBadInput(err) ? 2 : (err as { code?: unknown })?.code === 'BACKLOG_FULL' ? 3 : 1;
  }
}

await main();
