/**
 * The delay before a deferred job runs again: the base (the expected wait, or the pause) plus
 * jitter that only ever adds, so the job never comes back before its turn; spread by up to 20%
 * (at least 250 ms) so the jobs deferred by one refusal do not all return on the same millisecond.
 */
export function deferralDelayMs(baseMs: number): number {
  const base = Math.max(0, Number.isFinite(baseMs) ? baseMs : 0);
  return Math.ceil(base + Math.random() * Math.max(250, base * 0.2));
}
