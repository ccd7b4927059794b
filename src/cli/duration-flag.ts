import { parseDurationMs } from '../config/duration.js';

/**
 * Every duration flag goes through here, with the config file's syntax: `250ms`, `5s`,
 * `2m`, `1h`. A bare number keeps the unit the flag always had (`ms` for timeouts,
 * `s` for `--duration`, `--hold` and `--banner-delay`), so old command lines mean the
 * same. Used as a yargs `coerce`: the command receives milliseconds.
 */
export function durationFlag(name: string, bareUnit: 'ms' | 's', options: { readonly min?: number } = {}): (value: unknown) => number {
  return (value: unknown): number => {
    const text = String(value).trim();
    const ms = /^\d+(\.\d+)?$/.test(text) ? Math.round(Number(text) * (bareUnit === 's' ? 1000 : 1)) : parseDurationMs(text);
    if (ms === undefined) throw new Error(`--${name} "${text}" is not a duration (e.g. 1500ms, 30s, 2m; a bare number is ${bareUnit === 's' ? 'seconds' : 'milliseconds'})`);
    if (ms < (options.min ?? 0)) throw new Error(`--${name} must be at least ${options.min ?? 0}ms`);
    return ms;
  };
}
