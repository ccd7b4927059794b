import { z } from 'zod';
import { formatDurationMs } from './duration.js';
import { cidrInput, durationInput, hostPortInput } from './fields.js';
import { configSchema } from './schema.js';
import { isDurationSchema } from './schema-walk.js';

const DURATION = {
  anyOf: [
    { type: 'number', minimum: 0, description: 'milliseconds' },
    { type: 'string', pattern: '^(\\d+|\\d+(\\.\\d+)?(ms|s|m|h))$' },
  ],
  description: 'A duration: 250ms, 5s, 2m, 1h, or a number of milliseconds',
  examples: ['5s'],
};
const HOST_PORT = { type: 'string', pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[^\\s:\\[\\]]+):\\d{1,5}$', description: 'host:port, or [v6 address]:port', examples: ['127.0.0.1:22'] };
const CIDR = { type: 'string', description: 'A CIDR block (10.0.0.0/8, ::/0), or one address', examples: ['10.0.0.0/8'] };

/**
 * The config file's JSON Schema (draft 2020-12), generated from the zod schema that
 * validates it: editors check a config with it (yaml-language-server), `check-config
 * --schema` prints it, and config/schema.json is this, kept in step by a test.
 * It describes the input: durations and addresses as written, defaults as a file says them.
 */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, {
    io: 'input',
    unrepresentable: 'any',
    override: (context) => {
      const node = context.zodSchema as unknown as z.ZodType;
      const json = context.jsonSchema as Record<string, unknown>;
      const replace = (by: Record<string, unknown>): void => {
        delete json.type;
        Object.assign(json, by);
      };
      if (node === durationInput) replace(DURATION);
      else if (node === hostPortInput) replace(HOST_PORT);
      else if (node === cidrInput) replace(CIDR);
      const def = node._zod.def as { type: string; innerType?: z.ZodType; defaultValue?: unknown };
      // A default of a parsed field is its output (milliseconds, {host, port}): say it as a file would.
      if (def.type === 'default' && typeof def.defaultValue === 'number' && isDurationSchema(def.innerType)) json.default = formatDurationMs(def.defaultValue);
    },
  }) as Record<string, unknown>;
  return { $schema: schema.$schema, title: 'ssh-banner-proxy configuration', ...schema };
}
