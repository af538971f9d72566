// `npm run bench [-- name ...]`: runs each benchmark in bench/*.bench.ts (or the named ones)
// and prints its figures. Each benchmark compares against a baseline measured in the same
// run (ratios), because these machines are noisy.
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';

export interface Benchmark {
  /** Runs the benchmark and prints its figures; resolves when done. */
  run(): Promise<void>;
}

const dir = fileURLToPath(new URL('.', import.meta.url));
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => wanted.length === 0 || wanted.includes(f.replace(/\.bench\.ts$/, '')))
  .sort();
if (files.length === 0) {
  console.error(`no benchmark matches ${wanted.join(', ') || '(any)'}`);
  process.exit(1);
}
for (const f of files) {
  console.log(`\n=== ${f.replace(/\.bench\.ts$/, '')}`);
  const mod = (await import(pathToFileURL(join(dir, f)).href)) as Benchmark;
  await mod.run();
}
