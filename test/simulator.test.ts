import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { API_REFUSALS, createGraph, HiddenLimits, startSimulator, type ApiRefusal, type PageRefusal, type SimGraph, type SimKey, type Seeds, type Simulator } from '../workers/simulator/index.js';
import {
  classifyResponse,
  extractChallenge,
  extractDomains,
  extractPageState,
  extractUser,
  parseItemDetail,
  parseListPage,
  tiktokUrls,
} from '../workers/tiktok/index.js';

const started: Simulator[] = [];
async function sim(options: Parameters<typeof startSimulator>[0] = {}): Promise<Simulator> {
  const s = await startSimulator(options);
  started.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.close()));
});

async function get(url: string): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text(), headers: res.headers };
}

/** A fake monotonic clock: tests move time by hand, so limit tests never depend on timing. */
function fakeClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

describe('createGraph', () => {
  it('is deterministic: same seed, same graph; another seed, another graph', () => {
    const a = createGraph({ seed: 'alpha', creators: 30 });
    const b = createGraph({ seed: 'alpha', creators: 30 });
    const c = createGraph({ seed: 'beta', creators: 30 });
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(JSON.stringify(c)).not.toBe(JSON.stringify(a));
    expect(a.groundTruth({ hashtags: ['fyp'] })).toEqual(b.groundTruth({ hashtags: ['fyp'] }));
  });

  it('has TikTok-like ids and unique handles, and time-ordered videos', () => {
    const g = createGraph({ seed: 7, creators: 50 });
    expect(g.creators).toHaveLength(50);
    expect(new Set(g.creators.map((c) => c.handle)).size).toBe(50);
    for (const c of g.creators) {
      expect(c.handle).toMatch(/^[\w.]+$/);
      expect(c.id).toMatch(/^7\d{18}$/);
      expect(c.secUid).toMatch(/^MS4wLjABAAAA[\w-]{64}$/);
      expect(c.videoIds.length).toBeGreaterThan(0);
      const times = c.videoIds.map((id) => g.video(id)?.createTime ?? 0);
      expect(times).toEqual([...times].sort((x, y) => y - x));
      expect(new Set(times).size).toBe(times.length);
    }
    for (const h of g.missingHandles) expect(g.creator(h)).toBeUndefined();
  });

  it('has private creators, missing handles and every kind of link, all reachable by mentions', () => {
    const g = createGraph({ seed: 7, creators: 50 });
    const mentioned = new Set(g.videos.flatMap((v) => v.mentions));
    const privates = g.creators.filter((c) => c.private);
    expect(privates.length).toBeGreaterThan(0);
    expect(g.missingHandles.length).toBeGreaterThan(0);
    for (const c of privates) expect(mentioned.has(c.handle)).toBe(true);
    for (const h of g.missingHandles) expect(mentioned.has(h)).toBe(true);
    const domains = g.creators.flatMap((c) => c.domains);
    expect(domains.some((d) => d.startsWith('xn--') || d.includes('.xn--'))).toBe(true);
    expect(domains.some((d) => d.endsWith('.co.uk'))).toBe(true);
    expect(g.creators.some((c) => c.bioLink !== undefined)).toBe(true);
    expect(g.creators.some((c) => c.domains.length === 0)).toBe(true);
    expect(g.creators.some((c) => c.signature.includes('@') && /\w@\w/.test(c.signature))).toBe(true);
    // Hashtag lists never show private creators' videos.
    for (const t of g.hashtags) for (const id of t.videoIds) expect(g.creator(g.video(id)?.author ?? '')?.private).toBe(false);
  });

  it('ground truth depends on the seeds and options', () => {
    const g = createGraph({ seed: 3, creators: 60 });
    const one = g.groundTruth({ hashtags: ['fyp'] });
    const all = g.groundTruth({ keywords: [...g.keywords], hashtags: g.hashtags.map((t) => t.name) });
    expect(one.creators.length).toBeGreaterThan(0);
    expect(one.creators.length).toBeLessThan(all.creators.length);
    const direct = g.groundTruth({ hashtags: ['fyp'] }, { followHashtags: false, followMentions: false });
    expect(direct.creators.every((h) => one.creators.includes(h))).toBe(true);
    expect(direct.missing).toEqual([]);
    const noPrivate = g.groundTruth({ hashtags: ['fyp'] }, { includePrivate: false });
    expect(noPrivate.creators.some((h) => g.creator(h)?.private)).toBe(false);
    for (const domain of noPrivate.domains) expect(one.domains).toContain(domain);
    expect(one.domains).toEqual([...new Set(one.creators.flatMap((h) => one.domainsByCreator[h] ?? []))].sort());
    expect(g.groundTruth({ handles: [g.missingHandles[0] as string] })).toMatchObject({ creators: [], missing: [g.missingHandles[0]] });
  });
});

