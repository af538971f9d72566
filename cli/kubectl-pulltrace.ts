#!/usr/bin/env node
// Entry point of the kubectl plugin (`kubectl pulltrace ...`); the program is in plugin.ts.
// Exit codes: 0 all images in; 1 a pull failed; 2 usage or API error; 3 timed out. Ctrl-C ends
// it at once (nothing to finish), with the code a shell reports for SIGINT (130).
import { runMain } from '../common/run-main.js';
import { EXIT, describeError, program } from './plugin.js';

runMain({
  prefix: 'error',
  program,
  failureExitCode: EXIT.usage,
  describe: describeError,
  onSignal: 'exit',
});
