import { formatHostPort, type HostPort } from '../net/address.js';
import { formatDurationMs } from './duration.js';
import type { Config } from './schema.js';
import { redactedUrl } from './redact.js';

const DURATION_KEYS = new Set(['connect', 'banner', 'setup', 'clientIdle', 'fin', 'drain', 'interval', 'timeout', 'grace', 'maxHold', 'backoff', 'maxBackoff', 'maxAge', 'after', 'every', 'leaseTtl', 'acquireTimeout']);

/** The validated config in the file's own vocabulary: durations as `5s`, addresses as `host:port`, passwords masked. */
export function effectiveConfig(config: Config): unknown {
  return render(config, undefined);
}

function render(value: unknown, key: string | undefined): unknown {
  if (Array.isArray(value)) return value.map((item) => render(item, undefined));
  if (isHostPort(value)) return formatHostPort(value);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([name, inner]) => [name, render(inner, name)]));
  }
  if (typeof value === 'number' && key !== undefined && DURATION_KEYS.has(key)) return formatDurationMs(value);
  // A password in the store URL is never printed (it belongs in cluster.passwordEnv).
  if (key === 'store' && typeof value === 'string') return redactedUrl(value);
  return value;
}

function isHostPort(value: unknown): value is HostPort {
  if (value === null || typeof value !== 'object') return false;
  const keys = Object.keys(value);
  return keys.length === 2 && 'host' in value && 'port' in value;
}
