import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiException } from '@kubernetes/client-node';
import { CommanderError } from 'commander';
import type { Run } from '../common/run-main.js';
import { describeError, isTransient, program } from './plugin.js';

test('describeError: the Status message of an API error in one line, else the error chain', () => {
  const status = JSON.stringify({ kind: 'Status', message: 'deployments.apps "x" not found', code: 404 });
  assert.equal(
    describeError(new ApiException(404, 'Unknown API Status Code!', status, { date: 'now' })),
    'API answered 404: deployments.apps "x" not found',
  );
  assert.equal(describeError(new ApiException(502, 'm', 'bad gateway', {})), 'API answered 502: bad gateway');
  assert.equal(describeError(new ApiException(500, 'm', '', {})), 'API answered 500: no message');
  assert.equal(
    describeError(new Error('connect ECONNREFUSED', { cause: new Error('x') })),
    'connect ECONNREFUSED: x',
  );
});

test('isTransient: no answer, 429 and 5xx are retried; other API answers are not', () => {
  assert.equal(isTransient(new Error('socket hang up')), true);
  assert.equal(isTransient(new ApiException(429, '', '', {})), true);
  assert.equal(isTransient(new ApiException(503, '', '', {})), true);
  assert.equal(isTransient(new ApiException(404, '', '', {})), false);
  assert.equal(isTransient(new ApiException(403, '', '', {})), false);
});

test('usage errors in a subcommand throw CommanderError (exit 2), not process.exit(1)', () => {
  const runs: Run[] = [];
  const parse = (args: string[]) => {
    const cmd = program((run) => runs.push(run));
    cmd.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    for (const sub of cmd.commands)
      sub.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    cmd.parse(args, { from: 'user' });
  };
  assert.throws(() => parse(['rollout', 'pod/x']), CommanderError);
  assert.throws(() => parse(['rollout', 'deployment/x', '--timeout', 'soon']), CommanderError);
  assert.throws(() => parse(['nope']), CommanderError);
  assert.equal(runs.length, 0);
});
