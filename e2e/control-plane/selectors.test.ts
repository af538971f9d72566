import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError } from './api-error.js';
import {
  labelSelectorFromObject,
  matchFields,
  matchLabels,
  parseFieldSelector,
  parseLabelSelector,
} from './selectors.js';

const labels = { app: 'web', tier: 'front', 'pulltrace.io/tracked': 'true', n: '5' };

test('label selectors: every operator, against labels that have and lack the key', () => {
  const cases: [string, boolean][] = [
    ['', true],
    ['app=web', true],
    ['app==web', true],
    ['app=db', false],
    ['app!=db', true],
    ['app!=web', false],
    ['missing!=x', true],
    ['app in (db,web)', true],
    ['app in (db)', false],
    ['missing in (x)', false],
    ['app notin (db)', true],
    ['app notin (web, db)', false],
    ['missing notin (x)', true],
    ['pulltrace.io/tracked', true],
    ['missing', false],
    ['!missing', true],
    ['!app', false],
    ['app=', false],
    ['n>4', true],
    ['n<5', false],
    ['app=web,tier=front', true],
    ['app=web,tier=back', false],
    [' app = web , tier in ( front ) ', true],
  ];
  for (const [sel, want] of cases) {
    assert.equal(matchLabels(parseLabelSelector(sel), labels), want, sel);
  }
  assert.equal(matchLabels(parseLabelSelector('!app'), undefined), true);
});

test('label selectors: bad syntax and invalid keys/values are 400 BadRequest', () => {
  for (const sel of ['app in ()', 'a b', 'app=web,', 'bad key=x', 'app=a b', 'n>x', '-bad=x']) {
    assert.throws(
      () => parseLabelSelector(sel),
      (e: unknown) => e instanceof ApiError && e.code === 400,
      sel,
    );
  }
});

test('structured selectors (matchLabels, matchExpressions) match like their string form', () => {
  const sel = labelSelectorFromObject({
    matchLabels: { app: 'web' },
    matchExpressions: [
      { key: 'tier', operator: 'In', values: ['front', 'back'] },
      { key: 'gone', operator: 'DoesNotExist' },
    ],
  });
  assert.equal(matchLabels(sel, labels), true);
  assert.equal(matchLabels(sel, { ...labels, gone: '1' }), false);
  assert.throws(
    () => labelSelectorFromObject({ matchExpressions: [{ key: 'a', operator: 'Near' }] }),
    ApiError,
  );
});

test('field selectors: =, ==, != and escaped separators in values', () => {
  const reqs = parseFieldSelector('metadata.name=a\\,b,spec.nodeName==n1,status.phase!=Failed');
  assert.deepEqual(reqs, [
    { field: 'metadata.name', operator: '=', value: 'a,b' },
    { field: 'spec.nodeName', operator: '=', value: 'n1' },
    { field: 'status.phase', operator: '!=', value: 'Failed' },
  ]);
  const fields: Record<string, string> = {
    'metadata.name': 'a,b',
    'spec.nodeName': 'n1',
    'status.phase': 'Running',
  };
  assert.equal(
    matchFields(reqs, (f) => fields[f] ?? null),
    true,
  );
  assert.equal(
    matchFields(reqs, (f) => (f === 'status.phase' ? 'Failed' : (fields[f] ?? null))),
    false,
  );
  assert.throws(
    () => parseFieldSelector('novalue'),
    (e: unknown) => e instanceof ApiError && e.code === 400,
  );
  assert.throws(
    () => matchFields(parseFieldSelector('spec.unknown=x'), () => null),
    (e: unknown) =>
      e instanceof ApiError && e.code === 400 && e.message.includes('field label not supported'),
  );
});
