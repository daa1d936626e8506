/**
 * Tiny readers for untyped JSON. TikTok's payloads change shape between versions and between
 * camelCase / snake_case endpoints, so every reader here tolerates a missing or mistyped key
 * and returns undefined instead of throwing.
 */

export type JsonRecord = Record<string, unknown>;

export function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `obj[key]` when obj is a record, else undefined. */
export function field(obj: unknown, key: string): unknown {
  return isRecord(obj) ? obj[key] : undefined;
}

/** Follows a path of keys; undefined as soon as one step is missing. */
export function path(obj: unknown, ...keys: string[]): unknown {
  let cur = obj;
  for (const key of keys) cur = field(cur, key);
  return cur;
}

/** First non-empty string among the given keys. */
export function str(obj: unknown, ...keys: string[]): string | undefined {
  for (const key of keys) {
    const v = field(obj, key);
    if (typeof v === 'string' && v !== '') return v;
  }
  return undefined;
}

/** First finite number among the given keys; numeric strings count (statsV2 sends strings). */
export function num(obj: unknown, ...keys: string[]): number | undefined {
  for (const key of keys) {
    const v = field(obj, key);
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  }
  return undefined;
}

/** First boolean-ish among the given keys: search endpoints send `has_more` as 0/1. */
export function bool(obj: unknown, ...keys: string[]): boolean | undefined {
  for (const key of keys) {
    const v = field(obj, key);
    if (typeof v === 'boolean') return v;
    if (v === 0 || v === 1) return v === 1;
  }
  return undefined;
}

/** First array among the given keys. */
export function arr(obj: unknown, ...keys: string[]): unknown[] | undefined {
  for (const key of keys) {
    const v = field(obj, key);
    if (Array.isArray(v)) return v;
  }
  return undefined;
}

/** JSON.parse that returns undefined instead of throwing. */
export function tryParseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
