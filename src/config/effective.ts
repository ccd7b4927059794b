import type { z } from 'zod';
import { formatHostPort, type HostPort } from '../net/address.js';
import { formatDurationMs } from './duration.js';
import { durationInput } from './fields.js';
import { configSchema, type Config } from './schema.js';
import { redactedUrl } from './redact.js';

type Def = { type: string; innerType?: z.ZodType; in?: z.ZodType; out?: z.ZodType; shape?: Record<string, z.ZodType>; element?: z.ZodType; options?: z.ZodType[] };

/**
 * The validated config in the file's own vocabulary: every duration as `5s` (found by
 * the schema, so a new duration field cannot be missed), addresses as `host:port`,
 * passwords masked.
 */
export function effectiveConfig(config: Config): unknown {
  return render(config, configSchema);
}

function render(value: unknown, schema: z.ZodType | undefined): unknown {
  const node = schema && unwrap(schema);
  if (typeof value === 'number' && node && isDuration(node)) return formatDurationMs(value);
  if (Array.isArray(value)) return value.map((item) => render(item, node && childOf(node, 'element', value)));
  if (isHostPort(value)) return formatHostPort(value);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([name, inner]) => [name, name === 'store' && typeof inner === 'string' ? redactedUrl(inner) : render(inner, node && childOf(node, name, value))]));
  }
  return value;
}

/** The schema of a field (an object's key, or an array's element); of a union, the member of the value's shape. */
function childOf(node: z.ZodType, key: string, value: unknown): z.ZodType | undefined {
  const def = node._zod.def as Def;
  if (def.type === 'union') {
    const wanted = Array.isArray(value) ? 'array' : 'object';
    const member = def.options?.map(unwrap).find((option) => (option._zod.def as Def).type === wanted);
    return member && childOf(member, key, value);
  }
  return key === 'element' ? def.element : def.shape?.[key];
}

function unwrap(schema: z.ZodType): z.ZodType {
  let node = schema;
  for (;;) {
    const def = node._zod.def as Def;
    if (['default', 'optional', 'nullable', 'readonly', 'catch', 'prefault'].includes(def.type) && def.innerType) node = def.innerType;
    else if (def.type === 'pipe' && !isDuration(node) && def.out && (def.out._zod.def as Def).type !== 'transform') node = def.out;
    else if (def.type === 'pipe' && !isDuration(node) && def.in) node = def.in;
    else return node;
  }
}

function isDuration(node: z.ZodType | undefined): boolean {
  const def = node?._zod.def as Def | undefined;
  return def?.type === 'pipe' && (def.in === durationInput || isDuration(def.in));
}

function isHostPort(value: unknown): value is HostPort {
  if (value === null || typeof value !== 'object') return false;
  const keys = Object.keys(value);
  return keys.length === 2 && 'host' in value && 'port' in value;
}
