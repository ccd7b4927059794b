import type { z } from 'zod';
import { defOf, unwrapSchema } from './schema-walk.js';

/** The keys a strict object of `schema` allows at `path` (undefined when the path leads elsewhere). */
export function allowedKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] | undefined {
  let node = unwrapSchema(schema);
  for (const part of path) {
    const def = defOf(node);
    if (def.type === 'object' && typeof part === 'string' && def.shape?.[part]) node = unwrapSchema(def.shape[part]);
    else if (def.type === 'array' && typeof part === 'number' && def.element) node = unwrapSchema(def.element);
    else return undefined;
  }
  const def = defOf(node);
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : undefined;
}

/** The allowed key a typo most likely meant: a small edit distance, or a prefix of it. */
export function nearestKey(typo: string, candidates: readonly string[]): string | undefined {
  let best: { key: string; distance: number } | undefined;
  for (const key of candidates) {
    const distance = key.startsWith(typo) || typo.startsWith(key) ? Math.abs(key.length - typo.length) / 10 : editDistance(typo.toLowerCase(), key.toLowerCase());
    if (distance <= Math.max(1, Math.floor(key.length / 3)) && (!best || distance < best.distance)) best = { key, distance };
  }
  return best?.key;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

export interface RawProblem {
  readonly path: PropertyKey[];
  readonly message: string;
}

/**
 * Duplicate and unknown names, read from the raw document so they are reported together
 * with the schema's problems (the schema's own cross-checks only run on a valid shape).
 */
export function crossReferenceProblems(raw: unknown): RawProblem[] {
  const problems: RawProblem[] = [];
  const list = (value: unknown): Record<string, unknown>[] => (Array.isArray(value) ? value.filter((item): item is Record<string, unknown> => item !== null && typeof item === 'object') : []);
  const document = raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>) : {};
  const duplicates = (items: Record<string, unknown>[], base: PropertyKey[], what: string, suffix = ''): Set<string> => {
    const seen = new Set<string>();
    items.forEach((item, index) => {
      if (typeof item.name !== 'string') return;
      if (seen.has(item.name)) problems.push({ path: [...base, index, 'name'], message: `duplicate ${what} name "${item.name}"${suffix}` });
      seen.add(item.name);
    });
    return seen;
  };
  const pools = list(document.pools);
  const poolNames = duplicates(pools, ['pools'], 'pool');
  pools.forEach((pool, index) => duplicates(list(pool.servers), ['pools', index, 'servers'], 'server', ` in pool "${String(pool.name)}"`));
  const listeners = list(document.listeners);
  duplicates(listeners, ['listeners'], 'listener');
  listeners.forEach((listener, index) => {
    if (typeof listener.pool === 'string' && !poolNames.has(listener.pool)) {
      problems.push({ path: ['listeners', index, 'pool'], message: `unknown pool "${listener.pool}" (defined: ${[...poolNames].join(', ') || 'none'})` });
    }
  });
  return problems;
}
