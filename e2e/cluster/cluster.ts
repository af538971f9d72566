// A real Kubernetes control plane as processes on loopback, as Kubernetes' hack/local-up-cluster.sh
// and controller-runtime's envtest run it: etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler built by e2e/env/build-kube.sh, with certificates made by openssl, in a private
// directory, on free 127.0.0.1 ports. No container engine, no kind. See README.md.
//
//   const cluster = await startCluster();
//   // kubectl --kubeconfig cluster.kubeconfigPath get pods
//   await cluster.stop();
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../test-support/net.js';
import { kubeBinDir, requireBinaries } from './binaries.js';
import {
  httpGet,
  httpProbe,
  startComponent,
  waitHealthy,
  type Component,
  type ProbeResult,
} from './component.js';
import { writeClusterKubeconfig } from './kubeconfig.js';
import { makePki, type ClientIdentity, type Pki } from './pki.js';

/** Options of startCluster(); every one has a default. */
export interface ClusterOptions {
  /** State directory (certificates, kubeconfigs, etcd data, logs). Default: a new /tmp/pt-kube-* removed by stop(). */
  dir?: string;
  /** Where the binaries are (default kubeBinDir(): build-kube.sh's output). */
  binDir?: string;
  /** Start kube-controller-manager (default true). */
  controllerManager?: boolean;
  /** Start kube-scheduler (default true). */
  scheduler?: boolean;
  /**
   * kube-controller-manager --controllers (default `['*']`, its defaults). A node without a real
   * kubelet renewing its Lease gets tainted unreachable by `node-lifecycle-controller`: leave that
   * one out (`['*', '-node-lifecycle-controller']`) when a stand-in plays the kubelet.
   */
  controllers?: string[];
  /** --service-cluster-ip-range (default 10.0.0.0/24: configuration only, no traffic goes there). */
  serviceCidr?: string;
  /** Extra kube-apiserver flags, appended last (so they win). */
  apiserverArgs?: string[];
  /** Time allowed for the whole start (default 90 s; a cold start takes a few seconds). */
  timeoutMs?: number;
  /** Keep the directory (logs, etcd data) after stop() or a failed start, for debugging (default false). */
  keep?: boolean;
}

/** A started control plane. */
export interface Cluster {
  /** `https://127.0.0.1:PORT` of kube-apiserver. */
  url: string;
  /** Admin kubeconfig (user `pulltrace-admin`, group system:masters), context namespace `default`. */
  kubeconfigPath: string;
  /** PEM path of the CA that signed the API server's certificate (and every client certificate). */
  caPath: string;
  dir: string;
  binDir: string;
  pki: Pki;
  /** `http://127.0.0.1:PORT` of etcd's client endpoint. */
  etcdUrl: string;
  /** The processes, in start order (a component started again replaces its old entry). */
  components: Component[];
  /**
   * Stops one component (`etcd`, `kube-apiserver`, `kube-controller-manager`, `kube-scheduler`)
   * as an outage would: SIGTERM (SIGKILL after 5 s), or `signal: 'SIGKILL'` for a crash. Its
   * clients see the real thing: connections refused (API server) or the API server's own errors
   * (etcd). startComponent() brings it back.
   */
  stopComponent(name: string, opts?: { signal?: 'SIGTERM' | 'SIGKILL' }): Promise<void>;
  /**
   * Starts a stopped component again, with the same flags, port and data, and waits until it is
   * healthy (the API server: /livez lists etcd ok, and /readyz). Throws a ComponentError if not.
   */
  startComponent(name: string, opts?: { timeoutMs?: number }): Promise<void>;
  /** Milliseconds from start() to healthy, per component, and `total`. */
  timings: Record<string, number>;
  /** Writes a kubeconfig authenticating as `id` with a new client certificate; returns its path. */
  kubeconfigFor(name: string, id: ClientIdentity): Promise<string>;
  /**
   * Registers `fn` to run at the start of stop(), before the control plane goes (last registered
   * first): startKubelet() uses it so that a test which only stops the cluster leaves no node behind.
   */
  addCleanup(fn: () => Promise<void>): void;
  /**
   * Runs the cleanups, stops every process (SIGTERM, then SIGKILL) and removes the directory if
   * startCluster made it. Idempotent.
   */
  stop(): Promise<void>;
}

