// The plugin's entry point as a process: usage errors and failures exit 2 with one "error:" line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  assert.match(kube.stderr, /^error: cannot use the kubeconfig: \/nonexistent\/kubeconfig: .*ENOENT/);
});

test('a kubeconfig it cannot use: one line naming the file and what is wrong, exit 2 (PT_KUBECONFIG)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pt-kc-'));
  try {
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    const one = join(dir, 'one');
    writeFileSync(
      one,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]',
        'users: [{name: u, user: {token: t}}]',
        'contexts: [{name: ctx, context: {cluster: c, user: u}}, {name: lost, context: {cluster: gone, user: u}}]',
        'current-context: ctx',
      ].join('\n'),
    );
    const cases: [string[], RegExp][] = [
      [['--kubeconfig', empty, 'pods'], /empty: not a kubeconfig/],
      [['--kubeconfig', one, '--context', 'nope', 'pods'], /has no context "nope"/],
      [['--kubeconfig', one, '--context', 'lost', 'pods'], /context "lost" names no cluster/],
    ];
    for (const [args, why] of cases) {
      const r = plugin(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^error: cannot use the kubeconfig: /);
      assert.match(r.stderr, why);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /Cannot read properties|No active cluster/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
