/**
 * JSON API handlers, one per endpoint the web app calls (doc §1b, §3). Each takes the graph and
 * the query and returns TikTok's JSON. Failures are answered the TikTok way: HTTP 200 with a
 * statusCode (10202 missing user, 10222 private, 10204 missing video, 10205 missing hashtag).
 */
import type { SimGraph, SimVideo } from './graph.js';
import { challengeObject, envelope, itemStruct, userInfo, userInfoSnake } from './shapes.js';

export interface SimResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

type Json = Record<string, unknown>;

/** Codes the simulator answers with (doc §2e). */
export const SIM_STATUS = {
  ok: 0,
  entityInvalid: 10201,
  userMissing: 10202,
  videoMissing: 10204,
  hashtagMissing: 10205,
  videoPrivate: 10216,
  userPrivate: 10222,
} as const;

export interface ApiContext {
  graph: SimGraph;
  query: URLSearchParams;
  nowMs: number;
  /** A log id for `extra.logid` / `log_pb.impr_id`. */
  logid: string;
}

/** A JSON response with TikTok's content type. */
export function json(body: Json, status = 200): SimResponse {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(body) };
}

/** camelCase endpoints send the status twice (statusCode and status_code). */
function withStatus(ctx: ApiContext, code: number, body: Json): SimResponse {
  return json({ ...envelope(ctx.logid, ctx.nowMs), statusCode: code, status_code: code, status_msg: '', ...body });
}

/** TikTok-Api#201: item lists answer 10201 when count > 50; we clamp small values instead. */
function pageSize(query: URLSearchParams, fallback: number): number | undefined {
  const raw = Number(query.get('count') ?? fallback);
  if (!Number.isFinite(raw) || raw > 50) return undefined;
  return Math.max(1, Math.floor(raw));
}

