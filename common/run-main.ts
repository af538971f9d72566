// The one shape of the three programs' entry points: parse the command line → read and check
// the config (all bad fields at once) → run → SIGTERM/SIGINT → exit code. Each main.ts only
// says what its commands run; the exit codes are the ones docs/configuration.md lists:
// 0 done, 2 usage error or invalid configuration, and the program's own failure code.
import { constants } from 'node:os';
import { CommanderError, type Command } from 'commander';
import { errorMessage } from './errors.js';
import { ConfigError } from './options.js';

/**
 * What a command runs once its config is read; resolves to the exit code. `stop` is aborted
 * on SIGTERM or SIGINT (its reason is the signal's name): a server then stops gracefully.
 */
export type Run = (stop: AbortSignal) => Promise<number>;

/** Exit code of a usage error or an invalid configuration, for every program. */
export const EXIT_USAGE = 2;

/** A program, as runMain runs it. */
export interface MainSpec {
  /** Put before each message on stderr: "pulltrace-webhook" → "pulltrace-webhook: …". */
  prefix: string;
  /**
   * The command line. Its actions only read and check their config (throwing ConfigError when
   * it is bad) and hand `select` what to run; nothing starts while the line is parsed.
   */
  program: (select: (run: Run) => void) => Command;
  /** Exit code when the run throws (cannot start, fatal error). */
  failureExitCode: number;
  /** A thrown error in one line. Default: errorMessage (the message and its causes). */
  describe?: (err: unknown) => string;
  /**
   * What SIGTERM and SIGINT do. 'stop' (default): abort `stop` and wait for the run's exit
   * code; a second signal exits at once. 'exit': exit at once with 128 + the signal's number,
   * as a shell reports a process the signal killed (a command with nothing to finish).
   */
  onSignal?: 'stop' | 'exit';
}

/** The process as main() sees it; tests pass their own. */
export interface MainIo {
  /** The user's arguments (without node and the script). */
  argv: readonly string[];
  stderr: (text: string) => void;
  /** Where help goes; default commander's (stdout). */
  stdout?: (text: string) => void;
  /** Calls `handler` on SIGTERM and SIGINT until the returned function is called. */
  onSignal: (handler: (signal: NodeJS.Signals) => void) => () => void;
  /** Leaves now (a second signal, or onSignal 'exit'). */
  exit: (code: number) => void;
}

/** Resolves once `stop` is aborted (at once if it already is). */
export function untilStopped(stop: AbortSignal): Promise<void> {
  if (stop.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    stop.addEventListener(
      'abort',
      () => {
        resolve();
      },
      { once: true },
    );
  });
}

/** Prints why the program stops and returns the exit code: 2 for any invalid configuration. */
function failed(spec: MainSpec, io: MainIo, err: unknown, code: number): number {
  if (err instanceof ConfigError) {
    const n = err.problems.length;
    io.stderr(`${spec.prefix}: ${err.code} invalid configuration, ${n} bad field${n === 1 ? '' : 's'}:\n`);
    for (const line of err.lines()) io.stderr(`  ${line}\n`);
    return EXIT_USAGE;
  }
  io.stderr(`${spec.prefix}: ${(spec.describe ?? errorMessage)(err)}\n`);
  return code;
}

function commandTree(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(commandTree)];
}

/** The run the command line selects, or the exit code when there is nothing to run. */
function parse(spec: MainSpec, io: MainIo): Run | number {
  // Set by the action commander calls from parse().
  const selected: { run?: Run } = {};
  try {
    const cmd = spec.program((run) => {
      selected.run = run;
    });
    for (const c of commandTree(cmd)) {
      c.exitOverride();
      c.configureOutput(
        io.stdout === undefined ? { writeErr: io.stderr } : { writeErr: io.stderr, writeOut: io.stdout },
      );
    }
    cmd.parse([...io.argv], { from: 'user' });
  } catch (err) {
    // commander has printed the usage error, or the help (exit code 0).
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_USAGE;
    return failed(spec, io, err, EXIT_USAGE);
  }
  return selected.run ?? failed(spec, io, new Error('no command to run'), EXIT_USAGE);
}

/** Runs a program: parse, check, run, signals; resolves to its exit code. */
export async function main(spec: MainSpec, io: MainIo): Promise<number> {
  const run = parse(spec, io);
  if (typeof run === 'number') return run;
  const controller = new AbortController();
  const off = io.onSignal((signal) => {
    if (spec.onSignal === 'exit' || controller.signal.aborted) {
      io.exit(128 + ((constants.signals[signal] as number | undefined) ?? 0));
    } else {
      controller.abort(signal);
    }
  });
  try {
    return await run(controller.signal);
  } catch (err) {
    return failed(spec, io, err, spec.failureExitCode);
  } finally {
    off();
  }
}

/** main() on this process; exits with its code. The entry point of each binary. */
export function runMain(spec: MainSpec): void {
  const io: MainIo = {
    argv: process.argv.slice(2),
    stderr: (text) => process.stderr.write(text),
    onSignal: (handler) => {
      const h = (signal: NodeJS.Signals) => {
        handler(signal);
      };
      process.on('SIGTERM', h);
      process.on('SIGINT', h);
      return () => {
        process.off('SIGTERM', h);
        process.off('SIGINT', h);
      };
    },
    exit: (code) => process.exit(code),
  };
  main(spec, io).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${spec.prefix}: ${errorMessage(err)}\n`);
      process.exit(spec.failureExitCode);
    },
  );
}
