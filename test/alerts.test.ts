/**
 * promtool is not available here, so the alert rules and the Grafana dashboard are checked
 * against what the registry really exports: every metric name, every label matcher (it must
 * select at least one series) and every grouping label, after exercising the throttler so that
 * the series exist.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { parse as parseYaml } from 'yaml';
import { createMetrics, type SluiceMetrics } from '../src/metrics/registry.js';
import { startWaitReporter } from '../src/metrics/reporter.js';
import { createQueues, type SluiceQueues } from '../jobs/queues.js';
import { cleanup, makeThrottler, redisUrl } from './support/helpers.js';

interface Series {
  name: string;
  labels: Record<string, string>;
}

function parseExposition(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+$/.exec(line);
    if (!m) throw new Error(`unreadable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels });
  }
  return out;
}

/** PromQL functions, aggregations and keywords the rules may call with `(`. */
const CALLABLE = new Set(['sum', 'min', 'max', 'avg', 'count', 'rate', 'increase', 'delta', 'histogram_quantile', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'label_values', 'abs', 'clamp_min', 'clamp_max']);

interface Matcher {
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}

function matches(series: Series, matchers: Matcher[]): boolean {
  return matchers.every(({ label, op, value }) => {
    const v = series.labels[label] ?? '';
    // a Grafana variable ($endpoint, ${x}) can take any value the series has
    const pattern = value.replace(/\$\{?\w+\}?/g, '.*');
    switch (op) {
      case '=':
        return /\$/.test(value) || v === value;
      case '!=':
        return v !== value;
      case '=~':
        return new RegExp(`^(?:${pattern})$`).test(v);
      case '!~':
        return !new RegExp(`^(?:${pattern})$`).test(v);
    }
  });
}

/** Problems with one PromQL expression, checked against the exported series. */
function checkExpr(expr: string, series: Series[]): string[] {
  const problems: string[] = [];
  const names = new Set(series.map((s) => s.name));
  const used: string[] = [];
  for (const m of expr.matchAll(/\b(sluice_[a-zA-Z0-9_:]*)\s*(\{([^}]*)\})?/g)) {
    const name = m[1]!;
    used.push(name);
    if (!names.has(name)) {
      problems.push(`unknown metric ${name}`);
      continue;
    }
    const matchers: Matcher[] = [];
    const body = m[3] ?? '';
    for (const mm of body.matchAll(/\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?/g)) matchers.push({ label: mm[1]!, op: mm[2] as Matcher['op'], value: mm[3]! });
    if (body.replace(/\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?/g, '').trim() !== '') problems.push(`unreadable selector ${m[0]}`);
    if (!series.some((s) => s.name === name && matches(s, matchers))) problems.push(`${m[0]} selects no exported series`);
  }
  if (used.length === 0) problems.push('uses no sluice_ metric');
  const labels = new Set(series.filter((s) => used.includes(s.name)).flatMap((s) => Object.keys(s.labels)));
  for (const m of expr.matchAll(/\b(by|on|without|ignoring)\s*\(([^)]*)\)/g)) {
    for (const l of m[2]!.split(',').map((x) => x.trim()).filter(Boolean)) if (!labels.has(l)) problems.push(`${m[1]} (${l}): no referenced metric has label ${l}`);
  }
  for (const m of expr.matchAll(/\b([a-zA-Z_][a-zA-Z0-9_]*)\s*\(/g)) if (!CALLABLE.has(m[1]!)) problems.push(`unknown function ${m[1]}`);
  let depth = 0;
  for (const c of expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')) {
    if ('({['.includes(c)) depth++;
    if (')}]'.includes(c)) depth--;
    if (depth < 0) break;
  }
  if (depth !== 0) problems.push('unbalanced brackets');
  return problems;
}

let series: Series[] = [];
let metrics: SluiceMetrics | undefined;
let queues: SluiceQueues | undefined;
let conn: Redis | undefined;

beforeAll(async () => {
  const throttler = makeThrottler({ endpoints: { 'ep.a': { rate: '20/s', burst: 1, maxQueue: 1 }, 'ep.b': { rate: '10/s' } } });
  conn = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  queues = createQueues({ connection: conn, namespace: throttler.keys.namespace });
  metrics = createMetrics({ throttler, queues });
  const reporter = startWaitReporter(throttler, { intervalMs: 60_000 });
  // exercise every kind of series: admissions with waits, refusals, a queued class, penalties, pauses
  await Promise.all([throttler.acquire('ep.a'), throttler.acquire('ep.a'), throttler.acquire('ep.b')]);
  await throttler.acquire('ep.a', { maxWaitMs: 0 }).catch(() => undefined);
  await throttler.configure('ep.a', { rate: '1/min' });
  const ac = new AbortController();
  const queued = throttler.acquire('ep.a', { tenant: 'acme', signal: ac.signal }).catch(() => undefined);
  for (let i = 0; i < 100 && (await throttler.inspect('ep.a')).queued < 1; i++) await new Promise((r) => setTimeout(r, 20));
  await throttler.acquire('ep.a').catch(() => undefined); // queue full
  await throttler.penalize('ep.b', { retryAfterMs: 1_000 });
  await throttler.pause('ep.b', { durationMs: 1_000 });
  await throttler.setDryRun('ep.b', true);
  await reporter.flush();
  series = parseExposition(await metrics.metrics());
  ac.abort();
  await queued;
  await reporter.stop();
});

