/**
 * Job payload schemas: the zod schema is the type.
 *
 * Payloads are parsed once at the boundary: by the producers before anything reaches Redis, and by
 * the workers when they read `job.data` (a job may have been written by an older producer). Parsing
 * also normalizes: handles lose their `@` and are lowercased, hashtags lose their `#`, keywords have
 * their blanks collapsed and video URLs become ids. The normalized form is what deduplication keys
 * are built from, so `@Cats` and `cats` are the same profile.
 *
 * Unknown object keys are stripped rather than refused, so a newer producer never breaks an older
 * worker mid-deploy.
 */
import { z } from 'zod';
import { formatIssues, InvalidPayloadError, Name, showValue } from 'sluice';

export { showValue };

/** TikTok usernames: letters, digits, `_` and `.`, at most 24, case-insensitive (stored lowercase). */
const HANDLE = /^[a-z0-9_.]{1,24}$/;
/** Hashtags are words in any script: letters, combining marks, digits and `_`. */
const HASHTAG = /^[\p{L}\p{M}\p{N}_]{1,100}$/u;
/** Keywords are free text, but never control characters (they end up in logs and URLs). */
const KEYWORD = /^[^\p{Cc}]{1,100}$/u;
/** TikTok video ids are 19 digits today; accept a little either way rather than chase the format. */
const VIDEO_ID = /^\d{5,32}$/;

/** Upper bound of {@link DiscoveryJob.maxProfiles}: one discovery job must stay a bounded piece of work. */
export const MAX_PROFILES_LIMIT = 100_000;

function stripPrefix(value: string, prefix: string): string {
  return value.startsWith(prefix) ? value.slice(prefix.length) : value;
}

/**
 * A TikTok handle. Accepts `@name` or `name` in any case; the output is lowercase without `@`.
 */
export const Handle = z
  .string()
  .trim()
  .transform((s) => stripPrefix(s, '@').toLowerCase())
  .pipe(z.string().regex(HANDLE, { error: "must be 1-24 letters, digits, '_' or '.' (a leading '@' is allowed)" }));
export type Handle = z.infer<typeof Handle>;

/** A tenant or priority-class name: the library's one naming rule (`Name` in `sluice`). */
export { Name };

/** `#cats` or `cats`; stored lowercase without `#` (TikTok hashtags are case-insensitive). */
export const HashtagSeed = z.object({
  kind: z.literal('hashtag'),
  value: z
    .string()
    .trim()
    .transform((s) => stripPrefix(s, '#').toLowerCase())
    .pipe(z.string().regex(HASHTAG, { error: "must be 1-100 letters, digits or '_' (a leading '#' is allowed)" })),
});

/** Free-text search words; blanks are collapsed so `a  b` and `a b` are one seed. Case is kept for display. */
export const KeywordSeed = z.object({
  kind: z.literal('keyword'),
  value: z
    .string()
    .transform((s) => s.trim().replace(/\s+/gu, ' '))
    .pipe(z.string().regex(KEYWORD, { error: 'must be 1-100 characters of text' })),
});

/** A creator whose videos and followers are explored. */
export const CreatorSeed = z.object({
  kind: z.literal('creator'),
  value: Handle,
});

/**
 * Turns a TikTok video URL into its id; anything else is returned unchanged so the error message
 * shows what was received. Short links (vm.tiktok.com) need a network round trip to resolve, which
 * a schema must not do: they are refused with a hint.
 */
function videoIdOf(raw: string): string {
  const value = raw.trim();
  if (VIDEO_ID.test(value)) return value;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return value;
  }
  const host = url.hostname.toLowerCase();
  if (host !== 'tiktok.com' && !host.endsWith('.tiktok.com')) return value;
  const match = /\/(?:video|v)\/(\d+)/.exec(url.pathname);
  return match?.[1] ?? value;
}

/** `7234567890123456789` or `https://www.tiktok.com/@user/video/7234567890123456789`; stored as the id. */
export const VideoSeed = z.object({
  kind: z.literal('video'),
  value: z
    .string()
    .transform(videoIdOf)
    .pipe(
      z.string().regex(VIDEO_ID, {
        error: 'must be a numeric video id or a tiktok.com/@user/video/<id> URL (resolve short links first)',
      }),
    ),
});

/** Where discovery starts: `{ kind, value }`, validated per kind. */
export const Seed = z.discriminatedUnion('kind', [HashtagSeed, KeywordSeed, CreatorSeed, VideoSeed]);
export type Seed = z.infer<typeof Seed>;
export type SeedInput = z.input<typeof Seed>;

export const SeedKind = z.enum(['hashtag', 'keyword', 'creator', 'video']);
export type SeedKind = z.infer<typeof SeedKind>;

/** A handle added by hand (CLI, import), with a free note such as `cli` or `import:leads.csv`. */
export const ManualSource = z.object({
  kind: z.literal('manual'),
  value: z.string().trim().min(1, { error: 'must not be empty' }).max(256, { error: 'must be at most 256 characters' }),
});

