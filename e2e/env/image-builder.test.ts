// The test images must be runnable by a real kubelet: /true (exits 0) and /sleep (stays up until
// SIGTERM or SIGINT, then exits 0) are in every layer.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { randomLayer, sleepProgram, trueProgram } from './image-builder.js';

function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, (_err, stdout, stderr) => {
      resolve({ code: child.exitCode, out: stdout + stderr });
    });
  });
}

test('every layer holds an executable /true that exits 0 and /sleep (linux/amd64)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pt-true-'));
  try {
    const prog = join(dir, 'true');
    writeFileSync(prog, trueProgram());
    chmodSync(prog, 0o755);
    if (process.arch === 'x64') assert.equal((await run(prog, [])).code, 0);
    const layer = join(dir, 'layer.tar.gz');
    writeFileSync(layer, randomLayer(1000).data);
    const list = await run('tar', ['-tvzf', layer]);
    assert.equal(list.code, 0, list.out);
    assert.match(list.out, /^-rwxr-xr-x .* 129 .* true$/m);
    assert.match(list.out, /^-rwxr-xr-x .* 224 .* sleep$/m);
    assert.match(list.out, /^-rw-r--r-- .* 1000 .* data\.bin$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('/sleep stays up until SIGTERM or SIGINT, then exits 0', { skip: process.arch !== 'x64' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pt-sleep-'));
  try {
    const prog = join(dir, 'sleep');
    writeFileSync(prog, sleepProgram());
    chmodSync(prog, 0o755);
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const child = spawn(prog, [], { stdio: 'ignore' });
      const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
        child.once('exit', (code, sig) => resolve({ code, signal: sig })),
      );
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(child.exitCode, null, 'still running after 300 ms');
      child.kill(signal);
      assert.deepEqual(await exited, { code: 0, signal: null }, `exit 0 on ${signal}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
