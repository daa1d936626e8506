/**
 * `Retry-After` parsing. Always rounds up: a retry that comes a few ms early earns another 429.
 */

/**
 * Parses a `Retry-After` header value into milliseconds from `nowMs`.
 *
 * Accepts delta-seconds (`120`; decimals tolerated and rounded up) and HTTP-dates
 * (`Wed, 21 Oct 2015 07:28:00 GMT`). A date in the past gives 0.
 * @param value - the header value; undefined/null/'' gives undefined.
 * @param nowMs - the clock to measure an HTTP-date against. Default: `Date.now()`.
 * @returns whole milliseconds, never rounded down, or undefined when the value is unusable.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number = Date.now()): number | undefined {
  if (value === undefined || value === null) return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (/^\d+(?:\.\d+)?$/.test(text)) return Math.ceil(Number(text) * 1000);
  // Only date-looking values: Date.parse accepts odd strings such as "1" or "-5".
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil(at - nowMs));
}
