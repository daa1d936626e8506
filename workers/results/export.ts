/**
 * Streams the results out as CSV or JSON Lines: one row per (domain, profile) pair.
 *
 * Rows are written as the store's scans produce them, in batches, waiting for `drain` when the
 * destination is full: memory stays bounded however many pairs there are. Order is the store's
 * scan order (domain by domain), not sorted.
 *
 * CSV: header `domain,handle,nickname,first_seen,last_seen`, `\n` line ends, fields quoted per
 * RFC 4180 when they hold `,` `"` CR or LF. Nicknames are written by strangers: a cell starting
 * with `=`, `+`, `-`, `@`, tab or CR would run as a formula in a spreadsheet, so by default it is
 * prefixed with `'` (the OWASP advice against CSV injection). JSONL: one object per line with the
 * same fields in camelCase, `nickname` null when unknown. Times are ISO 8601 in UTC.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { PairInfo, ResultsStore } from './store.js';

export type ExportFormat = 'csv' | 'jsonl';

export interface ExportOptions {
  format: ExportFormat;
  /** Destination; left open (the caller owns it, it may be stdout). */
  out: Writable;
  /** CSV only: prefix cells that a spreadsheet would run as formulas with `'`. Default: true. */
  neutralizeFormulas?: boolean;
}

export interface ExportSummary {
  rows: number;
}

export const CSV_HEADER = 'domain,handle,nickname,first_seen,last_seen';

/** Flush to the destination once this much text is pending: few writes, bounded memory. */
const BATCH_CHARS = 64 * 1024;

/** Escapes one CSV field (RFC 4180), optionally neutralizing spreadsheet formulas. */
export function csvField(value: string, neutralizeFormulas = true): string {
  const safe = neutralizeFormulas && /^[=+\-@\t\r]/u.test(value) ? `'${value}` : value;
  return /[",\r\n]/u.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function csvRow(pair: PairInfo, neutralize: boolean): string {
  return [pair.domain, pair.handle, pair.nickname ?? '', iso(pair.firstSeen), iso(pair.lastSeen)]
    .map((field) => csvField(field, neutralize))
    .join(',');
}

function jsonRow(pair: PairInfo): string {
  return JSON.stringify({
    domain: pair.domain,
    handle: pair.handle,
    nickname: pair.nickname ?? null,
    firstSeen: iso(pair.firstSeen),
    lastSeen: iso(pair.lastSeen),
  });
}

async function write(out: Writable, text: string): Promise<void> {
  // events.once rejects if the stream emits 'error' while we wait, so a broken pipe ends the export.
  if (!out.write(text)) await once(out, 'drain');
}

/**
 * Writes every (domain, profile) pair of the store to `out`.
 *
 * @returns the number of rows written (the CSV header is not a row).
 */
export async function exportResults(store: Pick<ResultsStore, 'pairs'>, options: ExportOptions): Promise<ExportSummary> {
  const { format, out } = options;
  if (format !== 'csv' && format !== 'jsonl') {
    throw new TypeError(`format must be "csv" or "jsonl" (received ${JSON.stringify(format)})`);
  }
  const neutralize = options.neutralizeFormulas ?? true;
  let pending = format === 'csv' ? `${CSV_HEADER}\n` : '';
  let rows = 0;
  for await (const pair of store.pairs()) {
    pending += `${format === 'csv' ? csvRow(pair, neutralize) : jsonRow(pair)}\n`;
    rows += 1;
    if (pending.length >= BATCH_CHARS) {
      await write(out, pending);
      pending = '';
    }
  }
  if (pending.length > 0) await write(out, pending);
  return { rows };
}
