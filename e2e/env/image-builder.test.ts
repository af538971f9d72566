// The test images must be runnable by a real kubelet: their command /true is in every layer.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { randomLayer, trueProgram } from './image-builder.js';

function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, (_err, stdout, stderr) => {
      resolve({ code: child.exitCode, out: stdout + stderr });
    });
  });
}

test('every layer holds an executable /true that exits 0 (linux/amd64)', async () => {
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
    assert.match(list.out, /^-rw-r--r-- .* 1000 .* data\.bin$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
