import type { z } from 'zod';
import { formatHostPort, type HostPort } from '../net/address.js';
import { formatDurationMs } from './duration.js';
import { defOf, isDurationSchema, unwrapSchema } from './schema-walk.js';
import { configSchema, type Config } from './schema.js';
import { redactedUrl } from './redact.js';

/**
 * The validated config in the file's own vocabulary: every duration as `5s` (found by
 * the schema, so a new duration field cannot be missed), addresses as `host:port`,
 * passwords masked.
 */
export function effectiveConfig(config: Config): unknown {
  return render(config, configSchema);
}

function render(value: unknown, schema: z.ZodType | undefined): unknown {
  const node = schema && unwrapSchema(schema, isDurationSchema);
  if (typeof value === 'number' && isDurationSchema(node)) return formatDurationMs(value);
  if (Array.isArray(value)) return value.map((item) => render(item, node && childOf(node, 'element', value)));
  if (isHostPort(value)) return formatHostPort(value);
  if (value !== null && typeof value === 'object') {
    // A password in the store URL is never printed (it belongs in cluster.passwordEnv).
    return Object.fromEntries(Object.entries(value).map(([name, inner]) => [name, name === 'store' && typeof inner === 'string' ? redactedUrl(inner) : render(inner, node && childOf(node, name, value))]));
  }
  return value;
}

/** The schema of a field (an object's key, or an array's element); of a union, the member of the value's shape. */
function childOf(node: z.ZodType, key: string, value: unknown): z.ZodType | undefined {
  const def = defOf(node);
  if (def.type === 'union') {
    const wanted = Array.isArray(value) ? 'array' : 'object';
    const member = def.options?.map((option) => unwrapSchema(option)).find((option) => defOf(option).type === wanted);
    return member && childOf(member, key, value);
  }
  return key === 'element' ? def.element : def.shape?.[key];
}

function isHostPort(value: unknown): value is HostPort {
  if (value === null || typeof value !== 'object') return false;
  const keys = Object.keys(value);
  return keys.length === 2 && 'host' in value && 'port' in value;
}
