import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import {
  envName,
  intParser,
  option,
  parseDuration,
  parseHostPort,
  parseList,
  readBooleanEnv,
} from './options.js';

test('envName maps a flag to its PULLTRACE_ variable', () => {
  assert.equal(envName('--tls-cert'), 'PULLTRACE_TLS_CERT');
  assert.equal(envName('--readiness-gate-namespaces'), 'PULLTRACE_READINESS_GATE_NAMESPACES');
});

test('parseHostPort', async (t) => {
  const ok: [string, string, number][] = [
    ['0.0.0.0:8443', '0.0.0.0', 8443],
    ['127.0.0.1:0', '127.0.0.1', 0],
    ['[::1]:9090', '::1', 9090],
    [':8080', '0.0.0.0', 8080],
    ['localhost:1', 'localhost', 1],
  ];
  for (const [input, host, port] of ok) {
    await t.test(input, () => assert.deepEqual(parseHostPort(input), { host, port }));
  }
  for (const bad of ['8443', '1.2.3.4:70000', 'host:', 'host:abc', '']) {
    await t.test(`rejects "${bad}"`, () => assert.throws(() => parseHostPort(bad), /HOST:PORT/));
  }
});

test('parseDuration', async (t) => {
  const ok: [string, number][] = [
    ['30s', 30_000],
    ['1m30s', 90_000],
    ['500ms', 500],
    ['2h', 7_200_000],
    ['1.5s', 1500],
  ];
  for (const [input, ms] of ok) await t.test(input, () => assert.equal(parseDuration(input), ms));
  for (const bad of ['', '30', 's', '1x', '1m 30s', '-1s']) {
    await t.test(`rejects "${bad}"`, () => assert.throws(() => parseDuration(bad), /duration/));
  }
});

test('intParser bounds', () => {
  const p = intParser(1, 10);
  assert.equal(p('5'), 5);
  assert.throws(() => p('0'), /1 to 10/);
  assert.throws(() => p('11'), /1 to 10/);
  assert.throws(() => p('2.5'), /whole number/);
  assert.throws(() => p(''), /whole number/);
});

test('parseList drops blanks', () => {
  assert.deepEqual(parseList(' a, b,,c ,'), ['a', 'b', 'c']);
  assert.deepEqual(parseList(''), []);
});

test("readBooleanEnv reads a boolean flag's env var as true/false, and refuses junk", () => {
  const make = () => new Command().exitOverride().addOption(option('--watch', 'keep going').default(false));
  const run = (value: string | undefined) => {
    const cmd = make();
    if (value === undefined) delete process.env.PULLTRACE_WATCH;
    else process.env.PULLTRACE_WATCH = value;
    try {
      cmd.parse([], { from: 'user' });
      readBooleanEnv(cmd);
      return cmd.opts<{ watch: boolean }>().watch;
    } finally {
      delete process.env.PULLTRACE_WATCH;
    }
  };
  assert.equal(run(undefined), false);
  assert.equal(run('false'), false);
  assert.equal(run('0'), false);
  assert.equal(run('true'), true);
  assert.equal(run('yes'), true);
  assert.throws(() => run('maybe'), /PULLTRACE_WATCH must be true or false/);
});