/**
 * A reference crawl over HTTP with the workers' parsers, following the ground truth's rules:
 * keywords → user search; hashtags → tag page → challenge item list; videos → video page;
 * handles → profile page → (public) post list. It proves the pages serve exactly what `groundTruth` claims.
 */
async function crawl(s: Simulator, seeds: Seeds): Promise<{ creators: string[]; missing: string[]; domains: string[] }> {
  const urls = tiktokUrls({ baseUrl: s.url });
  const handles = new Set<string>();
  const tags = new Set<string>();
  const queue: Array<['handle' | 'tag', string]> = [];
  const creators = new Set<string>();
  const missing = new Set<string>();
  const domains = new Set<string>();
  const reach = (kind: 'handle' | 'tag', name: string): void => {
    const set = kind === 'handle' ? handles : tags;
    if (set.has(name)) return;
    set.add(name);
    queue.push([kind, name]);
  };
  const pages = async (first: (cursor: string) => string): Promise<void> => {
    let cursor: string | undefined = '0';
    while (cursor !== undefined) {
      const res = await get(first(cursor));
      expect(classifyResponse(res).kind).toBe('ok');
      const list = parseListPage(res.body);
      list?.handles.forEach((h) => reach('handle', h));
      list?.mentions.forEach((h) => reach('handle', h));
      list?.hashtags.forEach((t) => reach('tag', t));
      cursor = list?.hasMore ? list.cursor : undefined;
    }
  };

  for (const keyword of seeds.keywords ?? []) await pages((cursor) => urls.searchUserApi({ keyword, cursor }));
  for (const t of seeds.hashtags ?? []) reach('tag', t);
  for (const h of seeds.handles ?? []) reach('handle', h);
  for (const id of seeds.videos ?? []) {
    const item = parseItemDetail((await get(urls.video(id))).body)?.item;
    if (item?.author !== undefined) reach('handle', item.author);
    item?.mentions.forEach((h) => reach('handle', h));
    item?.hashtags.forEach((t) => reach('tag', t));
  }
  for (let next = queue.shift(); next; next = queue.shift()) {
    const [kind, name] = next;
    if (kind === 'tag') {
      const id = extractChallenge((await get(urls.hashtag(name))).body)?.challenge?.id;
      if (id !== undefined) await pages((cursor) => urls.challengeItemListApi({ challengeID: id, cursor }));
      continue;
    }
    const res = await get(urls.profile(name));
    const verdict = classifyResponse(res);
    if (verdict.kind === 'not-found') {
      missing.add(name);
      continue;
    }
    const user = extractUser(res.body)?.user;
    expect(user, name).toBeDefined();
    if (!user) continue;
    creators.add(user.handle);
    extractDomains(user.signature, user.bioLink).forEach((d) => domains.add(d));
    if (verdict.kind === 'ok' && user.secUid) await pages((cursor) => urls.postItemListApi({ secUid: user.secUid ?? '', cursor }));
  }
  return { creators: [...creators].sort(), missing: [...missing].sort(), domains: [...domains].sort() };
}

describe('ground truth matches what the server serves', () => {
  it.each<[string, (g: SimGraph) => Seeds]>([
    ['one hashtag', () => ({ hashtags: ['fyp'] })],
    ['a non-ASCII hashtag', () => ({ hashtags: ['fypシ'] })],
    ['a keyword', () => ({ keywords: ['books'] })],
    ['a video', (g) => ({ videos: [g.videos.find((v) => v.mentions.length > 0 && !g.creator(v.author)?.private)?.id ?? ''] })],
    ['a missing and a private handle', (g) => ({ handles: [g.missingHandles[0] ?? '', g.creators.find((c) => c.private)?.handle ?? ''] })],
  ])('crawl from %s', async (_name, seedsFor) => {
    const s = await sim({ graph: { seed: 'truth', creators: 45 } });
    const seeds = seedsFor(s.graph);
    const truth = s.graph.groundTruth(seeds);
    const found = await crawl(s, seeds);
    expect(found.creators).toEqual(truth.creators);
    expect(found.missing).toEqual(truth.missing);
    expect(found.domains).toEqual(truth.domains);
    expect(truth.creators.length + truth.missing.length).toBeGreaterThan(0);
    expect(s.stats().violations).toBe(0);
  });
});

