// The template-language subset used to render the chart in tests: each case is what Helm
// (Go text/template + Sprig) prints for the same template, so the chart tests can trust it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { goFloat, goStruct, semverCompare, TemplateError, TemplateSet } from './template-engine.js';

function run(source: string, data: unknown = {}): string {
  const set = new TemplateSet();
  set.add('t.yaml', source);
  return set.render('t.yaml', data);
}

test('text, fields and trim markers', () => {
  assert.equal(run('a: {{ .x }}\n', { x: 'b' }), 'a: b\n');
  assert.equal(run('a:\n  {{- .x }}\n', { x: ' b' }), 'a: b\n');
  assert.equal(run('{{ .x -}}\n\n  b', { x: 'a' }), 'ab');
  assert.equal(run('{{/* a comment */}}x{{- /* trimmed */ -}}\n y'), 'xy');
  assert.equal(run('{{ "}}" }}'), '}}', 'braces inside a string do not close the action');
  assert.equal(run('{{-3}}'), '-3', '{{-3}} is the number -3, not a trim marker');
});

test('Go truthiness, if/else if/else, with, range', () => {
  const t = '{{ if .a }}A{{ else if .b }}B{{ else }}C{{ end }}';
  assert.equal(run(t, { a: 1, b: true }), 'A');
  assert.equal(run(t, { a: 0, b: true }), 'B');
  assert.equal(run(t, { a: '', b: [] }), 'C');
  assert.equal(run(t, { a: {}, b: {} }), 'C', 'an empty map is false');
  assert.equal(run('{{ with .m }}{{ .k }}{{ else }}none{{ end }}', { m: { k: 'v' } }), 'v');
  assert.equal(run('{{ with .m }}{{ .k }}{{ else }}none{{ end }}', { m: null }), 'none');
  assert.equal(run('{{ range .l }}[{{ . }}]{{ end }}', { l: ['a', 'b'] }), '[a][b]');
  assert.equal(run('{{ range $k, $v := .m }}{{ $k }}={{ $v }};{{ end }}', { m: { b: 2, a: 1 } }), 'a=1;b=2;');
  assert.equal(run('{{ range .l }}x{{ else }}empty{{ end }}', { l: [] }), 'empty');
});

test('variables, $ and block scope', () => {
  assert.equal(run('{{ $x := .a }}{{ $x }}', { a: 'v' }), 'v');
  assert.equal(run('{{ range .l }}{{ $.p }}{{ . }} {{ end }}', { l: [1, 2], p: '#' }), '#1 #2 ');
  assert.throws(() => run('{{ if true }}{{ $x := 1 }}{{ end }}{{ $x }}'), /undefined variable \$x/);
  assert.equal(run('{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}'), '2');
});

test('define and include, with nindent and toYaml', () => {
  const set = new TemplateSet();
  set.add('_h.tpl', '{{- define "labels" -}}\na: {{ .a }}\nb: "2"\n{{- end -}}');
  set.add(
    't.yaml',
    'metadata:\n  labels:\n    {{- include "labels" . | nindent 4 }}\nspec: {{ toYaml .s | nindent 2 }}',
  );
  assert.equal(
    set.render('t.yaml', { a: 'x', s: { z: 1, b: [true, 'on'] } }),
    'metadata:\n  labels:\n    a: x\n    b: "2"\nspec: \n  b:\n    - true\n    - "on"\n  z: 1',
  );
});

test('numbers are printed as Go prints float64 values and int64 literals', () => {
  assert.equal(run('{{ .n }}', { n: 2 }), '2');
  assert.equal(run('{{ .n }}', { n: 1_000_000 }), '1e+06', 'Helm prints values this large in exponent form');
  assert.equal(run('{{ int64 .n }}', { n: 1_000_000 }), '1000000');
  assert.equal(run('{{ .n | quote }}', { n: 2_500_000 }), '"2.5e+06"');
  assert.equal(goFloat(123456), '123456');
  assert.equal(goFloat(0.5), '0.5');
  assert.equal(goFloat(0.00001), '1e-05');
});

test('eq refuses values of different kinds, as Go templates do', () => {
  assert.equal(run('{{ eq .s "a" }}', { s: 'a' }), 'true');
  assert.equal(run('{{ eq .s "b" "a" }}', { s: 'a' }), 'true', 'eq with several candidates');
  assert.throws(() => run('{{ eq .n 2 }}', { n: 2 }), /incompatible types for comparison \(float and int\)/);
  assert.throws(() => run('{{ eq .b "true" }}', { b: true }), /incompatible types/);
  assert.equal(run('{{ eq (toString .b) "true" }}', { b: true }), 'true');
  assert.equal(run('{{ eq .missing "x" }}', {}), 'false', 'nil compares unequal without an error');
});

