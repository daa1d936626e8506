/**
 * Request counters: what the simulator saw and how it answered, per endpoint key. Tests and the
 * end-to-end harness read them to prove the fleet stayed under the hidden limits.
 */
import { SIM_KEYS, type SimKey } from './limits.js';

/** How a refused request was answered. */
export type Refusal = 'http429' | 'captcha' | 'verify' | 'empty' | 'waf';

export interface KeyStats {
  /** Every request classified to this key. */
  requests: number;
  /** Answered with data (statusCode answers for missing/private entities included). */
  served: number;
  /** Past the hidden limit: answered with a refusal. */
  violations: number;
  /** Answered with a server error (`failNext`). */
  serverErrors: number;
  /**
   * The fewest tokens the hidden bucket held when a request came (before it took one), null before
   * any limited request. Under 1 is a violation; a throttled fleet's margin is this minus 1.
   */
  minTokens: number | null;
  /** Violations by the refusal sent. */
  refusals: Record<Refusal, number>;
  /** Page navigations vs JSON API calls among `requests`. */
  pages: number;
  api: number;
  /** Epoch ms of the first and last request, null before any. */
  firstAt: number | null;
  lastAt: number | null;
}

export interface SimStats {
  /** All requests except `/__sim/*` control calls. */
  total: number;
  /** Requests no endpoint key covers (unknown paths, `/`). */
  unclassified: number;
  /** Sum of violations over keys. */
  violations: number;
  firstAt: number | null;
  lastAt: number | null;
  endpoints: Record<SimKey, KeyStats>;
}

function emptyKey(): KeyStats {
  return {
    requests: 0,
    served: 0,
    violations: 0,
    serverErrors: 0,
    minTokens: null,
    refusals: { http429: 0, captcha: 0, verify: 0, empty: 0, waf: 0 },
    pages: 0,
    api: 0,
    firstAt: null,
    lastAt: null,
  };
}

/** Mutable counters behind `sim.stats()` and `GET /__sim/stats`. */
export class StatsRecorder {
  private stats: SimStats = StatsRecorder.fresh();

  private static fresh(): SimStats {
    return {
      total: 0,
      unclassified: 0,
      violations: 0,
      firstAt: null,
      lastAt: null,
      endpoints: Object.fromEntries(SIM_KEYS.map((k) => [k, emptyKey()])) as Record<SimKey, KeyStats>,
    };
  }

  /** Counts an incoming request before it is answered. */
  request(key: SimKey | undefined, kind: 'page' | 'api', nowMs: number = Date.now()): void {
    const s = this.stats;
    s.total += 1;
    s.firstAt ??= nowMs;
    s.lastAt = nowMs;
    if (!key) {
      s.unclassified += 1;
      return;
    }
    const k = s.endpoints[key];
    k.requests += 1;
    k[kind === 'page' ? 'pages' : 'api'] += 1;
    k.firstAt ??= nowMs;
    k.lastAt = nowMs;
  }

  /** Notes how many tokens the hidden bucket held when a limited request came. */
  tokens(key: SimKey, tokens: number): void {
    if (!Number.isFinite(tokens)) return;
    const k = this.stats.endpoints[key];
    k.minTokens = k.minTokens === null ? tokens : Math.min(k.minTokens, tokens);
  }

  /** Counts a request answered with a server error. */
  serverError(key: SimKey): void {
    this.stats.endpoints[key].serverErrors += 1;
  }

  /** Counts a request answered with data. */
  served(key: SimKey): void {
    this.stats.endpoints[key].served += 1;
  }

  /** Counts a request refused past the hidden limit, by the refusal sent. */
  violation(key: SimKey, refusal: Refusal): void {
    const k = this.stats.endpoints[key];
    k.violations += 1;
    k.refusals[refusal] += 1;
    this.stats.violations += 1;
  }

  /** A deep copy, safe to keep. */
  snapshot(): SimStats {
    return structuredClone(this.stats);
  }

  reset(): void {
    this.stats = StatsRecorder.fresh();
  }
}
