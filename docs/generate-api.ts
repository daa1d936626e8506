/**
 * Writes docs/api.md from the public API: the export list of src/index.ts and the TSDoc comments
 * of those symbols in their source files.
 *
 *   npx tsx docs/generate-api.ts           writes docs/api.md
 *   npx tsx docs/generate-api.ts --check   exits 1 when docs/api.md is out of date
 *
 * The installed TypeScript is the native compiler, without the JS compiler API, so this reads
 * the sources with a small scanner: it knows strings, template literals, comments, regular
 * expression literals and bracket nesting, which is all it takes to find top-level declarations,
 * the doc comment right above each, and the members of classes, interfaces and zod objects.
 * test/docs.test.ts regenerates the page in memory and fails when the committed one differs.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const API_DOC_PATH = join(ROOT, 'docs', 'api.md');

// ------------------------------------------------------------------ scanner

/** Index just past the string, template or comment starting at i, or i when none starts there. */
function skipLiteral(src: string, i: number): number {
  const c = src[i];
  if (c === '/' && src[i + 1] === '/') {
    const end = src.indexOf('\n', i);
    return end < 0 ? src.length : end;
  }
  if (c === '/' && src[i + 1] === '*') {
    const end = src.indexOf('*/', i + 2);
    return end < 0 ? src.length : end + 2;
  }
  if (c === '"' || c === "'") {
    let j = i + 1;
    while (j < src.length && src[j] !== c && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
    return j + 1;
  }
  if (c === '`') {
    let j = i + 1;
    while (j < src.length && src[j] !== '`') {
      if (src[j] === '\\') j += 2;
      else if (src[j] === '$' && src[j + 1] === '{') j = matching(src, j + 1) + 1;
      else j++;
    }
    return j + 1;
  }
  if (c === '/' && regexMayStart(src, i)) {
    let j = i + 1;
    let inClass = false;
    while (j < src.length && src[j] !== '\n') {
      if (src[j] === '\\') j += 2;
      else {
        if (src[j] === '[') inClass = true;
        else if (src[j] === ']') inClass = false;
        else if (src[j] === '/' && !inClass) break;
        j++;
      }
    }
    j++;
    while (/[a-z]/i.test(src[j] ?? '')) j++;
    return j;
  }
  return i;
}

/** A `/` starts a regular expression after an operator, an opening bracket or `return`. */
function regexMayStart(src: string, i: number): boolean {
  let j = i - 1;
  while (j >= 0 && /\s/.test(src[j]!)) j--;
  if (j < 0) return true;
  const prev = src[j]!;
  if ('(,=:[!&|?{};+-*%<>~^'.includes(prev)) return true;
  return /\b(return|typeof|case|in|of|void|throw)$/.test(src.slice(Math.max(0, j - 6), j + 1));
}

const OPEN: Record<string, string> = { '{': '}', '(': ')', '[': ']' };

/** Index of the bracket closing the one at `open`. */
function matching(src: string, open: number): number {
  const stack: string[] = [];
  let i = open;
  while (i < src.length) {
    const skipped = skipLiteral(src, i);
    if (skipped !== i) {
      i = skipped;
      continue;
    }
    const c = src[i]!;
    if (OPEN[c]) stack.push(OPEN[c]);
    else if (c === '}' || c === ')' || c === ']') {
      stack.pop();
      if (stack.length === 0) return i;
    }
    i++;
  }
  throw new Error(`unbalanced bracket at offset ${open}`);
}

/**
 * Scans from `from` to the first of `stops` found outside brackets, strings and comments (angle
 * brackets count as brackets, `=>` does not). Returns its index, or -1.
 */
function scanTo(src: string, from: number, stops: string, options: { end?: number; angles?: boolean } = {}): number {
  const end = options.end ?? src.length;
  let angles = 0;
  let i = from;
  while (i < end) {
    const skipped = skipLiteral(src, i);
    if (skipped !== i) {
      i = skipped;
      continue;
    }
    const c = src[i]!;
    if (angles === 0 && stops.includes(c)) return i;
    if (OPEN[c]) {
      i = matching(src, i) + 1;
      continue;
    }
    if (options.angles !== false) {
      if (c === '<') angles++;
      else if (c === '>' && src[i - 1] !== '=' && angles > 0) angles--;
    }
    i++;
  }
  return -1;
}

/**
 * The `/** ... *\/` comment that ends right before `at`, or undefined. A blank line between them
 * detaches it (a file's opening comment is not its first declaration's).
 */
function docBefore(src: string, at: number): string | undefined {
  let j = at - 1;
  while (j >= 0 && /\s/.test(src[j]!)) j--;
  if ((src.slice(j + 1, at).match(/\n/g) ?? []).length > 1) return undefined;
  if (j < 1 || src[j] !== '/' || src[j - 1] !== '*') return undefined;
  const start = src.lastIndexOf('/**', j - 1);
  if (start < 0 || src.lastIndexOf('*/', j - 2) > start) return undefined;
  return cleanDoc(src.slice(start, j + 1));
}

/** The text of a doc comment: leading stars gone, paragraphs kept. */
function cleanDoc(comment: string): string {
  const body = comment.replace(/^\/\*\*/, '').replace(/\*\/$/, '');
  const lines = body.split('\n').map((l) => l.replace(/^\s*\* ?/, '').trimEnd());
  while (lines.length && !lines[0]!.trim()) lines.shift();
  while (lines.length && !lines.at(-1)!.trim()) lines.pop();
  // join wrapped lines into paragraphs; keep list items and blank lines apart
  const out: string[] = [];
  for (const line of lines) {
    const t = line.trim();
    if (!t) out.push('');
    else if (out.length && out.at(-1) !== '' && !/^([-*]|\d+\.)\s/.test(t) && !/^`(closed|local|open)`/.test(t)) out[out.length - 1] += ` ${t}`;
    else out.push(t);
  }
  return out.join('\n');
}

/** Code without comments, on one line, single-spaced. */
function compact(code: string): string {
  let out = '';
  let i = 0;
  while (i < code.length) {
    const skipped = skipLiteral(code, i);
    if (skipped !== i) {
      const piece = code.slice(i, skipped);
      if (!piece.startsWith('//') && !piece.startsWith('/*')) out += piece;
      else out += ' ';
      i = skipped;
    } else out += code[i++];
  }
  return out
    .replace(/\s+/g, ' ')
    .replace(/([([{<]) /g, (m, b: string) => (b === '{' ? '{ ' : b))
    .replace(/ ([)\]>,;])/g, '$1')
    .replace(/,([)\]])/g, '$1')
    .trim();
}

