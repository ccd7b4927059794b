import { readFile } from 'node:fs/promises';
import { isMap, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { applyOverrides, ENV_PREFIX, type ConfigOverrides } from './overrides.js';
import { allowedKeysAt, crossReferenceProblems, nearestKey } from './problems.js';
import { configSchema, type Config } from './schema.js';

/** Reads, parses and validates a YAML config file. Throws ConfigError naming file, line and field. */
export async function loadConfigFile(path: string, overrides: ConfigOverrides = {}): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigError(path, [`no such file (working directory ${process.cwd()})`], 'file not found');
    if (code === 'EISDIR') throw new ConfigError(path, ['it is a directory; name the YAML file in it'], 'not a file');
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(path, [reason], 'cannot read the file');
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
  const fromFlag = overriddenBy(overrides);
  const where = (path: PropertyKey[]): string => {
    const flag = fromFlag(path);
    if (flag) return `${flag} (command line or ${ENV_PREFIX}${flag.slice(2).toUpperCase().replaceAll('-', '_')}): `;
    const line = lineOf(document, lineCounter, path);
    return line ? `line ${line}: ` : '';
  };
  return validateConfig(applyOverrides(document.toJS() as unknown, overrides), source, where);
}

/** Validates an already-parsed object (also used for overrides and tests). `where` prefixes a problem with its place. */
export function validateConfig(raw: unknown, source: string, where: (path: PropertyKey[]) => string = () => ''): Config {
  if (raw === null || raw === undefined) throw new ConfigError(source, ['the file is empty; expected listeners and pools']);
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => describeIssue(issue, where));
  // Duplicate and unknown names too, in the same report (the schema checks them only on a valid shape).
  for (const problem of crossReferenceProblems(raw)) {
    const text = `${where(problem.path)}${formatPath(problem.path)}: ${problem.message}`;
    if (!problems.includes(text)) problems.push(text);
  }
  throw new ConfigError(source, byLine(problems));
}

/** Problems in the order of the file: by line, those of flags and of no line first (a stable sort keeps the rest in place). */
function byLine(problems: readonly string[]): string[] {
  const lineOf = (problem: string): number => Number(/^line (\d+): /.exec(problem)?.[1] ?? 0);
  return [...problems].sort((a, b) => lineOf(a) - lineOf(b));
}

function describeIssue(issue: z.core.$ZodIssue, where: (path: PropertyKey[]) => string): string {
  const path = issue.path;
  const field = formatPath(path);
  if (issue.code === 'unrecognized_keys') {
    const allowed = allowedKeysAt(configSchema, path) ?? [];
    const keys = issue.keys.map((key) => {
      const guess = nearestKey(key, allowed);
      return `"${key}"${guess ? ` (did you mean "${guess}"?)` : ''}`;
    });
    const message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${keys.join(', ')} (not a setting here)`;
    return `${where([...path, issue.keys[0] ?? ''])}${field || '(top level)'}: ${message}`;
  }
  return `${where(path)}${field || '(top level)'}: ${issue.message}`;
}

/** Which flag set the value at a path, if a flag did (its problems are the flag's, not the file's). */
function overriddenBy(overrides: ConfigOverrides): (path: PropertyKey[]) => string | undefined {
  const flags: [PropertyKey[], string][] = [];
  if (overrides.listen !== undefined) flags.push([['listeners', 0, 'bind'], '--listen']);
  if (overrides.admin !== undefined) flags.push([['admin'], '--admin']);
  if (overrides.logLevel !== undefined) flags.push([['log', 'level'], '--log-level']);
  return (path) => flags.find(([prefix]) => prefix.every((part, index) => path[index] === part))?.[1];
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
