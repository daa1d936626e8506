/**
 * Links and domains in bios.
 *
 * Choices, so callers know what counts as "a domain the creator carries":
 * - URLs with a scheme (`https://…`), `www.` hosts and bare domains (`shop.example.co.uk/x`)
 *   count, also when written in Unicode (IDN) or punycode.
 * - E-mail addresses do NOT count: their domain is usually a mail provider (gmail.com), and a
 *   brand that wants to be found writes its site. This is a choice, not a TikTok fact.
 * - @mentions (`@brand.co` is a handle: handles may contain dots) and #hashtags do not count.
 * - A candidate counts only if its suffix is a known ICANN public suffix (tldts), so `clip.mp4`,
 *   `v2.0` and `wait...what` are dropped. Free prose can still make false positives
 *   (`me.love` is a valid domain); that is the cost of reading bare domains at all.
 */
import { domainToASCII } from 'node:url';
import { parse } from 'tldts';

// A hostname label: letters/digits of any script, inner hyphens.
const LABEL = String.raw`[\p{L}\p{N}](?:[\p{L}\p{N}\-]{0,61}[\p{L}\p{N}])?`;
// Dots, including the ideographic ones IDNA maps to '.'.
const DOT = '[.．。｡]';
// The last label: punycode, ASCII letters, or a Unicode TLD (.рф). It must not run on into
// letters/digits of its own script (`clip.mp4` is not `clip.mp`) but may touch another script:
// "shop.comで販売中" yields shop.com.
const TLD = String.raw`(?:xn--[a-z0-9\-]{1,59}(?![a-z0-9\-])|[a-z]{2,63}(?![a-z0-9\-])|(?:(?![a-z])\p{L}){2,63}(?![\p{L}\p{N}\-]))`;
const PORT = String.raw`(?::\d{1,5})?`;
// Path, query or fragment after the host: anything up to whitespace, quotes or angle brackets.
const REST = String.raw`(?:[/?#][^\s<>"'\u0060]*)?`;
// A bare domain must not continue a word or host (letter, digit, dot, hyphen, underscore), nor
// follow '@' (e-mail, mention), '#' (hashtag) or '/' (a path).
const BEFORE = String.raw`(?<![\p{L}\p{N}.\-_@#/])`;

/** A scheme URL or a bare domain; the host follows the same grammar either way. */
const LINK_RE = new RegExp(String.raw`(?:\bhttps?:\/\/|${BEFORE})(?:${LABEL}${DOT})+${TLD}${PORT}${REST}`, 'giu');

// Sentence punctuation that ends a link in prose rather than belonging to it.
const TRAILING_PUNCT = new Set([...'.,;:!?\'"…。、，！？*~']);
const CLOSERS: Record<string, string> = { ')': '(', ']': '[', '}': '{', '>': '<', '）': '（', '」': '「', '』': '『', '】': '【' };

/** Trims trailing punctuation; a closing bracket stays when it closes one opened in the link (wiki URLs). */
function trimTrailing(candidate: string): string {
  let out = candidate;
  while (out.length > 0) {
    const last = out.at(-1) as string;
    const opener = CLOSERS[last];
    if (opener !== undefined) {
      const opens = out.split(opener).length - 1;
      const closes = out.split(last).length - 1;
      if (opens >= closes) return out;
    } else if (!TRAILING_PUNCT.has(last)) {
      return out;
    }
    out = out.slice(0, -1);
  }
  return out;
}

/**
 * Finds links and bare domains in a bio, plus the profile's `bioLink`.
 *
 * @param signature - the bio text (`user.signature`).
 * @param bioLink - `user.bioLink.link`, if any; it comes first in the result.
 * @returns the link texts as written (trailing sentence punctuation trimmed), unique, in order.
 *   Only candidates whose host {@link normalizeDomain} accepts are kept.
 */
export function extractLinks(signature: string, bioLink?: string): string[] {
  const found: string[] = [];
  const seen = new Set<string>();
  const add = (text: string): void => {
    const link = trimTrailing(text.trim());
    if (link === '' || seen.has(link) || normalizeDomain(link) === undefined) return;
    seen.add(link);
    found.push(link);
  };
  if (bioLink !== undefined && bioLink.trim() !== '') add(bioLink);
  for (const m of signature.matchAll(LINK_RE)) add(m[0]);
  return found;
}

/**
 * Normalizes a URL, host or bare domain to its registrable domain.
 *
 * Lowercase, IDN → punycode (`bücher.de` → `xn--bcher-kva.de`), `www.` and every other
 * subdomain dropped, public suffixes respected (`shop.foo.co.uk` → `foo.co.uk`).
 * Only the ICANN section of the public suffix list is used, so `me.github.io` → `github.io`.
 *
 * @returns the registrable domain, or undefined for IPs, unknown TLDs, bare suffixes
 *   (`co.uk`), e-mail addresses and anything that does not parse as a host.
 */
export function normalizeDomain(input: string): string | undefined {
  let text = input.trim().replace(/[．。｡]/g, '.');
  if (text === '') return undefined;
  // E-mail addresses are not links (see the module comment); `mailto:` likewise.
  if (/^mailto:/i.test(text) || /^[^/:]*@/.test(text)) return undefined;
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) text = `http://${text}`;
  let host: string;
  try {
    const url = new URL(text);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    if (url.username !== '' || url.password !== '') return undefined;
    host = url.hostname;
  } catch {
    return undefined;
  }
  // WHATWG URL already lowercases and punycodes; domainToASCII rejects what IDNA forbids.
  host = domainToASCII(host.replace(/\.+$/, ''));
  if (host === '' || host.startsWith('[')) return undefined;
  const parsed = parse(host);
  if (parsed.isIp || parsed.isIcann !== true || !parsed.domain) return undefined;
  return parsed.domain;
}

/**
 * The registrable domains a bio carries: {@link extractLinks} then {@link normalizeDomain}.
 * @returns unique domains, in order of first appearance (bioLink first).
 */
export function extractDomains(signature: string, bioLink?: string): string[] {
  const out = new Set<string>();
  for (const link of extractLinks(signature, bioLink)) {
    const domain = normalizeDomain(link);
    if (domain !== undefined) out.add(domain);
  }
  return [...out];
}
