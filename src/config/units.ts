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
  const ms = factor === undefined ? undefined : Number(match[1]) * factor;
  return ms !== undefined && Number.isFinite(ms) ? ms : undefined;
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
  return checkRate({ tokens: Number(match[1]), intervalMs: count * unit });
}

/** Largest tokens per interval and shortest interval Sluice accepts: beyond them a rate is a typo. */
export const MAX_TOKENS = 1e9;
export const MIN_INTERVAL_MS = 1;

/** A rate whose numbers are finite and sane, or undefined: `"1/0s"` would be Infinity tokens/ms. */
export function checkRate(rate: Rate): Rate | undefined {
  const { tokens, intervalMs } = rate;
  if (!(Number.isFinite(tokens) && tokens >= 0 && tokens <= MAX_TOKENS)) return undefined;
  if (!(Number.isFinite(intervalMs) && intervalMs >= MIN_INTERVAL_MS && intervalMs <= 366 * 86_400_000)) return undefined;
  return rate;
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

/** A rate's burst when the config names none: one interval's worth of tokens, at least 1. */
export function defaultBurst(rate: Rate): number {
  return Math.max(1, rate.tokens);
}
