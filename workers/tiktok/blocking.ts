/**
 * Tells a usable TikTok response from the ways TikTok refuses one (doc §4a): HTTP 429, captcha
 * ("verify") pages and JSON, empty 200 bodies, empty first list pages, block status codes, the
 * SlardarWAF JS challenge, plus the statusCodes
 * for missing and private entities.
 */
import { field, isRecord, path, tryParseJson } from './json.js';
import { parseRetryAfter } from './retry-after.js';
import { defaultScope, extractPageState } from './state.js';
import { NOT_FOUND_CODES, PRIVATE_CODES, STATUS } from './status.js';
import { parseListPage } from './discovery.js';
import { statusOf } from './user.js';

export type ResponseKind =
  | 'ok'
  | 'rate-limited'
  | 'captcha'
  | 'empty'
  | 'waf'
  | 'not-found'
  | 'private'
  /** Anything else that is not data: 5xx, unexpected 4xx, truncated JSON, HTML without page state. */
  | 'error';

export interface Classification {
  kind: ResponseKind;
  /** From `Retry-After`, in ms, rounded up. Set whenever the header is present and valid. */
  retryAfterMs?: number;
  /** TikTok's statusCode when the body carried one. */
  statusCode?: number;
  /** Short machine-readable detail, e.g. `http-429`, `verify-json`, `hollow-user`, `status-10202`. */
  reason: string;
}

export type HeaderBag = Headers | Record<string, string | string[] | number | undefined>;

export interface ResponseInput {
  /** HTTP status. */
  status: number;
  headers?: HeaderBag;
  /** The body as text ('' for none). */
  body: string;
  /** Final URL after redirects: a redirect to `/login` is a login wall. */
  url?: string;
  /** Clock for HTTP-date Retry-After values. Default: `Date.now()`. */
  nowMs?: number;
}

/** Header lookup over fetch `Headers` or node's lower-cased header object. */
export function headerOf(headers: HeaderBag | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== lower || value === undefined) continue;
    return Array.isArray(value) ? value.join(', ') : String(value);
  }
  return undefined;
}

