// Arrows point down: a module imports only from its own layer or the layers below it
// (docs/architecture.md). Read from the sources themselves, static and dynamic imports alike.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

/** Each top-level folder (or file) of src/ and its layer: a module may import its own layer and lower ones. */
const LAYERS: Readonly<Record<string, number>> = {
  net: 0,
  protocol: 0,
  stats: 0,
  'errors.ts': 0,
  'ticket.ts': 0,
  'version.ts': 0,
  events: 1,
  config: 1,
  backend: 2,
  discovery: 2,
  proxy: 3,
  store: 4,
  observe: 5,
  systemd: 5,
  diagnose: 5,
  loadtest: 6,
  'runtime.ts': 6,
  cluster: 7,
  demo: 7,
  cli: 8,
  'cli.ts': 8,
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

const layerOf = (file: string): string => (path.relative(SRC, file).split(path.sep)[0] ?? '').replace(/\.js$/, '.ts');

test('every import in src/ points to its own layer or a lower one', () => {
  const upward: string[] = [];
  const files = sources(SRC);
  for (const file of files) {
    const from = layerOf(file);
    assert.ok(from in LAYERS, `src/${from} has no layer here: give it one`);
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/(?:from\s+|import\(\s*)'(\.{1,2}\/[^']+)'/g)) {
      const target = layerOf(path.resolve(path.dirname(file), match[1] ?? ''));
      if (target === from) continue;
      const arrow = `${path.relative(SRC, file)} -> ${target}`;
      if ((LAYERS[target] ?? Infinity) > (LAYERS[from] ?? -1)) upward.push(arrow);
    }
  }
  assert.ok(files.length > 100, `read ${files.length} files`);
  assert.deepEqual(upward, []);
});
