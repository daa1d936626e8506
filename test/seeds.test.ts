import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidPayloadError } from '../src/errors/index.js';
import { parseSeedLine, readSeeds, readSeedsFile, type SeedEntry } from '../jobs/seeds.js';
import { formatSource, type Seed } from '../jobs/schemas.js';

async function collect(source: AsyncIterable<Uint8Array | string>, maxLineBytes?: number): Promise<SeedEntry[]> {
  const out: SeedEntry[] = [];
  for await (const entry of readSeeds(source, maxLineBytes === undefined ? {} : { maxLineBytes })) out.push(entry);
  return out;
}

function seedsOf(entries: SeedEntry[]): [number, Seed][] {
  return entries.flatMap((e) => ('seed' in e ? [[e.line, e.seed] as [number, Seed]] : []));
}

function errorsOf(entries: SeedEntry[]): [number, string][] {
  return entries.flatMap((e) => ('error' in e ? [[e.line, e.error.message] as [number, string]] : []));
}

describe('parseSeedLine', () => {
  it.each<[string, Seed | null]>([
    ['', null],
    ['   ', null],
    ['// a comment', null],
    ['   // indented comment', null],
    ['#Cats', { kind: 'hashtag', value: 'cats' }],
    ['  #ÉtéChaud  ', { kind: 'hashtag', value: 'étéchaud' }],
    ['@Some.Creator', { kind: 'creator', value: 'some.creator' }],
    ['cooking   tips', { kind: 'keyword', value: 'cooking tips' }],
    ['recipe: pasta', { kind: 'keyword', value: 'recipe: pasta' }],
    ['c# tutorial', { kind: 'keyword', value: 'c# tutorial' }],
    ['keyword:#not a tag', { kind: 'keyword', value: '#not a tag' }],
    ['keyword:// not a comment', { kind: 'keyword', value: '// not a comment' }],
    ['hashtag:cats', { kind: 'hashtag', value: 'cats' }],
    ['creator:bob', { kind: 'creator', value: 'bob' }],
    ['video:7234567890123456789', { kind: 'video', value: '7234567890123456789' }],
    ['video:https://www.tiktok.com/@u/video/7234567890123456789', { kind: 'video', value: '7234567890123456789' }],
    ['https://www.tiktok.com/@u/video/7234567890123456789?is_from_webapp=1', { kind: 'video', value: '7234567890123456789' }],
    ['https://www.tiktok.com/@Some.Creator', { kind: 'creator', value: 'some.creator' }],
    ['https://tiktok.com/@bob/', { kind: 'creator', value: 'bob' }],
  ])('%j', (line, expected) => {
    expect(parseSeedLine(line)).toEqual(expected);
  });

  it.each([
    ['# not a comment', 'comments start with //'],
    ['#', 'comments start with //'],
    ['#cats #dogs', 'value: must be 1-100 letters'],
    ['@bad handle', 'value: must be 1-24 letters'],
    ['video:abc', 'value: must be a numeric video id'],
    ['video:https://vm.tiktok.com/ZMabc/', 'resolve short links first'],
    ['https://example.com/page', 'unsupported URL'],
    ['https://www.tiktok.com/tag/cats', 'unsupported URL'],
    ['hashtag:', 'value: must be 1-100 letters'],
    ['x'.repeat(101), 'value: must be 1-100 characters'],
  ])('refuses %j', (line, hint) => {
    expect(() => parseSeedLine(line)).toThrow(InvalidPayloadError);
    expect(() => parseSeedLine(line)).toThrow(hint);
  });

  it('round-trips: formatSource output parses back to the same seed', () => {
    const seeds: Seed[] = [
      { kind: 'hashtag', value: 'cats' },
      { kind: 'creator', value: 'bob.b' },
      { kind: 'keyword', value: '#starts with hash' },
      { kind: 'keyword', value: 'video: tips' },
      { kind: 'video', value: '7234567890123456789' },
    ];
    for (const seed of seeds) expect(parseSeedLine(formatSource(seed))).toEqual(seed);
  });
});

