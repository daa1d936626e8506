/**
 * Seeds files: one discovery seed per line, read as a stream.
 *
 * Syntax (leading and trailing blanks of a line are ignored):
 *
 * | line                                   | seed                                         |
 * |----------------------------------------|----------------------------------------------|
 * | (empty)                                | skipped                                      |
 * | `// any text`                          | comment, skipped (only at the start of a line) |
 * | `#cats`                                | hashtag `cats`                               |
 * | `@some.creator`                        | creator `some.creator`                       |
 * | `video:7234567890123456789`            | video by id                                  |
 * | `video:https://www.tiktok.com/@u/video/723…` | video by URL                           |
 * | `https://www.tiktok.com/@u/video/723…` | video (a bare TikTok video URL)              |
 * | `https://www.tiktok.com/@u`            | creator `u` (a bare TikTok profile URL)      |
 * | `hashtag:cats`, `creator:name`         | explicit kind, same as `#cats`, `@name`      |
 * | `keyword:#not a tag`                   | keyword `#not a tag` (explicit kind)         |
 * | anything else, e.g. `cooking tips`     | keyword `cooking tips`                       |
 *
 * Comments use `//`, never `#`: `#tag` is a hashtag. A line `# text` (hash then blank) is refused
 * with a hint instead of being guessed at. Only the four kind names followed by `:` are prefixes,
 * so `recipe: pasta` is the keyword `recipe: pasta`; to search a keyword that starts with one of
 * them, write it after `keyword:`. One seed per line: `#a #b` is an error, not two hashtags.
 *
 * The file is split on `\n` byte by byte (a `\r` before it is dropped, a UTF-8 BOM at the start is
 * skipped), so a million lines are never held in one string, and a line longer than
 * `maxLineBytes` (e.g. a binary file by mistake) is reported and skipped without being buffered.
 */
import { createReadStream } from 'node:fs';
import { InvalidPayloadError } from 'sluice';
import { parseSeed, showValue, type Seed, type SeedInput } from './schemas.js';

/** Default longest accepted line, in bytes. Seeds are short; a longer line is a mistake. */
export const DEFAULT_MAX_LINE_BYTES = 4096;

/** One line of a seeds file that held a seed or an error (blank lines and comments are not yielded). */
export type SeedEntry =
  | { line: number; seed: Seed }
  | {
      line: number;
      /** The line as read, cut to 200 characters. */
      text: string;
      /** Message starts with `line N:` and names the field and the value received. */
      error: InvalidPayloadError;
    };

export interface ReadSeedsOptions {
  /** Longest accepted line in bytes. Default: 4096. */
  maxLineBytes?: number;
}

const PREFIXED = /^(hashtag|keyword|creator|video):(.*)$/su;
const URL_LINE = /^https?:\/\//iu;

function classifyUrl(text: string): SeedInput {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidPayloadError(`not a valid URL (received ${showValue(text)})`);
  }
  const host = url.hostname.toLowerCase();
  if (host === 'tiktok.com' || host.endsWith('.tiktok.com')) {
    if (/\/(?:video|v)\/\d+/u.test(url.pathname)) return { kind: 'video', value: text };
    const profile = /^\/@([^/]+)\/?$/u.exec(url.pathname);
    if (profile?.[1] !== undefined) return { kind: 'creator', value: decodeURIComponent(profile[1]) };
  }
  throw new InvalidPayloadError(
    `unsupported URL (received ${showValue(text)}): use a tiktok.com video or profile URL, or keyword:<text> to search it`,
  );
}

/**
 * Reads what kind of seed a line holds, without validating the value.
 *
 * @returns `null` for a blank line or a comment.
 * @throws InvalidPayloadError for a line that cannot be classified (`# text`, a foreign URL).
 */
