// The CEL subset the chart tests use to run the chart's admission expressions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CelError, evalCel, parseCel } from './cel-subset.js';

const pod = {
  metadata: { labels: { app: 'web', 'pulltrace.io/track': 'false' } },
  spec: { readinessGates: [{ conditionType: 'a' }, { conditionType: 'b' }] },
};

test('operators, precedence and literals', () => {
  assert.equal(evalCel("1 + 2 == 3 && 'a' + 'b' == 'ab'", {}), true);
  assert.equal(evalCel('!true || false', {}), false);
  assert.equal(evalCel('true || false && false', {}), true, '&& binds tighter than ||');
  assert.equal(evalCel("false ? 'x' : true ? 'y' : 'z'", {}), 'y');
  assert.equal(evalCel("'ns' in ['a', 'ns']", {}), true);
  assert.equal(evalCel("size([1, 2]) > 1 && size('abc') == 3 && size({'k': 1}) == 1", {}), true);
  assert.equal(evalCel("'it\\'s'", {}), "it's");
});

test('fields, map keys, has() and macros', () => {
  const env = { object: pod };
  assert.equal(evalCel("object.metadata.labels['app'] == 'web'", env), true);
  assert.equal(evalCel("'pulltrace.io/track' in object.metadata.labels", env), true);
  assert.equal(evalCel('has(object.metadata.labels) && !has(object.metadata.annotations)', env), true);
  assert.equal(evalCel("object.spec.readinessGates.exists(g, g.conditionType == 'b')", env), true);
  assert.equal(evalCel("object.spec.readinessGates.all(g, g.conditionType == 'b')", env), false);
  assert.equal(evalCel("jsonpatch.escapeKey('pulltrace.io/x~y')", { jsonpatch: {} }), 'pulltrace.io~1x~0y');
});

test('missing fields and keys are errors, absorbed by a deciding && / ||', () => {
  const env = { object: pod };
  assert.throws(() => evalCel('object.metadata.annotations', env), CelError);
  assert.throws(() => evalCel("object.metadata.labels['nope']", env), /no such key: nope/);
  assert.equal(evalCel('object.metadata.annotations.x == 1 || true', env), true);
  assert.equal(evalCel('false && object.metadata.annotations.x == 1', env), false);
  assert.throws(() => evalCel('object.metadata.annotations.x == 1 || false', env), CelError);
  assert.throws(() => evalCel('nothing', env), /undeclared reference/);
});

test('object construction for JSONPatch and apply configurations', () => {
  assert.deepEqual(evalCel('[JSONPatch{op: "add", path: "/spec/x", value: Object.spec.x{a: 1}}]', {}), [
    { op: 'add', path: '/spec/x', value: { a: 1 } },
  ]);
  assert.deepEqual(evalCel('Object{metadata: Object.metadata{labels: {"k": "v"}}}', {}), {
    metadata: { labels: { k: 'v' } },
  });
});

test('syntax outside the subset is refused', () => {
  assert.throws(() => parseCel('a.b('), CelError);
  assert.throws(() => parseCel('1 +'), CelError);
  assert.throws(() => parseCel('a @ b'), /cannot read/);
  assert.throws(() => evalCel('matches("a", "b")', {}), /not supported/);
});
