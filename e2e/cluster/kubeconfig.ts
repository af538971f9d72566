// Kubeconfigs for the real control plane: HTTPS with the cluster CA, and either a client
// certificate (the components, the admin) or a bearer token (a ServiceAccount). Certificates are
// embedded (`*-data`), so the file stands alone: kubectl, client-node and the Go components all
// read it the same way, and it can be copied elsewhere.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { stringify } from 'yaml';

/** How the kubeconfig's user authenticates. */
export type KubeconfigCredentials = { clientCert: string; clientKey: string } | { token: string };

export interface ClusterKubeconfig {
  /** `https://127.0.0.1:PORT` */
  server: string;
  /** PEM path of the CA that signed the server's certificate. */
  caPath: string;
  credentials: KubeconfigCredentials;
  /** Cluster, user and context name (default `pulltrace-cluster`). */
  name?: string;
  /** The context's namespace (default `default`). */
  namespace?: string;
}

function b64(path: string): string {
  return readFileSync(path).toString('base64');
}

/** The kubeconfig text. */
export function clusterKubeconfigYaml(cfg: ClusterKubeconfig): string {
  const name = cfg.name ?? 'pulltrace-cluster';
  const user =
    'token' in cfg.credentials
      ? { token: cfg.credentials.token }
      : {
          'client-certificate-data': b64(cfg.credentials.clientCert),
          'client-key-data': b64(cfg.credentials.clientKey),
        };
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server: cfg.server, 'certificate-authority-data': b64(cfg.caPath) } }],
    users: [{ name, user }],
    contexts: [{ name, context: { cluster: name, user: name, namespace: cfg.namespace ?? 'default' } }],
    'current-context': name,
    preferences: {},
  });
}

/** Writes the kubeconfig to `path` (mode 0600, directories created) and returns the path. */
export function writeClusterKubeconfig(path: string, cfg: ClusterKubeconfig): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, clusterKubeconfigYaml(cfg), { mode: 0o600 });
  return path;
}
