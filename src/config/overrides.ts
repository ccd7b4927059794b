/** The environment prefix of flags: SSH_BANNER_PROXY_LOG_LEVEL sets --log-level. */
export const ENV_PREFIX = 'SSH_BANNER_PROXY_';

/** Scalar settings that CLI flags and SSH_BANNER_PROXY_* env vars may override. */
export interface ConfigOverrides {
  readonly logLevel?: string | undefined;
  readonly listen?: string | undefined;
  readonly admin?: string | undefined;
  readonly workers?: string | number | undefined;
}

/**
 * Applies overrides to the raw (pre-validation) document so they pass through the
 * same schema and give the same field-named errors as the file would.
 */
export function applyOverrides(raw: unknown, overrides: ConfigOverrides): unknown {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  const next = structuredClone(raw) as Record<string, unknown>;
  if (overrides.logLevel !== undefined) {
    next.log = { ...asObject(next.log), level: overrides.logLevel };
  }
  if (overrides.listen !== undefined && Array.isArray(next.listeners)) {
    const first: unknown = next.listeners[0];
    if (first !== null && typeof first === 'object') (first as Record<string, unknown>).bind = overrides.listen;
  }
  if (overrides.admin !== undefined) {
    if (overrides.admin === 'off') delete next.admin;
    else next.admin = { bind: overrides.admin };
  }
  if (overrides.workers !== undefined) {
    next.workers = overrides.workers === 'auto' ? 'auto' : Number(overrides.workers);
  }
  return next;
}

function asObject(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}
