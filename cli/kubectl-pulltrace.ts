#!/usr/bin/env node
// Entry point of the kubectl plugin (`kubectl pulltrace ...`); the program is in plugin.ts.
import { errorMessage } from '../common/errors.js';
import { program } from './plugin.js';

program((p) => {
  p.then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`error: ${errorMessage(err)}\n`);
      process.exit(2);
    },
  );
})
  .exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : 2))
  .parse();
