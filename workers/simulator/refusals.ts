/**
 * What the simulator answers past a hidden limit, in the forms TikTok uses (doc §4a).
 */
import type { SimResponse } from './api.js';
import type { Refusal } from './stats.js';

/** Refusal for API calls. Default `http429`. */
export type ApiRefusal = Extract<Refusal, 'http429' | 'http429-bare' | 'verify' | 'empty' | 'empty-list' | 'block-status' | 'waf'>;
/** Refusal for page navigations. Default `captcha`. */
export type PageRefusal = Extract<Refusal, 'captcha' | 'empty' | 'waf' | 'http429' | 'http429-bare'>;
export const API_REFUSALS: readonly ApiRefusal[] = ['http429', 'http429-bare', 'verify', 'empty', 'empty-list', 'block-status', 'waf'];
export const PAGE_REFUSALS: readonly PageRefusal[] = ['captcha', 'empty', 'waf', 'http429', 'http429-bare'];

/** HTTP 429 with `Retry-After` in whole seconds, rounded up so an on-time retry is not early. */
function http429(retryAfterMs: number): SimResponse {
  return {
    status: 429,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) },
    body: 'Too Many Requests',
  };
}

/** JSON captcha demand: `type: "verify"` in place of data (TikTok-Api v5, pytok). */
function verifyJson(): SimResponse {
  return {
    status: 200,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify({
      code: '10000',
      from: 'shark_admin',
      type: 'verify',
      version: '',
      region: 'va',
      subtype: 'slide',
      detail: 'sim-verify',
      verify_event: '',
      fp: 'verify_sim',
      verifyConfig: { type: 'verify', subtype: 'slide', region: 'va' },
    }),
  };
}

/** A page with the captcha widget instead of content; `bdturing-verify` header as TSPHP checks. */
function captchaPage(): SimResponse {
  return {
    status: 200,
    headers: { 'content-type': 'text/html; charset=utf-8', 'bdturing-verify': '{"subtype":"slide","type":"verify"}' },
    body:
      '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Security Check</title></head><body>' +
      '<div id="captcha-verify-container" class="captcha_verify_container">' +
      '<div class="captcha_verify_bar">Verify to continue:</div>' +
      '<div class="captcha_verify_message">Drag the slider to fit the puzzle</div>' +
      '<img id="captcha-verify-image" src="/captcha/get?mode=slide" alt="Captcha">' +
      '</div></body></html>',
  };
}

/** The SlardarWAF JS challenge page (yt-dlp#9418): no page state, a `_wafchallengeid` cookie name. */
function wafPage(): SimResponse {
  const cs = Buffer.from(JSON.stringify({ v: { a: 'c2lt', b: 'c2lt', c: 'c2lt' }, s: 'sim' })).toString('base64');
  return {
    status: 200,
    headers: { 'content-type': 'text/html; charset=utf-8' },
    body:
      '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Please wait...</title>' +
      '<script id="slardar-config" type="application/json">{"slardarClient": "SlardarWAF", "bid": "sim_waf"}</script>' +
      '</head><body><p>Please wait...</p>' +
      '<p id="wci" class="_wafchallengeid"></p>' +
      `<p id="cs" class="${cs}"></p>` +
      '</body></html>',
  };
}

/** 429 as some edges send it: no Retry-After, so the client must pick its own pause. */
function http429Bare(): SimResponse {
  return { status: 429, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'Too Many Requests' };
}

/**
 * The soft block of drawrowfly/tiktok-scraper#71: HTTP 200, status 0, no items and `hasMore`
 * false, in both casings, exactly what a list that ended at once would say.
 */
function emptyList(): SimResponse {
  return {
    status: 200,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify({ statusCode: 0, status_code: 0, status_msg: '', itemList: [], hasMore: false, has_more: 0, cursor: '0' }),
  };
}

/** A block status code on a 200: `{statusCode: -1}` (TikTok-Api#1049), no data. */
function blockStatus(): SimResponse {
  return {
    status: 200,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify({ statusCode: -1, status_code: -1, status_msg: '', userInfo: {} }),
  };
}

function empty(): SimResponse {
  return { status: 200, headers: { 'content-length': '0' }, body: '' };
}

/** Builds the refusal response. `retryAfterMs` is only sent with HTTP 429, as TikTok's others carry none. */
export function refusal(kind: Refusal, retryAfterMs: number): SimResponse {
  switch (kind) {
    case 'http429':
      return http429(retryAfterMs);
    case 'http429-bare':
      return http429Bare();
    case 'empty-list':
      return emptyList();
    case 'block-status':
      return blockStatus();
    case 'verify':
      return verifyJson();
    case 'captcha':
      return captchaPage();
    case 'waf':
      return wafPage();
    case 'empty':
      return empty();
  }
}
