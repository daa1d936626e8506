/**
 * Generated bios: a signature with links in the forms real bios use, an optional bioLink, and the
 * registrable domains they carry. The expected domains are known *by construction* (brand label
 * + a public suffix we chose), not by running the parser, so the parser can be tested against them.
 */
import { domainToASCII } from 'node:url';
import type { Rng } from './rng.js';

export interface GeneratedBio {
  signature: string;
  bioLink?: string;
  /** Registrable domains (lowercase, punycode) the signature and bioLink link to. */
  domains: string[];
}

const WORDS = ['glow', 'luna', 'maple', 'nova', 'pixel', 'sage', 'cozy', 'drift', 'ember', 'fable', 'honey', 'iris',
  'jade', 'koi', 'lark', 'mossy', 'olive', 'petal', 'quill', 'river', 'sunny', 'tidal', 'velvet', 'willow'];
const SUFFIXES = ['com', 'co.uk', 'de', 'io', 'com.au', 'shop', 'net', 'fr', 'ca', 'store'];
// Unicode labels for IDN domains; a number keeps each brand distinct.
const IDN_LABELS: ReadonlyArray<readonly [string, string]> = [
  ['bücher', 'de'],
  ['café', 'fr'],
  ['müller-shop', 'de'],
  ['магазин', 'рф'],
  ['ñandú', 'com'],
  ['おみせ', 'jp'],
];
const PROSE = ['small biz owner', 'daily vlogs', 'recipes & more', 'collabs open', 'new drops every friday', 'she/her'];
// Things that look like domains but are not links; a correct extractor ignores them all.
const DECOYS = ['v2.0 out now', 'clip.mp4 soon', 'wait...what', '3.5k fam', 'no.1 fan of cats'];

/** One lowercase word from the shared pool (handles, brands and captions use it). */
export function word(rng: Rng): string {
  return rng.pick(WORDS);
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** One linked domain: the text written in the bio and the registrable domain it stands for. */
interface Link {
  text: string;
  domain: string;
}

function brandLink(rng: Rng, serial: number): Link {
  const a = word(rng);
  const b = word(rng);
  const suffix = rng.pick(SUFFIXES);
  const ascii = `${a}-${b}${serial}`;
  const domain = `${ascii}.${suffix}`;
  switch (rng.int(0, 4)) {
    case 0:
      return { text: domain, domain }; // bare: "glow-luna12.com"
    case 1: // full URL, mixed case, www, path and query
      return { text: `https://www.${capitalize(a)}-${capitalize(b)}${serial}.${suffix}/${word(rng)}?ref=tiktok`, domain };
    case 2: // subdomain with a path
      return { text: `shop.${domain}/${word(rng)}`, domain };
    case 3: // shouted
      return { text: `WWW.${domain.toUpperCase()}`, domain };
    default: // scheme-less URL with a trailing slash
      return { text: `www.${domain}/`, domain };
  }
}

function idnLink(rng: Rng, serial: number): Link {
  const [label, suffix] = rng.pick(IDN_LABELS);
  const unicode = `${label}${serial}.${suffix}`;
  const domain = domainToASCII(unicode);
  // Half are written in Unicode, half already in punycode, as copied from a browser bar.
  return rng.chance(0.5) ? { text: `https://${unicode}/`, domain } : { text: domain, domain };
}

/** Wraps a link in prose, often with punctuation that must not stick to it. */
function inProse(rng: Rng, text: string): string {
  const templates = ['shop: {}', '👉 {}!', '({})', 'link → {}.', 'visit {}, thanks', '🔗 {}', 'IG + site: {};'];
  return rng.pick(templates).replace('{}', text);
}

/**
 * A creator's bio. `serial` makes every brand domain unique to its creator, so ground truth
 * can tell whose bio a domain came from.
 */
export function generateBio(rng: Rng, handle: string, serial: number): GeneratedBio {
  const parts: string[] = [rng.pick(PROSE)];
  const domains: string[] = [];
  const linkCount = rng.pick([0, 1, 1, 1, 2, 2, 3]);
  for (let i = 0; i < linkCount; i++) {
    const link = rng.chance(0.25) ? idnLink(rng, serial * 10 + i) : brandLink(rng, serial * 10 + i);
    parts.push(inProse(rng, link.text));
    domains.push(link.domain);
  }
  // Decoys: an e-mail (its domain is deliberately not a link), a self-mention whose handle may
  // contain dots, a hashtag with a dot, numbers and file names.
  if (rng.chance(0.4)) parts.push(`📧 hello@${word(rng)}mail${serial}.com`);
  if (rng.chance(0.3)) parts.push(`IG @${handle}`);
  if (rng.chance(0.3)) parts.push(`#${word(rng)}.${word(rng)}`);
  if (rng.chance(0.3)) parts.push(rng.pick(DECOYS));

  const bio: GeneratedBio = { signature: parts.join('\n'), domains };
  const linkKind = rng.int(0, 5);
  if (linkKind === 0) {
    // Link aggregators are the most common bioLink in practice.
    bio.bioLink = `https://linktr.ee/${handle}`;
    domains.push('linktr.ee');
  } else if (linkKind === 1) {
    const domain = `${word(rng)}${serial}.${rng.pick(SUFFIXES)}`;
    bio.bioLink = `https://${domain}/links`;
    domains.push(domain);
  }
  bio.domains = [...new Set(domains)];
  return bio;
}
