/**
 * Ground truth: what a complete crawl from a set of seeds must find, computed from the graph
 * itself (not from what the server renders), so an end-to-end test can compare a real crawl
 * against it.
 *
 * Reachability rules (each is one request kind a worker makes):
 * - keyword seed → every creator the user/general search finds (all pages);
 * - hashtag seed or followed hashtag → the authors of every video the hashtag lists (all pages);
 * - handle (seed, author, mention) → that profile: a creator, a private creator, or missing;
 * - video seed → its page → author, hashtags and mentions (nothing for a private or missing one);
 * - a public creator → its posts list → the hashtags (if `followHashtags`) and mentioned
 *   handles (if `followMentions`) of its videos; videos listed on a hashtag or found by search
 *   contribute their hashtags and mentions the same way. Private creators' posts answer 10222,
 *   so nothing is reached through them.
 */
import type { SimGraph, SimVideo } from './graph.js';

export interface Seeds {
  hashtags?: string[];
  keywords?: string[];
  handles?: string[];
  /** Video ids. */
  videos?: string[];
}

export interface GroundTruthOptions {
  /** Follow hashtags found on videos to their hashtag lists. Default true. */
  followHashtags?: boolean;
  /** Follow handles mentioned in captions. Default true. */
  followMentions?: boolean;
  /** Count private creators' bios (their profile pages still show them). Default true. */
  includePrivate?: boolean;
}

export interface GroundTruth {
  /** Existing creators reached, sorted (private ones too when `includePrivate`). */
  creators: string[];
  /** Reached creators that are private, sorted. */
  privateCreators: string[];
  /** Reached handles that do not exist (10202), sorted. */
  missing: string[];
  /** Hashtags whose lists a crawl reads, sorted. */
  hashtags: string[];
  /** Union of the registrable domains of `creators`, sorted. */
  domains: string[];
  /** Domains per reached creator (creators with none included, with []). */
  domainsByCreator: Record<string, string[]>;
}

/** Breadth-first closure over the graph; see the module comment for the rules. */
export function computeGroundTruth(graph: SimGraph, seeds: Seeds, options: GroundTruthOptions = {}): GroundTruth {
  const followHashtags = options.followHashtags ?? true;
  const followMentions = options.followMentions ?? true;
  const includePrivate = options.includePrivate ?? true;

  const handles = new Set<string>();
  const tags = new Set<string>();
  const handleQueue: string[] = [];
  const tagQueue: string[] = [];
  const seenVideos = new Set<string>();

  const reachHandle = (handle: string): void => {
    const key = handle.replace(/^@/, '').toLowerCase();
    if (handles.has(key)) return;
    handles.add(key);
    handleQueue.push(key);
  };
  const reachTag = (name: string): void => {
    const tag = graph.hashtag(name);
    if (!tag || tags.has(tag.name)) return;
    tags.add(tag.name);
    tagQueue.push(tag.name);
  };
  const readVideo = (video: SimVideo): void => {
    if (seenVideos.has(video.id)) return;
    seenVideos.add(video.id);
    reachHandle(video.author);
    if (followHashtags) video.hashtags.forEach(reachTag);
    if (followMentions) video.mentions.forEach(reachHandle);
  };

  for (const keyword of seeds.keywords ?? []) {
    graph.searchUsers(keyword).forEach((c) => reachHandle(c.handle));
    graph.searchVideos(keyword).forEach(readVideo);
  }
  for (const name of seeds.hashtags ?? []) reachTag(name);
  for (const handle of seeds.handles ?? []) reachHandle(handle);
  for (const id of seeds.videos ?? []) {
    const video = graph.video(id);
    if (video && !graph.creator(video.author)?.private) readVideo(video);
  }

  while (handleQueue.length > 0 || tagQueue.length > 0) {
    const tagName = tagQueue.shift();
    if (tagName !== undefined) {
      for (const id of graph.hashtag(tagName)?.videoIds ?? []) {
        const video = graph.video(id);
        if (video) readVideo(video);
      }
      continue;
    }
    const creator = graph.creator(handleQueue.shift() as string);
    if (!creator || creator.private) continue;
    for (const id of creator.videoIds) {
      const video = graph.video(id);
      if (video) readVideo(video);
    }
  }

  const creators: string[] = [];
  const privateCreators: string[] = [];
  const missing: string[] = [];
  const domainsByCreator: Record<string, string[]> = {};
  const domains = new Set<string>();
  for (const key of handles) {
    const creator = graph.creator(key);
    if (!creator) {
      if (graph.isMissing(key)) missing.push(key);
      continue;
    }
    if (creator.private) privateCreators.push(creator.handle);
    if (creator.private && !includePrivate) continue;
    creators.push(creator.handle);
    domainsByCreator[creator.handle] = [...creator.domains].sort();
    creator.domains.forEach((d) => domains.add(d));
  }
  return {
    creators: creators.sort(),
    privateCreators: privateCreators.sort(),
    missing: missing.sort(),
    hashtags: [...tags].sort(),
    domains: [...domains].sort(),
    domainsByCreator,
  };
}