describe('readSeeds', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-seeds-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('yields seeds and line-numbered errors in order, skipping blanks and comments', async () => {
    const text = [
      '\uFEFF// seeds for the demo', // 1 (BOM)
      '#cats', // 2
      '', // 3
      '@bob', // 4
      '# oops', // 5
      'cooking tips\r', // 6 (CRLF)
      '@not valid', // 7
      'video:7234567890123456789', // 8
    ].join('\n');
    const entries = await collect(Readable.from([text]));
    expect(seedsOf(entries)).toEqual([
      [2, { kind: 'hashtag', value: 'cats' }],
      [4, { kind: 'creator', value: 'bob' }],
      [6, { kind: 'keyword', value: 'cooking tips' }],
      [8, { kind: 'video', value: '7234567890123456789' }],
    ]);
    const errors = errorsOf(entries);
    expect(errors.map(([line]) => line)).toEqual([5, 7]);
    expect(errors[0]?.[1]).toMatch(/^line 5: a hashtag cannot be empty or start with a blank \(received "# oops"\)/);
    expect(errors[1]?.[1]).toMatch(/^line 7: invalid seed: value: must be 1-24 letters.*\(received "not valid"\)/);
    const bad = entries.find((e) => e.line === 7);
    expect(bad && 'text' in bad ? bad.text : undefined).toBe('@not valid');
  });

  it('handles chunks that split lines and multi-byte characters anywhere', async () => {
    const text = '#été\n@bob\nmots clés\n#日本\n';
    const bytes = Buffer.from(text, 'utf8');
    // One byte per chunk: every line and every multi-byte character is split.
    const chunks = [...bytes].map((b) => Buffer.from([b]));
    const entries = await collect(Readable.from(chunks));
    expect(seedsOf(entries)).toEqual([
      [1, { kind: 'hashtag', value: 'été' }],
      [2, { kind: 'creator', value: 'bob' }],
      [3, { kind: 'keyword', value: 'mots clés' }],
      [4, { kind: 'hashtag', value: '日本' }],
    ]);
  });

  it('reads the last line without a trailing newline, and an empty source', async () => {
    expect(seedsOf(await collect(Readable.from(['#a\n#b'])))).toEqual([
      [1, { kind: 'hashtag', value: 'a' }],
      [2, { kind: 'hashtag', value: 'b' }],
    ]);
    expect(await collect(Readable.from([]))).toEqual([]);
  });

  it('reports and skips an over-long line without buffering it, then goes on', async () => {
    const huge = 'x'.repeat(10_000);
    const entries = await collect(Readable.from(['#a\n', huge.slice(0, 5_000), huge.slice(5_000), '\n#b\n']), 100);
    expect(seedsOf(entries)).toEqual([
      [1, { kind: 'hashtag', value: 'a' }],
      [3, { kind: 'hashtag', value: 'b' }],
    ]);
    expect(errorsOf(entries)).toEqual([[2, 'line 2: longer than 100 bytes, skipped']]);
  });

  it('streams: the first seed comes out before the source is read to the end', async () => {
    let produced = 0;
    const lines = 1_000_000;
    async function* source() {
      const perChunk = 10_000;
      for (let start = 0; start < lines; start += perChunk) {
        produced += 1;
        let chunk = '';
        for (let i = start; i < start + perChunk; i++) chunk += `#tag${i}\n`;
        yield chunk;
      }
    }
    const reader = readSeeds(source());
    const first = await reader.next();
    expect(first.value).toEqual({ line: 1, seed: { kind: 'hashtag', value: 'tag0' } });
    expect(produced).toBe(1);
    let count = 1;
    let last: SeedEntry | undefined;
    for await (const entry of reader) {
      count += 1;
      last = entry;
    }
    expect(count).toBe(lines);
    expect(last).toEqual({ line: lines, seed: { kind: 'hashtag', value: `tag${lines - 1}` } });
  });

  it('reads a file from disk', async () => {
    const path = join(dir, 'seeds.txt');
    writeFileSync(path, '// demo\n#cats\n@bob\nhttps://example.com\n');
    const entries: SeedEntry[] = [];
    for await (const entry of readSeedsFile(path)) entries.push(entry);
    expect(seedsOf(entries)).toEqual([
      [2, { kind: 'hashtag', value: 'cats' }],
      [3, { kind: 'creator', value: 'bob' }],
    ]);
    expect(errorsOf(entries)[0]?.[1]).toMatch(/^line 4: unsupported URL/);
  });
});