describe('hidden limits', () => {
  it('serves the burst, then 429 for API calls and a captcha page for navigations, counting each', async () => {
    const clock = fakeClock();
    const s = await sim({ graph: { seed: 1, creators: 10 }, limits: { profile: { ratePerSec: 0.5, burst: 3 } }, clock: clock.now });
    const handle = s.graph.creators[0]?.handle ?? '';
    const urls = tiktokUrls({ baseUrl: s.url });
    for (let i = 0; i < 3; i++) expect(classifyResponse(await get(urls.userDetailApi({ uniqueId: handle }))).kind).toBe('ok');

    const api = await get(urls.userDetailApi({ uniqueId: handle }));
    expect(api.status).toBe(429);
    // One token at 0.5/s is 2 s away; Retry-After is whole seconds, never rounded down.
    expect(api.headers.get('retry-after')).toBe('2');
    expect(classifyResponse(api)).toMatchObject({ kind: 'rate-limited', retryAfterMs: 2000 });

    const page = await get(urls.profile(handle));
    expect(page.status).toBe(200);
    expect(extractPageState(page.body)).toBeUndefined();
    expect(classifyResponse({ status: page.status, body: page.body }).kind).toBe('captcha');

    // Other keys are not limited.
    expect((await get(urls.hashtag(s.graph.hashtags[0]?.name ?? ''))).status).toBe(200);

    const stats = s.stats();
    expect(stats.endpoints.profile).toMatchObject({ requests: 5, served: 3, violations: 2, pages: 1, api: 4 });
    expect(stats.endpoints.profile.refusals).toMatchObject({ http429: 1, captcha: 1 });
    expect(stats.endpoints.hashtag).toMatchObject({ requests: 1, served: 1, violations: 0 });
    expect(stats).toMatchObject({ total: 6, violations: 2 });
    expect(stats.endpoints.profile.firstAt).not.toBeNull();
    expect(stats.endpoints.profile.lastAt).toBeGreaterThanOrEqual(stats.endpoints.profile.firstAt ?? Infinity);
    expect(stats.endpoints.video.firstAt).toBeNull();

    // Refusals spend no tokens: after the advertised wait exactly one request passes again.
    clock.advance(2000);
    expect((await get(urls.userDetailApi({ uniqueId: handle }))).status).toBe(200);
    expect((await get(urls.userDetailApi({ uniqueId: handle }))).status).toBe(429);
  });

  it('exposes stats over HTTP and resets them', async () => {
    const s = await sim({ graph: { seed: 1, creators: 5 }, limits: { search: { ratePerSec: 0, burst: 1 } } });
    const urls = tiktokUrls({ baseUrl: s.url });
    await get(urls.searchUserApi({ keyword: 'shop' }));
    await get(urls.searchUserApi({ keyword: 'shop' }));
    await get(`${s.url}/no/such/path`);
    const overHttp = JSON.parse((await get(`${s.url}/__sim/stats`)).body) as ReturnType<Simulator['stats']>;
    expect(overHttp).toEqual(s.stats());
    expect(overHttp).toMatchObject({ total: 3, unclassified: 1, violations: 1 });
    expect(overHttp.endpoints.search).toMatchObject({ requests: 2, served: 1, violations: 1 });
    // the margin: a full bucket of 1 at the first request, empty at the refused second
    expect(overHttp.endpoints.search.minTokens).toBe(0);
    expect(overHttp.endpoints.video.minTokens).toBeNull();
    // A bucket that never refills advertises a long, finite wait.
    const refused = await get(urls.searchUserApi({ keyword: 'shop' }));
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(3600);

    expect((await fetch(`${s.url}/__sim/reset`, { method: 'POST' })).status).toBe(200);
    expect(s.stats()).toMatchObject({ total: 0, violations: 0, firstAt: null });
    expect(s.stats().endpoints.search.requests).toBe(0);
  });

  it('limitFactor scales rate and burst, at start and at runtime', async () => {
    const clock = fakeClock();
    const s = await sim({
      graph: { seed: 2, creators: 5 },
      limits: { video: { ratePerSec: 1, burst: 4 } },
      limitFactor: 0.5,
      clock: clock.now,
    });
    expect(s.limits()).toEqual({ video: { ratePerSec: 0.5, burst: 2 } });
    const url = tiktokUrls({ baseUrl: s.url }).itemDetailApi({ itemId: s.graph.videos[0]?.id ?? '' });
    const burst = async (n: number): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await get(url)).status);
      return out;
    };
    expect(await burst(3)).toEqual([200, 200, 429]);
    // Half the rate: one token takes 2 s.
    expect((await get(url)).headers.get('retry-after')).toBe('2');

    s.setLimits({ limitFactor: 1, refill: true });
    expect(s.limits()).toEqual({ video: { ratePerSec: 1, burst: 4 } });
    expect(await burst(5)).toEqual([200, 200, 200, 200, 429]);

    // Over HTTP too, and a limit can be lifted entirely.
    const res = await fetch(`${s.url}/__sim/limits`, { method: 'POST', body: JSON.stringify({ limits: { video: null, hashtag: { ratePerSec: 1, burst: 1 } } }) });
    expect(res.status).toBe(200);
    expect(s.limits()).toEqual({ hashtag: { ratePerSec: 1, burst: 1 } });
    expect(await burst(3)).toEqual([200, 200, 200]);
    // Refused: the 3rd of the first burst, the Retry-After probe, the 5th after the refill.
    expect(s.stats().endpoints.video.violations).toBe(3);
  });

  it('answers with the selected refusal styles: empty 200, WAF challenge, verify JSON', async () => {
    const s = await sim({
      graph: { seed: 4, creators: 5 },
      limits: { hashtag: { ratePerSec: 0, burst: 1 } },
      refusals: { api: 'empty', page: 'waf' },
    });
    const urls = tiktokUrls({ baseUrl: s.url });
    const tag = s.graph.hashtags[0];
    expect((await get(urls.hashtag(tag?.name ?? ''))).status).toBe(200);
    const api = await get(urls.challengeItemListApi({ challengeID: tag?.id ?? '' }));
    expect(api).toMatchObject({ status: 200, body: '' });
    expect(classifyResponse(api).kind).toBe('empty');
    const page = await get(urls.hashtag(tag?.name ?? ''));
    expect(classifyResponse(page)).toMatchObject({ kind: 'waf', reason: 'waf-challenge' });
    s.setRefusals({ api: 'verify' });
    expect(classifyResponse(await get(urls.challengeDetailApi({ challengeName: tag?.name ?? '' })))).toMatchObject({ kind: 'captcha', reason: 'verify-json' });
    expect(s.stats().endpoints.hashtag.refusals).toMatchObject({ empty: 1, waf: 1, verify: 1, http429: 0, captcha: 0 });
  });

  it('emits every blocking signal of tiktok-web-shapes.md §4a, each classified as the push-back it is', async () => {
    const s = await sim({ graph: { seed: 4, creators: 5 }, limits: { creator: { ratePerSec: 0, burst: 1 }, profile: { ratePerSec: 0, burst: 1 } } });
    const urls = tiktokUrls({ baseUrl: s.url });
    const creator = s.graph.creators.find((c) => !c.private)!;
    const list = urls.postItemListApi({ secUid: creator.secUid, cursor: 0 });
    // the bucket's one token: the real first page is data
    expect(classifyResponse({ ...(await get(list)), url: list }).kind).toBe('ok');
    const api: Array<[ApiRefusal, string, string]> = [
      ['http429', 'rate-limited', 'http-429'],
      ['http429-bare', 'rate-limited', 'http-429'],
      ['verify', 'captcha', 'verify-json'],
      ['empty', 'empty', 'empty-body'],
      ['empty-list', 'empty', 'empty-list'],
      ['block-status', 'empty', 'status--1'],
      ['waf', 'waf', 'waf-challenge'],
    ];
    expect(api.map(([r]) => r).sort()).toEqual([...API_REFUSALS].sort());
    for (const [refusal, kind, reason] of api) {
      s.setRefusals({ api: refusal });
      const res = await get(list);
      const c = classifyResponse({ ...res, url: list });
      expect(c, refusal).toMatchObject({ kind, reason });
      // only the 429 that says so carries a Retry-After
      expect(c.retryAfterMs !== undefined, refusal).toBe(refusal === 'http429');
    }
    const page = urls.profile(creator.handle);
    expect((await get(page)).status).toBe(200);
    for (const [refusal, kind] of [['captcha', 'captcha'], ['empty', 'empty'], ['waf', 'waf'], ['http429', 'rate-limited'], ['http429-bare', 'rate-limited']] as Array<[PageRefusal, string]>) {
      s.setRefusals({ page: refusal });
      expect(classifyResponse({ ...(await get(page)), url: page }).kind, refusal).toBe(kind);
    }
    // 5xx bursts: failNext answers server errors, which classify as errors (the gate counts bursts)
    s.setLimits({ limits: { creator: null } });
    s.failNext('creator', 2);
    for (let i = 0; i < 2; i++) expect(classifyResponse({ ...(await get(list)), url: list })).toMatchObject({ kind: 'error', reason: 'http-503' });
    expect(s.stats().endpoints.creator).toMatchObject({ serverErrors: 2, violations: 7 });
    expect(s.stats().endpoints.creator.refusals).toMatchObject({ http429: 1, 'http429-bare': 1, verify: 1, empty: 1, 'empty-list': 1, 'block-status': 1, waf: 1 });
  });

  it('an empty list is a soft block only where data was due: a first page, not the end of a list or an empty search', () => {
    const url = (path: string) => `http://127.0.0.1:1${path}`;
    const body = JSON.stringify({ statusCode: 0, itemList: [], hasMore: false, cursor: '0' });
    expect(classifyResponse({ status: 200, body, url: url('/api/challenge/item_list/?challengeID=1&cursor=0') })).toMatchObject({ kind: 'empty', reason: 'empty-list' });
    expect(classifyResponse({ status: 200, body, url: url('/api/post/item_list/?secUid=x') }).kind).toBe('empty');
    expect(classifyResponse({ status: 200, body, url: url('/api/challenge/item_list/?challengeID=1&cursor=30') }).kind).toBe('ok');
    const nil = JSON.stringify({ status_code: 0, user_list: [], has_more: 0, search_nil_info: { search_nil_item: 'empty_session' } });
    expect(classifyResponse({ status: 200, body: nil, url: url('/api/search/user/full/?keyword=zz&cursor=0') }).kind).toBe('ok');
    // not a list API, or no URL to tell: never guessed
    expect(classifyResponse({ status: 200, body, url: url('/api/item/detail/?itemId=1') }).kind).toBe('ok');
    expect(classifyResponse({ status: 200, body }).kind).toBe('ok');
  });

  it('counts pages served with data more than once, whatever the spelling of their URL', async () => {
    const s = await sim({ graph: { seed: 4, creators: 5 }, limits: { hashtag: { ratePerSec: 0, burst: 2 } } });
    const tag = s.graph.hashtags[0]!;
    await get(`${s.url}/api/challenge/item_list/?challengeID=${tag.id}&cursor=0&count=30&aid=1988`);
    await get(`${s.url}/api/challenge/item_list?count=10&challengeID=${tag.id}`);
    // refused: not served, so not a repeat
    await get(`${s.url}/api/challenge/item_list/?challengeID=${tag.id}&cursor=0`);
    await get(`${s.url}/@${s.graph.creators[0]!.handle}`);
    expect(s.stats()).toMatchObject({ repeats: 1, repeatedUrls: [`/api/challenge/item_list?challengeID=${tag.id}&at=0`] });
    expect(s.stats().endpoints.hashtag).toMatchObject({ served: 2, repeats: 1, violations: 1 });
    expect(s.stats().endpoints.profile.repeats).toBe(0);
    s.resetStats();
    await get(`${s.url}/@${s.graph.creators[0]!.handle}`);
    expect(s.stats().repeats).toBe(0);
  });

  it('moves its hidden limits on a schedule, and records each change', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const s = await sim({ graph: { seed: 4, creators: 5 }, limits: { search: { ratePerSec: 2, burst: 4 } }, limitSchedule: [{ atMs: 120_000, limitFactor: 0.5 }, { atMs: 300_000, limitFactor: 1.5 }] });
      expect(s.limits().search).toEqual({ ratePerSec: 2, burst: 4 });
      vi.advanceTimersByTime(120_000);
      expect(s.limits().search).toEqual({ ratePerSec: 1, burst: 2 });
      vi.advanceTimersByTime(180_000);
      expect(s.limits().search).toEqual({ ratePerSec: 3, burst: 6 });
      const history = s.limitHistory();
      expect(history.map((h) => h.limitFactor)).toEqual([1, 0.5, 1.5]);
      expect(history[2]!.from - history[0]!.from).toBe(300_000);
      await expect(sim({ limitSchedule: [{ atMs: -1, limitFactor: 1 }] })).rejects.toThrow(/atMs must be >= 0/);
    } finally {
      vi.useRealTimers();
    }
  });

  it('HiddenLimits rejects invalid limits and never spends a token on a refusal', () => {
    const clock = fakeClock();
    expect(() => new HiddenLimits({ search: { ratePerSec: -1, burst: 1 } })).toThrow(RangeError);
    expect(() => new HiddenLimits({ search: { ratePerSec: 1, burst: 0 } })).toThrow(/burst/);
    expect(() => new HiddenLimits({}, 0)).toThrow(/limitFactor/);
    expect(() => new HiddenLimits({ nope: { ratePerSec: 1, burst: 1 } } as never)).toThrow(/unknown endpoint key/);
    const limits = new HiddenLimits({ creator: { ratePerSec: 10, burst: 1 } }, 1, clock.now);
    expect(limits.take('creator').allowed).toBe(true);
    for (let i = 0; i < 5; i++) expect(limits.take('creator')).toEqual({ allowed: false, tokens: 0, retryAfterMs: 100 });
    clock.advance(100);
    expect(limits.take('creator').allowed).toBe(true);
    expect(limits.take('search').allowed).toBe(true);
    // Lowering the burst caps saved tokens.
    clock.advance(10_000);
    limits.set({ limits: { creator: { ratePerSec: 10, burst: 5 } } });
    clock.advance(10_000);
    limits.set({ limits: { creator: { ratePerSec: 10, burst: 2 } } });
    expect([1, 2, 3].map(() => limits.take('creator').allowed)).toEqual([true, true, false]);
    // `empty`: the next request is refused until a token refills (10/s: 100 ms)
    clock.advance(10_000);
    limits.set({ empty: true });
    expect(limits.take('creator').allowed).toBe(false);
    clock.advance(100);
    expect(limits.take('creator').allowed).toBe(true);
  });
});

