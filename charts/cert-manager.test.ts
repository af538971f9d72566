// The chart's certificates issued by the real cert-manager (charts/cert-manager.ts: its CRDs and
// RBAC from its chart, its controllers and cainjector built from its Go module) on the real API
// server: `helm install` as a user runs it, then cert-manager issues the webhook's serving
// Certificate from the chart's CA and its cainjector writes that CA into the chart's
// MutatingWebhookConfiguration, so that the API server can verify the webhook. The first run on
// a machine builds the binary (5-7 minutes on 2 cores); later runs take it from the cache.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { startCluster, type Cluster } from '../e2e/cluster/cluster.js';
import { helmInstall } from '../e2e/cluster/helm.js';
import { kubectlFor, type Kubectl } from '../e2e/cluster/kubectl.js';
import { waitFor } from '../test-support/net.js';
import { startCertManager, type CertManager } from './cert-manager.js';
import { readLog } from '../e2e/cluster/component.js';

const TESTDATA = fileURLToPath(new URL('./testdata', import.meta.url));

let cluster: Cluster;
let certManager: CertManager;
let k: Kubectl;
let core: CoreV1Api;

before(
  async () => {
    cluster = await startCluster();
    k = kubectlFor(cluster.kubeconfigPath);
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    core = kc.makeApiClient(CoreV1Api);
    certManager = await startCertManager(cluster);
  },
  { timeout: 900_000 },
);

after(async () => {
  k.cleanup();
  await cluster.stop();
});

async function json<T>(args: string[]): Promise<T> {
  const r = await k.run([...args, '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
}

/** Waits for the CA in the webhook configuration `name`; fails at once if cert-manager exits. */
async function injectedCa(name: string): Promise<string> {
  let caBundle = '';
  await waitFor(
    `cainjector to fill ${name}'s caBundle`,
    async () => {
      for (const c of [certManager.controller, certManager.cainjector]) {
        const status = c.exitStatus();
        if (status !== null) throw new Error(`${c.name} ${status}:\n${readLog(c).slice(-3000)}`);
      }
      const mwc = await json<{ webhooks: { clientConfig: { caBundle?: string } }[] }>([
        'get',
        'mutatingwebhookconfiguration',
        name,
      ]);
      caBundle = mwc.webhooks[0]?.clientConfig.caBundle ?? '';
      return caBundle !== '';
    },
    90_000,
    250,
  );
  return Buffer.from(caBundle, 'base64').toString('utf8');
}

async function secretData(namespace: string, name: string): Promise<Record<string, string>> {
  const s = await core.readNamespacedSecret({ name, namespace });
  return Object.fromEntries(
    Object.entries(s.data ?? {}).map(([key, v]) => [key, Buffer.from(v, 'base64').toString('utf8')]),
  );
}

/** A TLS handshake as the API server makes it to the webhook Service, trusting only `caBundle`. */
async function handshake(cert: string, key: string, caBundle: string, servername: string): Promise<boolean> {
  const server = createServer({ cert, key }, (s) => s.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const socket = await new Promise<TLSSocket>((resolve, reject) => {
      const s = connect(
        { host: '127.0.0.1', port: (server.address() as AddressInfo).port, ca: caBundle, servername },
        () => resolve(s),
      );
      s.once('error', reject);
    });
    const ok = socket.authorized;
    socket.destroy();
    return ok;
  } finally {
    server.close();
  }
}

test('helm install: cert-manager issues the webhook certificate, cainjector puts its CA in the webhook configuration', async () => {
  await k.run(['create', 'namespace', 'pulltrace']);
  await helmInstall({ release: 'pulltrace', namespace: 'pulltrace', kubeconfig: cluster.kubeconfigPath });
  const ca = await injectedCa('pulltrace');

  const certificates = await json<{
    items: { metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } }[];
  }>(['get', 'certificates', '-n', 'pulltrace']);
  assert.deepEqual(certificates.items.map((c) => c.metadata.name).sort(), [
    'pulltrace-ca',
    'pulltrace-webhook',
  ]);
  for (const c of certificates.items) {
    assert.ok(
      c.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True'),
      `${c.metadata.name} Ready`,
    );
  }
  // The injected CA is the chart's self-signed CA, and it signed the serving certificate the
  // webhook pods mount, for every name of the Service.
  const caSecret = await secretData('pulltrace', 'pulltrace-ca');
  assert.equal(ca.trim(), caSecret['tls.crt']?.trim());
  const caCert = new X509Certificate(ca);
  assert.equal(caCert.ca, true);
  const serving = await secretData('pulltrace', 'pulltrace-webhook-tls');
  assert.equal(serving['ca.crt']?.trim(), ca.trim());
  const servingCert = new X509Certificate(serving['tls.crt'] ?? '');
  assert.ok(servingCert.verify(caCert.publicKey), 'signed by the injected CA');
  assert.equal(servingCert.ca, false);
  assert.deepEqual(servingCert.subjectAltName?.split(', ').sort(), [
    'DNS:pulltrace-webhook',
    'DNS:pulltrace-webhook.pulltrace',
    'DNS:pulltrace-webhook.pulltrace.svc',
    'DNS:pulltrace-webhook.pulltrace.svc.cluster.local',
  ]);
  assert.ok(
    await handshake(
      serving['tls.crt'] ?? '',
      serving['tls.key'] ?? '',
      ca,
      'pulltrace-webhook.pulltrace.svc',
    ),
    'a client trusting only the caBundle accepts the webhook',
  );
});

test('an existing ClusterIssuer (webhook.tls.certManager.issuerRef) issues the certificate instead', async () => {
  await k.run(['create', 'namespace', 'ops']);
  const issuer = {
    apiVersion: 'cert-manager.io/v1',
    kind: 'ClusterIssuer',
    metadata: { name: 'corp-ca' },
    spec: { selfSigned: {} },
  };
  const r = await k.run(['apply', '-f', '-'], { input: JSON.stringify(issuer) });
  assert.equal(r.code, 0, r.stderr);
  await helmInstall({
    release: 'ops',
    namespace: 'ops',
    kubeconfig: cluster.kubeconfigPath,
    valuesFiles: [join(TESTDATA, 'existing-issuer.yaml')],
  });
  const ca = await injectedCa('ops-pulltrace');
  // Self-signed: the certificate is its own CA; no chart CA in this release.
  const serving = await secretData('ops', 'ops-pulltrace-webhook-tls');
  assert.equal(serving['tls.crt']?.trim(), ca.trim());
  const issuers = await json<{ items: unknown[] }>(['get', 'issuers', '-n', 'ops']);
  assert.equal(issuers.items.length, 0);
  assert.ok(
    await handshake(serving['tls.crt'] ?? '', serving['tls.key'] ?? '', ca, 'ops-pulltrace-webhook.ops.svc'),
  );
});
