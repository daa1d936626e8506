/**
 * What the throttler tells observers (metrics, the admin server, tests): every decision that
 * matters, as plain objects. Listeners run synchronously; keep them cheap.
 */
export type ThrottleEvent =
  | { type: 'admitted'; endpoint: string; tenant: string; priority: string; waitedMs: number; queued: boolean; lateMs: number }
  /** A caller found later than lateToleranceMs after its slot: the slot is written off and the caller queued again. */
  | { type: 'requeued-late'; endpoint: string; tenant: string; priority: string; lateMs: number }
  | { type: 'refused'; endpoint: string; tenant: string; priority: string; reason: 'timeout' | 'queue-full' | 'cost-above-burst' | 'aborted' | 'expired' | 'closed' | 'redis-unavailable' }
  | { type: 'penalized'; endpoint: string; retryAfterMs: number; reason?: string | undefined }
  | { type: 'config-changed'; endpoint: string; actor: string; change: string; before: Record<string, string>; after: Record<string, string> }
  | { type: 'redis-call'; endpoint: string; script: string; ms: number; ok: boolean };

export type ThrottleListener = (event: ThrottleEvent) => void;

export class EventHub {
  private readonly listeners = new Set<ThrottleListener>();

  get active(): boolean {
    return this.listeners.size > 0;
  }

  on(listener: ThrottleListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: ThrottleEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // an observer's bug must not break admission
      }
    }
  }
}
