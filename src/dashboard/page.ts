/**
 * The dashboard: one self-contained HTML page (inline CSS and JS, no CDN: the fleet's admin
 * network may have no internet), read once from `src/dashboard/dashboard.html`, which the package ships as it is.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../package-root.js';

let cached: string | undefined;

/** The dashboard page's HTML. */
export function dashboardHtml(): string {
  cached ??= readFileSync(join(PACKAGE_ROOT, 'src', 'dashboard', 'dashboard.html'), 'utf8');
  return cached;
}

/**
 * CSP source expressions (`'sha256-…'`) for the page's inline scripts: the policy allows exactly
 * this code, so markup injected through a data field (a tenant named `<script>…`) cannot run.
 * Computed from the file, so editing the page never leaves a stale hash behind.
 */
export function dashboardScriptHashes(): string[] {
  return [...dashboardHtml().matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => `'sha256-${createHash('sha256').update(m[1]!).digest('base64')}'`);
}