// ------------------------------------------------------------------ exports of src/index.ts

interface ExportRef {
  name: string;
  /** The name in the source module (`export { a as b }`). */
  local: string;
  typeOnly: boolean;
  file: string;
}

function resolveModule(fromFile: string, spec: string): string {
  const base = join(dirname(fromFile), spec.replace(/\.js$/, ''));
  for (const candidate of [`${base}.ts`, join(base, 'index.ts')]) if (existsSync(candidate)) return candidate;
  throw new Error(`cannot resolve ${spec} from ${relative(ROOT, fromFile)}`);
}

/** Every `export { ... } from '...'` and `export type { ... } from '...'` of a file, in order. */
export function readExportList(indexFile = join(ROOT, 'src', 'index.ts')): ExportRef[] {
  const src = readFileSync(indexFile, 'utf8');
  const refs: ExportRef[] = [];
  for (const m of src.matchAll(/^export\s+(type\s+)?\{([^}]*)\}\s*from\s*['"]([^'"]+)['"]/gm)) {
    const file = resolveModule(indexFile, m[3]!);
    for (const raw of compact(m[2]!).split(',')) {
      const item = raw.trim();
      if (!item) continue;
      const typeOnly = Boolean(m[1]) || item.startsWith('type ');
      const [local, name] = item.replace(/^type\s+/, '').split(/\s+as\s+/);
      refs.push({ name: (name ?? local)!.trim(), local: local!.trim(), typeOnly, file });
    }
  }
  return refs;
}

// ------------------------------------------------------------------ declarations

type Kind = 'function' | 'class' | 'interface' | 'type' | 'const' | 'enum';

interface Member {
  doc?: string;
  signature: string;
}

interface Declaration {
  kind: Kind;
  /** The declaration's header: a function's signature, a class's `class X extends Y`, a type's text. */
  signature: string;
  doc?: string;
  members: Member[];
  /** For zod objects: the fields, their schema and their doc. */
  fields: { name: string; schema: string; doc?: string }[];
  abstract: boolean;
  extendsName?: string;
}

