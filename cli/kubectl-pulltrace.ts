#!/usr/bin/env node
// Entry point of the kubectl plugin (`kubectl pulltrace ...`); the program is in plugin.ts.
import { CommanderError } from 'commander';
import { EXIT, describeError, program } from './plugin.js';

const cmd = program((p) => {
  p.then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`error: ${describeError(err)}\n`);
      process.exit(EXIT.usage);
    },
  );
});
try {
  cmd.parse();
} catch (err) {
  // commander has printed the usage error (or the help, which exits 0).
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
  throw err;
}
