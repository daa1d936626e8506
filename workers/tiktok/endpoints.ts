/**
 * Which throttle endpoint a TikTok URL belongs to.
 *
 * The names are the throttle's endpoint names. The simulator uses the same classes without the
 * `tiktok.` prefix (`search`, `hashtag`, ...). A page and the API calls the web app makes for it
 * are the same class, because TikTok appears to rate-limit them together.
 */

export const TIKTOK_ENDPOINTS = [
  'tiktok.search',
  'tiktok.hashtag',
  'tiktok.creator',
  'tiktok.video',
  'tiktok.profile',
] as const;

export type TikTokEndpoint = (typeof TIKTOK_ENDPOINTS)[number];

/** Endpoint name without the `tiktok.` prefix, as the simulator counts it. */
export type EndpointKey = TikTokEndpoint extends `tiktok.${infer K}` ? K : never;

/** Path rules tried in order. Trailing slashes are optional: the web app sends `/api/user/detail/`. */
const RULES: ReadonlyArray<readonly [RegExp, TikTokEndpoint]> = [
  // Search: the page (all tabs) and the three search APIs.
  [/^\/search(?:\/(?:user|video|general))?\/?$/, 'tiktok.search'],
  [/^\/api\/search\/(?:general|user|item)\/full\/?$/, 'tiktok.search'],
  // Hashtag: page plus the challenge detail and its item list.
  [/^\/tag\/[^/]+\/?$/, 'tiktok.hashtag'],
  [/^\/api\/challenge\/(?:detail|item_list)\/?$/, 'tiktok.hashtag'],
  // A creator's posts: newest-first list and the legacy time-cursor list.
  [/^\/api\/(?:post|creator)\/item_list\/?$/, 'tiktok.creator'],
  // Video: page (any handle part, `@_` included; photo posts too), share/embed forms, detail API.
  [/^\/@[^/]*\/(?:video|photo)\/\d+\/?$/, 'tiktok.video'],
  [/^\/(?:share\/video|embed(?:\/v2)?)\/\d+\/?$/, 'tiktok.video'],
  [/^\/api\/item\/detail\/?$/, 'tiktok.video'],
  // Profile: the page and the user detail API.
  [/^\/@[^/]+\/?$/, 'tiktok.profile'],
  [/^\/api\/user\/detail\/?$/, 'tiktok.profile'],
];

/**
 * Maps a page or API URL to its throttle endpoint. The host is ignored, so the same rules serve
 * tiktok.com and the simulator.
 *
 * @param url - absolute URL, or a path such as `/api/user/detail/?uniqueId=x`.
 * @param baseUrl - when the site is mounted under a path prefix (`http://host/tt/`), that base;
 *   the prefix is stripped before matching. Default: none.
 * @returns the endpoint, or undefined for URLs no throttle endpoint covers (short links,
 *   music pages, `/api/comment/list/`, ...).
 */
export function endpointForUrl(url: string, baseUrl?: string): TikTokEndpoint | undefined {
  let pathname: string;
  try {
    pathname = new URL(url, 'http://relative.invalid').pathname;
  } catch {
    return undefined;
  }
  if (baseUrl !== undefined) {
    const prefix = new URL(baseUrl).pathname.replace(/\/+$/, '');
    if (prefix !== '') {
      if (pathname !== prefix && !pathname.startsWith(`${prefix}/`)) return undefined;
      pathname = pathname.slice(prefix.length) || '/';
    }
  }
  // Handles and tags arrive percent-encoded (`/tag/fyp%E3%82%B7`); the rules only look at shape.
  for (const [pattern, endpoint] of RULES) if (pattern.test(pathname)) return endpoint;
  return undefined;
}

/** The simulator's key for an endpoint: `tiktok.video` → `video`. */
export function endpointKey(endpoint: TikTokEndpoint): EndpointKey {
  return endpoint.slice('tiktok.'.length) as EndpointKey;
}
