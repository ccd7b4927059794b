import type { z } from 'zod';
import { durationInput } from './fields.js';

/** What a walk over the zod config schema reads of a node's definition. */
export interface SchemaDef {
  readonly type: string;
  readonly innerType?: z.ZodType;
  readonly in?: z.ZodType;
  readonly out?: z.ZodType;
  readonly shape?: Record<string, z.ZodType>;
  readonly element?: z.ZodType;
  readonly options?: z.ZodType[];
}

export function defOf(node: z.ZodType): SchemaDef {
  return node._zod.def as SchemaDef;
}

const WRAPPERS: ReadonlySet<string> = new Set(['default', 'optional', 'nullable', 'readonly', 'catch', 'prefault']);

/**
 * The schema a field's value is checked against, past defaults, optionals and pipes: a
 * preprocess goes to the schema it feeds, a parse (string → host:port) to what it reads.
 * `stopAt`: a node to keep as it is (a duration, whose pipe is the field's identity).
 */
export function unwrapSchema(schema: z.ZodType, stopAt: (node: z.ZodType) => boolean = () => false): z.ZodType {
  let node = schema;
  for (;;) {
    if (stopAt(node)) return node;
    const def = defOf(node);
    if (WRAPPERS.has(def.type) && def.innerType) node = def.innerType;
    // A preprocess is a pipe from a transform into the real schema: follow the schema.
    else if (def.type === 'pipe' && def.in && defOf(def.in).type === 'transform' && def.out) node = def.out;
    else if (def.type === 'pipe' && def.in) node = def.in;
    else return node;
  }
}

/** Whether a node is a duration field (`duration`, or a pipe from it into bounds). */
export function isDurationSchema(node: z.ZodType | undefined): boolean {
  const def = node === undefined ? undefined : defOf(node);
  return def?.type === 'pipe' && (def.in === durationInput || isDurationSchema(def.in));
}