function offsetOf(value: string | null): number {
  const n = Number(value ?? 0);
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

/** `/api/user/detail/?uniqueId=&secUid=`. */
export function userDetail(ctx: ApiContext): SimResponse {
  const handle = ctx.query.get('uniqueId') ?? '';
  const secUid = ctx.query.get('secUid') ?? '';
  const creator = (handle !== '' ? ctx.graph.creator(handle) : undefined) ?? (secUid !== '' ? ctx.graph.creatorBySecUid(secUid) : undefined);
  if (!creator) return withStatus(ctx, SIM_STATUS.userMissing, {});
  return withStatus(ctx, creator.private ? SIM_STATUS.userPrivate : SIM_STATUS.ok, {
    userInfo: userInfo(creator),
    shareMeta: { title: `${creator.nickname} on TikTok`, desc: `@${creator.handle}` },
  });
}

/**
 * `/api/post/item_list/?secUid=&cursor=&count=`: newest first. The cursor is a ms timestamp:
 * the next page holds items created strictly before it; 0 means "from the newest".
 */
export function postItemList(ctx: ApiContext): SimResponse {
  const creator = ctx.graph.creatorBySecUid(ctx.query.get('secUid') ?? '');
  const count = pageSize(ctx.query, 30);
  if (!creator || count === undefined) return withStatus(ctx, SIM_STATUS.entityInvalid, { hasMore: false, cursor: '-1' });
  if (creator.private) return withStatus(ctx, SIM_STATUS.userPrivate, { hasMore: false, cursor: '-1' });
  const cursor = offsetOf(ctx.query.get('cursor'));
  const videos = creator.videoIds
    .map((id) => ctx.graph.video(id))
    .filter((v): v is SimVideo => v !== undefined && (cursor === 0 || v.createTime * 1000 < cursor));
  const page = videos.slice(0, count);
  const hasMore = videos.length > page.length;
  const last = page.at(-1);
  const body: Json = { cursor: hasMore && last ? String(last.createTime * 1000) : '-1', hasMore };
  // An empty page leaves itemList out rather than sending [] (doc §1b).
  if (page.length > 0) body['itemList'] = page.map((v) => itemStruct(ctx.graph, v));
  return withStatus(ctx, SIM_STATUS.ok, body);
}

/** `/api/challenge/detail/?challengeName=`. `stats.videoCount` is often 0 on TikTok; so here. */
export function challengeDetail(ctx: ApiContext): SimResponse {
  const tag = ctx.graph.hashtag(ctx.query.get('challengeName') ?? '');
  if (!tag) return json({ statusCode: SIM_STATUS.hashtagMissing, statusMsg: '' });
  return json({
    statusCode: SIM_STATUS.ok,
    challengeInfo: { challenge: challengeObject(tag), stats: { videoCount: 0, viewCount: tag.videoIds.length * 123_457 } },
  });
}

/** `/api/challenge/item_list/?challengeID=&cursor=&count=`: cursor is an offset. */
export function challengeItemList(ctx: ApiContext): SimResponse {
  const tag = ctx.graph.hashtagById(ctx.query.get('challengeID') ?? '');
  const count = pageSize(ctx.query, 30);
  if (!tag || count === undefined) return withStatus(ctx, SIM_STATUS.entityInvalid, { hasMore: false, cursor: '0' });
  const offset = offsetOf(ctx.query.get('cursor'));
  const ids = tag.videoIds.slice(offset, offset + count);
  const next = offset + ids.length;
  const body: Json = { cursor: String(next), hasMore: next < tag.videoIds.length };
  const items = ids.map((id) => ctx.graph.video(id)).filter((v): v is SimVideo => v !== undefined);
  if (items.length > 0) body['itemList'] = items.map((v) => itemStruct(ctx.graph, v));
  return withStatus(ctx, SIM_STATUS.ok, body);
}

function searchId(keyword: string, ctx: ApiContext): string {
  return ctx.query.get('search_id') || `2023${Buffer.from(keyword).toString('hex').slice(0, 12).padEnd(12, '0')}${ctx.logid.slice(-6)}`;
}

/** `/api/search/general/full/?keyword=&offset=&count=`: `data[]` of `{type: 1, item}`. */
export function searchGeneral(ctx: ApiContext): SimResponse {
  const keyword = ctx.query.get('keyword') ?? '';
  const count = pageSize(ctx.query, 12) ?? 12;
  const offset = offsetOf(ctx.query.get('offset') ?? ctx.query.get('cursor'));
  const videos = ctx.graph.searchVideos(keyword);
  const page = videos.slice(offset, offset + count);
  const next = offset + page.length;
  return json({
    status_code: 0,
    data: page.map((v) => ({ type: 1, item: itemStruct(ctx.graph, v) })),
    cursor: next,
    has_more: next < videos.length,
    rid: searchId(keyword, ctx),
    ...envelope(ctx.logid, ctx.nowMs),
    // an empty search says so, as the user search does (davidteather/TikTok-Api#1105)
    ...(page.length === 0 ? { search_nil_info: { search_nil_type: '', is_load_more: 'is_load_more', search_nil_item: 'empty_session', text_type: 10 } } : {}),
  });
}

/** `/api/search/user/full/?keyword=&cursor=`: snake_case, 10 per page, `has_more` as 0/1. */
export function searchUser(ctx: ApiContext): SimResponse {
  const keyword = ctx.query.get('keyword') ?? '';
  const offset = offsetOf(ctx.query.get('cursor'));
  const users = ctx.graph.searchUsers(keyword);
  const page = users.slice(offset, offset + 10);
  const next = offset + page.length;
  const body: Json = {
    type: 1,
    status_code: 0,
    user_list: page.map((c) => ({ user_info: userInfoSnake(c) })),
    challenge_list: null,
    music_list: null,
    cursor: next,
    has_more: next < users.length ? 1 : 0,
    qc: '',
    rid: searchId(keyword, ctx),
    input_keyword: keyword,
    feedback_type: 'user',
    global_doodle_config: { keyword, search_channel: 'tiktok_user', hide_results: false },
    ...envelope(ctx.logid, ctx.nowMs),
  };
  if (page.length === 0) {
    body['search_nil_info'] = { search_nil_type: '', is_load_more: 'is_load_more', search_nil_item: 'empty_session', text_type: 10 };
  }
  return json(body);
}

/** `/api/search/item/full/?keyword=&cursor=&count=`: snake_case `item_list`. */
export function searchItem(ctx: ApiContext): SimResponse {
  const keyword = ctx.query.get('keyword') ?? '';
  const count = pageSize(ctx.query, 12) ?? 12;
  const offset = offsetOf(ctx.query.get('cursor') ?? ctx.query.get('offset'));
  const videos = ctx.graph.searchVideos(keyword);
  const page = videos.slice(offset, offset + count);
  const next = offset + page.length;
  return json({
    status_code: 0,
    item_list: page.map((v) => itemStruct(ctx.graph, v)),
    has_more: next < videos.length,
    cursor: next,
    backtrace: '',
    extra: { logid: ctx.logid },
  });
}

/** Status of a video: 10204 missing, 10216 when its author is private, else 0. Pages use it too. */
export function videoStatus(graph: SimGraph, id: string): number {
  const video = graph.video(id);
  if (!video) return SIM_STATUS.videoMissing;
  return graph.creator(video.author)?.private ? SIM_STATUS.videoPrivate : SIM_STATUS.ok;
}

/** `/api/item/detail/?itemId=`. */
export function itemDetail(ctx: ApiContext): SimResponse {
  const id = ctx.query.get('itemId') ?? '';
  const status = videoStatus(ctx.graph, id);
  const video = ctx.graph.video(id);
  if (status !== SIM_STATUS.ok || !video) return withStatus(ctx, status, {});
  return withStatus(ctx, SIM_STATUS.ok, { itemInfo: { itemStruct: itemStruct(ctx.graph, video) } });
}
