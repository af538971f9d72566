// One control-plane process: started with its output in a log file, waited for through an HTTP(S)
// health endpoint, stopped with SIGTERM then SIGKILL. Three guards keep a failing test from
// leaking processes: stop() on every path of startCluster(); a process 'exit' hook that SIGKILLs
// whatever is still running when Node exits without calling stop(); and, where util-linux's
// setpriv exists, PR_SET_PDEATHSIG so the kernel kills the child even if Node itself is killed.
import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type Agent } from 'node:https';
import { startService, logTail, type Service } from '../env/process.js';

const SETPRIV = '/usr/bin/setpriv';

/** A running component (etcd, kube-apiserver, …). */
export interface Component {
  name: string;
  svc: Service;
  logFile: string;
  /** Resolves when the process has exited (at once if it already has). */
  exited: Promise<void>;
  /** Exit code or signal once it has exited, else null. */
  exitStatus(): string | null;
  /** SIGTERM, then SIGKILL after `graceMs` (default 5 s); resolves when it is gone. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<Component>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: kill() is, and SIGKILL needs no waiting.
  process.on('exit', () => {
    for (const c of live) if (c.exitStatus() === null) c.svc.child.kill('SIGKILL');
  });
}

/** Starts `cmd args`, output appended to `logFile`. Spawn errors (ENOENT …) surface in waitHealthy(). */
export function startComponent(name: string, cmd: string, args: string[], logFile: string): Component {
  installExitHook();
  const wrapped = existsSync(SETPRIV)
    ? startService(SETPRIV, ['--pdeathsig', 'SIGKILL', '--', cmd, ...args], logFile)
    : startService(cmd, args, logFile);
  const child = wrapped.child;
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const component: Component = {
    name,
    svc: wrapped,
    logFile,
    exited,
    exitStatus: () => {
      if (wrapped.spawnError() !== null) return `not started: ${wrapped.spawnError()?.message ?? ''}`;
      if (child.exitCode !== null) return `exit code ${child.exitCode}`;
      if (child.signalCode !== null) return `signal ${child.signalCode}`;
      return null;
    },
    stop: async (graceMs = 5000) => {
      await wrapped.stop(graceMs);
      live.delete(component);
    },
  };
  live.add(component);
  void exited.then(() => live.delete(component));
  return component;
}

/** Thrown when a component exits or does not become healthy in time; names it and quotes its log. */
export class ComponentError extends Error {
  constructor(
    readonly component: string,
    reason: string,
    readonly logFile: string,
    lastProbe: string,
  ) {
    super(
      `${component} ${reason}` +
        (lastProbe === '' ? '' : `\nlast health answer: ${lastProbe}`) +
        `\nlog ${logFile} (last lines):\n${logTail(logFile, 25)}`,
    );
    this.name = 'ComponentError';
  }
}

/** A health probe's verdict: `ok`, and a short text for the error message when not. */
export interface ProbeResult {
  ok: boolean;
  detail: string;
}

/**
 * Waits until `probe` answers ok. Wakes at once when the process exits (no polling for that),
 * retries the probe with a short back-off (25 ms doubling to 400 ms), and fails at `deadline`
 * (epoch ms) with a ComponentError naming the component, the last probe answer and the log tail.
 */
export async function waitHealthy(
  c: Component,
  probe: () => Promise<ProbeResult>,
  deadline: number,
): Promise<void> {
  let last = '';
  let delay = 25;
  for (;;) {
    if (c.exitStatus() !== null) {
      const status = c.exitStatus() ?? 'exited';
      const hint = status.includes('ENOENT') ? ' (binary missing? bash e2e/env/build-kube.sh)' : '';
      throw new ComponentError(c.name, `exited while starting (${status})${hint}`, c.logFile, last);
    }
    const r = await probe().catch((err: unknown) => ({
      ok: false,
      detail: err instanceof Error ? err.message : String(err),
    }));
    if (r.ok) return;
    last = r.detail;
    const left = deadline - Date.now();
    if (left <= 0) throw new ComponentError(c.name, 'did not become healthy in time', c.logFile, last);
    // Sleep until the next try, or until the process exits, whichever comes first.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      c.exited,
      new Promise<void>((r2) => (timer = setTimeout(r2, Math.min(delay, left)))),
    ]);
    clearTimeout(timer);
    delay = Math.min(delay * 2, 400);
  }
}

/** TLS material for a probe: the CA to trust and, optionally, a client certificate. */
export interface ProbeTls {
  ca: string;
  cert?: string;
  key?: string;
}

/** GET `url` (http or https) with a 3 s timeout; resolves with status and body, rejects on network errors. */
export function httpGet(url: string, tls?: ProbeTls): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const opts = {
      host: u.hostname,
      port: u.port,
      path: `${u.pathname}${u.search}`,
      timeout: 3000,
      ...(tls === undefined
        ? {}
        : {
            ca: readFileSync(tls.ca),
            ...(tls.cert === undefined ? {} : { cert: readFileSync(tls.cert) }),
            ...(tls.key === undefined ? {} : { key: readFileSync(tls.key) }),
          }),
    };
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(opts, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in 3 s`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * POSTs `body` as JSON to an HTTPS `url` through `agent` (its CA and client certificate);
 * resolves with the status and the answer's text, rejects on a connection error.
 */
export function httpsPostJson(
  url: string,
  agent: Agent,
  body: unknown,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = httpsRequest(
      {
        host: u.hostname,
        port: u.port,
        path: `${u.pathname}${u.search}`,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let out = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (out += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: out }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/**
 * What names the failing part of a health answer: the `[-]name failed` lines of a verbose
 * /livez or /readyz, else the body's last 8 lines, on one line.
 */
export function failingChecks(body: string): string {
  const lines = body.trim().split('\n');
  const failed = lines.filter((l) => l.startsWith('[-]'));
  return (failed.length > 0 ? failed : lines.slice(-8)).join(' | ');
}

/** A probe that is ok on HTTP 200 (and, if given, when the body passes `check`). */
export function httpProbe(
  url: string,
  tls?: ProbeTls,
  check?: (body: string) => boolean,
): () => Promise<ProbeResult> {
  return async () => {
    const { status, body } = await httpGet(url, tls);
    const ok = status === 200 && (check === undefined || check(body));
    return { ok, detail: `GET ${url} → ${status}: ${failingChecks(body)}` };
  };
}

/** The log file's text, or '' (for assertions on what a component printed). */
export function readLog(c: Component): string {
  return existsSync(c.logFile) ? readFileSync(c.logFile, 'utf8') : '';
}
