/**
 * Prints the top self-time functions of a V8 .cpuprofile (from `npm run bench -- --profile cpu`).
 *   node --import tsx bench/profile-top.ts bench/results/prof/<file>.cpuprofile [count]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
}

const [file, countText] = process.argv.slice(2);
if (file === undefined) throw new Error('usage: profile-top.ts <file.cpuprofile> [count]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const self = new Map<string, number>();
for (const id of profile.samples) {
  const frame = byId.get(id)?.callFrame;
  if (!frame) continue;
  const where = frame.url.replace(/^.*\/(node_modules|dist|src)\//, '$1/').replace(/^node:/, '');
  const key = `${frame.functionName || '(anonymous)'} ${where}:${frame.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + 1);
}
const total = profile.samples.length;
const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(countText ?? 30));
for (const [key, count] of top) process.stdout.write(`${((count / total) * 100).toFixed(1).padStart(5)}%  ${key}\n`);