const SERVICE_ISSUER = 'https://kubernetes.default.svc.cluster.local';

/** The first address of an IPv4 CIDR + 1 (the `kubernetes` Service IP). */
function firstServiceIp(cidr: string): string {
  const [addr = ''] = cidr.split('/');
  const parts = addr.split('.').map(Number);
  const last = parts.pop() ?? 0;
  return [...parts, last + 1].join('.');
}

/**
 * Starts etcd, then kube-apiserver, then kube-controller-manager and kube-scheduler, each waited
 * for on its health endpoint. On any failure everything started is stopped and the error names
 * the component that failed with its log's tail. Throws MissingBinaryError (naming
 * e2e/env/build-kube.sh) before starting anything if a binary is not built.
 */
export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const t0 = Date.now();
  const deadline = t0 + (opts.timeoutMs ?? 90_000);
  const binDir = opts.binDir ?? kubeBinDir();
  const bins = requireBinaries(
    ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler'],
    binDir,
  );
  const ownDir = opts.dir === undefined;
  // Short: the kubelet and containerd put unix sockets under it later.
  const dir = opts.dir ?? mkdtempSync('/tmp/pt-kube-');
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const components: Component[] = [];
  /** How to start each component again, and its health probe (stopComponent/startComponent). */
  const specs = new Map<string, { spawn: () => Component; probe: () => Promise<ProbeResult> }>();
  const timings: Record<string, number> = {};
  const cleanups: (() => Promise<void>)[] = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
    // Reverse order: clients first, etcd last, so nothing logs a storm of connection errors.
    for (const c of [...components].reverse()) await c.stop().catch(() => undefined);
    if (ownDir && opts.keep !== true) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const serviceCidr = opts.serviceCidr ?? '10.0.0.0/24';
    const pki = await makePki(join(dir, 'pki'), firstServiceIp(serviceCidr));
    const admin = await pki.client('admin', { user: 'pulltrace-admin', groups: ['system:masters'] });
    const [etcdPort, peerPort, apiPort, cmPort, schedPort] = await Promise.all(
      [0, 1, 2, 3, 4].map(() => freePort()),
    );
    const url = `https://127.0.0.1:${apiPort}`;
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const log = (name: string) => join(dir, 'logs', `${name}.log`);
    const kubeconfigPath = writeClusterKubeconfig(join(dir, 'kubeconfig'), {
      server: url,
      caPath: pki.caCert,
      credentials: { clientCert: admin.cert, clientKey: admin.key },
    });
    const kubeconfigFor = async (name: string, id: ClientIdentity): Promise<string> => {
      const pair = await pki.client(name, id);
      return writeClusterKubeconfig(join(dir, 'kubeconfigs', name), {
        server: url,
        caPath: pki.caCert,
        credentials: { clientCert: pair.cert, clientKey: pair.key },
      });
    };
    const healthy = async (c: Component, probe: () => Promise<ProbeResult>) => {
      await waitHealthy(c, probe, deadline);
      timings[c.name] = Date.now() - t0;
    };

    // --- etcd: one member, plain HTTP on loopback (peer port too), no fsync (test data only).
    const spawnEtcd = () =>
      startComponent(
        'etcd',
        bins.etcd,
        [
          '--name=pulltrace',
          `--data-dir=${join(dir, 'etcd')}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
          `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
          `--initial-cluster=pulltrace=http://127.0.0.1:${peerPort}`,
          '--unsafe-no-fsync=true',
          '--log-level=warn',
        ],
        log('etcd'),
      );
    const etcd = spawnEtcd();
    components.push(etcd);
    const etcdProbe = httpProbe(`${etcdUrl}/health`, undefined, (b) => b.includes('"health":"true"'));
    specs.set('etcd', { spawn: spawnEtcd, probe: etcdProbe });
    await healthy(etcd, etcdProbe);

    // --- kube-apiserver
    const spawnApiserver = () =>
      startComponent(
        'kube-apiserver',
        bins['kube-apiserver'],
        [
          `--etcd-servers=${etcdUrl}`,
          '--bind-address=127.0.0.1',
          '--advertise-address=127.0.0.1',
          `--secure-port=${apiPort}`,
          `--cert-dir=${join(dir, 'pki', 'apiserver-generated')}`,
          `--tls-cert-file=${pki.apiserver.cert}`,
          `--tls-private-key-file=${pki.apiserver.key}`,
          `--client-ca-file=${pki.caCert}`,
          `--kubelet-certificate-authority=${pki.caCert}`,
          `--kubelet-client-certificate=${admin.cert}`,
          `--kubelet-client-key=${admin.key}`,
          `--service-account-key-file=${pki.serviceAccount.publicKey}`,
          `--service-account-signing-key-file=${pki.serviceAccount.privateKey}`,
          `--service-account-issuer=${SERVICE_ISSUER}`,
          '--authorization-mode=Node,RBAC',
          // Added to the default plugins (which stay on): the kubelet's writes are limited to its node.
          '--enable-admission-plugins=NodeRestriction',
          // The chart's optional MutatingAdmissionPolicy (beta in 1.34, off by default).
          '--feature-gates=MutatingAdmissionPolicy=true',
          '--runtime-config=admissionregistration.k8s.io/v1beta1=true',
          `--service-cluster-ip-range=${serviceCidr}`,
          '--allow-privileged=true',
          // The `kubernetes` Endpoints may not hold a loopback address: keep the reconciler out.
          '--endpoint-reconciler-type=none',
          '--profiling=false',
          ...(opts.apiserverArgs ?? []),
        ],
        log('kube-apiserver'),
      );
    const apiserver = spawnApiserver();
    components.push(apiserver);
    const adminTls = { ca: pki.caCert, cert: admin.cert, key: admin.key };
    const livez = httpProbe(`${url}/livez?verbose`, adminTls, (b) => b.includes('[+]etcd ok'));
    const readyz = httpProbe(`${url}/readyz?verbose`, adminTls);
    const apiserverProbe = async () => {
      const l = await livez();
      return l.ok ? readyz() : l;
    };
    specs.set('kube-apiserver', { spawn: spawnApiserver, probe: apiserverProbe });
    await healthy(apiserver, apiserverProbe);

    // --- kube-controller-manager and kube-scheduler, side by side
    const waits: Promise<void>[] = [];
    if (opts.controllerManager !== false) {
      const kc = await kubeconfigFor('kube-controller-manager', { user: 'system:kube-controller-manager' });
      const serving = await pki.serving('kube-controller-manager');
      const spawnCm = () =>
        startComponent(
          'kube-controller-manager',
          bins['kube-controller-manager'],
          [
            `--kubeconfig=${kc}`,
            `--authentication-kubeconfig=${kc}`,
            `--authorization-kubeconfig=${kc}`,
            '--bind-address=127.0.0.1',
            `--secure-port=${cmPort}`,
            `--tls-cert-file=${serving.cert}`,
            `--tls-private-key-file=${serving.key}`,
            '--leader-elect=false',
            '--use-service-account-credentials=true',
            // Each controller's client starts with a token request; the default 20 QPS makes the
            // last controllers (serviceaccount among them) wait ~5 s.
            '--kube-api-qps=200',
            '--kube-api-burst=400',
            `--service-account-private-key-file=${pki.serviceAccount.privateKey}`,
            `--root-ca-file=${pki.caCert}`,
            `--cluster-signing-cert-file=${pki.caCert}`,
            `--cluster-signing-key-file=${pki.caKey}`,
            `--controllers=${(opts.controllers ?? ['*']).join(',')}`,
            `--service-cluster-ip-range=${serviceCidr}`,
          ],
          log('kube-controller-manager'),
        );
      const cm = spawnCm();
      components.push(cm);
      const cmProbe = httpProbe(`https://127.0.0.1:${cmPort}/healthz`, { ca: pki.caCert });
      specs.set('kube-controller-manager', { spawn: spawnCm, probe: cmProbe });
      waits.push(healthy(cm, cmProbe));
    }
    if (opts.scheduler !== false) {
      const kc = await kubeconfigFor('kube-scheduler', { user: 'system:kube-scheduler' });
      const serving = await pki.serving('kube-scheduler');
      const spawnSched = () =>
        startComponent(
          'kube-scheduler',
          bins['kube-scheduler'],
          [
            `--kubeconfig=${kc}`,
            `--authentication-kubeconfig=${kc}`,
            `--authorization-kubeconfig=${kc}`,
            '--bind-address=127.0.0.1',
            `--secure-port=${schedPort}`,
            `--tls-cert-file=${serving.cert}`,
            `--tls-private-key-file=${serving.key}`,
            '--leader-elect=false',
          ],
          log('kube-scheduler'),
        );
      const sched = spawnSched();
      components.push(sched);
      const schedProbe = httpProbe(`https://127.0.0.1:${schedPort}/healthz`, { ca: pki.caCert });
      specs.set('kube-scheduler', { spawn: spawnSched, probe: schedProbe });
      waits.push(healthy(sched, schedProbe));
    }
    await Promise.all(waits);
    if (opts.controllerManager !== false) {
      // Pods need their ServiceAccount at admission: wait for the controller to make default/default.
      const probe = httpProbe(`${url}/api/v1/namespaces/default/serviceaccounts/default`, adminTls);
      const cm = components.find((c) => c.name === 'kube-controller-manager');
      if (cm !== undefined)
        await waitHealthy(
          cm,
          async () => {
            const r = await probe();
            return {
              ok: r.ok,
              detail: `ServiceAccount default/default not made yet (${r.detail.slice(0, 120)})`,
            };
          },
          deadline,
        );
    }
    timings.total = Date.now() - t0;
    const named = (name: string) => {
      const spec = specs.get(name);
      if (spec === undefined) throw new Error(`no component ${name} (${[...specs.keys()].join(', ')})`);
      return spec;
    };
    const stopComponent = async (name: string, o: { signal?: 'SIGTERM' | 'SIGKILL' } = {}) => {
      named(name);
      const c = components.find((x) => x.name === name);
      if (c === undefined || c.exitStatus() !== null) return;
      if (o.signal === 'SIGKILL') {
        c.svc.child.kill('SIGKILL');
        await c.exited;
      } else await c.stop();
    };
    const restartComponent = async (name: string, o: { timeoutMs?: number } = {}) => {
      const spec = named(name);
      const i = components.findIndex((x) => x.name === name);
      if (i >= 0 && components[i]?.exitStatus() === null) throw new Error(`${name} is running`);
      const c = spec.spawn();
      if (i >= 0) components[i] = c;
      else components.push(c);
      await waitHealthy(c, spec.probe, Date.now() + (o.timeoutMs ?? 60_000));
    };
    return {
      url,
      kubeconfigPath,
      caPath: pki.caCert,
      dir,
      binDir,
      pki,
      etcdUrl,
      components,
      timings,
      stopComponent,
      startComponent: restartComponent,
      kubeconfigFor,
      addCleanup: (fn) => cleanups.push(fn),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** GET `path` on the API server as admin; for checks that need no client library. */
export async function apiGet(cluster: Cluster, path: string): Promise<{ status: number; body: string }> {
  const admin = {
    ca: cluster.pki.caCert,
    cert: join(cluster.pki.dir, 'admin.crt'),
    key: join(cluster.pki.dir, 'admin.key'),
  };
  return httpGet(`${cluster.url}${path}`, admin);
}