interface Symbol {
  name: string;
  file: string;
  decls: Declaration[];
}

/** The declarations named `name` at the top level of `file`, following re-exports and imports. */
function findDeclarations(file: string, name: string, seen = new Set<string>()): { file: string; decls: Declaration[] } {
  const key = `${file}#${name}`;
  if (seen.has(key)) throw new Error(`re-export cycle at ${key}`);
  seen.add(key);
  const src = readFileSync(file, 'utf8');
  const decls: Declaration[] = [];
  const re = new RegExp(`^export\\s+(?:declare\\s+)?(abstract\\s+)?(?:async\\s+)?(class|interface|type|function|const|let|enum)\\s+${name}\\b`, 'gm');
  for (const m of src.matchAll(re)) decls.push(readDeclaration(src, m.index, m[2] === 'let' ? 'const' : (m[2] as Kind), Boolean(m[1])));
  if (decls.length) return { file, decls };
  // `export type { Admission }` of an imported name, or `export { x } from './y.js'`
  const reexport = new RegExp(`^export\\s+(?:type\\s+)?\\{[^}]*\\b${name}\\b[^}]*\\}\\s*(?:from\\s*['"]([^'"]+)['"])?`, 'm').exec(src);
  let spec = reexport?.[1];
  if (reexport && !spec) {
    const imported = new RegExp(`^import\\s+(?:type\\s+)?\\{[^}]*\\b${name}\\b[^}]*\\}\\s*from\\s*['"]([^'"]+)['"]`, 'm').exec(src);
    spec = imported?.[1];
  }
  if (!spec) throw new Error(`${relative(ROOT, file)} declares no export named ${name}`);
  return findDeclarations(resolveModule(file, spec), name, seen);
}

