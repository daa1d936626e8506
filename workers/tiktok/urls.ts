/**
 * Page and API URL builders over a configurable base, so the same worker code runs against
 * https://www.tiktok.com and the local simulator.
 *
 * Only the parameters the endpoints need are added, plus a small set of the web app's common
 * parameters. Signing (`X-Bogus`, `msToken`) is not done here: against tiktok.com the API calls
 * are meant to be issued from inside a browser page that signs them.
 */

export const TIKTOK_BASE_URL = 'https://www.tiktok.com';

/** Common web parameters sent by the web app on every API call (doc §1c); overridable. */
export const DEFAULT_WEB_PARAMS: Readonly<Record<string, string>> = {
  aid: '1988',
  app_name: 'tiktok_web',
  device_platform: 'web_pc',
  channel: 'tiktok_web',
};

export interface TikTokUrlOptions {
  /** Site root, with or without a path prefix. Default: `https://www.tiktok.com`. */
  baseUrl?: string;
  /** Parameters added to every API URL. Default: {@link DEFAULT_WEB_PARAMS}. */
  webParams?: Readonly<Record<string, string>>;
}

type Params = Record<string, string | number | boolean | undefined>;

export interface TikTokUrls {
  readonly baseUrl: string;
  /** `/@{handle}` profile page. */
  profile(handle: string): string;
  /** `/@{handle}/video/{id}`; `@_` when the handle is unknown (TikTok accepts any handle part). */
  video(id: string, handle?: string): string;
  /** `/tag/{name}` hashtag page. */
  hashtag(name: string): string;
  /** `/search?q=` (general), `/search/user?q=` or `/search/video?q=`. */
  search(keyword: string, tab?: 'general' | 'user' | 'video'): string;
  /** `/api/user/detail/?uniqueId=&secUid=`. */
  userDetailApi(q: { uniqueId?: string; secUid?: string }): string;
  /** `/api/post/item_list/?secUid=&cursor=&count=` (a creator's posts, newest first). */
  postItemListApi(q: { secUid: string; cursor?: string | number; count?: number }): string;
  /** `/api/challenge/detail/?challengeName=`. */
  challengeDetailApi(q: { challengeName: string }): string;
  /** `/api/challenge/item_list/?challengeID=&cursor=&count=`. */
  challengeItemListApi(q: { challengeID: string; cursor?: string | number; count?: number }): string;
  /** `/api/search/general/full/?keyword=&offset=&count=`. */
  searchGeneralApi(q: { keyword: string; offset?: string | number; count?: number; searchId?: string }): string;
  /** `/api/search/user/full/?keyword=&cursor=&search_id=`. */
  searchUserApi(q: { keyword: string; cursor?: string | number; searchId?: string }): string;
  /** `/api/search/item/full/?keyword=&cursor=&count=`. */
  searchItemApi(q: { keyword: string; cursor?: string | number; count?: number; searchId?: string }): string;
  /** `/api/item/detail/?itemId=`. */
  itemDetailApi(q: { itemId: string }): string;
}

/**
 * Builds URL helpers for one base URL.
 *
 * @example
 * const urls = tiktokUrls({ baseUrl: sim.url });
 * await fetch(urls.challengeItemListApi({ challengeID: '123', cursor: 0 }));
 */
export function tiktokUrls(options: TikTokUrlOptions = {}): TikTokUrls {
  // Keep any path prefix and make it end in '/', so relative resolution appends to it.
  const base = new URL(options.baseUrl ?? TIKTOK_BASE_URL);
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  base.search = '';
  base.hash = '';
  const webParams = options.webParams ?? DEFAULT_WEB_PARAMS;

  const page = (relative: string, params: Params = {}): string => build(base, relative, params);
  const api = (relative: string, params: Params): string => build(base, relative, { ...webParams, ...params });
  const seg = encodeURIComponent;

  return {
    baseUrl: base.href.replace(/\/$/, ''),
    profile: (handle) => page(`@${seg(stripAt(handle))}`),
    video: (id, handle) => page(`@${seg(handle === undefined ? '_' : stripAt(handle))}/video/${seg(id)}`),
    hashtag: (name) => page(`tag/${seg(name.replace(/^#/, ''))}`),
    search: (keyword, tab = 'general') => page(tab === 'general' ? 'search' : `search/${tab}`, { q: keyword }),
    userDetailApi: (q) => api('api/user/detail/', { uniqueId: q.uniqueId ?? '', secUid: q.secUid ?? '' }),
    postItemListApi: (q) =>
      api('api/post/item_list/', { secUid: q.secUid, cursor: q.cursor ?? 0, count: q.count ?? 30, from_page: 'user' }),
    challengeDetailApi: (q) => api('api/challenge/detail/', { challengeName: q.challengeName }),
    challengeItemListApi: (q) =>
      api('api/challenge/item_list/', {
        challengeID: q.challengeID,
        cursor: q.cursor ?? 0,
        count: q.count ?? 30,
        from_page: 'hashtag',
      }),
    searchGeneralApi: (q) =>
      api('api/search/general/full/', {
        keyword: q.keyword,
        offset: q.offset ?? 0,
        count: q.count ?? 12,
        search_id: q.searchId,
        from_page: 'search',
      }),
    searchUserApi: (q) =>
      api('api/search/user/full/', { keyword: q.keyword, cursor: q.cursor ?? 0, search_id: q.searchId, from_page: 'search' }),
    searchItemApi: (q) =>
      api('api/search/item/full/', {
        keyword: q.keyword,
        cursor: q.cursor ?? 0,
        count: q.count ?? 12,
        search_id: q.searchId,
        source: 'search_video',
      }),
    itemDetailApi: (q) => api('api/item/detail/', { itemId: q.itemId }),
  };
}

function stripAt(handle: string): string {
  return handle.replace(/^@/, '');
}

function build(base: URL, relative: string, params: Params): string {
  const url = new URL(relative, base);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined) url.searchParams.set(key, String(value));
  }
  return url.href;
}
