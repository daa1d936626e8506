/**
 * The simulated TikTok: creators, videos, hashtags and keyword hits, generated from a seed.
 * Same options → same graph, byte for byte (no clock, no Math.random).
 */
import { generateBio, word } from './bio.js';
import { computeGroundTruth, type GroundTruth, type GroundTruthOptions, type Seeds } from './ground-truth.js';
import { Rng } from './rng.js';

export interface SimCreator {
  id: string;
  /** `uniqueId`, charset `[\w.]`. */
  handle: string;
  nickname: string;
  secUid: string;
  signature: string;
  bioLink?: string;
  private: boolean;
  /** Account creation, epoch seconds. */
  createTime: number;
  followerCount: number;
  followingCount: number;
  heartCount: number;
  /** This creator's videos, newest first. */
  videoIds: string[];
  /** Search keywords that find this creator (public creators only). */
  keywords: string[];
  /** Registrable domains its signature and bioLink carry, known by construction. */
  domains: string[];
}

export interface SimVideo {
  id: string;
  author: string;
  /** Epoch seconds; unique per creator so time cursors are unambiguous. */
  createTime: number;
  desc: string;
  hashtags: string[];
  /** Handles mentioned in the caption (existing, private or missing). */
  mentions: string[];
}

export interface SimHashtag {
  id: string;
  name: string;
  /** Videos listed on the hashtag, newest first: public creators only. */
  videoIds: string[];
}

export interface GraphOptions {
  /** Any string or number. */
  seed: string | number;
  /** Number of existing creators. Default 40. */
  creators?: number;
  /** Hashtag names (non-ASCII allowed). Default: a small mixed list including `fypシ`. */
  hashtags?: string[];
  /** Search keywords. Default: shop, skincare, books, travel. */
  keywords?: string[];
  /** Videos per creator, inclusive range; values below 1 count as 1. Default [1, 5]. */
  videosPerCreator?: [number, number];
  /** Share of creators that are private. Default 0.15. */
  privateRatio?: number;
  /** Handles that are mentioned but do not exist (10202). Default: max(2, 8% of creators). */
  missing?: number;
  /**
   * Communities: hashtags are dealt round-robin into this many groups, each creator belongs to
   * one, and its videos' hashtags and mentions stay inside it. So a crawl from one hashtag does
   * not reach everyone, and seeds matter. Keyword hits cross communities. Default: hashtags / 2.
   */
  communities?: number;
}

export interface SimGraph {
  readonly seed: string | number;
  readonly creators: readonly SimCreator[];
  readonly videos: readonly SimVideo[];
  readonly hashtags: readonly SimHashtag[];
  readonly keywords: readonly string[];
  /** Handles that appear in mentions but answer 10202. */
  readonly missingHandles: readonly string[];
  creator(handle: string): SimCreator | undefined;
  creatorBySecUid(secUid: string): SimCreator | undefined;
  video(id: string): SimVideo | undefined;
  hashtag(name: string): SimHashtag | undefined;
  hashtagById(id: string): SimHashtag | undefined;
  isMissing(handle: string): boolean;
  /** Creators a keyword finds (case-insensitive exact keyword), in a stable order. */
  searchUsers(keyword: string): SimCreator[];
  /** One video per creator the keyword finds (its newest), as general/video search lists them. */
  searchVideos(keyword: string): SimVideo[];
  /** What a complete crawl from `seeds` must find; see {@link computeGroundTruth}. */
  groundTruth(seeds: Seeds, options?: GroundTruthOptions): GroundTruth;
}

const DEFAULT_HASHTAGS = ['fyp', 'smallbusiness', 'skincare', 'booktok', 'fypシ', 'recipe'];
const DEFAULT_KEYWORDS = ['shop', 'skincare', 'books', 'travel'];
const SEC_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';
const CAPTION_WORDS = ['new', 'drop', 'today', 'look', 'how', 'to', 'my', 'routine', 'haul', 'pov', 'tips', 'wait', 'for', 'it'];
// 2023-11-14: a fixed epoch keeps the graph independent of the clock.
const EPOCH = 1_700_000_000;

