// Where the real Kubernetes parts live: e2e/env/build-kube.sh builds kube-apiserver,
// kube-controller-manager, kube-scheduler, kubelet, etcd and helm from their Go modules into
// $PULLTRACE_CACHE/kube-$PULLTRACE_KUBE_VERSION/bin (default ~/.cache/pulltrace/kube-v1.34.4/bin),
// outside the repo. This module only finds them; it never builds (that takes many minutes).
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The Kubernetes version build-kube.sh builds unless told otherwise. */
export const DEFAULT_KUBE_VERSION = 'v1.34.4';

/** The programs build-kube.sh puts in the bin dir. */
export type KubeBinary =
  'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler' | 'kubelet' | 'helm';

/**
 * The bin dir: `env.PULLTRACE_KUBE_BIN` if set, else
 * `${PULLTRACE_CACHE:-~/.cache/pulltrace}/kube-${PULLTRACE_KUBE_VERSION:-v1.34.4}/bin`
 * (the same variables build-kube.sh reads).
 */
export function kubeBinDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PULLTRACE_KUBE_BIN !== undefined && env.PULLTRACE_KUBE_BIN !== '') return env.PULLTRACE_KUBE_BIN;
  const cache = env.PULLTRACE_CACHE ?? join(homedir(), '.cache', 'pulltrace');
  return join(cache, `kube-${env.PULLTRACE_KUBE_VERSION ?? DEFAULT_KUBE_VERSION}`, 'bin');
}

/** Thrown when a program is not (yet) built; the message says how to build it. */
export class MissingBinaryError extends Error {
  constructor(
    readonly missing: string[],
    readonly binDir: string,
  ) {
    super(
      `missing Kubernetes binaries in ${binDir}: ${missing.join(', ')}. ` +
        'Build them once with `bash e2e/env/build-kube.sh` (Go, ~20-40 min on 2 cores; cached after).',
    );
    this.name = 'MissingBinaryError';
  }
}

/** Absolute paths of `names` in `binDir`; throws MissingBinaryError listing every one not executable. */
export function requireBinaries<N extends KubeBinary>(
  names: readonly N[],
  binDir: string = kubeBinDir(),
): Record<N, string> {
  const out = {} as Record<N, string>;
  const missing: string[] = [];
  for (const n of names) {
    const p = join(binDir, n);
    try {
      accessSync(p, constants.X_OK);
      out[n] = p;
    } catch {
      missing.push(n);
    }
  }
  if (missing.length > 0) throw new MissingBinaryError(missing, binDir);
  return out;
}
