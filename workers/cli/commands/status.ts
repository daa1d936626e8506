/**
 * `sluice status`: the dashboard's picture as a plain-text table (or JSON), once or refreshed in
 * place with `--watch`. Reads Redis directly, so it works with no admin server running.
 */
import { Redis } from 'ioredis';
import { redactUrl } from 'sluice';
import { pino } from 'pino';
import { loadConfigFile, resolveNamespace } from '../../config/load.js';
import { createThrottler, type AuditEntry, type Throttler } from 'sluice';
import { readEndpointViews, type EndpointView } from 'sluice/metrics';
import { readFleet, type FleetView } from 'sluice/admin';
import { createQueues, type SluiceQueues } from '../../../jobs/queues.js';
import { ResultsStore } from '../../results/store.js';

export interface StatusOptions {
  /** Config file. Default: SLUICE_CONFIG, then config/default.yml. */
  config?: string;
  /** Refresh in place every `intervalMs` until interrupted. */
  watch?: boolean;
  /** Print JSON instead of the table. */
  json?: boolean;
  /** Redis URL. Default: REDIS_URL, then redis://127.0.0.1:6379. */
  redis?: string;
  /** Namespace. Default: SLUICE_NAMESPACE, then the config file's. */
  namespace?: string;
  /** Refresh interval of `--watch`. Default 2 000 ms. */
  intervalMs?: number;
  /** Where to write. Default process.stdout. */
  out?: NodeJS.WritableStream;
}

// ---------- pure rendering ----------

