import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as contract from '../common/contract.js';

const doc = readFileSync(new URL('./contract.md', import.meta.url), 'utf8');

/**
 * The exported keys of a module missing from `text`: every string (and string in an exported
 * array) must appear in backquotes; every number by its constant's name and its value.
 */
function undocumented(mod: Record<string, unknown>, text: string): { missing: string[]; checked: number } {
  const missing: string[] = [];
  let checked = 0;
  for (const [name, value] of Object.entries(mod)) {
    const values = typeof value === 'string' ? [value] : Array.isArray(value) ? (value as unknown[]) : [];
    for (const v of values) {
      checked++;
      if (typeof v !== 'string' || !text.includes(`\`${v}`)) missing.push(`${name}: ${String(v)}`);
    }
    if (typeof value === 'number') {
      checked++;
      if (!text.includes(`\`${name}\``) || !text.includes(String(value))) missing.push(`${name}: ${value}`);
    }
  }
  return { missing, checked };
}

test('every exported key of common/contract.ts is documented in docs/contract.md', () => {
  const { missing, checked } = undocumented(contract, doc);
  assert.deepEqual(missing, [], 'keys missing from docs/contract.md (in backquotes)');
  assert.ok(checked >= 30, `only ${checked} keys found: the check must read the module`);
});

test('the check catches a key, a phase or a bound that is not documented', () => {
  const extended = {
    ...contract,
    ANNOTATION_NEW: 'pulltrace.io/new-thing',
    PHASES: [...contract.PHASES, 'Teleporting'],
    MAX_NEW_THING: 987654,
  };
  assert.deepEqual(undocumented(extended, doc).missing, [
    'PHASES: Teleporting',
    'ANNOTATION_NEW: pulltrace.io/new-thing',
    'MAX_NEW_THING: 987654',
  ]);
});
