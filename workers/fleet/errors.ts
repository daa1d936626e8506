/**
 * The crawl's own outcomes, as coded errors. The crawl (discovery, harvesting, the gate) throws
 * them and knows nothing of BullMQ or Inngest; the BullMQ runner and the Inngest adapter each map
 * them once (UnrecoverableError / NonRetriableError for a final outcome).
 */

export const CrawlErrorCode = {
  /** The hashtag, account or video does not exist: retrying cannot help. */
  NotFound: 'TARGET_NOT_FOUND',
  /** A private account whose page shows no bio: retrying cannot help. */
  Private: 'TARGET_PRIVATE',
} as const;
export type CrawlErrorCode = (typeof CrawlErrorCode)[keyof typeof CrawlErrorCode];

/** A final outcome of one job: the job fails once, never retried. */
export class FinalOutcomeError extends Error {
  constructor(
    readonly code: typeof CrawlErrorCode.NotFound | typeof CrawlErrorCode.Private,
    message: string,
  ) {
    super(message);
    this.name = 'FinalOutcomeError';
  }
}