const WAF_MARKERS = /_wafchallengeid|"slardarClient"\s*:\s*"SlardarWAF"|<p id=["']wci["']/i;
// Texts of TikTok's captcha widget (pytok) and the container ids its pages use.
const CAPTCHA_MARKERS =
  /captcha-verify|captcha_container|secsdk-captcha|Verify to continue|Drag the slider to fit the puzzle|Rotate the shapes|Click on the shapes with the same size/i;

/** statusCode → kind, for codes that are not plain success. */
function kindOfStatusCode(code: number): ResponseKind | undefined {
  if (code === STATUS.VERIFY) return 'captcha';
  if (NOT_FOUND_CODES.has(code)) return 'not-found';
  if (PRIVATE_CODES.has(code)) return 'private';
  if (code === STATUS.BLOCKED) return 'empty';
  return undefined;
}

/** List APIs (doc §1b): a first page of these with nothing in it is a soft block. */
const LIST_API = /^\/api\/(?:(?:post|challenge|creator|recommend)\/item_list|search\/(?:general|item|user)\/full|user\/list)\/?$/;

/**
 * drawrowfly/tiktok-scraper#71: a blocked list call answers "as usually http 200 but with empty
 * []". Told from a list that really is empty by where it was asked: the first page (no cursor or
 * offset, or 0) of a list API. An empty search says so with `search_nil_info`; a creator without
 * videos is never asked for its list (discovery reads `videoCount` first).
 */
function isEmptyFirstPage(json: Record<string, unknown>, url: string | undefined): boolean {
  if (url === undefined) return false;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (!LIST_API.test(parsed.pathname)) return false;
  const at = parsed.searchParams.get('cursor') || parsed.searchParams.get('offset') || '0';
  if (at !== '0' || json['search_nil_info'] !== undefined) return false;
  const page = parseListPage(json);
  return page !== undefined && page.items.length === 0 && page.users.length === 0;
}

function classifyJson(json: unknown, url?: string): Pick<Classification, 'kind' | 'statusCode' | 'reason'> {
  if (!isRecord(json)) return { kind: 'error', reason: 'json-not-object' };
  if (json['type'] === 'verify' || path(json, 'verifyConfig', 'type') === 'verify') {
    return { kind: 'captcha', reason: 'verify-json' };
  }
  const statusCode = statusOf(json);
  const kind = kindOfStatusCode(statusCode);
  if (kind) return { kind, statusCode, reason: `status-${statusCode}` };
  if (isEmptyFirstPage(json, url)) return { kind: 'empty', statusCode, reason: 'empty-list' };
  // carcabot/tiktok-signature#150: a blocked user detail comes back as {"userInfo":{"user":{}}}.
  const userInfo = field(json, 'userInfo');
  if (userInfo !== undefined) {
    const user = field(userInfo, 'user');
    if (!isRecord(user) || Object.keys(user).length === 0) return { kind: 'empty', statusCode, reason: 'hollow-user' };
  }
  return { kind: 'ok', statusCode, reason: 'ok' };
}

function classifyHtml(html: string, status: number): Pick<Classification, 'kind' | 'statusCode' | 'reason'> {
  const state = extractPageState(html);
  if (!state) {
    if (CAPTCHA_MARKERS.test(html)) return { kind: 'captcha', reason: 'captcha-page' };
    if (status === 404) return { kind: 'not-found', reason: 'http-404' };
    return { kind: 'error', reason: 'no-page-state' };
  }
  for (const scope of ['webapp.user-detail', 'webapp.video-detail', 'webapp.challenge-detail']) {
    const found = defaultScope(state, scope);
    if (!found) continue;
    const statusCode = statusOf(found);
    const kind = kindOfStatusCode(statusCode);
    if (kind) return { kind, statusCode, reason: `status-${statusCode}` };
    return { kind: 'ok', statusCode, reason: 'ok' };
  }
  const nextStatus = path(state.data, 'props', 'pageProps', 'statusCode');
  if (typeof nextStatus === 'number') {
    const kind = kindOfStatusCode(nextStatus);
    if (kind) return { kind, statusCode: nextStatus, reason: `status-${nextStatus}` };
  }
  // A missing hashtag is a 200 page whose scope holds no challenge-detail (doc §2b).
  if (status === 404 || /Couldn['’]t find this (?:hashtag|account)/i.test(html)) {
    return { kind: 'not-found', reason: status === 404 ? 'http-404' : 'not-found-page' };
  }
  return { kind: 'ok', reason: 'ok' };
}

/**
 * Classifies a response from TikTok (or the simulator) before any parsing.
 *
 * `private` means the entity exists but is private: a private *profile* still carries its
 * bio, so read it with `extractUser` anyway. `not-found` covers 10202/10221/10204/10205/...
 * and HTTP 404.
 */
export function classifyResponse(input: ResponseInput): Classification {
  const retryAfterMs = parseRetryAfter(headerOf(input.headers, 'retry-after'), input.nowMs);
  const done = (c: Pick<Classification, 'kind' | 'statusCode' | 'reason'>): Classification =>
    retryAfterMs === undefined ? { ...c } : { ...c, retryAfterMs };
  const { status, body } = input;

  if (status === 429) return done({ kind: 'rate-limited', reason: 'http-429' });
  if (input.url !== undefined && safePath(input.url) === '/login') return done({ kind: 'captcha', reason: 'login-wall' });
  if (headerOf(input.headers, 'bdturing-verify') !== undefined) return done({ kind: 'captcha', reason: 'bdturing-verify' });
  if (status === 403) return done({ kind: 'waf', reason: 'http-403' });
  // F2/EVIL: 444 is nginx dropping the request without an answer.
  if (status === 444) return done({ kind: 'empty', reason: 'http-444' });
  if (status >= 500) return done({ kind: 'error', reason: `http-${status}` });

  const text = body.trim();
  if (text === '') return done(status === 404 ? { kind: 'not-found', reason: 'http-404' } : { kind: 'empty', reason: 'empty-body' });
  if (WAF_MARKERS.test(text)) return done({ kind: 'waf', reason: 'waf-challenge' });

  if (text.startsWith('{') || text.startsWith('[')) {
    const json = tryParseJson(text);
    if (json === undefined) return done({ kind: 'error', reason: 'bad-json' });
    const c = classifyJson(json, input.url);
    if (c.kind === 'ok' && status === 404) return done({ kind: 'not-found', reason: 'http-404' });
    return done(c);
  }
  const c = classifyHtml(text, status);
  if (c.kind === 'ok' && status >= 400) return done({ kind: 'error', reason: `http-${status}` });
  return done(c);
}

function safePath(url: string): string | undefined {
  try {
    return new URL(url).pathname.replace(/\/+$/, '');
  } catch {
    return undefined;
  }
}
