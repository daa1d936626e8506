/**
 * Discovery: the handles, hashtags and paging state in item lists, search results and video
 * pages. Every list shape of doc §3 is read: camelCase (`itemList`, `author.uniqueId`, `hasMore`)
 * and snake_case (`item_list`, `user_list[].user_info.unique_id`, `has_more` as 0/1), general
 * search `data[].item`, follow lists `userList[].user`, legacy `userInfoList[].user`.
 */
import { arr, bool, field, isRecord, num, path, str, tryParseJson } from './json.js';
import { defaultScope, extractPageState } from './state.js';
import { statusOf } from './user.js';

/** One video found in a list. */
export interface DiscoveredItem {
  id?: string;
  /** Author's handle: `author.uniqueId`, `author.unique_id`, or `author` when it is a string (old shape). */
  author?: string;
  authorSecUid?: string;
  /** Hashtag names from `challenges[]`, `textExtra[type=1]` and `contents[].textExtra[]`. */
  hashtags: string[];
  /** Mentioned handles from `textExtra[type=0].userUniqueId`. */
  mentions: string[];
}

/** One user found in a user list (user search, follow lists). */
export interface DiscoveredUser {
  handle: string;
  secUid?: string;
  nickname?: string;
  signature?: string;
}

export interface ListPage {
  statusCode: number;
  items: DiscoveredItem[];
  users: DiscoveredUser[];
  /** Unique handles of item authors and listed users, in order of appearance (mentions excluded). */
  handles: string[];
  /** Unique handles mentioned in items' captions. They may not exist: expect 10202 on some. */
  mentions: string[];
  /** Unique hashtag names found in items. */
  hashtags: string[];
  /** Cursor to send for the next page, as a string (TikTok sends both numbers and strings). */
  cursor?: string;
  /** False at the end of the list, and whenever TikTok says so (`cursor: -1` included). */
  hasMore: boolean;
  /** Search `rid` to pass back as `search_id` on the next search page. */
  searchId?: string;
}

/** Reads one item object. */
export function readItem(raw: unknown): DiscoveredItem | undefined {
  if (!isRecord(raw)) return undefined;
  const item: DiscoveredItem = { hashtags: [], mentions: [] };
  const id = str(raw, 'id', 'aweme_id');
  if (id !== undefined) item.id = id;
  const author = raw['author'];
  // Older item shapes carry the handle as a plain string with authorSecId beside it.
  const handle = typeof author === 'string' && author !== '' ? author : str(author, 'uniqueId', 'unique_id');
  if (handle !== undefined) item.author = handle;
  const secUid = str(author, 'secUid', 'sec_uid') ?? str(raw, 'authorSecId');
  if (secUid !== undefined) item.authorSecUid = secUid;

  const tags = new Set<string>();
  const mentions = new Set<string>();
  for (const c of arr(raw, 'challenges') ?? []) {
    const title = str(c, 'title');
    if (title !== undefined) tags.add(title);
  }
  const extras = [...(arr(raw, 'textExtra', 'text_extra') ?? [])];
  for (const content of arr(raw, 'contents') ?? []) extras.push(...(arr(content, 'textExtra') ?? []));
  for (const extra of extras) {
    const tag = str(extra, 'hashtagName', 'hashtag_name');
    if (tag !== undefined) tags.add(tag);
    // Mentions are type 0 with userUniqueId set and an empty hashtagName.
    const mention = str(extra, 'userUniqueId', 'user_unique_id');
    if (mention !== undefined) mentions.add(mention);
  }
  item.hashtags = [...tags];
  item.mentions = [...mentions];
  return item;
}

function readListedUser(raw: unknown): DiscoveredUser | undefined {
  const handle = str(raw, 'uniqueId', 'unique_id');
  if (handle === undefined) return undefined;
  const user: DiscoveredUser = { handle };
  const secUid = str(raw, 'secUid', 'sec_uid');
  if (secUid !== undefined) user.secUid = secUid;
  const nickname = str(raw, 'nickname');
  if (nickname !== undefined) user.nickname = nickname;
  const signature = str(raw, 'signature');
  if (signature !== undefined) user.signature = signature;
  return user;
}

function collectItems(json: unknown): unknown[] {
  const direct = arr(json, 'itemList', 'item_list', 'items');
  if (direct) return direct;
  // General search: data[] of {type, item}; only entries that carry an item are videos.
  return (arr(json, 'data') ?? []).map((entry) => field(entry, 'item')).filter(isRecord);
}

function collectUsers(json: unknown): unknown[] {
  const out: unknown[] = [];
  for (const entry of arr(json, 'user_list', 'userList', 'userInfoList') ?? []) {
    out.push(field(entry, 'user_info') ?? field(entry, 'user') ?? entry);
  }
  // General search may mix user cards into data[] (`{type: 4, user_list: [...]}`).
  for (const entry of arr(json, 'data') ?? []) {
    for (const u of arr(entry, 'user_list') ?? []) out.push(field(u, 'user_info') ?? u);
  }
  return out;
}

