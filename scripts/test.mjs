#!/usr/bin/env node
// The whole test suite in one `node --test` run, so there is one summary.
//   npm test            unit + integration + e2e (installs containerd & co. first if missing)
//   npm test -- --unit  pure tests only (no containerd, no registry, no kubectl)
// Extra arguments that are paths select those test files.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const picked = args.filter((a) => !a.startsWith('--'));
const ROOTS = [
  'common',
  'cli',
  'webhook',
  'node-agent',
  'test-support',
  'certs',
  'e2e',
  'bench',
  'scripts',
  'charts',
  'docs',
];
// Tests under these folders need the real test environment (containerd, registry, kubectl, and
// the Kubernetes parts and helm built by e2e/env/build-kube.sh).
const ENV_DIRS = ['e2e/', 'node-agent/integration/', 'charts/'];

function walk(dir, out) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

let files = picked.length > 0 ? picked : ROOTS.flatMap((r) => walk(r, []));
if (unitOnly) files = files.filter((f) => !ENV_DIRS.some((d) => f.startsWith(d)));
files.sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}

const needsEnv = files.some((f) => ENV_DIRS.some((d) => f.startsWith(d)));
if (needsEnv && existsSync('e2e/env/install.sh')) {
  const r = spawnSync('bash', ['e2e/env/install.sh'], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('test environment install failed (e2e/env/install.sh); see the output above');
    process.exit(1);
  }
}

const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-timeout=600000', ...files],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
