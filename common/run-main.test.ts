import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { ConfigError, addFields, intParser, parseText, readCommand, type Fields } from './options.js';
import { EXIT_USAGE, main, untilStopped, type MainIo, type MainSpec, type Run } from './run-main.js';

interface Cfg {
  name: string;
  count: number;
}

const FIELDS: Fields<Cfg> = {
  name: { flags: '--name <name>', help: 'required', parse: parseText },
  count: { flags: '--count <n>', help: 'how many', default: '1', parse: intParser(1, 9) },
};

/** A program whose root runs `run` with its config, and a `sub` command that throws. */
function spec(run: (c: Cfg, stop: AbortSignal) => Promise<number>, over: Partial<MainSpec> = {}): MainSpec {
  return {
    prefix: 'demo',
    failureExitCode: 1,
    program: (select: (r: Run) => void) => {
      const root = addFields(new Command('demo'), FIELDS)
        .enablePositionalOptions()
        .action((_o: unknown, cmd: Command) => {
          const c = readCommand<Cfg>(cmd, FIELDS);
          select((stop) => run(c, stop));
        });
      root.addCommand(
        new Command('sub').action(() => {
          select(() => Promise.reject(new Error('sub failed', { cause: new Error('the cause') })));
        }),
      );
      return root;
    },
    ...over,
  };
}

/** An io that records stderr and exits, and lets the test send signals. */
function fakeIo(argv: string[]) {
  let handler: ((s: NodeJS.Signals) => void) | null = null;
  const io = {
    argv,
    err: '',
    out: '',
    exits: [] as number[],
    stderr: (t: string) => {
      io.err += t;
    },
    stdout: (t: string) => {
      io.out += t;
    },
    onSignal: (h: (s: NodeJS.Signals) => void) => {
      handler = h;
      return () => {
        handler = null;
      };
    },
    exit: (code: number) => {
      io.exits.push(code);
    },
    signal: (s: NodeJS.Signals) => {
      handler?.(s);
    },
    listening: () => handler !== null,
  } satisfies MainIo & Record<string, unknown>;
  return io;
}

const ok = (c: Cfg) => Promise.resolve(c.count);

test('parse, check, run: the run gets the config and its code is the exit code', async () => {
  const io = fakeIo(['--name', 'x', '--count', '3']);
  assert.equal(await main(spec(ok), io), 3);
  assert.equal(io.err, '');
  assert.equal(io.listening(), false, 'signal handlers removed after the run');
});

test('usage errors exit 2 (commander prints them); --help exits 0', async () => {
  const unknown = fakeIo(['--bogus']);
  assert.equal(await main(spec(ok), unknown), EXIT_USAGE);
  assert.match(unknown.err, /unknown option '--bogus'/);
  const help = fakeIo(['--help']);
  assert.equal(await main(spec(ok), help), 0);
  assert.match(help.out, /--count <n>.*default: 1, env: PULLTRACE_COUNT/);
});

test('an invalid configuration exits 2 with PT_CONFIG_INVALID and one line per bad field', async () => {
  let ran = false;
  const io = fakeIo(['--count', '0']);
  const code = await main(
    spec(() => {
      ran = true;
      return Promise.resolve(0);
    }),
    io,
  );
  assert.equal(code, EXIT_USAGE);
  assert.equal(ran, false, 'nothing runs on a bad config');
  assert.equal(
    io.err,
    'demo: PT_CONFIG_INVALID invalid configuration, 2 bad fields:\n' +
      '  --name (PULLTRACE_NAME): is required\n' +
      '  --count (PULLTRACE_COUNT): expected a whole number from 1 to 9, got "0"\n',
  );
});

test('a run that throws exits with the failure code and the error chain; a ConfigError from it exits 2', async () => {
  const io = fakeIo(['sub']);
  assert.equal(await main(spec(ok), io), 1);
  assert.equal(io.err, 'demo: sub failed: the cause\n');
  const described = fakeIo(['sub']);
  assert.equal(await main(spec(ok, { describe: () => 'described', failureExitCode: 7 }), described), 7);
  assert.equal(described.err, 'demo: described\n');
  const late = fakeIo(['--name', 'x']);
  const bad = new ConfigError([
    { path: 'name', flag: '--name', envVar: 'PULLTRACE_NAME', message: 'no such thing' },
  ]);
  assert.equal(
    await main(
      spec(() => Promise.reject(bad)),
      late,
    ),
    EXIT_USAGE,
  );
  assert.match(
    late.err,
    /PT_CONFIG_INVALID invalid configuration, 1 bad field:\n {2}--name \(PULLTRACE_NAME\): no such thing\n/,
  );
});

test("SIGTERM aborts the run's stop signal and its code is kept; a second signal exits at once", async () => {
  const io = fakeIo(['--name', 'x']);
  let reason: unknown;
  const running = main(
    spec(async (_c, stop) => {
      await untilStopped(stop);
      reason = stop.reason;
      io.signal('SIGINT');
      return 0;
    }),
    io,
  );
  await new Promise((r) => setImmediate(r));
  io.signal('SIGTERM');
  assert.equal(await running, 0);
  assert.equal(reason, 'SIGTERM');
  assert.deepEqual(io.exits, [130], 'the second signal: 128 + SIGINT');
});

test("onSignal 'exit': a signal exits at once with 128 + its number", async () => {
  const io = fakeIo(['--name', 'x']);
  let finish: (code: number) => void = () => undefined;
  const running = main(
    spec(() => new Promise<number>((resolve) => (finish = resolve)), { onSignal: 'exit' }),
    io,
  );
  await new Promise((r) => setImmediate(r));
  io.signal('SIGTERM');
  assert.deepEqual(io.exits, [143]);
  finish(0);
  assert.equal(await running, 0);
});

test('untilStopped resolves at once for a signal already aborted', async () => {
  const c = new AbortController();
  c.abort('SIGINT');
  await untilStopped(c.signal);
});
