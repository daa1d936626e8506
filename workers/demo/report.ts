/**
 * The demo's HTML report: one self-contained file (inline SVG and CSS, no script, nothing
 * fetched), with per endpoint the throttle's effective rate, the simulator's hidden limit and the
 * rate the fleet achieved over time, penalties marked where they happened, and the summary's
 * figures. Open it in any browser, attach it to a ticket.
 */
import { endpointKey, TIKTOK_ENDPOINTS, type TikTokEndpoint } from '../tiktok/index.js';
import type { Snapshot } from './progress.js';
import type { DemoSummary } from './summary.js';

/** Achieved rate: requests the simulator saw over this trailing window, per second. */
const ACHIEVED_WINDOW_MS = 10_000;

const W = 720;
const H = 200;
const PAD = { left: 46, right: 12, top: 12, bottom: 28 };

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const fmt = (n: number) => (Math.round(n * 100) / 100).toString();

interface Point {
  t: number;
  v: number;
}

/** Per snapshot: seconds from the start, and requests/s over the trailing window. */
export function achievedSeries(series: Snapshot[], startedAt: number, endpoint: TikTokEndpoint): Point[] {
  const key = endpointKey(endpoint);
  const out: Point[] = [];
  let from = 0;
  for (let i = 0; i < series.length; i++) {
    const now = series[i]!;
    while (from < i && now.at - series[from]!.at > ACHIEVED_WINDOW_MS) from++;
    const then = series[from]!;
    const dt = (now.at - then.at) / 1000;
    const v = dt > 0 ? (now.sim.endpoints[key].requests - then.sim.endpoints[key].requests) / dt : 0;
    out.push({ t: (now.at - startedAt) / 1000, v });
  }
  return out;
}

function chart(series: Snapshot[], startedAt: number, endpoint: TikTokEndpoint, configured: number): string {
  const effective = series.map((s) => ({ t: (s.at - startedAt) / 1000, v: s.effectivePerSec[endpoint] }));
  const hidden = series.map((s) => ({ t: (s.at - startedAt) / 1000, v: s.hiddenPerSec[endpoint] }));
  const achieved = achievedSeries(series, startedAt, endpoint);
  const penaltiesAt: number[] = [];
  for (let i = 1; i < series.length; i++) {
    if (series[i]!.penalties[endpoint] > series[i - 1]!.penalties[endpoint]) penaltiesAt.push((series[i]!.at - startedAt) / 1000);
  }
  const tMax = Math.max(1, ...effective.map((p) => p.t));
  const vMax = Math.max(configured, ...effective.map((p) => p.v), ...hidden.map((p) => p.v ?? 0), ...achieved.map((p) => p.v)) * 1.1 || 1;
  const x = (t: number) => PAD.left + (t / tMax) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - (v / vMax) * (H - PAD.top - PAD.bottom);
  const line = (points: Array<{ t: number; v: number | null }>, cls: string) => {
    let d = '';
    let pen = false;
    for (const p of points) {
      if (p.v === null) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`;
      pen = true;
    }
    return d === '' ? '' : `<path class="${cls}" d="${d}"/>`;
  };
  const ticks: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const v = (vMax * i) / 4;
    ticks.push(`<line class="grid" x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}"/><text x="${PAD.left - 4}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${fmt(v)}</text>`);
    const t = (tMax * i) / 4;
    ticks.push(`<text x="${x(t).toFixed(1)}" y="${H - 8}" text-anchor="middle">${Math.round(t)} s</text>`);
  }
  const marks = penaltiesAt.map((t) => `<line class="penalty" x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${PAD.top}" y2="${H - PAD.bottom}"/>`).join('');
  return (
    `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(endpoint)} rates over time">` +
    ticks.join('') +
    marks +
    line(hidden, 'hidden') +
    line(achieved, 'achieved') +
    line(effective, 'effective') +
    '</svg>'
  );
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px}h2{font-size:16px;margin:20px 0 4px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
svg{background:#fcfcfc;border:1px solid #ddd}svg text{font-size:11px;fill:#555}
.grid{stroke:#eee}.effective{fill:none;stroke:#1f6feb;stroke-width:2}.hidden{fill:none;stroke:#d1242f;stroke-width:2;stroke-dasharray:6 4}
.achieved{fill:none;stroke:#2da44e;stroke-width:1.5}.penalty{stroke:#bf8700;stroke-width:1;opacity:.6}
.key span{display:inline-block;margin-right:16px}.key i{display:inline-block;width:18px;height:3px;vertical-align:middle;margin-right:4px}
`;

/** The whole report as one HTML document. */
export function renderReport(summary: DemoSummary, series: Snapshot[], startedAt: number): string {
  const s = summary;
  const rows = TIKTOK_ENDPOINTS.map((e) => {
    const x = s.endpoints[e];
    const band = x.effectiveVsHidden ? `${fmt(x.effectiveVsHidden.min)}–${fmt(x.effectiveVsHidden.max)} (${Math.round(x.effectiveVsHidden.inBand * 100)}% in band)` : x.simulatorLimitPerSec === null ? '-' : 'not sampled';
    return `<tr><td>${esc(e)}</td><td>${fmt(x.configuredPerSec)}</td><td>${x.simulatorLimitPerSec ?? '-'}</td><td>${x.effectivePerSec ?? '-'}</td><td>${x.achievedPerSec}</td><td>${x.requests}</td><td>${x.violations}</td><td>${x.violationsAfter60s}</td><td>${x.penalties}</td><td>${x.pagesFetchedTwice}</td><td>${band}</td></tr>`;
  }).join('');
  const charts = TIKTOK_ENDPOINTS.filter((e) => s.endpoints[e].requests > 0 || s.endpoints[e].penalties > 0)
    .map((e) => `<h2>${esc(e)}</h2>${chart(series, startedAt, e, s.endpoints[e].configuredPerSec)}`)
    .join('');
  const schedule = s.limitSchedule.map((p) => `${Math.round(p.atMs / 1000)} s: x${p.limitFactor}`).join(', ');
  const penalties = Object.entries(s.penaltiesByKind).map(([k, n]) => `${esc(k)} ${n}`).join(', ') || 'none';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sluice demo ${esc(s.namespace)}</title><style>${STYLE}</style></head>
<body>
<h1>Sluice demo: ${s.stoppedEarly ? 'stopped early' : 'finished'} after ${(s.elapsedMs / 1000).toFixed(0)} s</h1>
<p>Throttle ${s.throttle ? 'on' : 'OFF'}; hidden limits ${esc(schedule)}. Jobs ${s.jobsCompleted} done, ${s.jobsFailed} failed, ${s.jobsPending} not finished.
Harvested ${s.domains} domains (${s.domainsPerHour} per hour) of ${s.groundTruth.domains} in the ground truth.
Violations ${s.violations}; penalties ${penalties}; pages fetched twice ${s.pagesFetchedTwice}.</p>
<table><tr><th>endpoint</th><th>configured/s</th><th>hidden/s (end)</th><th>effective/s (end)</th><th>achieved/s</th><th>requests</th><th>violations</th><th>settled (60 s after first request)</th><th>penalties</th><th>fetched twice</th><th>effective / hidden, settled</th></tr>${rows}</table>
<p class="key"><span><i style="background:#1f6feb"></i>effective (throttle)</span><span><i style="background:#d1242f"></i>hidden limit (simulator)</span><span><i style="background:#2da44e"></i>achieved (requests/s, ${ACHIEVED_WINDOW_MS / 1000} s window)</span><span><i style="background:#bf8700"></i>penalty</span></p>
${charts}
</body></html>
`;
}