function num(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** `50/min` or `2.5/s`: the unit a person reads without converting. */
export function formatRatePerSec(perSec: number): string {
  if (perSec >= 1) return `${+perSec.toFixed(2)}/s`;
  return `${+(perSec * 60).toFixed(2)}/min`;
}

function formatMs(ms: number | null): string {
  if (ms === null) return '-';
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms)}ms`;
}

function formatIn(until: number, now: number): string {
  const s = Math.max(0, Math.ceil((until - now) / 1000));
  return s >= 120 ? `${Math.ceil(s / 60)}m` : `${s}s`;
}

/** Effective value, and the configured one in parentheses when an override changed it. */
function withConfigured(effective: string, configured: string): string {
  return effective === configured ? effective : `${effective} (${configured})`;
}

function stateOf(v: EndpointView, now: number): string {
  const s: string[] = [];
  if (v.paused) s.push(v.paused.until === null ? 'paused' : `paused ${formatIn(v.paused.until, now)}`);
  if (v.pausedUntil !== null) s.push(`penalized ${formatIn(v.pausedUntil, now)}`);
  if (v.dryRun) s.push(`dry-run (${num(v.counters.wouldWait)} would wait)`);
  if (v.shadow) s.push(`shadow ${formatRatePerSec(v.shadow.ratePerSec)} (${num(v.shadow.wouldWait)} would wait)`);
  if (v.temporaryUntil !== null) s.push(`temporary ${formatIn(v.temporaryUntil, now)}`);
  if (v.bypass.length) s.push(`bypass ${v.bypass.join(',')}`);
  return s.join(', ') || 'ok';
}

type Align = 'l' | 'r';

/** Aligns rows under a header; numbers right, text left. */
function table(header: string[], align: Align[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (align[i] === 'r' ? c.padStart(widths[i]!) : i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/**
 * Where one of an endpoint's limits comes from. A runtime override (`sluice limits set`, the
 * dashboard, the admin API) beats the config file until it is reset or expires: 30 days after
 * the endpoint's last change, or at the end of its `--ttl`. Editing the file changes nothing
 * while one is in force, hence this.
 */
export interface LimitSource {
  endpoint: string;
  /** `rate`, `burst`, `maxQueue` or `weight:<priority>`. */
  field: string;
  /** The value in force, formatted. */
  value: string;
  /** What the config file says, formatted. */
  configured: string;
  source: 'config file' | 'runtime override' | 'temporary override' | 'adaptive';
  /** When the operator set it (ms since the epoch) and who, from the audit log; null when it has rolled off. */
  setAt: number | null;
  setBy: string | null;
  /** When it stops applying by itself (ms since the epoch); null for the config file. */
  expiresAt: number | null;
}

const LIMIT_FIELDS = ['rate', 'burst', 'maxQueue'] as const;

/** Rates travel as tokens per ms and back: equal up to rounding. */
export function sameRate(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b));
}

/**
 * Which value wins for each limit that is not the config file's, and why. Pure: `ttlMs` is the
 * remaining life of the endpoint's override hash (PTTL), `audit` the newest entries first.
 */
export function limitSources(v: EndpointView, audit: readonly AuditEntry[], ttlMs: number, now: number): LimitSource[] {
  const out: LimitSource[] = [];
  const format = (field: string, n: number) => (field === 'rate' ? formatRatePerSec(n) : num(n, n % 1 ? 2 : 0));
  const temporary = v.temporaryUntil !== null;
  const setBy = (stored: string) => {
    // the newest change that wrote this field
    const e = audit.find((a) => a.endpoint === v.endpoint && a.after[stored] !== undefined && a.before[stored] !== a.after[stored]);
    return { setAt: e?.at ?? null, setBy: e?.actor ?? null };
  };
  const fields: { field: string; stored: string; value: number; configured: number }[] = LIMIT_FIELDS.map((f) => ({
    field: f,
    stored: f,
    value: f === 'rate' ? v.effective.ratePerSec : v.effective[f],
    configured: f === 'rate' ? v.configured.ratePerSec : v.configured[f],
  }));
  for (const [p, w] of Object.entries(v.weights)) fields.push({ field: `weight:${p}`, stored: `w:${p}`, value: w, configured: NaN });
  for (const f of fields) {
    const configured = Number.isNaN(f.configured) ? '-' : format(f.field, f.configured);
    const base = { endpoint: v.endpoint, field: f.field, value: format(f.field, f.value), configured };
    if (temporary && v.overrides[`tmp:${f.stored}`] !== undefined) {
      out.push({ ...base, source: 'temporary override', ...setBy(`tmp:${f.stored}`), expiresAt: v.temporaryUntil });
    } else if (v.overrides[f.stored] !== undefined) {
      out.push({ ...base, source: 'runtime override', ...setBy(f.stored), expiresAt: ttlMs > 0 ? now + ttlMs : null });
    } else if (f.field === 'rate' && !sameRate(f.value, f.configured)) {
      // no override holds the rate: the adaptive controller moved it after pushbacks
      out.push({ ...base, source: 'adaptive', setAt: null, setBy: null, expiresAt: null });
    }
  }
  return out;
}

function ago(at: number, now: number): string {
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}min ago`;
  if (s < 172_800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86_400)}d ago`;
}

function inTime(at: number, now: number): string {
  const s = Math.max(0, Math.ceil((at - now) / 1000));
  if (s < 120) return `in ${s}s`;
  if (s < 7200) return `in ${Math.round(s / 60)}min`;
  if (s < 172_800) return `in ${Math.round(s / 3600)}h`;
  return `in ${Math.round(s / 86_400)}d`;
}

/** The OVERRIDES section: one row per limit that is not the config file's. */
export function renderLimitSources(sources: readonly LimitSource[], now: number): string {
  const rows = sources.map((l) => [
    l.endpoint,
    l.field,
    l.value,
    l.configured,
    l.source,
    l.setAt === null ? (l.source === 'adaptive' ? 'after pushbacks' : 'unknown (audit rolled off)') : `${ago(l.setAt, now)}${l.setBy ? ` by ${l.setBy}` : ''}`,
    l.expiresAt === null ? (l.source === 'adaptive' ? 'recovers when quiet' : '-') : inTime(l.expiresAt, now),
  ]);
  return [
    table(['OVERRIDES', 'LIMIT', 'IN FORCE', 'CONFIG FILE', 'SOURCE', 'SET', 'EXPIRES'], ['l', 'l', 'r', 'r', 'l', 'l', 'l'], rows),
    'A runtime override beats the config file until it expires or `sluice limits reset <endpoint>`; editing the file does not end it.',
  ].join('\n');
}

/** Reads what `limitSources` needs: the audit log and each endpoint's override TTL. */
async function readLimitSources(throttler: Throttler, views: readonly EndpointView[]): Promise<LimitSource[]> {
  const withOverrides = views.filter((v) => Object.keys(v.overrides).length > 0 || !sameRate(v.effective.ratePerSec, v.configured.ratePerSec));
  if (withOverrides.length === 0) return [];
  const [audit, ttls] = await Promise.all([throttler.auditLog(1000), Promise.all(withOverrides.map((v) => throttler.redis.pttl(throttler.keys.config(v.endpoint))))]);
  const now = Date.now();
  return withOverrides.flatMap((v, i) => limitSources(v, audit, ttls[i]!, now));
}

/**
 * The status table: one row per endpoint (rates and bursts show the configured value in
 * parentheses when an override is in force), then the queued tickets by class, then which
 * override wins over the config file and until when, then the fleet.
 * Pure: same input, same text (`now` only formats remaining times).
 */
export function renderStatusTable(statuses: readonly EndpointView[], options: { fleet?: FleetView | null; now?: number; limits?: readonly LimitSource[] } = {}): string {
  const now = options.now ?? Date.now();
  const rows = statuses.map((v) => [
    v.endpoint,
    withConfigured(formatRatePerSec(v.effective.ratePerSec), formatRatePerSec(v.configured.ratePerSec)),
    withConfigured(num(v.effective.burst), num(v.configured.burst)),
    num(v.tokens, 1),
    `${num(v.queued)}/${num(v.effective.maxQueue)}`,
    num(v.counters.admitted),
    num(v.waits.waited),
    formatMs(v.waits.p50Ms),
    formatMs(v.waits.p95Ms),
    num(v.counters.timeouts + v.counters.queueFull),
    num(v.counters.penalties),
    stateOf(v, now),
  ]);
  const parts = [
    table(
      ['ENDPOINT', 'RATE', 'BURST', 'TOKENS', 'QUEUED', 'ADMITTED', 'WAITED', 'P50', 'P95', 'REFUSED', 'PENALTIES', 'STATE'],
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
      rows,
    ),
  ];
  const classes = statuses.flatMap((v) => v.queuedByClass.map((c) => [v.endpoint, c.tenant, c.priority, num(c.queued)]));
  if (classes.length) parts.push(table(['QUEUED BY CLASS', 'TENANT', 'PRIORITY', 'TICKETS'], ['l', 'l', 'l', 'r'], classes));
  if (options.limits?.length) parts.push(renderLimitSources(options.limits, now));
  const fleet = options.fleet;
  if (fleet) {
    const j = fleet.jobs;
    const results = fleet.results ? Object.entries(fleet.results).map(([name, n]) => `  ${name} ${num(n)}`).join('') : '';
    parts.push(`FLEET  workers ${num(fleet.workersOnline)}  jobs waiting ${num(j.waiting + j.prioritized)}  active ${num(j.active)}  delayed ${num(j.delayed)}  completed ${num(j.completed)}  failed ${num(j.failed)}${results}`);
  }
  const windowMs = Math.max(0, ...statuses.map((v) => v.waits.windowMs));
  parts.push(`WAITED/P50/P95 over the last ${Math.round((windowMs || 60_000) / 1000)} s, fleet-wide; (x) = configured value under an override`);
  return `${parts.join('\n\n')}\n`;
}

// ---------- the command ----------

/** Prints the status once, or keeps refreshing it with `watch` until SIGINT/SIGTERM. */
export async function statusCommand(opts: StatusOptions = {}): Promise<void> {
  const out = opts.out ?? process.stdout;
  const file = loadConfigFile(opts.config);
  const namespace = resolveNamespace(file, opts.namespace);
  const url = opts.redis ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  // logs go to stderr: stdout is the table (or the JSON a script reads)
  const logger = pino({ level: process.env.SLUICE_LOG_LEVEL ?? 'warn' }, pino.destination(2));
  const redis = new Redis(url, { maxRetriesPerRequest: 2, lazyConnect: true });
  redis.on('error', () => undefined); // reported by the failing command, once, below
  const throttler = createThrottler({ ...file.throttle, namespace, redis, logger });
  const results = new ResultsStore(redis, namespace);
  let queueConn: Redis | undefined;
  let queues: SluiceQueues | undefined;

  const render = async () => {
    const [views, fleet] = await Promise.all([readEndpointViews(throttler), queues ? readFleet([queues.discovery, queues.harvesting], results).catch(() => null) : null]);
    const limits = await readLimitSources(throttler, views);
    if (opts.json) return `${JSON.stringify({ namespace, at: Date.now(), endpoints: views, limits, fleet }, null, 2)}\n`;
    return renderStatusTable(views, { fleet, limits });
  };

  try {
    await redis.connect().catch((err: Error) => {
      throw new Error(`cannot reach Redis at ${redactUrl(url)}: ${err.message}`, { cause: err });
    });
    // only now: BullMQ prints connection errors of its own, and the one above says it better
    queueConn = new Redis(url, { maxRetriesPerRequest: 2 });
    queueConn.on('error', () => undefined);
    queues = createQueues({ connection: queueConn, namespace });
    if (!opts.watch) {
      out.write(await render());
      return;
    }
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    process.once('SIGINT', stop).once('SIGTERM', stop);
    try {
      while (true) {
        const text = await render().catch((err: Error) => `error: ${err.message}\n`);
        // home + clear screen: redraws in place instead of scrolling
        out.write(`\x1b[H\x1b[2J${new Date().toLocaleTimeString()}  namespace ${namespace}  (Ctrl-C to quit)\n\n${text}`);
        const timer = new Promise<'tick'>((r) => setTimeout(() => r('tick'), opts.intervalMs ?? 2_000).unref());
        if ((await Promise.race([timer, stopped.then(() => 'stop' as const)])) === 'stop') break;
      }
    } finally {
      process.off('SIGINT', stop).off('SIGTERM', stop);
    }
  } finally {
    await queues?.close().catch(() => undefined);
    await throttler.close();
    redis.disconnect();
    queueConn?.disconnect();
  }
}

export { redactUrl };
