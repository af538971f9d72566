// cert-manager in the chart's tests, as in a user's cluster: its CRDs, ServiceAccounts and RBAC
// from its real chart (the dependency e2e/cluster/helm.ts puts beside charts/pulltrace), and its
// controllers and cainjector built from its Go module (cert-manager-controllers/main.go) running
// against the real API server as those ServiceAccounts. Not run: cert-manager's own webhook
// (validation and defaults of cert-manager's resources), ACME/Vault/Venafi issuers.
//
//   node --import tsx charts/cert-manager.ts   builds the binary into the cache (once per source)
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { Cluster } from '../e2e/cluster/cluster.js';
import { startComponent, type Component } from '../e2e/cluster/component.js';
import { certManagerVersion, helmTemplate } from '../e2e/cluster/helm.js';
import { writeClusterKubeconfig } from '../e2e/cluster/kubeconfig.js';
import { kubectlFor } from '../e2e/cluster/kubectl.js';
import { parseManifests, type Obj } from './manifests.js';

const run = promisify(execFile);
const SOURCE = fileURLToPath(new URL('./cert-manager-controllers', import.meta.url));

/**
 * Builds cert-manager-controllers/ (Go, modules from the Go module proxy) into the cache, once per
 * version of its main.go, go.mod and go.sum; returns the binary. A cold build takes 5-7 minutes
 * on 2 cores (see charts/README.md).
 */
export async function certManagerControllersBinary(
  cacheDir = join(process.env.PULLTRACE_CACHE ?? join(homedir(), '.cache', 'pulltrace'), 'cert-manager'),
): Promise<string> {
  const hash = createHash('sha256');
  for (const f of ['main.go', 'go.mod', 'go.sum']) hash.update(readFileSync(join(SOURCE, f)));
  const out = join(
    cacheDir,
    `cert-manager-controllers-${certManagerVersion()}-${hash.digest('hex').slice(0, 12)}`,
  );
  if (existsSync(out)) return out;
  mkdirSync(cacheDir, { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  await run('go', ['build', '-trimpath', '-ldflags', '-s -w', '-o', tmp, '.'], {
    cwd: SOURCE,
    env: { ...process.env, CGO_ENABLED: '0' },
    maxBuffer: 16 << 20,
  }).catch((err: unknown) => {
    throw new Error(`go build in ${SOURCE} failed: ${String((err as { stderr?: string }).stderr ?? err)}`, {
      cause: err,
    });
  });
  renameSync(tmp, out);
  return out;
}

const CRD_TEMPLATES = [
  'acme.cert-manager.io_challenges',
  'acme.cert-manager.io_orders',
  'cert-manager.io_certificaterequests',
  'cert-manager.io_certificates',
  'cert-manager.io_clusterissuers',
  'cert-manager.io_issuers',
].map((n) => `charts/cert-manager/templates/crd-${n}.yaml`);

/** Objects of the cert-manager chart (as the dependency of charts/pulltrace), release `cert-manager`. */
async function certManagerChartObjects(
  namespace: string,
  templates: string[],
  set: string[] = [],
): Promise<Obj[]> {
  return parseManifests(
    await helmTemplate({
      release: 'cert-manager',
      namespace,
      set: ['certManager.install=true', ...set],
      showOnly: templates,
    }),
  );
}

/** cert-manager's CRDs from its chart (what its release's cert-manager.crds.yaml holds). */
export function certManagerCrds(): Promise<Obj[]> {
  return certManagerChartObjects('cert-manager', CRD_TEMPLATES, ['cert-manager.crds.enabled=true']);
}

export interface CertManager {
  namespace: string;
  controller: Component;
  cainjector: Component;
  stop(): Promise<void>;
}

function asList(objects: Obj[]): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects.map(({ __file: _f, ...o }) => o) });
}

/**
 * Installs cert-manager's CRDs, namespace, ServiceAccounts and RBAC from its chart into `cluster`,
 * and starts its controller and cainjector as those ServiceAccounts (logs in the cluster's dir).
 * Registered with cluster.addCleanup as well.
 */
export async function startCertManager(cluster: Cluster, namespace = 'cert-manager'): Promise<CertManager> {
  const binary = await certManagerControllersBinary();
  const k = kubectlFor(cluster.kubeconfigPath);
  try {
    const apply = async (objects: Obj[]) => {
      const r = await k.run(['apply', '-f', '-'], { input: asList(objects) });
      if (r.code !== 0) throw new Error(`kubectl apply: ${r.stderr}`);
    };
    const crds = await certManagerCrds();
    await apply(crds);
    const est = await k.run([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      ...crds.map((c) => `crd/${c.metadata.name}`),
    ]);
    if (est.code !== 0) throw new Error(`CRDs not established: ${est.stderr}`);
    await k.run(['create', 'namespace', namespace]);
    const rbac = await certManagerChartObjects(
      namespace,
      ['serviceaccount', 'rbac', 'cainjector-serviceaccount', 'cainjector-rbac'].map(
        (t) => `charts/cert-manager/templates/${t}.yaml`,
      ),
    );
    await apply(rbac);
  } finally {
    k.cleanup();
  }
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const kubeconfigOf = async (serviceAccount: string) => {
    const tr = await core.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    return writeClusterKubeconfig(join(cluster.dir, 'kubeconfigs', serviceAccount), {
      server: cluster.url,
      caPath: cluster.caPath,
      credentials: { token: tr.status?.token ?? '' },
    });
  };
  const controller = startComponent(
    'cert-manager-controller',
    binary,
    [
      'controller',
      '--kubeconfig',
      await kubeconfigOf('cert-manager'),
      '--cluster-resource-namespace',
      namespace,
    ],
    join(cluster.dir, 'logs', 'cert-manager-controller.log'),
  );
  const cainjector = startComponent(
    'cert-manager-cainjector',
    binary,
    ['cainjector', '--kubeconfig', await kubeconfigOf('cert-manager-cainjector')],
    join(cluster.dir, 'logs', 'cert-manager-cainjector.log'),
  );
  const stop = async () => {
    await Promise.all([controller.stop(), cainjector.stop()]);
  };
  cluster.addCleanup(stop);
  return { namespace, controller, cainjector, stop };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  const bin = await certManagerControllersBinary();
  console.log(`${bin} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}
