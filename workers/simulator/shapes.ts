/**
 * JSON objects in TikTok's web shapes (doc §2c, §2d, §3): user, stats, item, challenge, and the
 * snake_case `user_info` of user search. Only keys seen in the doc's sources are produced.
 */
import type { SimCreator, SimGraph, SimHashtag, SimVideo } from './graph.js';

type Json = Record<string, unknown>;

/** Display counts are rounded (stats); exact ones are strings (statsV2). */
function rounded(n: number): number {
  if (n < 10_000) return n;
  const magnitude = 10 ** (Math.floor(Math.log10(n)) - 2);
  return Math.round(n / magnitude) * magnitude;
}

const CDN = 'https://p16-sign.tiktokcdn.example';

/** `userInfo.user` (camelCase). `bioLink` is absent when the user has none, as on TikTok. */
export function userObject(c: SimCreator): Json {
  const user: Json = {
    id: c.id,
    shortId: '',
    uniqueId: c.handle,
    nickname: c.nickname,
    avatarLarger: `${CDN}/${c.id}_1080.jpeg`,
    avatarMedium: `${CDN}/${c.id}_720.jpeg`,
    avatarThumb: `${CDN}/${c.id}_100.jpeg`,
    signature: c.signature,
    createTime: c.createTime,
    verified: c.followerCount > 4_000_000,
    secUid: c.secUid,
    ftc: false,
    relation: 0,
    openFavorite: false,
    commentSetting: 0,
    duetSetting: 0,
    stitchSetting: 0,
    downloadSetting: 0,
    commerceUserInfo: { commerceUser: false },
    privateAccount: c.private,
    secret: c.private,
    isADVirtual: false,
    roomId: '',
    uniqueIdModifyTime: 0,
    ttSeller: false,
    profileTab: { showMusicTab: false, showQuestionTab: true, showPlayListTab: true },
    followingVisibility: 1,
    nickNameModifyTime: c.createTime + 1,
    isEmbedBanned: false,
    canExpPlaylist: true,
    profileEmbedPermission: 1,
    language: 'en',
    eventList: [],
    suggestAccountBind: false,
    isOrganization: 0,
    UserStoryStatus: 0,
  };
  if (c.bioLink !== undefined) user['bioLink'] = { link: c.bioLink, risk: 0 };
  return user;
}

function counts(c: SimCreator): Record<string, number> {
  return {
    followerCount: c.followerCount,
    followingCount: c.followingCount,
    heart: c.heartCount,
    heartCount: c.heartCount,
    videoCount: c.videoIds.length,
    diggCount: 0,
    friendCount: 0,
  };
}

/** `userInfo` = {user, stats, statsV2}; the profile page adds `itemList`. */
export function userInfo(c: SimCreator): Json {
  const exact = counts(c);
  return {
    user: userObject(c),
    stats: Object.fromEntries(Object.entries(exact).map(([k, v]) => [k, rounded(v)])),
    statsV2: Object.fromEntries(Object.entries(exact).map(([k, v]) => [k, String(v)])),
  };
}

/** The `author` object embedded in items (a subset of the user). */
function authorObject(c: SimCreator | undefined, handle: string): Json {
  if (!c) return { uniqueId: handle };
  const full = userObject(c);
  const keys = ['id', 'uniqueId', 'nickname', 'avatarLarger', 'signature', 'verified', 'secUid', 'privateAccount', 'secret',
    'ftc', 'relation', 'openFavorite', 'commentSetting', 'duetSetting', 'stitchSetting', 'downloadSetting', 'isEmbedBanned'];
  return Object.fromEntries(keys.map((k) => [k, full[k]]));
}

/** Hashtags are `type: 1` with hashtagName; mentions `type: 0` with userUniqueId (doc §2d). */
function textExtra(graph: SimGraph, v: SimVideo): Json[] {
  const out: Json[] = [];
  for (const name of v.hashtags) {
    const start = v.desc.indexOf(`#${name}`);
    out.push({
      awemeId: '', start, end: start + name.length + 1, hashtagId: graph.hashtag(name)?.id ?? '', hashtagName: name,
      type: 1, subType: 0, userId: '', userUniqueId: '', secUid: '', isCommerce: false,
    });
  }
  for (const handle of v.mentions) {
    const start = v.desc.indexOf(`@${handle}`);
    const user = graph.creator(handle);
    out.push({
      awemeId: '', start, end: start + handle.length + 1, hashtagId: '', hashtagName: '', type: 0, subType: 0,
      userId: user?.id ?? '', userUniqueId: handle, secUid: user?.secUid ?? '', isCommerce: false,
    });
  }
  return out;
}

/** A challenge object as items and challenge detail carry it. */
export function challengeObject(t: SimHashtag): Json {
  return {
    id: t.id, title: t.name, desc: '', profileThumb: '', profileMedium: '', profileLarger: '',
    coverThumb: '', coverMedium: '', coverLarger: '', isCommerce: false,
  };
}

/** An item (`itemStruct` / `itemList[]` entry), with `authorStats`. */
export function itemStruct(graph: SimGraph, v: SimVideo): Json {
  const author = graph.creator(v.author);
  const extras = textExtra(graph, v);
  const seed = Number(v.id.slice(-6));
  return {
    id: v.id,
    desc: v.desc,
    createTime: v.createTime,
    author: authorObject(author, v.author),
    authorStats: author ? counts(author) : {},
    challenges: v.hashtags.map((name) => graph.hashtag(name)).filter((t) => t !== undefined).map(challengeObject),
    textExtra: extras,
    contents: [{ desc: v.desc, textExtra: extras.filter((e) => e['type'] === 1).map((e) => ({ hashtagName: e['hashtagName'] })) }],
    stats: { diggCount: seed % 5000, shareCount: seed % 300, commentCount: seed % 700, playCount: seed * 3, collectCount: String(seed % 400) },
    video: {
      id: v.id, duration: 5 + (seed % 55), ratio: '540p', cover: `${CDN}/${v.id}.jpeg`,
      playAddr: `${CDN}/${v.id}.mp4`, downloadAddr: `${CDN}/${v.id}_dl.mp4`, bitrate: 441356,
    },
    music: { id: `6${v.id.slice(1)}`, title: `original sound - ${v.author}`, playUrl: '', authorName: v.author, original: true, duration: 30, album: '' },
    locationCreated: 'US',
    diversificationLabels: [],
    suggestedWords: [],
    secret: false,
    forFriend: false,
    privateItem: author?.private ?? false,
    duetEnabled: true,
    stitchEnabled: true,
    shareEnabled: true,
    isAd: false,
  };
}

/** User search's snake_case `user_info` (doc §3). */
export function userInfoSnake(c: SimCreator): Json {
  return {
    uid: c.id,
    unique_id: c.handle,
    sec_uid: c.secUid,
    nickname: c.nickname,
    signature: c.signature,
    follower_count: c.followerCount,
    avatar_thumb: { url_list: [`${CDN}/${c.id}_100.jpeg`] },
  };
}

/** `extra` + `log_pb` envelope pieces every API response carries. */
export function envelope(logid: string, nowMs: number): Json {
  return { extra: { fatal_item_ids: [], logid, now: nowMs }, log_pb: { impr_id: logid } };
}
