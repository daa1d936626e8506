/**
 * Harvesting: one profile page, every external link in its bio, recorded once.
 *
 * The links are `bioLink.link` and the URLs or bare domains written in `signature`
 * (`extractDomains`, which keeps registrable domains only). The user comes from the page's
 * embedded state; when the page has none (an older page generation), from the
 * `/api/user/detail/` response the page fetched. Private profiles still show their bio, so they
 * are harvested too. Final outcomes (FinalOutcomeError): the account does not exist, or it is
 * private and shows no user at all.
 */
import { CrawlErrorCode, FinalOutcomeError } from './errors.js';
import { formatSource, type HarvestingJob } from '../../jobs/schemas.js';
import type { ResultsStore } from '../results/store.js';
import { extractDomains, extractUser, STATUS, type TikTokUrls, type UserLookup } from '../tiktok/index.js';
import { TransientRequestError, type Session } from './session.js';

export interface HarvestOptions {
  session: Session;
  urls: TikTokUrls;
  store: Pick<ResultsStore, 'recordProfile'>;
}

export interface HarvestResult {
  handle: string;
  domains: string[];
  private: boolean;
  /** The creator's secUid and video count, when the page gave them (to follow the creator). */
  secUid?: string;
  videoCount?: number;
}

/** The store takes at most 256 characters of free text. */
const MAX_TEXT = 256;

function missing(lookup: UserLookup | undefined): boolean {
  return lookup !== undefined && !lookup.user && (lookup.statusCode === STATUS.USER_NOT_EXIST || lookup.statusCode === STATUS.USER_NOT_EXIST_ALT || lookup.statusCode === STATUS.NEXT_NOT_FOUND);
}

/** Runs one harvesting job: reads the profile, extracts its domains, records them. */
export async function harvest(job: HarvestingJob, options: HarvestOptions): Promise<HarvestResult> {
  const { session, urls } = options;
  const visit = await session.openPage(urls.profile(job.handle));
  let lookup = extractUser(visit.body);
  if (visit.classification.kind === 'not-found' || missing(lookup)) throw new FinalOutcomeError(CrawlErrorCode.NotFound, `@${job.handle}: account not found`);
  if (!lookup?.user) {
    const api = await session.pageApi(
      (url) => url.pathname.startsWith('/api/user/detail'),
      urls.userDetailApi({ uniqueId: job.handle }),
    );
    lookup = extractUser(api.body) ?? lookup;
    if (api.classification.kind === 'not-found' || missing(lookup)) throw new FinalOutcomeError(CrawlErrorCode.NotFound, `@${job.handle}: account not found`);
  }
  const user = lookup?.user;
  if (!user) {
    if (visit.classification.kind === 'private' || lookup?.statusCode === STATUS.USER_PRIVATE) {
      throw new FinalOutcomeError(CrawlErrorCode.Private, `@${job.handle}: private account that shows no bio`);
    }
    throw new TransientRequestError(`@${job.handle}: neither the page nor its API call held the user`);
  }
  const domains = extractDomains(user.signature, user.bioLink);
  await options.store.recordProfile({
    handle: job.handle,
    nickname: user.nickname?.slice(0, MAX_TEXT),
    domains,
    source: formatSource(job.source).slice(0, MAX_TEXT),
  });
  return {
    handle: job.handle,
    domains,
    private: user.private,
    ...(user.secUid !== undefined ? { secUid: user.secUid } : {}),
    ...(user.videoCount !== undefined ? { videoCount: user.videoCount } : {}),
  };
}
