// Every error code in the catalogue (common/errors.ts) is raised somewhere in the product code
// and explained in docs/troubleshooting.md; no code is documented that does not exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES } from '../common/errors.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

test('every error code is raised by the product and explained in troubleshooting.md', () => {
  const product = ['common', 'webhook', 'node-agent', 'cli']
    .flatMap((d) => sources(join(ROOT, d)))
    .filter((f) => !f.endsWith(join('common', 'errors.ts')))
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
  const doc = readFileSync(join(ROOT, 'docs', 'troubleshooting.md'), 'utf8');
  for (const code of Object.keys(ERROR_CODES)) {
    assert.ok(product.includes(`'${code}'`), `${code} is raised somewhere (or should leave the catalogue)`);
    assert.ok(doc.includes(`\`${code}\``), `${code} is explained in docs/troubleshooting.md`);
  }
  for (const m of doc.matchAll(/`(PT_[A-Z_]+)`/g)) {
    assert.ok(m[1] !== undefined && m[1] in ERROR_CODES, `${m[1]} documented but not in the catalogue`);
  }
});
