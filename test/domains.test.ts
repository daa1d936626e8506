import { describe, expect, it } from 'vitest';
import { extractDomains, extractLinks, normalizeDomain } from '../workers/tiktok/domains.js';

describe('normalizeDomain', () => {
  const cases: Array<[string, string | undefined]> = [
    // case, www, paths, queries, ports, fragments
    ['example.com', 'example.com'],
    ['EXAMPLE.COM', 'example.com'],
    ['www.example.com', 'example.com'],
    ['WWW.Example.Com/Path?Q=1', 'example.com'],
    ['https://www.Shop-Foo.co.uk/path?x=1#top', 'shop-foo.co.uk'],
    ['http://shop.brand.com:8080/x', 'brand.com'],
    ['example.com.', 'example.com'],
    ['  example.com  ', 'example.com'],
    // multi-label public suffixes
    ['shop.foo.co.uk', 'foo.co.uk'],
    ['a.b.c.com.au', 'c.com.au'],
    ['co.uk', undefined],
    ['com', undefined],
    // IDN: Unicode and punycode land on the same ASCII form
    ['bücher.de', 'xn--bcher-kva.de'],
    ['https://www.BÜCHER.de/', 'xn--bcher-kva.de'],
    ['xn--bcher-kva.de', 'xn--bcher-kva.de'],
    ['пример.рф', 'xn--e1afmkfd.xn--p1ai'],
    ['xn--e1afmkfd.xn--p1ai', 'xn--e1afmkfd.xn--p1ai'],
    ['例え。jp', 'xn--r8jz45g.jp'],
    // ICANN section only: private suffixes do not split further
    ['me.github.io', 'github.io'],
    ['linktr.ee/someone', 'linktr.ee'],
    // rejected
    ['foo.notatld', undefined],
    ['clip.mp4', undefined],
    ['localhost', undefined],
    ['127.0.0.1', undefined],
    ['http://[::1]/', undefined],
    ['hello@example.com', undefined],
    ['mailto:hello@example.com', undefined],
    ['https://user:pw@example.com/', undefined],
    ['ftp://example.com', undefined],
    ['', undefined],
    ['not a domain', undefined],
  ];
  it.each(cases)('%j → %j', (input, expected) => {
    expect(normalizeDomain(input)).toBe(expected);
  });
});

describe('extractLinks', () => {
  const cases: Array<[string, string | undefined, string[]]> = [
    ['no links here, just vibes', undefined, []],
    ['shop: example.com', undefined, ['example.com']],
    // trailing sentence punctuation is not part of the link
    ['visit example.com!', undefined, ['example.com']],
    ['visit example.com.', undefined, ['example.com']],
    ['see example.com/shop?x=1, thanks', undefined, ['example.com/shop?x=1']],
    ['(www.foo.io/bar)', undefined, ['www.foo.io/bar']],
    ['link → https://en.wikipedia.org/wiki/Foo_(bar).', undefined, ['https://en.wikipedia.org/wiki/Foo_(bar)']],
    ['done…example.org…', undefined, ['example.org']],
    // case and scheme
    ['HTTPS://WWW.UPPER.COM/X', undefined, ['HTTPS://WWW.UPPER.COM/X']],
    ['https://www.Shop-Foo.co.uk/path?ref=tt', undefined, ['https://www.Shop-Foo.co.uk/path?ref=tt']],
    // IDN, written either way, and touching another script
    ['bücher-welt.de, пример.рф; xn--bcher-kva.de', undefined, ['bücher-welt.de', 'пример.рф', 'xn--bcher-kva.de']],
    ['shop.comで販売中', undefined, ['shop.com']],
    ['https://shop.comで', undefined, ['https://shop.com']],
    // not links: e-mails, mentions (handles may contain dots), hashtags, numbers, files, ellipses
    ['mail hello@brand.com or me@x.co.uk', undefined, []],
    ['collab @clay.club and @foo.bar', undefined, []],
    ['#glow.up #shop.now', undefined, []],
    ['v2.0 out, 3.14 pies, 1.5k fam, no.1 fan', undefined, []],
    ['new clip.mp4 soon, wait...what', undefined, []],
    ['not-a-tld.zzzz', undefined, []],
    // bioLink comes first; duplicates kept once
    ['also at example.com', 'https://linktr.ee/me', ['https://linktr.ee/me', 'example.com']],
    ['example.com example.com', undefined, ['example.com']],
    ['', 'bücher.de', ['bücher.de']],
    ['', '  ', []],
    ['x', 'hello@brand.com', []],
    // multi-line bios
    ['line one\nshop → www.MapleStudio.co.uk/shop!\ncontact: hello@maplemail.com', undefined, ['www.MapleStudio.co.uk/shop']],
  ];
  it.each(cases)('%j (bioLink %j)', (signature, bioLink, expected) => {
    expect(extractLinks(signature, bioLink)).toEqual(expected);
  });
});

describe('extractDomains', () => {
  it('normalizes and de-duplicates across forms and the bioLink', () => {
    const bio = 'shop: WWW.BRAND.CO.UK/x\nalso https://shop.brand.co.uk/y and bücher.de, xn--bcher-kva.de';
    expect(extractDomains(bio, 'https://brand.co.uk')).toEqual(['brand.co.uk', 'xn--bcher-kva.de']);
  });
  it('returns nothing for a bio of decoys', () => {
    expect(extractDomains('📧 hi@gmail.com\nIG @luna.style\n#glow.up\nv2.0')).toEqual([]);
  });
});
