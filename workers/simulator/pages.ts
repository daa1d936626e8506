/**
 * HTML pages: profile, video, hashtag, search. Each embeds one-line universal state
 * (`__UNIVERSAL_DATA_FOR_REHYDRATION__`, id before type, `/` escaped as `\u002F` as TikTok does)
 * and a small inline script that fetches the page's own JSON API, so a real browser that loads
 * the page also makes the API call the web app would. Each script calls an API of the page's
 * own endpoint key, so one navigation never spends another key's budget.
 */
import { SIM_STATUS, videoStatus, type SimResponse } from './api.js';
import type { SimGraph } from './graph.js';
import { challengeObject, itemStruct, userInfo } from './shapes.js';

type Json = Record<string, unknown>;

export interface PageContext {
  graph: SimGraph;
  /** Origin of this server, for canonical URLs. */
  origin: string;
  /** Render the inline API fetch. Default true. */
  scripts: boolean;
}

/** JSON safe inside a script tag, escaped the way TikTok's pages are. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/\//g, '\\u002F').replace(/</g, '\\u003C').replace(/>/g, '\\u003E');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function appContext(): Json {
  return { language: 'en', region: 'US', appId: 1233, user: {}, wid: '7300000000000000000' };
}

function seo(canonical: string): Json {
  return { canonical, pageId: 'sim', vidList: [], parameters: {} };
}

interface PageParts {
  title: string;
  scope: Json;
  /** Relative API URL the inline script fetches. */
  fetchPath?: string;
  meta?: string;
  body?: string;
}

