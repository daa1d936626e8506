/**
 * Discovery: from one seed to the profile handles it leads to.
 *
 * - hashtag: `/tag/{name}` page (challenge id, embedded items), then `/api/challenge/item_list/`
 *   page by page (the first page is the one the page's own script fetched);
 * - keyword: `/search?q=` page, `/api/search/general/full/` (videos) page by page, then
 *   `/api/search/user/full/` (accounts) page by page;
 * - creator: `/@{handle}` page (it exists? private? its secUid), then `/api/post/item_list/`
 *   page by page; the creator itself counts as found, so its bio is harvested even when private;
 * - video: `/@_/video/{id}` page (author, hashtags, mentions).
 *
 * Found handles are video authors, listed users and (with `follow.mentions`) mentioned handles,
 * unique, at most `maxProfiles`. They are handed to the sink page by page, so what a job found is
 * kept even when the job is deferred halfway (re-enqueuing is idempotent); and after the seed's
 * page and after each list page the runner is told where the next one starts (`onCheckpoint`,
 * with what the seed's page told: challenge id, secUid), so a deferred or failed job's next
 * attempt never fetches a page twice: it puts its browser page on TikTok's origin without a
 * request (`session.enterOrigin`) and goes on reading its list from there (`job.resume`).
 * Outcomes:
 * a missing hashtag, creator or video is final (FinalOutcomeError); a private creator or video
 * has nothing to list and completes.
 */
import { CrawlErrorCode, FinalOutcomeError } from './errors.js';
import type { DiscoveryJob, DiscoveryResume, Seed } from '../../jobs/schemas.js';
import {
  discoverFromHtml,
  extractChallenge,
  extractUser,
  parseListPage,
  STATUS,
  type ListPage,
  type TikTokUrls,
} from '../tiktok/index.js';
import { TransientRequestError, type Fetched, type Session } from './session.js';

/** What one page of results added. */
export interface FoundBatch {
  /** Handles not seen before in this job (lowercase, no `@`). */
  handles: string[];
  /** Hashtag names not seen before in this job. */
  hashtags: string[];
}

/** Receives what a job finds, page by page (enqueues harvesting, follows hashtags/creators). */
export type DiscoverySink = (batch: FoundBatch) => Promise<void>;

export interface DiscoveryOptions {
  session: Session;
  urls: TikTokUrls;
  sink: DiscoverySink;
  /** Used when the job names no maxProfiles. */
  defaultMaxProfiles: number;
  /** Count mentioned handles as found. */
  followMentions: boolean;
  /** Called after the seed's page and each list page with where the next page starts: the runner saves the last one. */
  onCheckpoint?: (resume: DiscoveryResume) => void;
}

export interface DiscoveryResult {
  seed: Seed;
  /** `done`, `limit` (maxProfiles reached) or `private` (nothing to list). */
  outcome: 'done' | 'limit' | 'private';
  /** API/list pages read. */
  pages: number;
  handles: number;
  hashtags: number;
}

/** A safety net against a cursor that never ends; far above any real list. */
const MAX_PAGES = 500;

/** Unique handles and hashtags of one job, bounded by maxProfiles. */
class Finds {
  readonly handles = new Set<string>();
  readonly hashtags = new Set<string>();
  pages = 0;

  constructor(
    /** What is left of maxProfiles after the earlier attempts. */
    private readonly maxProfiles: number,
    private readonly followMentions: boolean,
    private readonly sink: DiscoverySink,
  ) {}

  get full(): boolean {
    return this.handles.size >= this.maxProfiles;
  }

