import { readFile } from 'node:fs/promises';
import { isMap, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { applyOverrides, type ConfigOverrides } from './overrides.js';
import { configSchema, type Config } from './schema.js';

/** Reads, parses and validates a YAML config file. Throws ConfigError naming file, line and field. */
export async function loadConfigFile(path: string, overrides: ConfigOverrides = {}): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(path, [`cannot read the file: ${reason}`]);
  }
  return parseConfigText(text, path, overrides);
}

export function parseConfigText(text: string, source: string, overrides: ConfigOverrides = {}): Config {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      source,
      document.errors.map((error) => {
        const position = error.linePos?.[0];
        const summary = (error.message.split('\n')[0] ?? error.message).replace(/ at line \d+, column \d+:?$/, '');
        return `${position ? `line ${position.line}: ` : ''}YAML syntax: ${summary}`;
      }),
    );
  }
  return validateConfig(applyOverrides(document.toJS() as unknown, overrides), source, (path) => lineOf(document, lineCounter, path));
}

/** Validates an already-parsed object (also used for overrides and tests). */
export function validateConfig(raw: unknown, source: string, lineFor: (path: PropertyKey[]) => number | undefined = () => undefined): Config {
  if (raw === null || raw === undefined) throw new ConfigError(source, ['the file is empty; expected listeners and pools']);
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  throw new ConfigError(source, result.error.issues.map((issue) => describeIssue(issue, lineFor)));
}

function describeIssue(issue: z.core.$ZodIssue, lineFor: (path: PropertyKey[]) => number | undefined): string {
  const path = issue.path;
  const field = formatPath(path);
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((key) => `"${key}"`).join(', ')} (not a setting here)`;
    const line = lineFor([...path, issue.keys[0] ?? '']);
    return `${line ? `line ${line}: ` : ''}${field || '(top level)'}: ${message}`;
  }
  const line = lineFor(path);
  return `${line ? `line ${line}: ` : ''}${field || '(top level)'}: ${message}`;
}

function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((part, index) => (typeof part === 'number' ? `[${part}]` : `${index === 0 ? '' : '.'}${String(part)}`))
    .join('');
}

/** The 1-based line of the deepest YAML node that exists along `path`. */
function lineOf(document: Document, lineCounter: LineCounter, path: PropertyKey[]): number | undefined {
  let node: unknown = document.contents;
  let offset: number | undefined = rangeStart(node);
  for (const part of path) {
    if (isMap(node)) {
      const pair = node.items.find((item) => (item.key as { value?: unknown } | null)?.value === part);
      if (!pair) break;
      offset = rangeStart(pair.key) ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof part === 'number') {
      node = node.items[part];
      offset = rangeStart(node) ?? offset;
    } else {
      break;
    }
  }
  return offset === undefined ? undefined : lineCounter.linePos(offset).line;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return range?.[0];
}