function html(ctx: PageContext, parts: PageParts): string {
  const state = scriptJson({ __DEFAULT_SCOPE__: parts.scope });
  const fetcher =
    ctx.scripts && parts.fetchPath !== undefined
      ? `<script>fetch(${scriptJson(parts.fetchPath)},{credentials:"include"}).then(function(r){return r.text()}).then(function(t){document.body.dataset.api=String(t.length)}).catch(function(){})</script>`
      : '';
  return [
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeHtml(parts.title)}</title>`,
    parts.meta ?? '',
    '</head><body><div id="app">',
    parts.body ?? '',
    '</div>',
    `<script id="__UNIVERSAL_DATA_FOR_REHYDRATION__" type="application/json">${state}</script>`,
    fetcher,
    '</body></html>',
  ].join('');
}

function page(status: number, body: string): SimResponse {
  return { status, headers: { 'content-type': 'text/html; charset=utf-8' }, body };
}

const q = encodeURIComponent;

/**
 * `/@{handle}`: `webapp.user-detail`. Missing users answer HTTP 404 with statusCode 10202;
 * private users 10222 with the user (bio included) still present, as TikTok shows private bios.
 */
export function profilePage(ctx: PageContext, handle: string): SimResponse {
  const creator = ctx.graph.creator(handle);
  const canonical = `${ctx.origin}/@${q(handle)}`;
  if (!creator) {
    const scope = {
      'webapp.app-context': appContext(),
      'webapp.user-detail': { statusCode: SIM_STATUS.userMissing, statusMsg: '' },
      'seo.abtest': seo(canonical),
    };
    return page(404, html(ctx, { title: "Couldn't find this account", scope, body: "<p>Couldn't find this account</p>" }));
  }
  const statusCode = creator.private ? SIM_STATUS.userPrivate : SIM_STATUS.ok;
  const scope = {
    'webapp.app-context': appContext(),
    'webapp.user-detail': { statusCode, statusMsg: '', userInfo: { ...userInfo(creator), itemList: [] } },
    'seo.abtest': seo(`${ctx.origin}/@${q(creator.handle)}`),
  };
  return page(200, html(ctx, {
    title: `${creator.nickname} (@${creator.handle}) | TikTok`,
    scope,
    fetchPath: `/api/user/detail/?uniqueId=${q(creator.handle)}&secUid=${q(creator.secUid)}&aid=1988`,
    body: `<h1>@${escapeHtml(creator.handle)}</h1>`,
  }));
}

/** `/@{any}/video/{id}`: `webapp.video-detail`; the handle part is ignored as on TikTok. */
export function videoPage(ctx: PageContext, id: string): SimResponse {
  const video = ctx.graph.video(id);
  const statusCode = videoStatus(ctx.graph, id);
  const detail: Json = { statusCode, statusMsg: '' };
  if (video && statusCode === SIM_STATUS.ok) {
    detail['itemInfo'] = { itemStruct: itemStruct(ctx.graph, video) };
    detail['shareMeta'] = { title: `@${video.author} on TikTok`, desc: video.desc };
  }
  const scope = {
    'webapp.app-context': appContext(),
    'webapp.video-detail': detail,
    'seo.abtest': seo(`${ctx.origin}/@${q(video?.author ?? '_')}/video/${id}`),
  };
  return page(200, html(ctx, { title: video ? `${video.desc} | TikTok` : 'TikTok', scope, fetchPath: `/api/item/detail/?itemId=${q(id)}&aid=1988` }));
}

/**
 * `/tag/{name}`: `webapp.challenge-detail` plus the `snssdk1233://challenge/detail/{id}` deep
 * link. A missing tag is a 200 page with no challenge scope and "Couldn't find this hashtag".
 */
export function hashtagPage(ctx: PageContext, name: string): SimResponse {
  const tag = ctx.graph.hashtag(name);
  if (!tag) {
    const scope = { 'webapp.app-context': appContext(), 'seo.abtest': seo(`${ctx.origin}/tag/${q(name)}`) };
    return page(200, html(ctx, { title: 'TikTok', scope, body: "<p>Couldn't find this hashtag</p>" }));
  }
  const scope = {
    'webapp.app-context': appContext(),
    'webapp.challenge-detail': {
      statusCode: 0,
      statusMsg: '',
      challengeInfo: { challenge: challengeObject(tag), stats: { videoCount: 0, viewCount: tag.videoIds.length * 123_457 } },
    },
    'seo.abtest': seo(`${ctx.origin}/tag/${q(tag.name)}`),
  };
  return page(200, html(ctx, {
    title: `#${tag.name} | TikTok`,
    scope,
    meta: `<meta property="al:android:url" content="snssdk1233://challenge/detail/${tag.id}">`,
    fetchPath: `/api/challenge/item_list/?challengeID=${tag.id}&cursor=0&count=30&aid=1988`,
    body: `<h1>#${escapeHtml(tag.name)}</h1>`,
  }));
}

/** `/search?q=` (and `/search/user`, `/search/video`): client-rendered; the script fetches results. */
export function searchPage(ctx: PageContext, tab: 'general' | 'user' | 'video', keyword: string): SimResponse {
  const api =
    tab === 'user'
      ? `/api/search/user/full/?keyword=${q(keyword)}&cursor=0&aid=1988`
      : tab === 'video'
        ? `/api/search/item/full/?keyword=${q(keyword)}&cursor=0&count=12&aid=1988`
        : `/api/search/general/full/?keyword=${q(keyword)}&offset=0&count=12&aid=1988`;
  const scope = { 'webapp.app-context': appContext(), 'seo.abtest': seo(`${ctx.origin}/search?q=${q(keyword)}`) };
  return page(200, html(ctx, { title: `Find '${keyword}' on TikTok`, scope, fetchPath: api }));
}

/** `/`: a human-friendly index of the graph; not a TikTok page and not counted to any key. */
export function homePage(ctx: PageContext): SimResponse {
  const links = [
    ...ctx.graph.hashtags.map((t) => `<li><a href="/tag/${q(t.name)}">#${escapeHtml(t.name)}</a></li>`),
    ...ctx.graph.keywords.map((k) => `<li><a href="/search?q=${q(k)}">search: ${escapeHtml(k)}</a></li>`),
    ...ctx.graph.creators.slice(0, 10).map((c) => `<li><a href="/@${q(c.handle)}">@${escapeHtml(c.handle)}</a></li>`),
  ];
  return page(200, `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Sluice TikTok simulator</title></head><body><h1>Simulator (seed ${escapeHtml(String(ctx.graph.seed))})</h1><ul>${links.join('')}</ul><p><a href="/__sim/stats">stats</a></p></body></html>`);
}
