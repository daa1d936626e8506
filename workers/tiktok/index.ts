/** TikTok parsers and helpers used by the workers (against tiktok.com or the simulator). */
export { TIKTOK_ENDPOINTS, endpointForUrl, endpointKey, type TikTokEndpoint, type EndpointKey } from './endpoints.js';
export { TIKTOK_BASE_URL, DEFAULT_WEB_PARAMS, tiktokUrls, type TikTokUrls, type TikTokUrlOptions } from './urls.js';
export { extractPageState, readScriptJson, defaultScope, type PageState, type PageStateForm } from './state.js';
export { extractUser, extractUserFromHtml, extractUserFromJson, type TikTokUser, type UserLookup } from './user.js';
export {
  parseListPage,
  parseItemDetail,
  discoverFromHtml,
  type ListPage,
  type DiscoveredItem,
  type DiscoveredUser,
} from './discovery.js';
export { extractChallenge, type ChallengeLookup } from './challenge.js';
export { classifyResponse, type Classification, type ResponseKind, type ResponseInput } from './blocking.js';
export { parseRetryAfter } from './retry-after.js';
export { STATUS } from './status.js';
export { extractLinks, extractDomains, normalizeDomain } from './domains.js';
