/**
 * Request routing: which handler answers a path, and which endpoint key it counts toward.
 * This table is the simulator's own truth; `workers/tiktok/endpoints.ts` is checked against it.
 */
import * as api from './api.js';
import type { SimResponse } from './api.js';
import type { SimKey } from './limits.js';
import { hashtagPage, profilePage, searchPage, videoPage, type PageContext } from './pages.js';

export interface RequestContext {
  page: PageContext;
  api: Omit<api.ApiContext, 'query'>;
  query: URLSearchParams;
}

export interface Route {
  key: SimKey;
  kind: 'page' | 'api';
  handle: (ctx: RequestContext) => SimResponse;
}

function apiRoute(key: SimKey, handler: (ctx: api.ApiContext) => SimResponse): Route {
  return { key, kind: 'api', handle: (ctx) => handler({ ...ctx.api, query: ctx.query }) };
}

const API_ROUTES: Record<string, Route> = {
  '/api/user/detail': apiRoute('profile', api.userDetail),
  '/api/post/item_list': apiRoute('creator', api.postItemList),
  '/api/challenge/detail': apiRoute('hashtag', api.challengeDetail),
  '/api/challenge/item_list': apiRoute('hashtag', api.challengeItemList),
  '/api/search/general/full': apiRoute('search', api.searchGeneral),
  '/api/search/user/full': apiRoute('search', api.searchUser),
  '/api/search/item/full': apiRoute('search', api.searchItem),
  '/api/item/detail': apiRoute('video', api.itemDetail),
};

function decode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** Finds the route for a pathname, or undefined (404, unclassified). Trailing slashes are optional. */
export function route(pathname: string): Route | undefined {
  const path = pathname.length > 1 ? pathname.replace(/\/+$/, '') : pathname;
  const apiMatch = API_ROUTES[path];
  if (apiMatch) return apiMatch;

  let m = /^\/@([^/]*)\/(?:video|photo)\/(\d+)$/.exec(path);
  if (m?.[2] !== undefined) {
    const id = m[2];
    return { key: 'video', kind: 'page', handle: (ctx) => videoPage(ctx.page, id) };
  }
  m = /^\/@([^/]+)$/.exec(path);
  const handle = m?.[1] !== undefined ? decode(m[1]) : undefined;
  if (handle !== undefined) return { key: 'profile', kind: 'page', handle: (ctx) => profilePage(ctx.page, handle) };

  m = /^\/tag\/([^/]+)$/.exec(path);
  const tag = m?.[1] !== undefined ? decode(m[1]) : undefined;
  if (tag !== undefined) return { key: 'hashtag', kind: 'page', handle: (ctx) => hashtagPage(ctx.page, tag) };

  m = /^\/search(?:\/(user|video))?$/.exec(path);
  if (m) {
    const tab = (m[1] ?? 'general') as 'general' | 'user' | 'video';
    return { key: 'search', kind: 'page', handle: (ctx) => searchPage(ctx.page, tab, ctx.query.get('q') ?? '') };
  }
  return undefined;
}