test('and/or short-circuit and return an operand', () => {
  assert.equal(run('{{ or .a .b "c" }}', { a: '', b: 'b' }), 'b');
  assert.equal(
    run('{{ and .a .x.y }}', { a: false, x: null }),
    'false',
    'the second operand is not evaluated',
  );
  assert.throws(() => run('{{ and true .x.y }}', { x: null }), /nil pointer evaluating/);
});

test('missing map keys are empty; fields of nil and missing struct fields are errors', () => {
  assert.equal(run('[{{ .a }}]', {}), '[]', '<no value> is removed, as Helm does');
  assert.throws(() => run('{{ .a.b }}', {}), /nil pointer evaluating \.a\.b/);
  assert.throws(
    () => run('{{ .Release.Nmae }}', { Release: goStruct({ Name: 'r' }) }),
    /can't evaluate field Nmae/,
  );
  assert.throws(() => run('{{ .m }}', { m: { a: 1 } }), /printing a map directly/);
});

test('Sprig functions the chart uses', () => {
  const cases: [string, unknown, string][] = [
    ['{{ default "d" .v }}', { v: '' }, 'd'],
    ['{{ .v | default "d" }}', { v: 'x' }, 'x'],
    ['{{ printf "%s-%s" "a" "b" | trunc 3 | trimSuffix "-" }}', {}, 'a-b'],
    ['{{ "abcdef" | trunc 63 }}', {}, 'abcdef'],
    ['{{ contains "trace" "pulltrace-x" }}', {}, 'true'],
    ['{{ join "," .l }}', { l: ['a', 'b'] }, 'a,b'],
    ['{{ toJson (uniq (concat .l (list "b" "c"))) }}', { l: ['a', 'b'] }, '["a","b","c"]'],
    ['{{ dir "/run/containerd/containerd.sock" }}', {}, '/run/containerd'],
    ['{{ ternary "y" "n" true }}', {}, 'y'],
    ['{{ kindIs "invalid" .v }}', { v: null }, 'true'],
    ['{{ kindIs "invalid" .v }}', { v: 0 }, 'false'],
    ['{{ replace "+" "_" "1.0+x" }}', {}, '1.0_x'],
    ['{{ printf "%v" (int64 .p) }}', { p: 8443 }, '8443'],
    ['{{ toYaml .v }}', { v: {} }, '{}'],
  ];
  for (const [tpl, data, want] of cases) {
    assert.equal(run(tpl, data), want, tpl);
  }
  assert.throws(() => run('{{ required "need x" .x }}', {}), /need x/);
  assert.throws(() => run('{{ fail "stop here" }}'), /t\.yaml:1: stop here/);
  assert.throws(() => run('{{ nosuch 1 }}'), /function "nosuch" is not supported/);
});

test('Capabilities-style methods and semverCompare', () => {
  const data = { Capabilities: goStruct({ APIVersions: goStruct({ Has: (v: unknown) => v === 'a/v1' }) }) };
  assert.equal(run('{{ .Capabilities.APIVersions.Has "a/v1" }}', data), 'true');
  assert.equal(run('{{ .Capabilities.APIVersions.Has "b/v1" }}', data), 'false');
  assert.equal(semverCompare('>=1.28-0', 'v1.33.0'), true);
  assert.equal(semverCompare('>=1.28-0', 'v1.28.2-gke.100'), true);
  assert.equal(
    semverCompare('>=1.28', 'v1.28.2-gke.100'),
    false,
    'a prerelease needs a prerelease constraint',
  );
  assert.equal(semverCompare('>=1.28-0, <1.30-0', 'v1.30.1'), false);
});

test('unsupported syntax and unbalanced blocks are reported with file and line', () => {
  assert.throws(
    () => run('a\n{{ if .x }}'),
    (err: unknown) => err instanceof TemplateError && /t\.yaml:2: if is never closed/.test(err.message),
  );
  assert.throws(() => run('{{ end }}'), /end without a block/);
  assert.throws(() => run('{{ template "x" . }}'), /not supported \(use include\)/);
  assert.throws(() => run('{{ .a'), /unclosed action/);
});
