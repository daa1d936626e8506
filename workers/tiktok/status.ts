/**
 * TikTok `statusCode` values the parsers act on (doc §2e; names from TikTok-Api v5's table).
 */
export const STATUS = {
  OK: 0,
  VERIFY: 10000,
  ENTITY_INVALID: 10201,
  USER_NOT_EXIST: 10202,
  MUSIC_NOT_EXIST: 10203,
  VIDEO_NOT_EXIST: 10204,
  HASHTAG_NOT_EXIST: 10205,
  VIDEO_PRIVATE: 10216,
  USER_BAN: 10221,
  USER_PRIVATE: 10222,
  /** pytok: "user does not exist". */
  USER_NOT_EXIST_ALT: 100002,
  /** Old Next.js pages put 404 in `props.pageProps.statusCode` for a missing user. */
  NEXT_NOT_FOUND: 404,
  /** TikTok-Api#1049: blocked calls answered `{statusCode: -1, userInfo: {}}`. */
  BLOCKED: -1,
} as const;

/** Codes that mean "this entity does not exist (or is banned)". */
export const NOT_FOUND_CODES: ReadonlySet<number> = new Set([
  STATUS.ENTITY_INVALID,
  STATUS.USER_NOT_EXIST,
  STATUS.MUSIC_NOT_EXIST,
  STATUS.VIDEO_NOT_EXIST,
  STATUS.HASHTAG_NOT_EXIST,
  STATUS.USER_BAN,
  STATUS.USER_NOT_EXIST_ALT,
  STATUS.NEXT_NOT_FOUND,
]);

/** Codes that mean "exists but private". */
export const PRIVATE_CODES: ReadonlySet<number> = new Set([STATUS.USER_PRIVATE, STATUS.VIDEO_PRIVATE]);