export function classifySeedLine(raw: string): SeedInput | null {
  const text = raw.trim();
  if (text === '' || text.startsWith('//')) return null;
  const prefixed = PREFIXED.exec(text);
  if (prefixed) return { kind: prefixed[1] as SeedInput['kind'], value: prefixed[2] ?? '' };
  if (text.startsWith('#')) {
    if (/^#\s/u.test(text) || text === '#') {
      throw new InvalidPayloadError(
        `a hashtag cannot be empty or start with a blank (received ${showValue(text)}): comments start with //`,
      );
    }
    return { kind: 'hashtag', value: text };
  }
  if (text.startsWith('@')) return { kind: 'creator', value: text };
  if (URL_LINE.test(text)) return classifyUrl(text);
  return { kind: 'keyword', value: text };
}

/**
 * Parses one line of a seeds file into a validated, normalized seed.
 *
 * @returns `null` for a blank line or a comment.
 * @throws InvalidPayloadError naming the field and the value received.
 */
export function parseSeedLine(raw: string): Seed | null {
  const input = classifySeedLine(raw);
  return input === null ? null : parseSeed(input);
}

/**
 * Splits a byte stream into lines without ever holding more than one chunk and one line (bounded
 * by `maxLineBytes`). Splitting bytes on `\n` is safe in UTF-8: no multi-byte character contains
 * 0x0A. Yields the lines of each chunk together (one async step per chunk, not per line: that step
 * cost more than parsing the line); `null` stands for a line that was too long.
 */
async function* splitLines(
  source: AsyncIterable<Uint8Array | string>,
  maxLineBytes: number,
): AsyncGenerator<(string | null)[]> {
  let parts: Buffer[] = [];
  let size = 0;
  let tooLong = false;
  const take = (piece: Buffer) => {
    if (tooLong) return;
    if (size + piece.length > maxLineBytes) {
      tooLong = true;
      parts = [];
      size = 0;
      return;
    }
    parts.push(piece);
    size += piece.length;
  };
  const finish = (): string | null => {
    const line = tooLong ? null : Buffer.concat(parts, size).toString('utf8').replace(/\r$/u, '');
    parts = [];
    size = 0;
    tooLong = false;
    return line;
  };
  for await (const chunk of source) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const lines: (string | null)[] = [];
    let start = 0;
    for (let nl = buf.indexOf(0x0a, start); nl !== -1; nl = buf.indexOf(0x0a, start)) {
      take(buf.subarray(start, nl));
      lines.push(finish());
      start = nl + 1;
    }
    if (start < buf.length) take(buf.subarray(start));
    if (lines.length > 0) yield lines;
  }
  if (size > 0 || tooLong) yield [finish()];
}

/** What one line holds: a seed, an error, or nothing (blank line, comment). */
function entryOf(line: number, raw: string | null, maxLineBytes: number): SeedEntry | null {
  if (raw === null) {
    return { line, text: '', error: new InvalidPayloadError(`line ${line}: longer than ${maxLineBytes} bytes, skipped`) };
  }
  const text = line === 1 ? raw.replace(/^\uFEFF/u, '') : raw;
  try {
    const seed = parseSeedLine(text);
    return seed === null ? null : { line, seed };
  } catch (error) {
    if (!(error instanceof InvalidPayloadError)) throw error;
    return {
      line,
      text: text.length > 200 ? `${text.slice(0, 200)}…` : text,
      error: new InvalidPayloadError(`line ${line}: ${error.message}`, { cause: error }),
    };
  }
}

/**
 * Streams a seeds file: yields each seed, or a line-numbered error for a bad line, in file order.
 * Blank lines and comments are skipped. Line numbers start at 1.
 *
 * @param source a readable stream (`fs.createReadStream`, `process.stdin`) or any async iterable of chunks.
 */
export async function* readSeeds(
  source: AsyncIterable<Uint8Array | string>,
  options: ReadSeedsOptions = {},
): AsyncGenerator<SeedEntry> {
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  let line = 0;
  for await (const lines of splitLines(source, maxLineBytes)) {
    for (const raw of lines) {
      line += 1;
      const entry = entryOf(line, raw, maxLineBytes);
      if (entry !== null) yield entry;
    }
  }
}

/** Streams a seeds file from disk; see {@link readSeeds}. */
export function readSeedsFile(path: string, options: ReadSeedsOptions = {}): AsyncGenerator<SeedEntry> {
  return readSeeds(createReadStream(path), options);
}
