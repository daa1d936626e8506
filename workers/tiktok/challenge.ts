/**
 * Hashtag ("challenge") identity: the `challengeID` that `/api/challenge/item_list/` needs.
 */
import { field, isRecord, path, str, tryParseJson } from './json.js';
import { defaultScope, extractPageState } from './state.js';
import { STATUS } from './status.js';
import { statusOf } from './user.js';

export interface ChallengeLookup {
  statusCode: number;
  challenge?: { id: string; title: string };
}

function readChallenge(envelope: unknown): ChallengeLookup {
  const raw = path(envelope, 'challengeInfo', 'challenge');
  const id = str(raw, 'id');
  const title = str(raw, 'title');
  const statusCode = statusOf(envelope);
  return id !== undefined ? { statusCode, challenge: { id, title: title ?? '' } } : { statusCode };
}

/**
 * Reads the challenge from `/api/challenge/detail/` JSON or a `/tag/{name}` page.
 *
 * On pages it tries `webapp.challenge-detail`, SIGI `ChallengePage`, then the
 * `snssdk…://challenge/detail/{id}` deep link in the meta tags (what yt-dlp and pytok read).
 * A missing tag is a normal 200 page with an empty scope: that yields 10205 (HASHTAG_NOT_EXIST).
 * @returns undefined when the body is neither JSON nor a TikTok page (captcha, WAF, empty).
 */
export function extractChallenge(body: unknown): ChallengeLookup | undefined {
  if (typeof body !== 'string' || body.trimStart().startsWith('{')) {
    const json = typeof body === 'string' ? tryParseJson(body) : body;
    return isRecord(json) ? readChallenge(json) : undefined;
  }
  const state = extractPageState(body);
  const scoped = defaultScope(state, 'webapp.challenge-detail') ?? field(state?.data, 'ChallengePage');
  if (scoped) {
    const found = readChallenge(scoped);
    if (found.challenge) return found;
  }
  const deepLink = /snssdk\d*:\/\/challenge\/detail\/(\d+)/.exec(body)?.[1];
  if (deepLink !== undefined) return { statusCode: STATUS.OK, challenge: { id: deepLink, title: '' } };
  if (!state) return undefined;
  return { statusCode: scoped ? statusOf(scoped) || STATUS.HASHTAG_NOT_EXIST : STATUS.HASHTAG_NOT_EXIST };
}