describe('TikTok shapes and status codes', () => {
  it('embeds one-line universal state with escaped slashes and an inline API fetch of the same key', async () => {
    const s = await sim({ graph: { seed: 5, creators: 5 } });
    const urls = tiktokUrls({ baseUrl: s.url });
    const c = s.graph.creators.find((x) => !x.private);
    const v = s.graph.videos[0];
    const t = s.graph.hashtags[0];
    const expectations: Array<[string, string, SimKey]> = [
      [urls.profile(c?.handle ?? ''), '/api/user/detail/', 'profile'],
      [urls.video(v?.id ?? '', v?.author), '/api/item/detail/', 'video'],
      [urls.hashtag(t?.name ?? ''), '/api/challenge/item_list/', 'hashtag'],
      [urls.search('shop'), '/api/search/general/full/', 'search'],
    ];
    for (const [url, apiPath, key] of expectations) {
      const { body } = await get(url);
      const line = /<script id="__UNIVERSAL_DATA_FOR_REHYDRATION__" type="application\/json">(.*?)<\/script>/.exec(body)?.[1];
      expect(line, url).toBeDefined();
      expect(line).not.toContain('/');
      expect(line).toContain('\\u002F');
      // Run the page's inline script as a browser would, with fetch stubbed to record the call.
      const inline = /<script>(fetch\([\s\S]*?)<\/script>/.exec(body)?.[1];
      expect(inline, url).toBeDefined();
      const called: string[] = [];
      const fakeFetch = (u: string): Promise<{ text: () => Promise<string> }> => {
        called.push(u);
        return Promise.resolve({ text: () => Promise.resolve('') });
      };
      runInNewContext(inline ?? '', { fetch: fakeFetch, document: { body: { dataset: {} } }, String });
      expect(called).toHaveLength(1);
      const apiUrl = new URL(called[0] ?? '', s.url);
      expect(apiUrl.pathname).toBe(apiPath);
      // The call it makes is served and counts toward the page's own key.
      s.resetStats();
      expect(classifyResponse(await get(apiUrl.href)).kind).toBe('ok');
      expect(s.stats().endpoints[key]).toMatchObject({ requests: 1, served: 1, api: 1 });
    }
    // Without scripts a page is just its state.
    const quiet = await sim({ graph: { seed: 5, creators: 5 }, pageScripts: false });
    expect((await get(`${quiet.url}/@${c?.handle ?? ''}`)).body).not.toContain('fetch(');
  });

  it('answers missing and private entities with their statusCodes', async () => {
    const s = await sim({ graph: { seed: 6, creators: 30, privateRatio: 0.3 } });
    const urls = tiktokUrls({ baseUrl: s.url });
    const priv = s.graph.creators.find((c) => c.private);
    const gone = s.graph.missingHandles[0] as string;
    expect(priv).toBeDefined();
    const status = async (url: string): Promise<[number, unknown]> => {
      const res = await get(url);
      if (res.body.startsWith('{')) return [res.status, (JSON.parse(res.body) as Record<string, unknown>)['statusCode']];
      const scope = extractPageState(res.body)?.data['__DEFAULT_SCOPE__'] as Record<string, Record<string, unknown>>;
      const detail = scope['webapp.user-detail'] ?? scope['webapp.video-detail'] ?? scope['webapp.challenge-detail'];
      return [res.status, detail?.['statusCode']];
    };
    expect(await status(urls.profile(gone))).toEqual([404, 10202]);
    expect(await status(urls.userDetailApi({ uniqueId: gone }))).toEqual([200, 10202]);
    expect(await status(urls.profile(priv?.handle ?? ''))).toEqual([200, 10222]);
    expect(await status(urls.userDetailApi({ secUid: priv?.secUid ?? '' }))).toEqual([200, 10222]);
    expect(await status(urls.postItemListApi({ secUid: priv?.secUid ?? '' }))).toEqual([200, 10222]);
    expect(await status(urls.itemDetailApi({ itemId: priv?.videoIds[0] ?? '' }))).toEqual([200, 10216]);
    expect(await status(urls.video(priv?.videoIds[0] ?? ''))).toEqual([200, 10216]);
    expect(await status(urls.itemDetailApi({ itemId: '7999999999999999999' }))).toEqual([200, 10204]);
    expect(await status(urls.challengeDetailApi({ challengeName: 'no-such-tag' }))).toEqual([200, 10205]);
    expect(await status(urls.postItemListApi({ secUid: s.graph.creators[0]?.secUid ?? '', count: 51 }))).toEqual([200, 10201]);
    const missingTag = await get(urls.hashtag('no-such-tag'));
    expect(missingTag.status).toBe(200);
    expect(classifyResponse(missingTag).kind).toBe('not-found');
    // Private users still show their bio.
    expect(extractUser((await get(urls.profile(priv?.handle ?? ''))).body)?.user?.signature).toBe(priv?.signature);
    // Every one of these was served, not refused.
    expect(s.stats().violations).toBe(0);
  });

  it('lists camelCase and snake_case keys where TikTok does', async () => {
    const s = await sim({ graph: { seed: 8, creators: 20 } });
    const urls = tiktokUrls({ baseUrl: s.url });
    const c = s.graph.creators.find((x) => !x.private);
    const posts = JSON.parse((await get(urls.postItemListApi({ secUid: c?.secUid ?? '' }))).body) as Record<string, unknown>;
    expect(posts).toMatchObject({ statusCode: 0, status_code: 0, hasMore: false, cursor: '-1' });
    expect(Array.isArray(posts['itemList'])).toBe(true);
    const keyword = s.graph.keywords[0] as string;
    const users = JSON.parse((await get(urls.searchUserApi({ keyword }))).body) as Record<string, unknown>;
    expect(users).toMatchObject({ status_code: 0, type: 1 });
    expect([0, 1]).toContain(users['has_more']);
    expect((users['user_list'] as Array<{ user_info: Record<string, unknown> }>)[0]?.user_info).toHaveProperty('unique_id');
    const items = JSON.parse((await get(urls.searchItemApi({ keyword }))).body) as Record<string, unknown>;
    expect(Array.isArray(items['item_list'])).toBe(true);
    const exhausted = JSON.parse((await get(urls.searchUserApi({ keyword, cursor: 1000 }))).body) as Record<string, unknown>;
    expect(exhausted).toMatchObject({ has_more: 0, user_list: [], search_nil_info: { search_nil_item: 'empty_session' } });
  });
});
