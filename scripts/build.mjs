#!/usr/bin/env node
// Compiles the production code to dist/ and copies the runtime assets next to it.
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
  stdio: 'inherit',
});
if (existsSync('node-agent/proto')) cpSync('node-agent/proto', 'dist/node-agent/proto', { recursive: true });
for (const bin of ['dist/webhook/main.js', 'dist/node-agent/main.js', 'dist/cli/kubectl-pulltrace.js']) {
  if (existsSync(bin)) chmodSync(bin, 0o755);
}
