import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { isCode } from './errors.js';
import {
  ConfigError,
  addFields,
  durationParser,
  envName,
  fieldProblem,
  intParser,
  parseBool,
  parseDuration,
  parseHostPort,
  parseList,
  parseLogLevel,
  parseText,
  readCommand,
  type Fields,
  type HostPort,
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

interface Demo {
  server: { listen: HostPort; name: string };
  poll: { intervalMs: number; burst: number };
  watch: boolean;
  level: string;
  /** Optional: left to the component's default, so no flag. */
  extra?: number;
}

const DEMO: Fields<Demo> = {
  server: {
    listen: { flags: '--listen <host:port>', help: 'listener', default: ':8080', parse: parseHostPort },
    name: { flags: '--name <name>', help: 'required name', parse: parseText },
  },
  poll: {
    intervalMs: {
      flags: '--interval <duration>',
      help: 'poll',
      default: '1s',
      parse: durationParser(100, '100ms'),
    },
    burst: { flags: '--burst <n>', help: 'burst', default: '10', parse: intParser(1) },
  },
  watch: { flags: '--watch', help: 'keep going', default: 'false', parse: parseBool },
  level: { flags: '--level <level>', help: 'level', default: 'info', parse: parseLogLevel },
};

/** Parses `argv` with `env` set, as a program does; returns the config or the ConfigError. */
function read(argv: string[], env: Record<string, string> = {}): Demo | ConfigError {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const cmd = addFields(new Command('demo'), DEMO).exitOverride();
    cmd.parse(argv, { from: 'user' });
    return readCommand<Demo>(cmd, DEMO);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  } finally {
    for (const k of Object.keys(env)) {
      if (saved[k] === undefined) Reflect.deleteProperty(process.env, k);
      else process.env[k] = saved[k];
    }
  }
}

test('a field tree gives options with their env vars and defaults, and a nested config', () => {
  const options = addFields(new Command(), DEMO).options;
  assert.deepEqual(
    options.map((o) => [o.long, o.envVar, o.defaultValueDescription]),
    [
      ['--listen', 'PULLTRACE_LISTEN', ':8080'],
      ['--name', 'PULLTRACE_NAME', undefined],
      ['--interval', 'PULLTRACE_INTERVAL', '1s'],
      ['--burst', 'PULLTRACE_BURST', '10'],
      ['--watch', 'PULLTRACE_WATCH', 'false'],
      ['--level', 'PULLTRACE_LEVEL', 'info'],
    ],
  );
  assert.deepEqual(read(['--name', 'n']), {
    server: { listen: { host: '0.0.0.0', port: 8080 }, name: 'n' },
    poll: { intervalMs: 1000, burst: 10 },
    watch: false,
    level: 'info',
  });
});

test('env vars fill fields, flags win over them', () => {
  const c = read(['--burst', '3'], {
    PULLTRACE_NAME: 'from-env',
    PULLTRACE_BURST: '7',
    PULLTRACE_INTERVAL: '2s',
  });
  assert.ok(!(c instanceof ConfigError));
  assert.equal(c.server.name, 'from-env');
  assert.equal(c.poll.burst, 3);
  assert.equal(c.poll.intervalMs, 2000);
});

test("a switch's env var is read as true/false, and junk in it is refused", () => {
  const watch = (value: string) => {
    const c = read(['--name', 'n'], { PULLTRACE_WATCH: value });
    return c instanceof ConfigError ? c.lines().join() : c.watch;
  };
  assert.equal(watch('false'), false);
  assert.equal(watch('0'), false);
  assert.equal(watch('true'), true);
  assert.equal(watch('yes'), true);
  assert.equal(watch(''), true, 'set but empty: on, as commander has it');
  assert.match(
    String(watch('maybe')),
    /--watch \(PULLTRACE_WATCH\): must be true or false.*from PULLTRACE_WATCH/,
  );
  const cli = read(['--name', 'n', '--watch']);
  assert.ok(!(cli instanceof ConfigError) && cli.watch);
});

test('every bad field is reported at once, in one PT_CONFIG_INVALID error, one line each', () => {
  const err = read(['--listen', 'nowhere', '--interval', '10ms', '--level', 'loud'], {
    PULLTRACE_BURST: '0',
  });
  assert.ok(err instanceof ConfigError);
  assert.ok(isCode(err, 'PT_CONFIG_INVALID'));
  assert.deepEqual(
    err.problems.map((p) => p.path),
    ['server.listen', 'server.name', 'poll.intervalMs', 'poll.burst', 'level'],
  );
  assert.deepEqual(err.lines(), [
    '--listen (PULLTRACE_LISTEN): expected HOST:PORT (e.g. 0.0.0.0:8443), got "nowhere"',
    '--name (PULLTRACE_NAME): is required',
    '--interval (PULLTRACE_INTERVAL): must be at least 100ms, got "10ms"',
    `--burst (PULLTRACE_BURST): expected a whole number from 1 to ${Number.MAX_SAFE_INTEGER}, got "0" (from PULLTRACE_BURST)`,
    '--level (PULLTRACE_LEVEL): expected one of trace, debug, info, warn, error, fatal, silent, got "loud"',
  ]);
  assert.match(
    err.message,
    /^invalid configuration: --listen .*; --name .*; --interval .*; --burst .*; --level /,
  );
});

test('a blank required field is missing; fieldProblem names a field found bad later', () => {
  const err = read(['--name', '  ']);
  assert.ok(err instanceof ConfigError);
  assert.deepEqual(err.lines(), ['--name (PULLTRACE_NAME): is required']);
  assert.deepEqual(fieldProblem(DEMO, 'poll.burst', 'too many'), {
    path: 'poll.burst',
    flag: '--burst',
    envVar: 'PULLTRACE_BURST',
    message: 'too many',
  });
  assert.throws(() => fieldProblem(DEMO, 'poll.nope', 'x'), /no field poll.nope/);
});