  async add(handles: readonly string[], hashtags: readonly string[] = []): Promise<void> {
    const batch: FoundBatch = { handles: [], hashtags: [] };
    for (const raw of handles) {
      const handle = raw.replace(/^@/, '').toLowerCase();
      if (this.full || handle === '' || this.handles.has(handle)) continue;
      this.handles.add(handle);
      batch.handles.push(handle);
    }
    for (const raw of hashtags) {
      const tag = raw.replace(/^#/, '').toLowerCase();
      if (tag === '' || this.hashtags.has(tag)) continue;
      this.hashtags.add(tag);
      batch.hashtags.push(tag);
    }
    if (batch.handles.length > 0 || batch.hashtags.length > 0) await this.sink(batch);
  }

  async addPage(page: ListPage): Promise<void> {
    this.pages += 1;
    await this.add([...page.handles, ...(this.followMentions ? page.mentions : [])], page.hashtags);
  }
}

function listOf(fetched: Fetched): ListPage {
  const page = parseListPage(fetched.body);
  if (!page) throw new TransientRequestError(`${fetched.url}: not a JSON list`);
  return page;
}

/**
 * Reads a paginated list: `first` is page one, `next(cursor, searchId)` builds the URL of the
 * following page. Stops at the end of the list, at maxProfiles, or on a page that is not data
 * (a private or missing entity answers with a statusCode and no items).
 */
async function paginate(
  o: DiscoveryContext,
  list: DiscoveryResume['list'],
  first: () => Promise<Fetched>,
  next: (cursor: string, searchId: string | undefined) => string,
): Promise<void> {
  const { session, finds, resume } = o;
  // an earlier attempt read this list up to `resume.cursor`: go on from there
  let fetched = resume?.list === list ? await session.fetchApi(next(resume.cursor, resume.searchId)) : await first();
  const seen = new Set<string>();
  for (let i = 0; i < MAX_PAGES; i++) {
    if (fetched.classification.kind !== 'ok') return;
    const page = listOf(fetched);
    await finds.addPage(page);
    if (!page.hasMore || page.cursor === undefined || finds.full || seen.has(page.cursor)) return;
    seen.add(page.cursor);
    checkpoint(o, { list, cursor: page.cursor, ...(page.searchId ? { searchId: page.searchId } : {}) });
    fetched = await session.fetchApi(next(page.cursor, page.searchId));
  }
}

/** Tells the runner where the next attempt starts, with what the seed's page told. */
function checkpoint(o: DiscoveryContext, at: Pick<DiscoveryResume, 'list' | 'cursor' | 'searchId'>): void {
  o.onCheckpoint?.({ ...at, ...o.seedState, found: o.foundBefore + o.finds.handles.size });
}

/** One job's options with its finds and where an earlier attempt stopped. */
interface DiscoveryContext extends DiscoveryOptions {
  finds: Finds;
  resume: DiscoveryResume | undefined;
  foundBefore: number;
  /** What the seed's page told that the lists need (challenge id, secUid), saved with every checkpoint. */
  seedState: Pick<DiscoveryResume, 'challengeId' | 'secUid'>;
}

const apiPath = (prefix: string) => (url: URL) => url.pathname.startsWith(prefix);

async function discoverHashtag(name: string, o: DiscoveryContext): Promise<DiscoveryResult['outcome']> {
  const { finds } = o;
  const next = (challengeID: string) => (cursor: string) => o.urls.challengeItemListApi({ challengeID, cursor });
  if (o.resume?.challengeId !== undefined) {
    const challengeID = o.resume.challengeId;
    o.seedState = { challengeId: challengeID };
    await o.session.enterOrigin(o.urls.hashtag(name));
    await paginate(o, 'items', () => o.session.fetchApi(next(challengeID)('0')), next(challengeID));
    return 'done';
  }
  const visit = await o.session.openPage(o.urls.hashtag(name));
  const lookup = extractChallenge(visit.body);
  const challenge = lookup?.challenge;
  if (!challenge) {
    if (visit.classification.kind === 'not-found' || lookup?.statusCode === STATUS.HASHTAG_NOT_EXIST) {
      throw new FinalOutcomeError(CrawlErrorCode.NotFound, `#${name}: hashtag not found`);
    }
    throw new TransientRequestError(`#${name}: the hashtag page holds no challenge id`);
  }
  o.seedState = { challengeId: challenge.id };
  const embedded = discoverFromHtml(visit.body);
  if (embedded) await finds.add([...embedded.handles, ...embedded.mentions], embedded.hashtags);
  checkpoint(o, { list: 'items', cursor: '0' });
  const first = () => o.session.pageApi(apiPath('/api/challenge/item_list'), o.urls.challengeItemListApi({ challengeID: challenge.id, cursor: 0 }));
  await paginate(o, 'items', first, next(challenge.id));
  return 'done';
}

async function discoverKeyword(keyword: string, o: DiscoveryContext): Promise<DiscoveryResult['outcome']> {
  if (o.resume) await o.session.enterOrigin(o.urls.search(keyword));
  else {
    await o.session.openPage(o.urls.search(keyword));
    checkpoint(o, { list: 'videos', cursor: '0' });
  }
  // videos first (they bring hashtags and mentions), then the accounts search
  if (o.resume?.list !== 'users') {
    const videos = () => o.session.pageApi(apiPath('/api/search/general/full'), o.urls.searchGeneralApi({ keyword, offset: 0 }));
    await paginate(o, 'videos', videos, (offset, searchId) => o.urls.searchGeneralApi({ keyword, offset, searchId }));
    if (o.finds.full) return 'limit';
    checkpoint(o, { list: 'users', cursor: '0' });
  }
  const users = () => o.session.fetchApi(o.urls.searchUserApi({ keyword, cursor: 0 }));
  await paginate(o, 'users', users, (cursor, searchId) => o.urls.searchUserApi({ keyword, cursor, searchId }));
  return 'done';
}

async function discoverCreator(handle: string, o: DiscoveryContext): Promise<DiscoveryResult['outcome']> {
  const { finds } = o;
  const next = (secUid: string) => (cursor: string) => o.urls.postItemListApi({ secUid, cursor });
  if (o.resume?.secUid !== undefined) {
    const secUid = o.resume.secUid;
    o.seedState = { secUid };
    await o.session.enterOrigin(o.urls.profile(handle));
    await paginate(o, 'items', () => o.session.fetchApi(next(secUid)('0')), next(secUid));
    return 'done';
  }
  const visit = await o.session.openPage(o.urls.profile(handle));
  const lookup = extractUser(visit.body);
  if (visit.classification.kind === 'not-found' || (lookup && !lookup.user && lookup.statusCode === STATUS.USER_NOT_EXIST)) {
    throw new FinalOutcomeError(CrawlErrorCode.NotFound, `@${handle}: account not found`);
  }
  const user = lookup?.user;
  if (!user) {
    if (visit.classification.kind === 'private') return 'private';
    throw new TransientRequestError(`@${handle}: the profile page holds no user`);
  }
  // the creator itself was found: its bio is harvested even when it is private
  await finds.add([user.handle]);
  if (user.private || visit.classification.kind === 'private') return 'private';
  // nothing to list; and an empty first page would read as a soft block
  if (user.videoCount === 0) return 'done';
  if (user.secUid === undefined) throw new TransientRequestError(`@${handle}: the profile page holds no secUid`);
  const secUid = user.secUid;
  o.seedState = { secUid };
  checkpoint(o, { list: 'items', cursor: '0' });
  await paginate(o, 'items', () => o.session.fetchApi(next(secUid)('0')), next(secUid));
  return 'done';
}

async function discoverVideo(id: string, o: DiscoveryContext): Promise<DiscoveryResult['outcome']> {
  const { finds } = o;
  const visit = await o.session.openPage(o.urls.video(id));
  if (visit.classification.kind === 'not-found') throw new FinalOutcomeError(CrawlErrorCode.NotFound, `video ${id}: not found`);
  if (visit.classification.kind === 'private') return 'private';
  const page = discoverFromHtml(visit.body);
  if (!page || page.items.length === 0) throw new TransientRequestError(`video ${id}: the video page holds no item`);
  await finds.addPage(page);
  return 'done';
}

const DISCOVERERS: Record<Seed['kind'], (value: string, o: DiscoveryContext) => Promise<DiscoveryResult['outcome']>> = {
  hashtag: discoverHashtag,
  keyword: discoverKeyword,
  creator: discoverCreator,
  video: discoverVideo,
};

/** Runs one discovery job: finds handles from its seed and hands them to the sink page by page. */
export async function discover(job: DiscoveryJob, options: DiscoveryOptions): Promise<DiscoveryResult> {
  const foundBefore = job.resume?.found ?? 0;
  const finds = new Finds(Math.max(0, (job.maxProfiles ?? options.defaultMaxProfiles) - foundBefore), options.followMentions, options.sink);
  const o: DiscoveryContext = { ...options, finds, resume: job.resume, foundBefore, seedState: {} };
  const { seed } = job;
  let outcome = await DISCOVERERS[seed.kind](seed.value, o);
  if (finds.full && outcome === 'done') outcome = 'limit';
  return { seed, outcome, pages: finds.pages, handles: finds.handles.size, hashtags: finds.hashtags.size };
}
