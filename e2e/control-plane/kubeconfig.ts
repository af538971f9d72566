// Writes a kubeconfig for the control-plane stand-in: one cluster at a plain-HTTP loopback URL,
// one user without credentials (the stand-in does no authentication), one current context.
// `insecure-skip-tls-verify` is set because client-node refuses plain HTTP otherwise.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { stringify } from 'yaml';

export interface KubeconfigOptions {
  /** Cluster, user and context name (default `pulltrace-sandbox`). */
  name?: string;
  /** Namespace of the context (default `default`). */
  namespace?: string;
}

/** The kubeconfig text for a server URL. */
export function kubeconfigYaml(serverUrl: string, opts: KubeconfigOptions = {}): string {
  const name = opts.name ?? 'pulltrace-sandbox';
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    // @kubernetes/client-node refuses an http:// server unless TLS verification is marked
    // skipped; there is no TLS to verify, and kubectl accepts the flag with http too.
    clusters: [{ name, cluster: { server: serverUrl, 'insecure-skip-tls-verify': true } }],
    users: [{ name, user: {} }],
    contexts: [{ name, context: { cluster: name, user: name, namespace: opts.namespace ?? 'default' } }],
    'current-context': name,
    preferences: {},
  });
}

/** Writes the kubeconfig to `path` (mode 0600, directories created) and returns the path. */
export function writeKubeconfig(path: string, serverUrl: string, opts: KubeconfigOptions = {}): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, kubeconfigYaml(serverUrl, opts), { mode: 0o600 });
  return path;
}