/**
 * Next-page cursor: `cursor` (item lists, search), else `offset`, else a non-zero `minCursor`
 * (follow lists page backwards with it) or `maxCursor` (legacy item lists).
 */
function cursorOf(json: unknown): string | undefined {
  const text = (key: string): string | undefined => {
    const v = field(json, key);
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const nonZero = (key: string): string | undefined => {
    const v = text(key);
    return v === '0' ? undefined : v;
  };
  return text('cursor') ?? text('offset') ?? nonZero('minCursor') ?? nonZero('maxCursor');
}

function readItems(raw: unknown[]): DiscoveredItem[] {
  return raw.map(readItem).filter((i): i is DiscoveredItem => i !== undefined);
}

function assemble(statusCode: number, items: DiscoveredItem[], users: DiscoveredUser[], json: unknown): ListPage {
  const handles = new Set<string>();
  const mentions = new Set<string>();
  const hashtags = new Set<string>();
  for (const item of items) {
    if (item.author !== undefined) handles.add(item.author);
    for (const m of item.mentions) mentions.add(m);
    for (const t of item.hashtags) hashtags.add(t);
  }
  for (const user of users) handles.add(user.handle);
  const cursor = cursorOf(json);
  // EVIL #477: hasMore false with cursor -1 means no more; a missing flag means stop too.
  const hasMore = (bool(json, 'hasMore', 'has_more', 'hasMorePrevious') ?? false) && cursor !== '-1';
  const page: ListPage = {
    statusCode,
    items,
    users,
    handles: [...handles],
    mentions: [...mentions],
    hashtags: [...hashtags],
    hasMore,
  };
  if (cursor !== undefined) page.cursor = cursor;
  const searchId = str(json, 'rid') ?? str(path(json, 'log_pb'), 'impr_id');
  if (searchId !== undefined) page.searchId = searchId;
  return page;
}

/**
 * Parses one page of a list API: `/api/post/item_list/`, `/api/challenge/item_list/`,
 * `/api/search/{general,user,item}/full/`, `/api/user/list/`, `/api/creator/item_list/`.
 *
 * An empty page may omit the list key entirely (doc §1b): that yields `items: []`, not undefined.
 * @returns undefined when the body is not a JSON object (empty body, HTML challenge page).
 */
export function parseListPage(body: unknown): ListPage | undefined {
  const json = typeof body === 'string' ? tryParseJson(body) : body;
  if (!isRecord(json)) return undefined;
  const users = collectUsers(json)
    .map(readListedUser)
    .filter((u): u is DiscoveredUser => u !== undefined);
  return assemble(statusOf(json), readItems(collectItems(json)), users, json);
}

/**
 * Parses a single item: `/api/item/detail/` JSON or a video page (`webapp.video-detail`, SIGI
 * `ItemModule`, Next `props.pageProps.itemInfo`).
 * @returns the status and the item (absent for 10204 / 10216 answers).
 */
export function parseItemDetail(body: unknown): { statusCode: number; item?: DiscoveredItem } | undefined {
  let envelope: unknown;
  let raw: unknown;
  if (typeof body === 'string' && !body.trimStart().startsWith('{')) {
    const state = extractPageState(body);
    if (!state) return undefined;
    if (state.form === 'universal') {
      envelope = defaultScope(state, 'webapp.video-detail');
      raw = path(envelope, 'itemInfo', 'itemStruct');
    } else if (state.form === 'sigi') {
      const module = field(state.data, 'ItemModule');
      envelope = field(state.data, 'VideoPage') ?? {};
      raw = isRecord(module) ? Object.values(module)[0] : undefined;
    } else {
      envelope = path(state.data, 'props', 'pageProps');
      raw = path(envelope, 'itemInfo', 'itemStruct');
    }
    if (!isRecord(envelope)) return undefined;
  } else {
    envelope = typeof body === 'string' ? tryParseJson(body) : body;
    if (!isRecord(envelope)) return undefined;
    raw = path(envelope, 'itemInfo', 'itemStruct') ?? field(envelope, 'aweme_detail');
  }
  const item = readItem(raw);
  const statusCode = statusOf(envelope);
  return item ? { statusCode, item } : { statusCode };
}

/**
 * Lists embedded in a page: the hashtag page's `webapp.challenge-detail.itemList` (anonymous
 * sessions only), the profile's `userInfo.itemList` and `webapp.user-post.itemList`, or the
 * single item of a video page. Returns an empty page when nothing is embedded.
 */
export function discoverFromHtml(html: string): ListPage | undefined {
  const state = extractPageState(html);
  if (!state) return undefined;
  const video = parseItemDetail(html);
  if (video?.item) return assemble(video.statusCode, [video.item], [], {});
  const lists = [
    defaultScope(state, 'webapp.challenge-detail'),
    defaultScope(state, 'webapp.user-post'),
    field(defaultScope(state, 'webapp.user-detail'), 'userInfo'),
  ];
  const raw = lists.flatMap((l) => arr(l, 'itemList') ?? []);
  return assemble(statusOf(lists.find(isRecord) ?? {}), readItems(raw), [], {});
}
