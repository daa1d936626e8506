/**
 * A creator's profile from a profile page (`/@handle`) or the `/api/user/detail/` JSON.
 */
import { bool, field, isRecord, num, path, str, tryParseJson } from './json.js';
import { defaultScope, extractPageState, type PageState } from './state.js';
import { STATUS } from './status.js';

export interface TikTokUser {
  /** `uniqueId`: the @handle without the @. */
  handle: string;
  nickname?: string;
  /** The bio text; '' when the user has none. */
  signature: string;
  /** `bioLink.link` (or a flattened string `bioLink`), when the profile has one. */
  bioLink?: string;
  /** True for `privateAccount`/`secret` or a 10222 status. Private profiles still show their bio. */
  private: boolean;
  id?: string;
  secUid?: string;
  verified?: boolean;
  /** Exact counts when `statsV2` has them, else the rounded `stats`. */
  followerCount?: number;
  videoCount?: number;
}

export interface UserLookup {
  /** TikTok's `statusCode` (0 ok, 10202 missing, 10222 private, ...; 404 on old Next pages). */
  statusCode: number;
  statusMsg?: string;
  /** Absent for missing users and for hollow (blocked) answers whose `user` is `{}`. */
  user?: TikTokUser;
}

/** Reads one user object (camelCase profile/item shape) into a {@link TikTokUser}. */
export function readUser(raw: unknown, stats?: unknown, statusCode = 0): TikTokUser | undefined {
  const handle = str(raw, 'uniqueId', 'unique_id');
  if (handle === undefined) return undefined;
  const bio = field(raw, 'bioLink');
  const bioLink = typeof bio === 'string' && bio !== '' ? bio : str(bio, 'link');
  const user: TikTokUser = {
    handle,
    signature: str(raw, 'signature') ?? '',
    private: bool(raw, 'privateAccount', 'secret') === true || statusCode === STATUS.USER_PRIVATE,
  };
  const nickname = str(raw, 'nickname');
  if (nickname !== undefined) user.nickname = nickname;
  if (bioLink !== undefined) user.bioLink = bioLink;
  const id = str(raw, 'id', 'uid');
  if (id !== undefined) user.id = id;
  const secUid = str(raw, 'secUid', 'sec_uid');
  if (secUid !== undefined) user.secUid = secUid;
  const verified = bool(raw, 'verified');
  if (verified !== undefined) user.verified = verified;
  const followers = num(stats, 'followerCount') ?? num(raw, 'follower_count');
  if (followers !== undefined) user.followerCount = followers;
  const videos = num(stats, 'videoCount');
  if (videos !== undefined) user.videoCount = videos;
  return user;
}

/** statsV2 carries exact counts as strings; prefer it, fall back to the rounded stats. */
function mergedStats(userInfo: unknown): Record<string, unknown> {
  const stats = field(userInfo, 'stats');
  const v2 = field(userInfo, 'statsV2');
  return { ...(isRecord(stats) ? stats : {}), ...(isRecord(v2) ? v2 : {}) };
}

function fromUserInfo(userInfo: unknown, statusCode: number, statusMsg: string | undefined): UserLookup {
  const lookup: UserLookup = { statusCode };
  if (statusMsg !== undefined) lookup.statusMsg = statusMsg;
  const user = readUser(field(userInfo, 'user'), mergedStats(userInfo), statusCode);
  if (user) lookup.user = user;
  return lookup;
}

/** Status of a JSON envelope: `statusCode`, then `status_code` (TSPHP's order); 0 if neither. */
export function statusOf(json: unknown): number {
  return num(json, 'statusCode', 'status_code') ?? 0;
}

/** The user in a parsed page state, whichever generation it is. */
export function userFromState(state: PageState): UserLookup | undefined {
  if (state.form === 'universal') {
    const detail = defaultScope(state, 'webapp.user-detail');
    if (!detail) return undefined;
    return fromUserInfo(field(detail, 'userInfo'), statusOf(detail), str(detail, 'statusMsg'));
  }
  if (state.form === 'sigi') {
    // UserModule.users and .stats are keyed by uniqueId; a profile page holds one user.
    const users = path(state.data, 'UserModule', 'users');
    const first = isRecord(users) ? Object.entries(users)[0] : undefined;
    const statusCode = num(path(state.data, 'UserPage'), 'statusCode') ?? (first ? 0 : STATUS.USER_NOT_EXIST);
    if (!first) return { statusCode };
    const stats = path(state.data, 'UserModule', 'stats', first[0]);
    const user = readUser(first[1], stats, statusCode);
    return user ? { statusCode, user } : { statusCode };
  }
  const pageProps = path(state.data, 'props', 'pageProps');
  if (!isRecord(pageProps)) return undefined;
  return fromUserInfo(field(pageProps, 'userInfo'), statusOf(pageProps), str(pageProps, 'statusMsg'));
}

/**
 * Extracts the user from a profile page's HTML.
 * @returns undefined when the page has no user state at all (captcha, WAF page, empty body):
 *   use {@link classifyResponse} to tell which.
 */
export function extractUserFromHtml(html: string): UserLookup | undefined {
  const state = extractPageState(html);
  return state ? userFromState(state) : undefined;
}

/**
 * Extracts the user from a `/api/user/detail/` response (parsed or as text).
 * @returns undefined when the body is not a user-detail envelope.
 */
export function extractUserFromJson(json: unknown): UserLookup | undefined {
  const data = typeof json === 'string' ? tryParseJson(json) : json;
  if (!isRecord(data)) return undefined;
  if (!('userInfo' in data) && !('statusCode' in data) && !('status_code' in data)) return undefined;
  return fromUserInfo(data['userInfo'], statusOf(data), str(data, 'statusMsg', 'status_msg'));
}

/**
 * Extracts a user from either a profile page or a user-detail JSON body.
 * Bodies that start with `{` are read as JSON, anything else as HTML.
 */
export function extractUser(body: string): UserLookup | undefined {
  return body.trimStart().startsWith('{') ? extractUserFromJson(body) : extractUserFromHtml(body);
}