afterAll(async () => {
  metrics?.close();
  await queues?.close();
  await conn?.quit();
  await cleanup();
});

describe('the exercised registry', () => {
  it('exports every sluice_ family the rules and panels rely on', () => {
    const names = new Set(series.map((s) => s.name));
    for (const n of ['sluice_admissions_total', 'sluice_wait_seconds_bucket', 'sluice_refusals_total', 'sluice_fleet_wait_seconds', 'sluice_queue_depth_by_class', 'sluice_jobs', 'sluice_workers', 'sluice_redis_up']) {
      expect(names, n).toContain(n);
    }
    expect(series.every((s) => s.name.startsWith('sluice_'))).toBe(true);
  });

  it('the checker itself catches typos', () => {
    expect(checkExpr('sluice_tokenz > 1', series)).toEqual(['unknown metric sluice_tokenz']);
    expect(checkExpr('sluice_paused{cause="penalti"} == 1', series)).toEqual(['sluice_paused{cause="penalti"} selects no exported series']);
    expect(checkExpr('sum by (tenant) (sluice_tokens)', series)).toEqual(['by (tenant): no referenced metric has label tenant']);
    expect(checkExpr('rte(sluice_fleet_admitted_total[5m])', series)).toEqual(['unknown function rte']);
    expect(checkExpr('sum(rate(sluice_fleet_admitted_total[5m])', series)).toEqual(['unbalanced brackets']);
  });
});

describe('config/alerts.yml', () => {
  const doc = parseYaml(readFileSync(new URL('../config/alerts.yml', import.meta.url), 'utf8')) as {
    groups: { name: string; rules: { alert: string; expr: string; for?: string; labels: Record<string, string>; annotations: Record<string, string> }[] }[];
  };
  const rules = doc.groups.flatMap((g) => g.rules);

  it('is well-formed: unique names, severities, durations, summaries', () => {
    expect(doc.groups.length).toBeGreaterThan(0);
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
    for (const r of rules) {
      expect(r.alert, JSON.stringify(r)).toMatch(/^Sluice[A-Za-z]+$/);
      expect(['info', 'warning', 'critical']).toContain(r.labels.severity);
      if (r.for !== undefined) expect(r.for).toMatch(/^\d+[smhd]$/);
      expect(r.annotations.summary, r.alert).toBeTruthy();
      expect(r.annotations.description, r.alert).toBeTruthy();
      expect(Object.keys(r).every((k) => ['alert', 'expr', 'for', 'labels', 'annotations', 'keep_firing_for'].includes(k)), r.alert).toBe(true);
    }
  });

  it('covers sustained throttling, queue near full, penalties, Redis errors and latency', () => {
    const exprs = rules.map((r) => r.expr).join('\n');
    expect(exprs).toMatch(/sluice_fleet_wait_seconds/);
    expect(exprs).toMatch(/sluice_queue_depth \/ sluice_queue_max/);
    expect(exprs).toMatch(/sluice_fleet_penalties_total/);
    expect(exprs).toMatch(/sluice_redis_errors_total/);
    expect(exprs).toMatch(/sluice_redis_call_seconds_bucket/);
  });

  it('every expression uses only exported metrics, labels and label values', () => {
    for (const r of rules) expect(checkExpr(r.expr, series), `${r.alert}: ${r.expr}`).toEqual([]);
  });
});

describe('config/grafana-dashboard.json', () => {
  const dash = JSON.parse(readFileSync(new URL('../config/grafana-dashboard.json', import.meta.url), 'utf8')) as {
    uid: string;
    title: string;
    schemaVersion: number;
    panels: { id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; targets?: { refId: string; expr: string }[] }[];
    templating: { list: { name: string; definition?: string }[] };
    annotations: { list: { expr?: string }[] };
  };

  it('is a dashboard Grafana can import', () => {
    expect(dash.uid).toMatch(/^[a-z0-9-]+$/);
    expect(dash.title).toBeTruthy();
    expect(dash.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(new Set(dash.panels.map((p) => p.id)).size).toBe(dash.panels.length);
    for (const p of dash.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      const refIds = p.targets!.map((t) => t.refId);
      expect(new Set(refIds).size, p.title).toBe(refIds.length);
    }
    expect(dash.templating.list.map((v) => v.name)).toEqual(['datasource', 'endpoint']);
  });

  it('every query uses only exported metrics, labels and label values', () => {
    const exprs = [
      ...dash.panels.flatMap((p) => (p.targets ?? []).map((t) => [p.title, t.expr] as const)),
      ...dash.annotations.list.filter((a) => a.expr).map((a) => ['annotation', a.expr!] as const),
      ...dash.templating.list.filter((v) => v.definition).map((v) => [`variable ${v.name}`, v.definition!] as const),
    ];
    expect(exprs.length).toBeGreaterThan(20);
    for (const [title, expr] of exprs) expect(checkExpr(expr, series), `${title}: ${expr}`).toEqual([]);
  });
});
