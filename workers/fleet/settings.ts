/**
 * Fleet settings: how workers behave around the throttle (concurrency, waits, penalties, crawl
 * scope, BullMQ lock timing). They live in an optional `fleet:` section of the same config file
 * as the throttle (`config/default.yml`, `config/demo.yml`); `loadConfigFile` ignores that
 * section, so it is read here, from the same file, once, at the boundary.
 */
import { z } from 'zod';
import { describeIssues, DurationInput } from 'sluice';
import { InvalidConfigError } from 'sluice';

/** Where TikTok's web pages load their scripts, styles and images from. */
export const TIKTOK_ASSET_DOMAINS: readonly string[] = ['tiktokcdn.com', 'tiktokcdn-us.com', 'ttwstatic.com', 'ibytedtos.com', 'byteimg.com'];

export const FollowSettings = z
  .object({
    /** Count handles mentioned in captions as found (they are harvested). Default true. */
    mentions: z.boolean().default(true),
    /** Enqueue a discovery job for every hashtag seen on a video. Default false: on TikTok the graph never ends. */
    hashtags: z.boolean().default(false),
    /** Enqueue a creator discovery job (their posts) for every handle found. Default false, same reason. */
    creators: z.boolean().default(false),
  })
  .strict();

export const FleetSettings = z
  .object({
    /** Jobs one worker process runs at once (one browser context each). Default 2. */
    concurrency: z.number().int().min(1).max(64).default(2),
    /**
     * Longest wait for a token a job holds its slot for. A longer expected wait is refused up front
     * and the job goes back to the queue (delayed by that wait) without spending an attempt.
     * Default 30 s.
     */
    maxWaitMs: DurationInput.default(30_000),
    /** Pause after a refusal that carries no Retry-After (captcha, WAF, empty body). Default 30 s. */
    defaultPenaltyMs: DurationInput.default(30_000),
    /** Profiles one discovery job collects when its payload names no maxProfiles. Default 1000. */
    maxProfiles: z.number().int().min(1).max(100_000).default(1_000),
    /** Retries of one request inside a job for transient errors (5xx, network). Default 2. */
    requestRetries: z.number().int().min(0).max(10).default(2),
    /** Timeout of one HTTP exchange with TikTok once admitted. Default 30 s. */
    requestTimeoutMs: DurationInput.default(30_000),
    follow: FollowSettings.default({ mentions: true, hashtags: false, creators: false }),
    /** BullMQ job lock; a dead worker's job is handed to another after about this long. Default 30 s. */
    lockDurationMs: DurationInput.default(30_000),
    /** How often a worker looks for stalled jobs (locks of dead workers). Default 30 s. */
    stalledIntervalMs: DurationInput.default(30_000),
    /**
     * Domains besides TikTok's web app the workers' browser may load from, unthrottled, over https
     * (each admits its subdomains): TikTok's static CDNs, which its pages' scripts come from. Every
     * other request is aborted and logged. Names only: an IP or `localhost` is refused, so no page
     * can reach loopback or the private network. Default: {@link TIKTOK_ASSET_DOMAINS}.
     */
    assetHosts: z
      .array(z.string().regex(/^(?:[a-z0-9-]+\.)+[a-z][a-z0-9-]+$/, { error: 'must be a lowercase domain name such as tiktokcdn.com (no scheme, no IP)' }))
      .max(50)
      .default(() => [...TIKTOK_ASSET_DOMAINS]),
  })
  .strict();
export type FleetSettings = z.output<typeof FleetSettings>;
export type FleetSettingsInput = z.input<typeof FleetSettings>;

/** Parses fleet settings, naming the field and the value on error. */
export function parseFleetSettings(input: unknown): FleetSettings {
  const parsed = FleetSettings.safeParse(input ?? {});
  if (!parsed.success) throw new InvalidConfigError(`invalid fleet settings: ${describeIssues(parsed.error, input)}`);
  return parsed.data;
}
