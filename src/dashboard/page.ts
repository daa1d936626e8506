/**
 * The dashboard: one self-contained HTML page (inline CSS and JS, no CDN: the fleet's admin
 * network may have no internet), read once from `src/dashboard/dashboard.html`, which the package ships as it is.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../package-root.js';

let cached: string | undefined;

/** The dashboard page's HTML. */
export function dashboardHtml(): string {
  cached ??= readFileSync(join(PACKAGE_ROOT, 'src', 'dashboard', 'dashboard.html'), 'utf8');
  return cached;
}