function readDeclaration(src: string, start: number, kind: Kind, abstract: boolean): Declaration {
  const doc = docBefore(src, start);
  const base = { kind, doc, members: [] as Member[], fields: [] as Declaration['fields'], abstract };
  if (kind === 'function') {
    const paren = src.indexOf('(', start);
    const close = matching(src, paren);
    const body = scanTo(src, close + 1, '{;');
    return { ...base, signature: compact(src.slice(start, body)) };
  }
  if (kind === 'class' || kind === 'interface') {
    const open = scanTo(src, start, '{', { angles: true });
    const close = matching(src, open);
    const header = compact(src.slice(start, open));
    const extendsName = /\bextends\s+([\w.]+)/.exec(header)?.[1];
    return { ...base, signature: header, members: readMembers(src, open + 1, close, kind), ...(extendsName ? { extendsName } : {}) };
  }
  // type, const, enum: up to the `;` that ends the statement
  const end = scanTo(src, start, ';');
  const text = src.slice(start, end < 0 ? undefined : end + 1);
  const decl: Declaration = { ...base, signature: text.trim() };
  if (kind === 'const') {
    const object = /(?:\bz\.object|\.extend)\(\s*\{/.exec(text);
    if (object) {
      const open = start + object.index + object[0].length - 1;
      decl.fields = readFields(src, open + 1, matching(src, open));
    }
  }
  return decl;
}

const MODIFIERS = /^(?:(?:public|private|protected|static|readonly|async|abstract|override|declare|get|set)\s+)*/;

/** Public members of a class or interface body, with their doc comments. */
function readMembers(src: string, from: number, to: number, kind: 'class' | 'interface'): Member[] {
  const members: Member[] = [];
  let i = from;
  while (i < to) {
    while (i < to && /[\s;,]/.test(src[i]!)) i++;
    if (i >= to) break;
    const skipped = skipLiteral(src, i);
    if (skipped !== i) {
      i = skipped;
      continue;
    }
    const start = i;
    const doc = docBefore(src, start);
    const head = src.slice(start, Math.min(to, start + 200));
    const modifiers = MODIFIERS.exec(head)![0];
    const afterModifiers = head.slice(modifiers.length);
    const isPrivate = /\b(private|protected)\b/.test(modifiers) || afterModifiers.startsWith('#');
    let end: number;
    let signatureEnd: number;
    const nameMatch = /^(\[[^\]]*\]|[\w$]+)\s*[?!]?\s*/.exec(afterModifiers);
    const next = nameMatch ? afterModifiers[nameMatch[0].length] : undefined;
    if (kind === 'class' && (next === '(' || next === '<')) {
      // a method: parameters, an optional return type, then its body
      const paren = scanTo(src, start + modifiers.length + nameMatch![0].length, '(', { angles: true });
      const close = matching(src, paren);
      let k = close + 1;
      while (/\s/.test(src[k]!)) k++;
      if (src[k] === ':') {
        k++;
        while (/\s/.test(src[k]!)) k++;
        if (src[k] === '{') k = matching(src, k) + 1;
      }
      const body = scanTo(src, k, '{;', { end: to });
      signatureEnd = body;
      end = src[body] === '{' ? matching(src, body) + 1 : body + 1;
    } else {
      // a field (or an interface member): up to `;` (or the end of the line when it has none)
      const stop = scanTo(src, start, kind === 'interface' ? ';\n' : ';', { end: to });
      end = stop < 0 ? to : stop + 1;
      signatureEnd = stop < 0 ? to : stop;
    }
    if (!isPrivate && nameMatch) {
      let signature = compact(src.slice(start, signatureEnd));
      // a field's initializer is code, not API: keep it only when it is short (e.g. an error's code)
      const eq = kind === 'class' ? scanTo(signature, 0, '=') : -1;
      if (eq > 0 && signature[eq + 1] !== '>' && signature.length > 80) signature = signature.slice(0, eq).trim();
      members.push({ signature, ...(doc ? { doc } : {}) });
    }
    i = Math.max(end, start + 1);
  }
  return members;
}

/** Fields of a zod object literal: `/** doc *\/ name: schema,`. */
function readFields(src: string, from: number, to: number): Declaration['fields'] {
  const fields: Declaration['fields'] = [];
  let i = from;
  while (i < to) {
    while (i < to && /[\s,]/.test(src[i]!)) i++;
    if (i >= to) break;
    const skipped = skipLiteral(src, i);
    if (skipped !== i) {
      i = skipped;
      continue;
    }
    const start = i;
    const stop = scanTo(src, start, ',', { end: to, angles: false });
    const end = stop < 0 ? to : stop;
    const text = src.slice(start, end);
    const m = /^([\w$]+|'[^']*')\s*:\s*([\s\S]*)$/.exec(text.trim());
    if (m) {
      const doc = docBefore(src, start);
      fields.push({ name: m[1]!.replace(/'/g, ''), schema: compact(m[2]!), ...(doc ? { doc } : {}) });
    }
    i = end + 1;
  }
  return fields;
}

// ------------------------------------------------------------------ markdown

function anchor(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9_-]/g, '');
}

/** A doc comment's text as markdown: `{@link X}` becomes `X`. */
function prose(doc: string | undefined): string {
  return (doc ?? '').replace(/\{@link\s+([^}\s]+)\s*\}/g, '`$1`');
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n+/g, ' ');
}

function tsBlock(lines: string[]): string {
  return ['```ts', ...lines, '```'].join('\n');
}

function docLines(doc: string | undefined, indent = ''): string[] {
  if (!doc) return [];
  const text = doc.split('\n');
  if (text.length === 1 && text[0]!.length < 100) return [`${indent}/** ${text[0]} */`];
  return [`${indent}/**`, ...text.map((l) => `${indent} * ${l}`.trimEnd()), `${indent} */`];
}