/** Numeric id strings like TikTok's: `7` then 18 digits, unique within one graph. */
function idMaker(rng: Rng): () => string {
  const used = new Set<string>();
  return () => {
    for (;;) {
      const id = `7${rng.chars(18, '0123456789')}`;
      if (!used.has(id)) {
        used.add(id);
        return id;
      }
    }
  };
}

function makeHandle(rng: Rng, serial: number): string {
  const sep = rng.pick(['', '.', '_']);
  return `${word(rng)}${sep}${word(rng)}${serial}`;
}

/**
 * Generates a graph. Reachability is built in: every missing handle and every private creator
 * is mentioned by at least one public video, and every keyword finds at least one creator.
 */
export function createGraph(options: GraphOptions): SimGraph {
  const rng = new Rng(options.seed);
  const nextId = idMaker(rng);
  const creatorCount = options.creators ?? 40;
  const tagNames = [...new Set(options.hashtags ?? DEFAULT_HASHTAGS)];
  const keywords = [...new Set((options.keywords ?? DEFAULT_KEYWORDS).map((k) => k.toLowerCase()))];
  // At least one video each, so user search and video search find the same creators.
  const [minVideos, maxVideos] = (options.videosPerCreator ?? [1, 5]).map((n) => Math.max(1, n)) as [number, number];
  const privateRatio = options.privateRatio ?? 0.15;
  const missingCount = options.missing ?? Math.max(2, Math.round(creatorCount * 0.08));
  if (creatorCount < 1 || tagNames.length === 0) throw new Error('createGraph needs at least one creator and one hashtag');

  const tagIds = new Set<string>();
  const hashtags: SimHashtag[] = tagNames.map((name) => {
    let id = String(rng.int(1e15, 9e15));
    while (tagIds.has(id)) id = String(rng.int(1e15, 9e15));
    tagIds.add(id);
    return { id, name, videoIds: [] };
  });
  const creators: SimCreator[] = [];
  for (let i = 0; i < creatorCount; i++) {
    const handle = makeHandle(rng, i + 1);
    const bio = generateBio(rng, handle, i + 1);
    const creator: SimCreator = {
      id: nextId(),
      handle,
      nickname: `${word(rng)} ${rng.pick(['✨', '🌿', '', 'official', 'co'])}`.trim(),
      secUid: `MS4wLjABAAAA${rng.chars(64, SEC_ALPHABET)}`,
      signature: bio.signature,
      // The first creator is always public, so every graph has someone to find.
      private: i > 0 && rng.chance(privateRatio),
      createTime: EPOCH - rng.int(30, 2000) * 86_400,
      followerCount: rng.int(0, 5_000_000),
      followingCount: rng.int(0, 2000),
      heartCount: rng.int(0, 90_000_000),
      videoIds: [],
      keywords: [],
      domains: bio.domains,
    };
    if (bio.bioLink !== undefined) creator.bioLink = bio.bioLink;
    creators.push(creator);
  }
  const publicCreators = creators.filter((c) => !c.private);

  const missingHandles: string[] = [];
  const taken = new Set(creators.map((c) => c.handle));
  for (let i = 0; i < missingCount; i++) {
    const handle = `gone.${word(rng)}${i + 1}`;
    if (taken.has(handle)) continue;
    missingHandles.push(handle);
    taken.add(handle);
  }

  // Keyword hits: public creators only, and each keyword finds someone.
  for (const creator of publicCreators) creator.keywords = rng.sample(keywords, rng.pick([0, 0, 1, 1, 2]));
  for (const keyword of keywords) {
    if (!publicCreators.some((c) => c.keywords.includes(keyword))) rng.pick(publicCreators).keywords.push(keyword);
  }

  const communityCount = Math.min(tagNames.length, Math.max(1, options.communities ?? Math.floor(tagNames.length / 2)));
  const communityTags = Array.from({ length: communityCount }, (_, i) => tagNames.filter((_, t) => t % communityCount === i));
  const communityOf = new Map<string, number>();
  creators.forEach((c, i) => communityOf.set(c.handle, i % communityCount));
  missingHandles.forEach((h, i) => communityOf.set(h, i % communityCount));

  const videos: SimVideo[] = [];
  const tagsByName = new Map(hashtags.map((t) => [t.name, t]));
  for (const creator of creators) {
    const pool = communityTags[communityOf.get(creator.handle) ?? 0] ?? tagNames;
    const home = rng.sample(pool, 2);
    let time = EPOCH + rng.int(0, 86_400);
    const count = rng.int(minVideos, maxVideos);
    for (let v = 0; v < count; v++) {
      // Strictly decreasing times: newest first, so a time cursor never skips or repeats.
      time -= rng.int(3_600, 5 * 86_400);
      const tags = [...new Set([rng.pick(home), ...(rng.chance(0.4) ? [rng.pick(pool)] : [])])];
      const video: SimVideo = { id: nextId(), author: creator.handle, createTime: time, desc: '', hashtags: tags, mentions: [] };
      videos.push(video);
      creator.videoIds.push(video.id);
    }
  }
  const privateHandles = new Set(creators.filter((c) => c.private).map((c) => c.handle));
  const publicVideos = videos.filter((v) => !privateHandles.has(v.author));
  const sameCommunity = (handle: string) => (v: SimVideo) => communityOf.get(v.author) === communityOf.get(handle);

  // Mentions stay inside a community: one guaranteed mention for every private creator and
  // missing handle, so a crawl that follows mentions can reach them, plus some random ones.
  const mustMention = [...creators.filter((c) => c.private).map((c) => c.handle), ...missingHandles];
  for (const handle of mustMention) {
    const candidates = publicVideos.filter(sameCommunity(handle));
    rng.pick(candidates.length > 0 ? candidates : publicVideos).mentions.push(handle);
  }
  for (const video of publicVideos) {
    if (!rng.chance(0.2)) continue;
    const other = rng.pick(creators.filter((c) => communityOf.get(c.handle) === communityOf.get(video.author))).handle;
    if (other !== video.author && !video.mentions.includes(other)) video.mentions.push(other);
  }
  for (const video of videos) {
    const caption = rng.sample(CAPTION_WORDS, rng.int(2, 5)).join(' ');
    video.desc = [caption, ...video.hashtags.map((t) => `#${t}`), ...video.mentions.map((m) => `@${m}`)].join(' ');
  }

  // Hashtag lists: public videos only, newest first.
  for (const video of [...publicVideos].sort((a, b) => b.createTime - a.createTime || a.id.localeCompare(b.id))) {
    for (const tag of video.hashtags) tagsByName.get(tag)?.videoIds.push(video.id);
  }

  return buildIndex(options.seed, creators, videos, hashtags, keywords, missingHandles);
}

