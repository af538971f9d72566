// The README's first command must work: run the demo and check what it shows.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const DEMO = fileURLToPath(new URL('./demo.ts', import.meta.url));

test('npm run demo: the webhook labels the pod and adds the readiness gate', async () => {
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', DEMO], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`demo failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
  assert.match(out, /webhook answered HTTP 200, allowed=true, JSONPatch/);
  const stored = out.slice(out.indexOf('5. pod as stored'));
  assert.match(stored, /"pulltrace\.io\/tracked": "true"/);
  assert.match(stored, /"conditionType": "pulltrace\.io\/ImagesPulled"/);
});
