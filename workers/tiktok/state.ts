/**
 * Embedded page state: the JSON TikTok inlines in its HTML for the client to rehydrate.
 *
 * Three generations exist (doc §2a), newest first: `__UNIVERSAL_DATA_FOR_REHYDRATION__`,
 * `SIGI_STATE` (script tag, `sigi-persisted-data`, or `window['SIGI_STATE']=...;`) and Next.js
 * `__NEXT_DATA__`. The regexes match the script by id whatever the attribute order, and span
 * lines, so a pretty-printed capture parses as well as TikTok's one-line JSON.
 */
import { isRecord, tryParseJson, type JsonRecord } from './json.js';

export type PageStateForm = 'universal' | 'sigi' | 'next';

export interface PageState {
  form: PageStateForm;
  /** The parsed root: `{__DEFAULT_SCOPE__}` (universal), SIGI modules, or Next's `{props, ...}`. */
  data: JsonRecord;
}

/** Reads the JSON body of `<script id="{id}" ...>{json}</script>`; undefined if absent or not JSON. */
export function readScriptJson(html: string, id: string): JsonRecord | undefined {
  const idAttr = `id=["']${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}["']`;
  const re = new RegExp(`<script\\b[^>]*\\b${idAttr}[^>]*>([\\s\\S]*?)</script>`, 'i');
  const body = re.exec(html)?.[1];
  if (body === undefined) return undefined;
  const parsed = tryParseJson(body.trim());
  return isRecord(parsed) ? parsed : undefined;
}

/** The 2021-era `window['SIGI_STATE']=...;` assignment form. */
function readWindowSigi(html: string): JsonRecord | undefined {
  const m = /window\[['"]SIGI_STATE['"]\]\s*=\s*(\{[\s\S]*?\});\s*(?:window\[|<\/script>)/.exec(html);
  if (m?.[1] === undefined) return undefined;
  const parsed = tryParseJson(m[1]);
  return isRecord(parsed) ? parsed : undefined;
}

/**
 * Finds the embedded state of a TikTok page, trying the current form first.
 *
 * @returns the form found and its parsed JSON, or undefined when the page has none (captcha,
 *   WAF challenge, empty body, or a page that is not TikTok's).
 */
export function extractPageState(html: string): PageState | undefined {
  const universal = readScriptJson(html, '__UNIVERSAL_DATA_FOR_REHYDRATION__');
  if (universal) return { form: 'universal', data: universal };
  const sigi = readScriptJson(html, 'SIGI_STATE') ?? readScriptJson(html, 'sigi-persisted-data') ?? readWindowSigi(html);
  if (sigi) return { form: 'sigi', data: sigi };
  const next = readScriptJson(html, '__NEXT_DATA__');
  if (next) return { form: 'next', data: next };
  return undefined;
}

/**
 * One scope of the universal state, e.g. `webapp.user-detail`.
 * @returns the scope object, or undefined if the page is not in the universal form or lacks it.
 */
export function defaultScope(state: PageState | undefined, key: string): JsonRecord | undefined {
  if (state?.form !== 'universal') return undefined;
  const scope = state.data['__DEFAULT_SCOPE__'];
  const value = isRecord(scope) ? scope[key] : undefined;
  return isRecord(value) ? value : undefined;
}
