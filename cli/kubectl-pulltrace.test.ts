// The plugin's entry point as a process: usage errors and failures exit 2 with one "error:" line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('./kubectl-pulltrace.ts', import.meta.url));
const plugin = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', timeout: 30_000 });

test('--help exits 0 and states the exit codes; usage and kubeconfig errors exit 2', () => {
  const help = plugin(['--help']);
  assert.equal(help.status, 0);
  assert.match(
    help.stdout,
    /Exit codes: 0 all images in; 1 a pull failed; 2 usage or API error; 3 timed out/,
  );
  const usage = plugin(['rollout', 'pod/x']);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /^error: /);
  const kube = plugin(['--kubeconfig', '/nonexistent/kubeconfig', 'pods']);
  assert.equal(kube.status, 2);
  assert.match(kube.stderr, /^error: .*ENOENT/);
});
