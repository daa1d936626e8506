/**
 * Calendar windows of quotas in an IANA time zone: a day starts at local midnight, a month on the
 * 1st. The script gets three boundaries (start, end, next end) and picks the window by Redis's
 * clock, so a client clock a little off never counts a request in the wrong day.
 */

export interface CalendarWindow {
  start: number;
  end: number;
  nextEnd: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Local wall-clock fields of an instant in a zone. */
function wall(ms: number, timeZone: string): { y: number; m: number; d: number; asUtc: number } {
  const p: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(ms)) if (part.type !== 'literal') p[part.type] = Number(part.value);
  const asUtc = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
  return { y: p.year!, m: p.month!, d: p.day!, asUtc };
}

/** The instant of local 00:00 on y-m-d (month and day may overflow, as in Date.UTC). */
function localMidnight(y: number, m: number, d: number, timeZone: string): number {
  const guess = Date.UTC(y, m - 1, d);
  // the offset at the guess, then again at the result: right across a DST change
  let t = guess - (wall(guess, timeZone).asUtc - Math.floor(guess / 1000) * 1000);
  t = guess - (wall(t, timeZone).asUtc - Math.floor(t / 1000) * 1000);
  return t;
}

const cache = new Map<string, CalendarWindow>();

/** The day or month holding `now` in `timeZone`, with the next window's end. */
export function calendarWindow(unit: 'day' | 'month', now: number, timeZone: string): CalendarWindow {
  const id = `${unit}|${timeZone}`;
  const hit = cache.get(id);
  if (hit && now >= hit.start && now < hit.end) return hit;
  const { y, m, d } = wall(now, timeZone);
  const w = unit === 'day'
    ? { start: localMidnight(y, m, d, timeZone), end: localMidnight(y, m, d + 1, timeZone), nextEnd: localMidnight(y, m, d + 2, timeZone) }
    : { start: localMidnight(y, m, 1, timeZone), end: localMidnight(y, m + 1, 1, timeZone), nextEnd: localMidnight(y, m + 2, 1, timeZone) };
  cache.set(id, w);
  return w;
}