function buildIndex(
  seed: string | number,
  creators: SimCreator[],
  videos: SimVideo[],
  hashtags: SimHashtag[],
  keywords: string[],
  missingHandles: string[],
): SimGraph {
  // Handles are case-insensitive on TikTok; lookups fold case.
  const byHandle = new Map(creators.map((c) => [c.handle.toLowerCase(), c]));
  const bySecUid = new Map(creators.map((c) => [c.secUid, c]));
  const byVideo = new Map(videos.map((v) => [v.id, v]));
  const byTag = new Map(hashtags.map((t) => [t.name.toLowerCase(), t]));
  const byTagId = new Map(hashtags.map((t) => [t.id, t]));
  const missing = new Set(missingHandles.map((h) => h.toLowerCase()));

  const graph: SimGraph = {
    seed,
    creators,
    videos,
    hashtags,
    keywords,
    missingHandles,
    creator: (handle) => byHandle.get(handle.replace(/^@/, '').toLowerCase()),
    creatorBySecUid: (secUid) => bySecUid.get(secUid),
    video: (id) => byVideo.get(id),
    hashtag: (name) => byTag.get(name.replace(/^#/, '').toLowerCase()),
    hashtagById: (id) => byTagId.get(id),
    isMissing: (handle) => missing.has(handle.replace(/^@/, '').toLowerCase()),
    searchUsers: (keyword) => {
      const k = keyword.trim().toLowerCase();
      return creators.filter((c) => !c.private && c.keywords.includes(k));
    },
    searchVideos: (keyword) =>
      graph
        .searchUsers(keyword)
        .map((c) => (c.videoIds[0] === undefined ? undefined : byVideo.get(c.videoIds[0])))
        .filter((v): v is SimVideo => v !== undefined),
    groundTruth: (seeds, opts) => computeGroundTruth(graph, seeds, opts),
  };
  return graph;
}
