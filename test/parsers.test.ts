import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../workers/simulator/index.js';
import {
  classifyResponse,
  discoverFromHtml,
  endpointForUrl,
  endpointKey,
  extractChallenge,
  extractDomains,
  extractPageState,
  extractUser,
  extractUserFromHtml,
  extractUserFromJson,
  parseItemDetail,
  parseListPage,
  parseRetryAfter,
  tiktokUrls,
  TIKTOK_ENDPOINTS,
  type TikTokEndpoint,
} from '../workers/tiktok/index.js';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/tiktok/${name}`, import.meta.url), 'utf8');
const fixtureJson = (name: string): unknown => JSON.parse(fixture(name));

describe('page state (hand-written fixtures)', () => {
  it.each([
    ['profile-universal.html', 'universal'],
    ['profile-pretty.html', 'universal'],
    ['profile-sigi.html', 'sigi'],
    ['profile-sigi-window.html', 'sigi'],
    ['profile-next.html', 'next'],
    ['waf-challenge.html', undefined],
    ['captcha-page.html', undefined],
  ])('%s → %s', (name, form) => {
    expect(extractPageState(fixture(name))?.form).toBe(form);
  });

  it('unescapes \\u002F in the one-line universal JSON', () => {
    const html = fixture('profile-universal.html');
    expect(html).toContain('\\u002F');
    expect(extractUserFromHtml(html)?.user?.bioLink).toBe('https://linktr.ee/maple.studio');
  });
});

describe('extractUser (hand-written fixtures)', () => {
  it('reads a universal profile page', () => {
    const found = extractUserFromHtml(fixture('profile-universal.html'));
    expect(found?.statusCode).toBe(0);
    expect(found?.user).toMatchObject({
      handle: 'maple.studio',
      nickname: 'Maple Studio 🍁',
      bioLink: 'https://linktr.ee/maple.studio',
      private: false,
      id: '6811123456789012345',
      // statsV2's exact string beats the rounded display number
      followerCount: 128391,
      videoCount: 214,
    });
    expect(found?.user?.secUid).toMatch(/^MS4wLjABAAAA[\w-]{64}$/);
    expect(found?.user?.signature).toContain('\n');
    expect(extractDomains(found?.user?.signature ?? '', found?.user?.bioLink)).toEqual(['linktr.ee', 'maplestudio.co.uk']);
  });

  it('reads a pretty-printed page with attributes in another order', () => {
    const found = extractUserFromHtml(fixture('profile-pretty.html'));
    expect(found?.user?.handle).toBe('pretty.print');
    expect(found?.user?.bioLink).toBe('bücher-eck.de');
  });

  it.each([
    ['profile-sigi.html', 'sigi.era', ['sigi-vintage.com']],
    ['profile-sigi-window.html', 'window.form', ['window-form.io']],
    ['profile-next.html', 'next.era', ['next-era.com.au']],
  ])('reads the older form %s', (name, handle, domains) => {
    const found = extractUser(fixture(name));
    expect(found?.statusCode).toBe(0);
    expect(found?.user?.handle).toBe(handle);
    expect(extractDomains(found?.user?.signature ?? '')).toEqual(domains);
  });

  it('reports a missing user with its statusCode and no user', () => {
    expect(extractUserFromHtml(fixture('profile-missing.html'))).toStrictEqual({ statusCode: 10202 });
    expect(extractUserFromHtml(fixture('profile-next-missing.html'))).toEqual({ statusCode: 404 });
    expect(extractUserFromJson(fixtureJson('user-detail-missing.json'))).toEqual({ statusCode: 10202 });
  });

  it('keeps a private user, bio included, flagged private with 10222', () => {
    const found = extractUserFromHtml(fixture('profile-private.html'));
    expect(found?.statusCode).toBe(10222);
    expect(found?.user).toMatchObject({ handle: 'quiet.fern', private: true, signature: 'private acct. art prints: fernprints.shop' });
    expect(found?.user?.bioLink).toBeUndefined();
  });

  it('reads /api/user/detail/ JSON, text or parsed; no bioLink key means none', () => {
    const parsed = extractUserFromJson(fixtureJson('user-detail.json'));
    expect(extractUser(fixture('user-detail.json'))).toEqual(parsed);
    expect(parsed?.user).toMatchObject({ handle: 'river.bakes', nickname: 'River Bakes', private: false });
    expect(parsed?.user && 'bioLink' in parsed.user).toBe(false);
    expect(extractDomains(parsed?.user?.signature ?? '')).toEqual(['riverbakes.com']);
  });

  it('gives no user for hollow and blocked answers', () => {
    expect(extractUserFromJson(fixtureJson('user-detail-hollow.json'))?.user).toBeUndefined();
    expect(extractUserFromJson(fixtureJson('user-detail-blocked.json'))).toEqual({ statusCode: -1 });
    expect(extractUserFromHtml(fixture('waf-challenge.html'))).toBeUndefined();
    expect(extractUserFromJson('')).toBeUndefined();
  });
});

describe('parseListPage (hand-written fixtures)', () => {
  it('reads a creator post list: authors, mentions, hashtags, string cursor', () => {
    const page = parseListPage(fixtureJson('post-item-list.json'));
    expect(page).toMatchObject({
      statusCode: 0,
      handles: ['river.bakes'],
      mentions: ['crumb_queen'],
      hashtags: ['sourdough', 'bread'],
      cursor: '1703900000000',
      hasMore: true,
    });
    expect(page?.items.map((i) => i.id)).toEqual(['7300000000000000001', '7300000000000000002']);
    expect(page?.items[0]?.authorSecUid).toMatch(/^MS4wLjABAAAA/);
  });

  it('treats a page without itemList and cursor -1 as the end', () => {
    expect(parseListPage(fixture('post-item-list-end.json'))).toMatchObject({ items: [], handles: [], hasMore: false, cursor: '-1' });
    expect(parseListPage(fixtureJson('post-item-list-private.json'))).toMatchObject({ statusCode: 10222, items: [], hasMore: false });
  });

  it('reads a challenge item list including non-ASCII hashtags and mentions of missing users', () => {
    const page = parseListPage(fixtureJson('challenge-item-list.json'));
    expect(page?.handles).toEqual(['river.bakes', 'crumb_queen']);
    expect(page?.mentions).toEqual(['crumb_queen', 'ghost.user.404']);
    expect(page?.hashtags).toEqual(['sourdough', 'bread', 'fypシ']);
    expect(page).toMatchObject({ cursor: '30', hasMore: true });
  });

  it('reads snake_case user search with has_more as 0/1 and the rid', () => {
    const page = parseListPage(fixtureJson('search-user-full.json'));
    expect(page).toMatchObject({ handles: ['river.bakes', 'crumb_queen'], cursor: '10', hasMore: true, searchId: '20240101SEARCHRID' });
    expect(page?.users[0]).toEqual({ handle: 'river.bakes', secUid: `MS4wLjABAAAA${'r'.repeat(64)}`, nickname: 'River Bakes', signature: 'sourdough daily' });
    expect(parseListPage(fixtureJson('search-user-exhausted.json'))).toMatchObject({ handles: [], hasMore: false });
  });

  it('reads general search data[].item and item search item_list', () => {
    expect(parseListPage(fixtureJson('search-general-full.json'))).toMatchObject({ handles: ['river.bakes', 'crumb_queen'], hasMore: false });
    expect(parseListPage(fixtureJson('search-item-full.json'))).toMatchObject({ handles: ['crumb_queen'], hasMore: true, cursor: '10' });
  });

  it('reads the legacy string author and follow lists', () => {
    const legacy = parseListPage(fixtureJson('item-list-legacy.json'));
    expect(legacy?.items[0]).toMatchObject({ author: 'legacy.user', authorSecUid: `MS4wLjABAAAA${'L'.repeat(64)}`, hashtags: ['throwback'] });
    expect(legacy).toMatchObject({ cursor: '1600000000000', hasMore: false });
    expect(parseListPage(fixtureJson('follow-list.json'))).toMatchObject({ handles: ['oven.mitt'], hasMore: true, cursor: '1745042188' });
  });

  it('returns undefined for bodies that are not JSON objects', () => {
    expect(parseListPage('')).toBeUndefined();
    expect(parseListPage(fixture('waf-challenge.html'))).toBeUndefined();
  });
});

describe('items and challenges (hand-written fixtures)', () => {
  it('reads the same item from /api/item/detail/ and the video page', () => {
    const api = parseItemDetail(fixtureJson('item-detail.json'));
    const page = parseItemDetail(fixture('video-page.html'));
    expect(api?.statusCode).toBe(0);
    expect(api).toEqual(page);
    expect(api?.item).toMatchObject({ id: '7300000000000000003', author: 'crumb_queen', mentions: ['ghost.user.404'] });
    expect(parseItemDetail(fixture('item-detail-missing.json'))).toEqual({ statusCode: 10204 });
  });

  it('finds the challenge id from the API, the page scope and the deep link', () => {
    expect(extractChallenge(fixtureJson('challenge-detail.json'))).toEqual({ statusCode: 0, challenge: { id: '1600000000000002', title: 'bread' } });
    expect(extractChallenge(fixture('tag-page.html'))?.challenge?.id).toBe('1600000000000001');
    expect(extractChallenge(fixture('tag-page-meta-only.html'))?.challenge?.id).toBe('1600000000000003');
    expect(extractChallenge(fixture('tag-missing.html'))).toEqual({ statusCode: 10205 });
    expect(extractChallenge(fixture('challenge-detail-missing.json'))).toEqual({ statusCode: 10205 });
    expect(extractChallenge(fixture('captcha-page.html'))).toBeUndefined();
  });

  it('reads lists embedded in pages', () => {
    expect(discoverFromHtml(fixture('tag-page.html'))?.handles).toEqual(['river.bakes']);
    expect(discoverFromHtml(fixture('video-page.html'))).toMatchObject({ handles: ['crumb_queen'], mentions: ['ghost.user.404'] });
    expect(discoverFromHtml(fixture('profile-universal.html'))?.items).toEqual([]);
  });
});

describe('classifyResponse (hand-written fixtures)', () => {
  const html = { 'content-type': 'text/html' };
  const cases: Array<[string, { status: number; body: string; headers?: Record<string, string>; url?: string }, string, string]> = [
    ['429 with Retry-After', { status: 429, body: '', headers: { 'Retry-After': '7' } }, 'rate-limited', 'http-429'],
    ['WAF challenge page', { status: 200, body: fixture('waf-challenge.html'), headers: html }, 'waf', 'waf-challenge'],
    ['403 forbidden', { status: 403, body: 'request ip is blocked' }, 'waf', 'http-403'],
    ['captcha page by its text', { status: 200, body: fixture('captcha-page.html'), headers: html }, 'captcha', 'captcha-page'],
    ['captcha by bdturing-verify header', { status: 200, body: '<html></html>', headers: { 'bdturing-verify': '{}' } }, 'captcha', 'bdturing-verify'],
    ['verify JSON', { status: 200, body: fixture('verify.json') }, 'captcha', 'verify-json'],
    ['login wall', { status: 200, body: '<html></html>', url: 'https://www.tiktok.com/login?redirect_url=x' }, 'captcha', 'login-wall'],
    ['empty 200', { status: 200, body: '' }, 'empty', 'empty-body'],
    ['whitespace-only 200', { status: 200, body: ' \n' }, 'empty', 'empty-body'],
    ['hollow user detail', { status: 200, body: fixture('user-detail-hollow.json') }, 'empty', 'hollow-user'],
    ['statusCode -1', { status: 200, body: fixture('user-detail-blocked.json') }, 'empty', 'status--1'],
    ['missing profile page', { status: 200, body: fixture('profile-missing.html') }, 'not-found', 'status-10202'],
    ['missing profile page, HTTP 404', { status: 404, body: fixture('profile-missing.html') }, 'not-found', 'status-10202'],
    ['missing user JSON', { status: 200, body: fixture('user-detail-missing.json') }, 'not-found', 'status-10202'],
    ['missing Next user', { status: 200, body: fixture('profile-next-missing.html') }, 'not-found', 'status-404'],
    ['missing video', { status: 200, body: fixture('item-detail-missing.json') }, 'not-found', 'status-10204'],
    ['missing hashtag page', { status: 200, body: fixture('tag-missing.html') }, 'not-found', 'not-found-page'],
    ['missing hashtag JSON', { status: 200, body: fixture('challenge-detail-missing.json') }, 'not-found', 'status-10205'],
    ['private profile page', { status: 200, body: fixture('profile-private.html') }, 'private', 'status-10222'],
    ['private post list', { status: 200, body: fixture('post-item-list-private.json') }, 'private', 'status-10222'],
    ['profile page', { status: 200, body: fixture('profile-universal.html') }, 'ok', 'ok'],
    ['Next profile page', { status: 200, body: fixture('profile-next.html') }, 'ok', 'ok'],
    ['user detail', { status: 200, body: fixture('user-detail.json') }, 'ok', 'ok'],
    ['end of a post list', { status: 200, body: fixture('post-item-list-end.json') }, 'ok', 'ok'],
    ['user search', { status: 200, body: fixture('search-user-full.json') }, 'ok', 'ok'],
    ['tag page', { status: 200, body: fixture('tag-page.html') }, 'ok', 'ok'],
    ['truncated JSON', { status: 200, body: '{"statusCode":0,"itemList":[' }, 'error', 'bad-json'],
    ['server error', { status: 503, body: 'oops' }, 'error', 'http-503'],
    ['HTML without page state', { status: 200, body: '<html><body>hello</body></html>' }, 'error', 'no-page-state'],
  ];
  it.each(cases)('%s', (_name, input, kind, reason) => {
    const c = classifyResponse(input);
    expect(c.kind).toBe(kind);
    expect(c.reason).toBe(reason);
  });

  it('parses Retry-After from fetch Headers and node header objects', () => {
    expect(classifyResponse({ status: 429, body: '', headers: new Headers({ 'retry-after': '3' }) }).retryAfterMs).toBe(3000);
    expect(classifyResponse({ status: 429, body: '', headers: { 'retry-after': ['2'] } }).retryAfterMs).toBe(2000);
    expect(classifyResponse({ status: 429, body: '' }).retryAfterMs).toBeUndefined();
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
  it.each([
    ['120', 120_000],
    [' 3 ', 3000],
    ['0', 0],
    ['1.001', 1001],
    ['0.0001', 1],
    ['Wed, 21 Oct 2015 07:28:10 GMT', 10_000],
    ['Wed, 21 Oct 2015 07:27:00 GMT', 0],
    ['soon', undefined],
    ['-5', undefined],
    ['', undefined],
  ])('%j → %j ms', (value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected);
  });

  it('rounds an HTTP-date delta up, never down', () => {
    // 07:28:02 is 1999.6 ms after "now": a retry at 1999 ms would be early.
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:02 GMT', now + 0.4)).toBe(2000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:02 GMT', now + 1.5)).toBe(1999);
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe('endpointForUrl', () => {
  const cases: Array<[string, TikTokEndpoint | undefined]> = [
    ['https://www.tiktok.com/search?q=bread', 'tiktok.search'],
    ['https://www.tiktok.com/search/user?q=bread', 'tiktok.search'],
    ['https://www.tiktok.com/search/video?q=bread', 'tiktok.search'],
    ['https://www.tiktok.com/api/search/general/full/?keyword=bread&offset=0', 'tiktok.search'],
    ['https://www.tiktok.com/api/search/user/full/?keyword=bread', 'tiktok.search'],
    ['https://www.tiktok.com/api/search/item/full/?keyword=bread', 'tiktok.search'],
    ['https://www.tiktok.com/tag/fyp%E3%82%B7', 'tiktok.hashtag'],
    ['https://www.tiktok.com/tag/bread?lang=en', 'tiktok.hashtag'],
    ['https://www.tiktok.com/api/challenge/detail/?challengeName=bread', 'tiktok.hashtag'],
    ['https://www.tiktok.com/api/challenge/item_list/?challengeID=1&cursor=0&count=30', 'tiktok.hashtag'],
    ['https://www.tiktok.com/api/post/item_list/?secUid=x&cursor=0', 'tiktok.creator'],
    ['https://www.tiktok.com/api/creator/item_list/?secUid=x&type=1', 'tiktok.creator'],
    ['https://www.tiktok.com/@river.bakes/video/7300000000000000001', 'tiktok.video'],
    ['https://www.tiktok.com/@_/video/7300000000000000001?is_from_webapp=1', 'tiktok.video'],
    ['https://www.tiktok.com/@river.bakes/photo/7300000000000000001', 'tiktok.video'],
    ['https://www.tiktok.com/embed/7300000000000000001', 'tiktok.video'],
    ['https://www.tiktok.com/api/item/detail/?itemId=7300000000000000001', 'tiktok.video'],
    ['https://www.tiktok.com/@river.bakes', 'tiktok.profile'],
    ['https://www.tiktok.com/@river.bakes?lang=en', 'tiktok.profile'],
    ['https://www.tiktok.com/api/user/detail/?uniqueId=river.bakes&secUid=', 'tiktok.profile'],
    ['http://127.0.0.1:4010/api/user/detail?uniqueId=x', 'tiktok.profile'],
    ['/api/challenge/item_list/?challengeID=1', 'tiktok.hashtag'],
    ['https://vm.tiktok.com/ZMabc123/', undefined],
    ['https://www.tiktok.com/@river.bakes/live', undefined],
    ['https://www.tiktok.com/music/original-sound-123', undefined],
    ['https://www.tiktok.com/api/comment/list/?aweme_id=1', undefined],
    ['https://www.tiktok.com/', undefined],
    ['not a url at all ://', undefined],
  ];
  it.each(cases)('%s → %s', (url, expected) => {
    expect(endpointForUrl(url)).toBe(expected);
  });

  it('strips a base path prefix and rejects URLs outside it', () => {
    expect(endpointForUrl('http://h/tt/@x', 'http://h/tt/')).toBe('tiktok.profile');
    expect(endpointForUrl('http://h/other/@x', 'http://h/tt')).toBeUndefined();
  });

  it('lists the five endpoints and their simulator keys', () => {
    expect(TIKTOK_ENDPOINTS.map(endpointKey)).toEqual(['search', 'hashtag', 'creator', 'video', 'profile']);
  });
});

describe('tiktokUrls', () => {
  it('builds tiktok.com URLs by default', () => {
    const urls = tiktokUrls();
    expect(urls.profile('@maple.studio')).toBe('https://www.tiktok.com/@maple.studio');
    expect(urls.hashtag('#fypシ')).toBe('https://www.tiktok.com/tag/fyp%E3%82%B7');
    expect(urls.video('7300000000000000001')).toBe('https://www.tiktok.com/@_/video/7300000000000000001');
    expect(urls.search('bread & butter')).toBe('https://www.tiktok.com/search?q=bread+%26+butter');
    const api = new URL(urls.challengeItemListApi({ challengeID: '42', cursor: 30 }));
    expect(api.pathname).toBe('/api/challenge/item_list/');
    expect(Object.fromEntries(api.searchParams)).toMatchObject({ challengeID: '42', cursor: '30', count: '30', aid: '1988' });
  });

  it('keeps a base path prefix, and every builder maps to its endpoint', () => {
    const base = 'http://127.0.0.1:9/tt';
    const urls = tiktokUrls({ baseUrl: base, webParams: {} });
    expect(urls.baseUrl).toBe('http://127.0.0.1:9/tt');
    const built: Array<[string, TikTokEndpoint]> = [
      [urls.profile('a.b'), 'tiktok.profile'],
      [urls.userDetailApi({ uniqueId: 'a.b' }), 'tiktok.profile'],
      [urls.video('1', 'a.b'), 'tiktok.video'],
      [urls.itemDetailApi({ itemId: '1' }), 'tiktok.video'],
      [urls.hashtag('fypシ'), 'tiktok.hashtag'],
      [urls.challengeDetailApi({ challengeName: 'x' }), 'tiktok.hashtag'],
      [urls.challengeItemListApi({ challengeID: '1' }), 'tiktok.hashtag'],
      [urls.postItemListApi({ secUid: 's' }), 'tiktok.creator'],
      [urls.search('k', 'user'), 'tiktok.search'],
      [urls.searchGeneralApi({ keyword: 'k' }), 'tiktok.search'],
      [urls.searchUserApi({ keyword: 'k' }), 'tiktok.search'],
      [urls.searchItemApi({ keyword: 'k' }), 'tiktok.search'],
    ];
    for (const [url, endpoint] of built) {
      expect(url.startsWith(`${base}/`), url).toBe(true);
      expect(endpointForUrl(url, base), url).toBe(endpoint);
    }
    expect(new URL(urls.userDetailApi({ uniqueId: 'a.b' })).searchParams.has('aid')).toBe(false);
  });
});

describe('parsers against the live simulator', () => {
  let sim: Simulator;
  let urls: ReturnType<typeof tiktokUrls>;

  beforeAll(async () => {
    sim = await startSimulator({ graph: { seed: 'parsers', creators: 30, privateRatio: 0.2 } });
    urls = tiktokUrls({ baseUrl: sim.url });
  });
  afterAll(async () => {
    await sim?.close();
  });

  async function get(url: string): Promise<{ status: number; body: string; headers: Headers }> {
    const res = await fetch(url);
    return { status: res.status, body: await res.text(), headers: res.headers };
  }

  it('reads every public creator from its page and its user detail JSON', async () => {
    for (const creator of sim.graph.creators.filter((c) => !c.private).slice(0, 8)) {
      const page = await get(urls.profile(creator.handle));
      expect(classifyResponse(page).kind).toBe('ok');
      const fromPage = extractUser(page.body);
      expect(fromPage?.user).toMatchObject({ handle: creator.handle, nickname: creator.nickname, signature: creator.signature, private: false, secUid: creator.secUid });
      expect(fromPage?.user?.bioLink).toBe(creator.bioLink);
      expect(extractDomains(fromPage?.user?.signature ?? '', fromPage?.user?.bioLink).sort()).toEqual([...creator.domains].sort());
      const api = await get(urls.userDetailApi({ uniqueId: creator.handle }));
      expect(extractUser(api.body)).toEqual(fromPage);
    }
  });

  it('classifies missing and private creators', async () => {
    const missing = await get(urls.profile(sim.graph.missingHandles[0] as string));
    expect(missing.status).toBe(404);
    expect(classifyResponse(missing)).toMatchObject({ kind: 'not-found', statusCode: 10202 });
    expect(extractUser(missing.body)).toEqual({ statusCode: 10202 });

    const priv = sim.graph.creators.find((c) => c.private);
    expect(priv).toBeDefined();
    const page = await get(urls.profile(priv?.handle ?? ''));
    expect(classifyResponse(page)).toMatchObject({ kind: 'private', statusCode: 10222 });
    expect(extractUser(page.body)?.user).toMatchObject({ handle: priv?.handle, private: true, signature: priv?.signature });
    const posts = await get(urls.postItemListApi({ secUid: priv?.secUid ?? '' }));
    expect(classifyResponse(posts).kind).toBe('private');
  });

  it('pages through a hashtag: challenge id from the page, items via cursors', async () => {
    const tag = sim.graph.hashtags.find((t) => t.videoIds.length > 3);
    expect(tag).toBeDefined();
    const page = await get(urls.hashtag(tag?.name ?? ''));
    const challenge = extractChallenge(page.body);
    expect(challenge?.challenge?.id).toBe(tag?.id);
    expect(extractChallenge(await get(urls.challengeDetailApi({ challengeName: tag?.name ?? '' })).then((r) => r.body))?.challenge?.id).toBe(tag?.id);

    const ids: string[] = [];
    const authors = new Set<string>();
    let cursor: string | undefined = '0';
    for (let guard = 0; cursor !== undefined && guard < 50; guard++) {
      const list = parseListPage((await get(urls.challengeItemListApi({ challengeID: challenge?.challenge?.id ?? '', cursor, count: 2 }))).body);
      list?.items.forEach((i) => ids.push(i.id ?? ''));
      list?.handles.forEach((h) => authors.add(h));
      cursor = list?.hasMore ? list.cursor : undefined;
    }
    expect(ids).toEqual(tag?.videoIds);
    expect([...authors].sort()).toEqual([...new Set(tag?.videoIds.map((id) => sim.graph.video(id)?.author))].sort());
  });

  it('pages through a creator post list with time cursors, newest first', async () => {
    const creator = sim.graph.creators.find((c) => !c.private && c.videoIds.length >= 3);
    expect(creator).toBeDefined();
    const ids: string[] = [];
    let cursor: string | undefined = '0';
    for (let guard = 0; cursor !== undefined && guard < 50; guard++) {
      const list = parseListPage((await get(urls.postItemListApi({ secUid: creator?.secUid ?? '', cursor, count: 2 }))).body);
      list?.items.forEach((i) => ids.push(i.id ?? ''));
      cursor = list?.hasMore ? list.cursor : undefined;
    }
    expect(ids).toEqual(creator?.videoIds);
  });

  it('finds the same creators through user, general and item search', async () => {
    const keyword = sim.graph.keywords[0] as string;
    const expected = sim.graph.searchUsers(keyword).map((c) => c.handle).sort();
    const viaUsers: string[] = [];
    let cursor: string | undefined = '0';
    for (let guard = 0; cursor !== undefined && guard < 50; guard++) {
      const list = parseListPage((await get(urls.searchUserApi({ keyword, cursor }))).body);
      viaUsers.push(...(list?.handles ?? []));
      cursor = list?.hasMore ? list.cursor : undefined;
    }
    expect(viaUsers.sort()).toEqual(expected);
    const general = parseListPage((await get(urls.searchGeneralApi({ keyword, count: 50 }))).body);
    expect(general?.handles.sort()).toEqual(expected);
    const items = parseListPage((await get(urls.searchItemApi({ keyword, count: 50 }))).body);
    expect(items?.handles.sort()).toEqual(expected);
  });

  it('reads videos from the page and the item detail API alike', async () => {
    const video = sim.graph.videos.find((v) => v.mentions.length > 0 && !sim.graph.creator(v.author)?.private);
    expect(video).toBeDefined();
    const fromPage = parseItemDetail((await get(urls.video(video?.id ?? '', video?.author))).body);
    const fromApi = parseItemDetail((await get(urls.itemDetailApi({ itemId: video?.id ?? '' }))).body);
    expect(fromPage).toEqual(fromApi);
    expect(fromApi?.item).toMatchObject({ id: video?.id, author: video?.author, mentions: video?.mentions, hashtags: video?.hashtags });
  });

  it('agrees with the simulator on which endpoint every URL counts toward', async () => {
    const creator = sim.graph.creators[0];
    const video = sim.graph.videos[0];
    const tag = sim.graph.hashtags[0];
    const samples = [
      urls.profile(creator?.handle ?? ''),
      urls.userDetailApi({ uniqueId: creator?.handle ?? '' }),
      urls.postItemListApi({ secUid: creator?.secUid ?? '' }),
      urls.video(video?.id ?? '', video?.author),
      `${sim.url}/@_/photo/${video?.id ?? ''}`,
      urls.itemDetailApi({ itemId: video?.id ?? '' }),
      urls.hashtag(tag?.name ?? ''),
      urls.challengeDetailApi({ challengeName: tag?.name ?? '' }),
      urls.challengeItemListApi({ challengeID: tag?.id ?? '' }),
      urls.search('shop'),
      urls.search('shop', 'user'),
      urls.searchGeneralApi({ keyword: 'shop' }),
      urls.searchUserApi({ keyword: 'shop' }),
      urls.searchItemApi({ keyword: 'shop' }),
      `${sim.url}/api/user/detail?uniqueId=x`,
    ];
    for (const url of samples) {
      sim.resetStats();
      await get(url);
      const counted = Object.entries(sim.stats().endpoints).filter(([, s]) => s.requests > 0).map(([k]) => k);
      const endpoint = endpointForUrl(url);
      expect(endpoint, url).toBeDefined();
      expect(counted, url).toEqual([endpointKey(endpoint as TikTokEndpoint)]);
    }
  });
});
