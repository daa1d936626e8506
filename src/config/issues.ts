import type { z } from 'zod';

/** What a failed parse says to a person: the fields at fault, and one line per problem. */
export interface IssueReport {
  /** Dotted paths of the fields at fault (an unknown key is named itself, not the object holding it). */
  fields: string[];
  /** `field: what is wrong (received value)`, joined by `; `. */
  message: string;
}

export interface FormatIssuesOptions {
  /** Prefix of every path, e.g. `query` for a query string's fields. */
  base?: string;
  /** What the input itself is called when the issue is about all of it. Default `(root)`. */
  root?: string;
}

/** A received value for a message: JSON cut short so a huge payload cannot flood a log; never throws (BigInt, cycles). */
export function showValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)) ?? String(value);
  } catch {
    try {
      text = String(value);
    } catch {
      // a null-prototype object with a BigInt inside: neither JSON nor String can show it
      text = Object.prototype.toString.call(value);
    }
  }
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) value = value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  return value;
}

/**
 * The one formatter of zod issues in Sluice (config files, job payloads, admin requests): each
 * issue names its field and the value received. The value comes from the issue when zod reported
 * it (`reportInput`), else from `input` at the issue's path.
 */
export function formatIssues(error: z.ZodError, input?: unknown, options: FormatIssuesOptions = {}): IssueReport {
  const fields: string[] = [];
  const lines: string[] = [];
  const join = (path: readonly PropertyKey[]) => [...(options.base ? [options.base] : []), ...path.map(String)].join('.') || (options.root ?? '(root)');
  for (const issue of error.issues) {
    const raw = issue as { input?: unknown; discriminator?: string };
    // zod blames an unknown key on the object holding it; name the key, which is what the caller must fix
    if (issue.code === 'unrecognized_keys') {
      const at = issue.keys.map((k) => join([...issue.path, k]));
      for (const f of at) if (!fields.includes(f)) fields.push(f);
      lines.push(`${at.join(', ')}: ${issue.message}`);
      continue;
    }
    const at = join(issue.path);
    if (!fields.includes(at)) fields.push(at);
    let received = 'input' in raw ? raw.input : valueAt(input, issue.path);
    // for an unknown discriminator zod reports the whole object; its discriminator's value says more
    if (issue.code === 'invalid_union' && raw.discriminator && received !== null && typeof received === 'object') {
      received = (received as Record<string, unknown>)[raw.discriminator];
    }
    if (received === undefined && issue.code === 'invalid_type') {
      lines.push(`${at}: missing`);
      continue;
    }
    // zod's own wording names the received type; the value itself says more
    const stock = issue.code === 'invalid_type' && issue.message.startsWith('Invalid input');
    const what = stock ? `expected ${String(issue.expected)}` : issue.message;
    lines.push(`${at}: ${what} (received ${showValue(received)})`);
  }
  return { fields, message: lines.join('; ') };
}
