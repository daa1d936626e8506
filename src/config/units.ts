/**
 * Human units at the boundary only: `"50/min"`, `"10 s"`. Inside, everything is milliseconds and
 * tokens per millisecond.
 */

const UNIT_MS: Record<string, number> = {
  ms: 1, millisecond: 1, milliseconds: 1,
  s: 1000, sec: 1000, secs: 1000, second: 1000, seconds: 1000,
  m: 60_000, min: 60_000, mins: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hr: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
};

/** Parses `"10 s"`, `"250ms"`, `"2 min"`; a number is taken as ms. Returns undefined when unreadable. */
export function parseDurationMs(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? input : undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)?\s*$/i.exec(input);
  if (!match) return undefined;
  const unit = (match[2] ?? 'ms').toLowerCase();
  const factor = UNIT_MS[unit];
  return factor === undefined ? undefined : Number(match[1]) * factor;
}

/** A rate as tokens per interval. */
export interface Rate {
  tokens: number;
  intervalMs: number;
}

/** Parses `"50/min"`, `"10/s"`, `"3/10s"`, `"200 per second"`. Returns undefined when unreadable. */
export function parseRate(input: string): Rate | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(?:\/|per)\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*$/i.exec(input);
  if (!match) return undefined;
  const unit = UNIT_MS[match[3]!.toLowerCase()];
  if (unit === undefined) return undefined;
  const count = match[2] === undefined ? 1 : Number(match[2]);
  return { tokens: Number(match[1]), intervalMs: count * unit };
}

export function tokensPerMs(rate: Rate): number {
  return rate.tokens / rate.intervalMs;
}

/** `0.8333/s` style text for logs and status. */
export function formatRate(tokensPerMsValue: number): string {
  const perSec = tokensPerMsValue * 1000;
  if (perSec >= 1) return `${+perSec.toFixed(2)}/s`;
  return `${+(perSec * 60).toFixed(2)}/min`;
}
