import { readFileSync } from 'node:fs';

/** The package version, read once from package.json (one level above src/ and dist/). */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** The config shipped with the package, used when no --config is given. */
export const DEFAULT_CONFIG_PATH = new URL('../config/default.yaml', import.meta.url).pathname;