function renderSymbol(sym: Symbol): string {
  const out: string[] = [`### ${sym.name}`, ''];
  const withDoc = sym.decls.find((d) => d.doc);
  if (withDoc?.doc) out.push(prose(withDoc.doc), '');
  for (const d of sym.decls) {
    if (d.kind === 'class' || d.kind === 'interface') {
      const body = d.members.flatMap((m) => [...docLines(m.doc, '  '), `  ${m.signature}${d.kind === 'interface' ? ';' : ''}`]);
      out.push(tsBlock([`${d.signature} {`, ...body, '}']), '');
    } else if (d.fields.length) {
      const base = /=\s*([A-Z]\w*)\.extend\(/.exec(d.signature)?.[1];
      out.push(`\`${compact(d.signature.split('=')[0]!)}\`: a zod schema; its fields${base ? ` are [${base}](#${anchor(base)})'s and` : ''}:`, '');
      out.push('| field | schema | meaning |', '|---|---|---|');
      for (const f of d.fields) out.push(`| \`${f.name}\` | \`${cell(f.schema.length > 90 ? `${f.schema.slice(0, 87)}...` : f.schema)}\` | ${cell(prose(f.doc))} |`);
      out.push('');
    } else if (d.kind === 'const' && d.signature.split('\n').length > 25) {
      // a long initializer is code, not API: its first line says what it is
      out.push(tsBlock([`${d.signature.split('\n')[0]} ...`]), '');
    } else {
      out.push(tsBlock([d.kind === 'function' ? d.signature : d.signature.replace(/^\s+$/gm, '')]), '');
    }
  }
  out.push(`Source: \`${relative(ROOT, sym.file)}\``, '');
  return out.join('\n');
}

/** The whole of docs/api.md, from the sources as they are now. */
export function generateApiDoc(): string {
  const refs = readExportList();
  const symbols = new Map<string, Symbol>();
  for (const ref of refs) {
    const found = findDeclarations(ref.file, ref.local);
    const sym = symbols.get(ref.name) ?? { name: ref.name, file: found.file, decls: [] };
    for (const d of found.decls) if (!sym.decls.some((x) => x.signature === d.signature)) sym.decls.push(d);
    symbols.set(ref.name, sym);
  }
  const all = [...symbols.values()];
  const isError = (s: Symbol) => s.decls.some((d) => d.kind === 'class' && (d.extendsName === 'SluiceError' || s.name === 'SluiceError')) || s.name === 'ErrorCode';
  const isSchema = (s: Symbol) => s.decls.some((d) => d.kind === 'const' && /=\s*(z\.|[A-Z]\w*\s*\n?\s*\.(extend|transform|union|object|default))|=\s*z$/m.test(d.signature.split('\n').slice(0, 3).join('\n')) || d.fields.length > 0);
  const groups: [string, Symbol[]][] = [
    ['Functions', all.filter((s) => s.decls[0]!.kind === 'function')],
    ['Classes', all.filter((s) => s.decls.some((d) => d.kind === 'class') && !isError(s))],
    ['Options, results and events (types)', all.filter((s) => s.decls.every((d) => d.kind === 'interface' || d.kind === 'type'))],
    ['Config schemas (zod: the schema is the type)', all.filter((s) => !isError(s) && isSchema(s))],
    ['Constants', all.filter((s) => s.decls.every((d) => d.kind === 'const') && !isSchema(s) && !isError(s))],
    ['Errors', all.filter(isError)],
  ];
  const placed = new Set(groups.flatMap(([, list]) => list));
  const rest = all.filter((s) => !placed.has(s));
  if (rest.length) groups.push(['Other', rest]);

  const lines = [
    '# API reference',
    '',
    '<!-- Generated by `npx tsx docs/generate-api.ts` from src/index.ts and the TSDoc of the symbols it exports. Do not edit: test/docs.test.ts fails when this page is out of date. -->',
    '',
    "Everything `import … from 'sluice'` offers: the export list of `src/index.ts`, each symbol with the doc comment of its declaration. " +
      'The README explains the ideas; [tuning](tuning.md) how to choose the numbers; [runbook](runbook.md) what to do when something goes wrong.',
    '',
    '## Contents',
    '',
  ];
  for (const [title, list] of groups) {
    if (!list.length) continue;
    lines.push(`- ${title}: ${list.map((s) => `[${s.name}](#${anchor(s.name)})`).join(', ')}`);
  }
  lines.push('');
  for (const [title, list] of groups) {
    if (!list.length) continue;
    lines.push(`## ${title}`, '');
    for (const s of list) lines.push(renderSymbol(s));
  }
  return `${lines.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const doc = generateApiDoc();
  if (process.argv.includes('--check')) {
    const current = existsSync(API_DOC_PATH) ? readFileSync(API_DOC_PATH, 'utf8') : '';
    if (current !== doc) {
      process.stderr.write('docs/api.md is out of date: run `npx tsx docs/generate-api.ts`\n');
      process.exit(1);
    }
    process.stdout.write('docs/api.md is up to date\n');
  } else {
    writeFileSync(API_DOC_PATH, doc);
    process.stdout.write(`wrote ${relative(ROOT, API_DOC_PATH)} (${doc.length} characters)\n`);
  }
}
