/**
 * Request counters: what the simulator saw and how it answered, per endpoint key. Tests and the
 * end-to-end harness read them to prove the fleet stayed under the hidden limits.
 */
import { SIM_KEYS, type SimKey } from './limits.js';

/** How a refused request was answered. */
export type Refusal = 'http429' | 'http429-bare' | 'captcha' | 'verify' | 'empty' | 'empty-list' | 'block-status' | 'waf';

/** Every refusal style, for counters and validation. */
export const REFUSALS: readonly Refusal[] = ['http429', 'http429-bare', 'captcha', 'verify', 'empty', 'empty-list', 'block-status', 'waf'];

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
   * Served with data for a page or API URL that was already served with data before (same path
   * and identifying parameters, see {@link pageIdentity}): work the fleet paid for twice.
   */
  repeats: number;
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
  /** Sum of repeats over keys. */
  repeats: number;
  /** The first few URLs served more than once (identity form), to say which pages were paid for twice. */
  repeatedUrls: string[];
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
    repeats: 0,
    minTokens: null,
    refusals: Object.fromEntries(REFUSALS.map((r) => [r, 0])) as Record<Refusal, number>,
    pages: 0,
    api: 0,
    firstAt: null,
    lastAt: null,
  };
}

/** Parameters that name what a URL fetches; the rest (signatures, tokens, count, aid) do not. */
const IDENTIFYING = ['uniqueId', 'secUid', 'challengeID', 'challengeName', 'keyword', 'q', 'itemId'] as const;

/**
 * What a URL fetches, for counting repeats: path without trailing slash, the identifying
 * parameters in a fixed order, and for API calls the list position (`cursor` or `offset`, absent
 * = `0`). Two spellings of the same page (the page's own script call and the fleet's) are one.
 */
export function pageIdentity(url: URL): string {
  const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
  const parts: string[] = [];
  for (const name of IDENTIFYING) {
    const value = url.searchParams.get(name);
    if (value !== null && value !== '') parts.push(`${name}=${value}`);
  }
  if (path.startsWith('/api/')) parts.push(`at=${url.searchParams.get('cursor') || url.searchParams.get('offset') || '0'}`);
  return parts.length > 0 ? `${path}?${parts.join('&')}` : path;
}

/** Mutable counters behind `sim.stats()` and `GET /__sim/stats`. */
export class StatsRecorder {
  private stats: SimStats = StatsRecorder.fresh();
  private readonly servedUrls = new Set<string>();

  private static fresh(): SimStats {
    return {
      total: 0,
      unclassified: 0,
      violations: 0,
      repeats: 0,
      repeatedUrls: [],
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

  /** Counts a request answered with data; `identity` (see {@link pageIdentity}) counts repeats. */
  served(key: SimKey, identity?: string): void {
    this.stats.endpoints[key].served += 1;
    if (identity === undefined) return;
    if (!this.servedUrls.has(identity)) {
      this.servedUrls.add(identity);
      return;
    }
    this.stats.endpoints[key].repeats += 1;
    this.stats.repeats += 1;
    if (this.stats.repeatedUrls.length < 20 && !this.stats.repeatedUrls.includes(identity)) this.stats.repeatedUrls.push(identity);
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
    this.servedUrls.clear();
  }
}
