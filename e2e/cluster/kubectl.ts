// Runs the machine's real kubectl against a kubeconfig, with a private discovery cache per
// kubeconfig, for the e2e suites and the chart's tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const KUBECTL = '/usr/bin/kubectl';

export interface KubectlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunningKubectl {
  child: ChildProcess;
  /** Output so far. */
  output(): { stdout: string; stderr: string };
  done: Promise<KubectlResult>;
}

export interface Kubectl {
  /** Runs kubectl to the end; `input` goes to its stdin (for `-f -`). Never rejects on a non-zero exit. */
  run(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<KubectlResult>;
  /** Starts kubectl and returns at once (for `wait`, `get -w`). */
  start(args: string[]): RunningKubectl;
  /** Removes the discovery cache. */
  cleanup(): void;
}

/** kubectl with `--kubeconfig` and a fresh `--cache-dir`, so no discovery is reused across runs. */
export function kubectlFor(kubeconfigPath: string): Kubectl {
  const cacheDir = mkdtempSync(join(tmpdir(), 'pt-kubectl-cache-'));
  const env = { ...process.env, KUBECONFIG: kubeconfigPath, KUBECTL_EXTERNAL_DIFF: '' };
  const start = (args: string[], input?: string): RunningKubectl => {
    const child = spawn(KUBECTL, ['--kubeconfig', kubeconfigPath, '--cache-dir', cacheDir, ...args], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(input ?? '');
    const done = new Promise<KubectlResult>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => {
        resolve({ code, stdout, stderr });
      });
    });
    return { child, output: () => ({ stdout, stderr }), done };
  };
  return {
    run: async (args, opts = {}) => {
      const running = start(args, opts.input);
      const timer = setTimeout(() => running.child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
      try {
        return await running.done;
      } finally {
        clearTimeout(timer);
      }
    },
    start: (args) => start(args),
    cleanup: () => {
      rmSync(cacheDir, { recursive: true, force: true });
    },
  };
}