/**
 * Where a handle was found. Decision: a structured value, not a string, so results can be grouped
 * by seed without parsing. It is either the seed of the discovery job that found the handle (same
 * shape and rules as {@link Seed}) or `{ kind: 'manual', value }`. {@link formatSource} renders it
 * in the seeds-file syntax (`#cats`, `@creator`) for logs and the results store.
 */
export const HarvestSource = z.discriminatedUnion('kind', [...Seed.options, ManualSource]);
export type HarvestSource = z.infer<typeof HarvestSource>;

/**
 * Where a discovery job stopped reading a list, saved in the job when it is deferred or fails, so
 * its next attempt goes on from there instead of reading (and paying tokens for) the same pages.
 */
export const DiscoveryResume = z.object({
  /** Which list: a hashtag's or creator's items, a keyword's videos or its users. */
  list: z.enum(['items', 'videos', 'users']),
  /** The cursor (or offset) of the next page to read. */
  cursor: z.string().min(1).max(256),
  searchId: z.string().max(256).optional(),
  /** The hashtag's challenge id, read from its page: a resumed job does not visit the page again. */
  challengeId: z.string().regex(/^\d{1,32}$/).optional(),
  /** The creator's secUid, read from its profile page: a resumed job does not visit the page again. */
  secUid: z.string().min(1).max(256).optional(),
  /** Handles found by the earlier attempts: they count against maxProfiles. */
  found: z.int().min(0),
});
export type DiscoveryResume = z.infer<typeof DiscoveryResume>;

/** A discovery job: find profiles from one seed. */
export const DiscoveryJob = z.object({
  seed: Seed,
  /** Tenant the work is billed to; also its throttler class with `priority`. */
  tenant: Name,
  /** Priority class name (e.g. `high`, `bulk`), weighted by the throttler's fair queue. */
  priority: Name,
  /** Stop after this many profiles were found (1-100000). Default: the worker's own limit. */
  maxProfiles: z
    .int({ error: 'must be a whole number' })
    .min(1, { error: 'must be at least 1' })
    .max(MAX_PROFILES_LIMIT, { error: `must be at most ${MAX_PROFILES_LIMIT}` })
    .optional(),
  /** Set by the worker, not by producers: where an earlier attempt stopped. */
  resume: DiscoveryResume.optional(),
});
export type DiscoveryJob = z.infer<typeof DiscoveryJob>;
export type DiscoveryJobInput = z.input<typeof DiscoveryJob>;

/** A harvesting job: read one profile and record the domains in its bio. */
export const HarvestingJob = z.object({
  handle: Handle,
  tenant: Name,
  priority: Name,
  source: HarvestSource,
  /**
   * Set by discovery when it follows creators: once the profile is read, list the creator's
   * videos with a creator discovery job that starts from the secUid the page gave, so the
   * profile page is fetched once, here, and never again by the creator job.
   */
  followCreator: z.boolean().optional(),
});
export type HarvestingJob = z.infer<typeof HarvestingJob>;
export type HarvestingJobInput = z.input<typeof HarvestingJob>;

export const JobKind = z.enum(['discovery', 'harvesting']);
export type JobKind = z.infer<typeof JobKind>;

/** The payload type of each job kind (after parsing). */
export interface JobPayloads {
  discovery: DiscoveryJob;
  harvesting: HarvestingJob;
}
/** The payload type accepted for each job kind (before parsing). */
export interface JobInputs {
  discovery: DiscoveryJobInput;
  harvesting: HarvestingJobInput;
}

const schemas = { discovery: DiscoveryJob, harvesting: HarvestingJob } as const;

/**
 * Parses and normalizes a payload of the given kind.
 *
 * @throws InvalidPayloadError naming every bad field and the value received; its `cause` is the ZodError.
 */
export function parseJob<K extends JobKind>(kind: K, data: unknown): JobPayloads[K] {
  return parseOrThrow(schemas[kind] as z.ZodType<unknown>, data, `invalid ${kind} job`) as JobPayloads[K];
}

/**
 * `reportInput` makes zod about five times slower (measured: 3.9 µs instead of 0.7 µs a seed), which
 * matters for a million-line seeds file: parse fast, and parse again with it only to explain a failure.
 */
function parseOrThrow<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
  const fast = schema.safeParse(data);
  if (fast.success) return fast.data;
  const explained = schema.safeParse(data, { reportInput: true });
  const error = explained.success ? fast.error : explained.error;
  throw new InvalidPayloadError(`${what}: ${formatIssues(error, data, { root: '(payload)' }).message}`, { cause: error });
}

/**
 * Parses one seed.
 *
 * @throws InvalidPayloadError naming the bad field and the value received.
 */
export function parseSeed(data: unknown): Seed {
  return parseOrThrow(Seed, data, 'invalid seed');
}

/**
 * Renders a seed or source in the seeds-file syntax: `#cats`, `@creator`, `keyword:cooking tips`,
 * `video:723…`, `manual:cli`. The explicit `keyword:` prefix keeps keywords that start with `#`
 * or `@` unambiguous, so the output always parses back to the same seed.
 */
export function formatSource(source: HarvestSource): string {
  switch (source.kind) {
    case 'hashtag':
      return `#${source.value}`;
    case 'creator':
      return `@${source.value}`;
    default:
      return `${source.kind}:${source.value}`;
  }
}
