// Child processes of the test environment: started with their output in a log file, stopped
// with SIGTERM then SIGKILL, and reported with the log's tail when they fail to start.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, existsSync } from 'node:fs';

export interface Service {
  child: ChildProcess;
  /** Why the process could not be started at all (e.g. ENOENT: not installed), or null. */
  spawnError(): Error | null;
  logFile: string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export function logTail(logFile: string, lines = 20): string {
  if (!existsSync(logFile)) return '(no log)';
  return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

export function startService(cmd: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv): Service {
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], env: env ?? process.env });
  closeSync(fd);
  let spawnError: Error | null = null;
  child.once('error', (err) => {
    spawnError = err;
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  return {
    child,
    logFile,
    spawnError: () => spawnError,
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Waits until `probe` is true; fails with the service's log if it exits or the time runs out. */
export async function waitReady(
  name: string,
  svc: Service,
  probe: () => Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const cannot = svc.spawnError();
    if (cannot !== null) {
      throw new Error(
        `${name} could not be started: ${cannot.message} (is it installed? bash e2e/env/install.sh)`,
      );
    }
    if (svc.child.exitCode !== null || svc.child.signalCode !== null) {
      throw new Error(
        `${name} exited while starting (code ${svc.child.exitCode}); log ${svc.logFile}:\n${logTail(svc.logFile)}`,
      );
    }
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) {
      await svc.stop();
      throw new Error(
        `${name} did not become ready in ${timeoutMs} ms; log ${svc.logFile}:\n${logTail(svc.logFile)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
