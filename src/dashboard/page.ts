/**
 * The dashboard: one self-contained HTML page (inline CSS and JS, no CDN: the fleet's admin
 * network may have no internet), read once from `dashboard.html` beside this module.
 */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** The dashboard page's HTML. */
export function dashboardHtml(): string {
  cached ??= readFileSync(new URL('./dashboard.html', import.meta.url), 'utf8');
  return cached;
}
